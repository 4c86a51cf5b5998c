"""``s3://bucket/prefix`` via boto3: AWS S3 or any S3-compatible server.

Objects are put with ``If-None-Match: *`` and refs swapped with ``If-Match: <ETag>``,
so servers sharing a bucket need no other coordinator.  Before the first ref write
the backend checks that the server honours both conditions and refuses to go on
if it does not (a server that ignores them would let two writers both "win").
Race safety then rests on S3's own guarantee; the moto test server checks the
condition and stores in separate steps, so tests on it prove the sequential
semantics only (see PERF-NOTES.md).

Endpoint, region and credentials come from boto3's usual settings (environment,
``~/.aws``), ``AWS_ENDPOINT_URL``/``AWS_ENDPOINT_URL_S3``, or URL options:
``s3://bucket/prefix?endpoint_url=http://127.0.0.1:9000&region=us-east-1``.
Timeouts and retries are bounded so an unreachable endpoint fails fast.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from cas_dvid.backends.abc import (
    Backend,
    ByteRange,
    ObjectInfo,
    Parts,
    Ref,
    check_key,
    check_ref_name,
)
from cas_dvid.errors import BackendError, ConflictError, NotFoundError

_CONNECTION_ERRORS = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
)


DELETE_BATCH = 1000
"""Keys per DeleteObjects call: the most S3 accepts."""
LIST_FROM = 256
"""``has_many`` of at least this many keys tries listings before HEADs."""
LIST_MIN_HITS = 16
"""Asked keys a listing page must answer to beat HEADs (a page costs ~ a few HEADs)."""
FANOUT = 2
"""Hex characters of an object key's first folder (``objects/ab/cdef...``)."""


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: botocore.exceptions.ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


