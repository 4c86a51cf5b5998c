"""S3 bulk paths against the moto server, each beside the one-request-per-object way.

- ``has_many`` of N keys (half stored, half not) answered from listings vs one
  HeadObject per key (both with the backend's 32 connections in flight);
- ``delete_many`` of N keys by DeleteObjects batches vs one DeleteObject per key;
- a 64 MiB object (the largest kind cas_dvid stores: a keyvalue value) put whole vs as a
  multipart upload of 8 parallel 8 MiB parts (completed with If-None-Match, as a
  put-if-absent must be), and read whole vs by 8 parallel ranged GETs.  cas_dvid puts and
  gets whole objects; this shows whether the other way would pay here.

Prints times and ratios (how many times faster the bulk path is), measured on moto
only: real S3's latencies and listing costs differ.

    .venv/bin/python tools/bench_s3.py [--objects 4000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cas_dvid.backends import _s3, open_backend  # noqa: E402
from cas_dvid.objects import Kind, ObjectStore, content_id  # noqa: E402
from cas_dvid.testing.s3server import S3TestServer  # noqa: E402


def main() -> int:
    """Run both comparisons and print the figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--objects", type=int, default=4000)
    args = p.parse_args()
    n = args.objects
    with S3TestServer() as srv:
        srv.make_bucket("bench")
        backend = open_backend(f"s3://bench/has?endpoint_url={srv.endpoint}")
        assert isinstance(backend, _s3.S3Backend)
        store = ObjectStore(backend)
        ids = store.put_many([(Kind.BLOB, i.to_bytes(4, "little")) for i in range(n)])
        asked = [o.hex() for o in ids[::2]]
        asked += [content_id(Kind.BLOB, b"absent %d" % i).hex() for i in range(n // 2)]
        t0 = time.perf_counter()
        listed = backend.has_many(asked)
        t_list = time.perf_counter() - t0
        t0 = time.perf_counter()
        headed = list(backend._executor().map(backend._head, asked))
        t_head = time.perf_counter() - t0
        assert listed == headed
        print(
            f"has_many of {len(asked)} keys (store of {n}): listings {t_list:.2f} s, "
            f"HEAD each {t_head:.2f} s, {t_head / t_list:.1f}x faster"
        )
        doomed = [o.hex() for o in ids]
        half = len(doomed) // 2
        t0 = time.perf_counter()
        backend.delete_many(doomed[:half])
        t_bulk = time.perf_counter() - t0
        t0 = time.perf_counter()
        list(backend._executor().map(backend.delete, doomed[half:]))
        t_each = time.perf_counter() - t0
        print(
            f"delete of {half} keys: DeleteObjects batches {t_bulk:.2f} s, "
            f"DeleteObject each (32 in flight) {t_each:.2f} s, {t_each / t_bulk:.1f}x faster"
        )
        big(srv.endpoint)
    return 0


def big(endpoint: str) -> None:
    """Whole vs multipart put, whole vs parallel ranged get, of a 64 MiB object."""
    import boto3

    c = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    c.create_bucket(Bucket="bench-big")
    data = os.urandom(64 << 20)
    part = 8 << 20
    t0 = time.perf_counter()
    c.put_object(Bucket="bench-big", Key="whole", Body=data, IfNoneMatch="*")
    t_whole = time.perf_counter() - t0
    t0 = time.perf_counter()
    up = c.create_multipart_upload(Bucket="bench-big", Key="multi")["UploadId"]

    def put_part(i: int) -> dict[str, object]:
        body = data[i * part : (i + 1) * part]
        r = c.upload_part(Bucket="bench-big", Key="multi", UploadId=up, PartNumber=i + 1, Body=body)
        return {"ETag": r["ETag"], "PartNumber": i + 1}

    with ThreadPoolExecutor(8) as pool:
        parts = list(pool.map(put_part, range(len(data) // part)))
    c.complete_multipart_upload(
        Bucket="bench-big",
        Key="multi",
        UploadId=up,
        MultipartUpload={"Parts": parts},
        IfNoneMatch="*",
    )
    t_multi = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = c.get_object(Bucket="bench-big", Key="whole")["Body"].read()
    t_get = time.perf_counter() - t0

    def get_range(i: int) -> bytes:
        r = f"bytes={i * part}-{(i + 1) * part - 1}"
        return bytes(c.get_object(Bucket="bench-big", Key="whole", Range=r)["Body"].read())

    t0 = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        pieces = list(pool.map(get_range, range(8)))
    t_ranged = time.perf_counter() - t0
    assert b"".join(pieces) == got == data
    print(
        f"64 MiB object: put whole {t_whole:.2f} s vs multipart 8x8 MiB {t_multi:.2f} s "
        f"({t_multi / t_whole:.1f}x the time); get whole {t_get:.2f} s vs 8 ranged GETs "
        f"{t_ranged:.2f} s ({t_ranged / t_get:.1f}x the time)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