class S3Backend(Backend):
    """A bucket (and key prefix) on S3 or an S3-compatible server."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_attempts: int = 3,
        max_pool: int = 32,
        client: Any = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.url = f"s3://{bucket}/{self.prefix}"
        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            max_pool_connections=max_pool,
        )
        self._client = client or boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=config
        )
        self.endpoint = str(self._client.meta.endpoint_url)
        self._pool_size = max_pool
        self._pool: ThreadPoolExecutor | None = None
        self._checked = False
        self._check_lock = threading.Lock()

    @property
    def parallelism(self) -> int:
        """S3 round trips are slow; keep many in flight."""
        return 16

    @property
    def min_parallel_batch(self) -> int:
        """Two round trips in flight already beat one after the other."""
        return 2

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(Bucket=self.bucket, **kwargs)
        except _CONNECTION_ERRORS as exc:
            raise BackendError(f"S3 endpoint {self.endpoint} unreachable ({what}): {exc}") from exc
        except botocore.exceptions.NoCredentialsError as exc:
            raise BackendError(
                f"no credentials for S3 endpoint {self.endpoint}: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or a profile"
            ) from exc
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in ("NoSuchBucket",):
                raise BackendError(
                    f"bucket {self.bucket} does not exist at {self.endpoint}"
                ) from exc
            raise

    def _okey(self, key: str) -> str:
        return f"{self.prefix}objects/{check_key(key)}"

    def _rkey(self, name: str) -> str:
        return f"{self.prefix}refs/{check_ref_name(name)}"

    def get(self, key: str, byte_range: ByteRange | None = None) -> bytes:
        """GetObject, with a Range header when asked."""
        kwargs: dict[str, Any] = {"Key": self._okey(key)}
        if byte_range is not None:
            if byte_range.end == byte_range.start:
                return b""
            end = "" if byte_range.end is None else str(byte_range.end - 1)
            kwargs["Range"] = f"bytes={byte_range.start}-{end}"
        try:
            resp = self._call("get", self._client.get_object, **kwargs)
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                raise NotFoundError(f"object {key} not found in {self.url}") from None
            raise BackendError(f"S3 get {key} at {self.endpoint}: {exc}") from exc
        return bytes(resp["Body"].read())

    def put_if_absent(self, key: str, parts: Parts) -> bool:
        """PutObject with If-None-Match: * (a 412 means it was already there)."""
        body = b"".join(parts)
        try:
            self._call(
                "put", self._client.put_object, Key=self._okey(key), Body=body, IfNoneMatch="*"
            )
        except botocore.exceptions.ClientError as exc:
            if _status(exc) == 412 or _code(exc) == "PreconditionFailed":
                return False
            if _status(exc) == 409:  # ConditionalRequestConflict: a concurrent put of the same id
                return False
            raise BackendError(f"S3 put {key} at {self.endpoint}: {exc}") from exc
        return True

    def _head(self, key: str) -> bool:
        try:
            self._call("head", self._client.head_object, Key=self._okey(key))
        except botocore.exceptions.ClientError as exc:
            if _status(exc) == 404:
                return False
            raise BackendError(f"S3 head {key} at {self.endpoint}: {exc}") from exc
        return True

    def has_many(self, keys: Sequence[str]) -> list[bool]:
        """Whether each key is stored: listings where the keys are dense, else HeadObject.

        S3 has no batched existence check.  A ListObjectsV2 page answers for every asked
        key up to the last one it lists (up to 1,000 objects a call), so for many keys
        (a push negotiating a big closure) the keys are sorted, split at the fan-out
        prefix, and each group is answered by pages listed from just before its first
        unresolved key; a group whose pages answer fewer than ``LIST_MIN_HITS`` keys each
        (sparse asks in a big store) goes on with one HEAD per key.  Groups run in
        parallel.
        """
        if len(keys) <= 1:
            return [self._head(k) for k in keys]
        pool = self._executor()
        if len(keys) < LIST_FROM:
            return list(pool.map(self._head, keys))
        groups: dict[str, list[str]] = {}
        for k in sorted(set(keys)):
            groups.setdefault(k[:FANOUT], []).append(k)
        found: dict[str, bool] = {}
        for part in pool.map(self._has_sorted, groups.values()):
            found.update(part)
        return [found[k] for k in keys]

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._pool_size, thread_name_prefix="s3-has")
        return self._pool

    def _has_sorted(self, keys: list[str]) -> dict[str, bool]:
        """Answer sorted keys by listing pages; HEAD the rest when the pages stop paying."""
        out: dict[str, bool] = {}
        i = 0
        while i < len(keys):
            first = self._okey(keys[i])
            resp = self._call(
                "list",
                self._client.list_objects_v2,
                Prefix=f"{self.prefix}objects/{keys[i][:FANOUT]}",
                StartAfter=first[:-1],  # just before the first unresolved key
                MaxKeys=1000,
            )
            listed = {item["Key"] for item in resp.get("Contents", [])}
            last = max(listed) if listed else None
            done = i
            while done < len(keys) and (
                not resp.get("IsTruncated") or (last is not None and self._okey(keys[done]) <= last)
            ):
                out[keys[done]] = self._okey(keys[done]) in listed
                done += 1
            if done - i < LIST_MIN_HITS and done < len(keys):
                rest = keys[done:]
                out.update(zip(rest, (self._head(k) for k in rest), strict=True))
                break
            i = done
        return out

    def list_prefix(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """ListObjectsV2 pages under objects/."""
        base = f"{self.prefix}objects/"
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=base + prefix
        )
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    key = item["Key"][len(base) :]
                    yield ObjectInfo(key, int(item["Size"]), item["LastModified"].timestamp())
        except _CONNECTION_ERRORS as exc:
            raise BackendError(f"S3 endpoint {self.endpoint} unreachable (list): {exc}") from exc

    def delete(self, key: str) -> None:
        """DeleteObject."""
        self._call("delete", self._client.delete_object, Key=self._okey(key))

    def delete_many(self, keys: Sequence[str]) -> None:
        """DeleteObjects, up to 1,000 keys a call (S3's limit), quiet mode; any error raises."""
        for i in range(0, len(keys), DELETE_BATCH):
            batch = [{"Key": self._okey(k)} for k in keys[i : i + DELETE_BATCH]]
            done = self._call(
                "delete", self._client.delete_objects, Delete={"Objects": batch, "Quiet": True}
            )
            errors = done.get("Errors", [])
            if errors:
                first = errors[0]
                raise BackendError(
                    f"S3 DeleteObjects at {self.endpoint}: {len(errors)} of {len(batch)} failed, "
                    f"first {first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )

    # -- refs ---------------------------------------------------------------

    def get_ref(self, name: str) -> Ref:
        """GetObject; the token is the ETag."""
        try:
            resp = self._call("get ref", self._client.get_object, Key=self._rkey(name))
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                raise NotFoundError(f"ref {name} not found in {self.url}") from None
            raise BackendError(f"S3 get ref {name} at {self.endpoint}: {exc}") from exc
        return Ref(bytes(resp["Body"].read()), str(resp["ETag"]))

    def cas_ref(self, name: str, expected: str | None, value: bytes) -> str:
        """PutObject conditioned on the ETag (or on absence)."""
        self.check_conditional_writes()
        cond = {"IfNoneMatch": "*"} if expected is None else {"IfMatch": expected}
        try:
            resp = self._call(
                "swap ref", self._client.put_object, Key=self._rkey(name), Body=value, **cond
            )
        except botocore.exceptions.ClientError as exc:
            self._raise_conflict(name, expected, exc)
        return str(resp["ETag"])

    def delete_ref(self, name: str, expected: str) -> None:
        """DeleteObject conditioned on the ETag."""
        self.check_conditional_writes()
        try:
            self._call(
                "delete ref", self._client.delete_object, Key=self._rkey(name), IfMatch=expected
            )
        except botocore.exceptions.ClientError as exc:
            self._raise_conflict(name, expected, exc)

    def _raise_conflict(
        self, name: str, expected: str | None, exc: botocore.exceptions.ClientError
    ) -> None:
        if _status(exc) in (404, 409, 412) or _code(exc) in ("PreconditionFailed", "NoSuchKey"):
            try:
                cur: Ref | None = self.get_ref(name)
            except NotFoundError:
                cur = None
            raise ConflictError(
                f"ref {name} changed: expected {expected or 'absent'}, "
                f"found {cur.token if cur else 'absent'}",
                cur.value if cur else None,
                cur.token if cur else None,
            ) from None
        raise BackendError(f"S3 ref write {name} at {self.endpoint}: {exc}") from exc

    def list_refs(self, prefix: str = "") -> Iterator[str]:
        """ListObjectsV2 under refs/, sorted by name."""
        base = f"{self.prefix}refs/"
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=base + prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                name = item["Key"][len(base) :]
                if not name.startswith(".probe-"):
                    yield name

    def check_conditional_writes(self) -> None:
        """Prove once that the server honours If-None-Match and If-Match; fail loudly if not."""
        if self._checked:
            return
        with self._check_lock:
            if not self._checked:
                self._probe()
                self._checked = True

    def _probe(self) -> None:
        key = f"{self.prefix}refs/.probe-{secrets.token_hex(8)}"
        put = self._client.put_object
        try:
            first = self._call("probe", put, Key=key, Body=b"1", IfNoneMatch="*")
            failures = []
            for label, cond in (
                ("If-None-Match: *", {"IfNoneMatch": "*"}),
                ("If-Match with a stale ETag", {"IfMatch": '"00000000000000000000000000000000"'}),
            ):
                try:
                    self._call("probe", put, Key=key, Body=b"2", **cond)
                    failures.append(label)
                except botocore.exceptions.ClientError as exc:
                    if _status(exc) != 412:
                        failures.append(f"{label} (answered {_status(exc)} {_code(exc)})")
            self._call("probe", put, Key=key, Body=b"3", IfMatch=first["ETag"])
        finally:
            try:
                self._client.delete_object(Bucket=self.bucket, Key=key)
            except Exception:  # noqa: BLE001 - best-effort cleanup of the probe key
                pass
        if failures:
            raise BackendError(
                f"S3 server {self.endpoint} does not honour conditional writes "
                f"({', '.join(failures)}); refusing to write refs, since racing writers "
                "could both win"
            )

    def close(self) -> None:
        """Shut the has() pool down."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
