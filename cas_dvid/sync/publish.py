"""Publishing: copy a locked version's closure to a directory or bucket prefix, with a manifest.

The destination is a complete store a read-only server can serve as it is: the
version's objects, a repo record holding just that version (and its history with
``history=True``), the UUID index, and a manifest naming the commit id.  The
manifest is canonical JSON kept twice: as a ``MANIFEST`` object (so it has an id
of its own) and as the ref ``published/<commit id>``.  The same ref in the source
store pins the snapshot there: gc keeps it even after the repo is deleted
(``unpublish`` drops the pin).  Anyone can check the copy from the commit id alone
with ``verify`` (see ``cas_dvid.sync.verify``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cas_dvid.errors import ConflictError, CorruptObjectError, InvalidInputError, NotFoundError
from cas_dvid.objects import Codec, Kind, ObjectId, content_id, parse_object_id, to_hex
from cas_dvid.objects.codec import encode
from cas_dvid.sync.abc import Peer
from cas_dvid.sync.ops import Report, transfer_version
from cas_dvid.sync.records import commit_id, resolve
from cas_dvid.sync.transfer import Options
from cas_dvid.sync.walk import verified
from cas_dvid.versions import Commit, now
from cas_dvid.versions.refs import PUBLISHED_PREFIX, published_ref

MANIFEST_FORMAT = 1


@dataclass(frozen=True, slots=True)
class Manifest:
    """A published snapshot: the commit, the roots published and where they came from."""

    raw: bytes

    @property
    def doc(self) -> dict[str, Any]:
        """The parsed JSON."""
        doc: dict[str, Any] = json.loads(self.raw)
        return doc

    @property
    def id(self) -> ObjectId:
        """Its object id."""
        return content_id(Kind.MANIFEST, self.raw)

    @property
    def commit(self) -> ObjectId:
        """The published commit."""
        return parse_object_id(self.doc["commit"])

    @property
    def roots(self) -> dict[str, ObjectId]:
        """Data UUID -> tree root of every published instance."""
        return {d: parse_object_id(r) for d, r in self.doc["roots"].items()}

    def stored(self) -> bytes:
        """Its stored form."""
        return b"".join(bytes(p) for p in encode(Kind.MANIFEST, self.raw, Codec.NONE))

    @classmethod
    def parse(cls, raw: bytes) -> Manifest:
        """Check a manifest's shape."""
        try:
            doc = json.loads(raw)
            parse_object_id(doc["commit"])
            {parse_object_id(r) for r in doc["roots"].values()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptObjectError(f"unreadable manifest: {exc}") from None
        return cls(raw)


def build_manifest(doc: dict[str, Any]) -> Manifest:
    """Canonical bytes of a manifest document."""
    return Manifest(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())


def published(peer: Peer) -> dict[str, Manifest]:
    """Every manifest pinned in a store, by commit id (hex)."""
    names = peer.list_refs(PUBLISHED_PREFIX)
    refs = peer.get_refs(names) if names else {}
    return {
        n[len(PUBLISHED_PREFIX) :]: Manifest.parse(r.value)
        for n, r in refs.items()
        if r is not None
    }


def publish(
    src: Peer,
    dst: Peer,
    spec: str,
    *,
    data: Iterable[str] | None = None,
    history: bool = False,
    options: Options | None = None,
    pin: bool = True,
) -> tuple[Manifest, Report]:
    """Copy a locked version to ``dst`` (an initialised store) and write its manifest."""
    repo, uuid = resolve(src, spec)
    cid = commit_id(repo, uuid)
    report = transfer_version(src, dst, uuid, data=data, flatten=not history, options=options)
    commit_raw = src.fetch([cid])[0][1]
    commit = Commit.decode(verified(cid, commit_raw)[1])
    names = set(data) if data is not None else None
    insts = [
        i for i in repo.instances.values() if i.versioned and (names is None or i.name in names)
    ]
    manifest = build_manifest(
        {
            "format": MANIFEST_FORMAT,
            "commit": to_hex(cid),
            "uuid": uuid,
            "repo": repo.root,
            "alias": repo.alias,
            "history": history,
            "roots": {
                i.data_uuid: commit.roots[i.data_uuid] for i in insts if i.data_uuid in commit.roots
            },
            "instances": {
                i.data_uuid: {"name": i.name, "typename": i.typename, "settings": i.settings}
                for i in insts
            },
            "published": now(),
        }
    )
    _pin(dst, cid, manifest)
    if pin:
        _pin(src, cid, manifest)
    return manifest, report


def _pin(peer: Peer, cid: ObjectId, manifest: Manifest) -> None:
    peer.put([(manifest.id, manifest.stored())])
    name = published_ref(to_hex(cid))
    ref = peer.get_ref(name)
    if ref is not None and ref.value == manifest.raw:
        return
    try:
        peer.cas_ref(name, None if ref is None else ref.token, manifest.raw)
    except ConflictError as exc:
        raise ConflictError(
            f"{name} at {peer.url} changed while publishing; run publish again"
        ) from exc


def unpublish(peer: Peer, commit: str) -> None:
    """Drop the pin of a published snapshot (its objects become garbage unless reachable)."""
    cid = parse_object_id(commit)
    name = published_ref(to_hex(cid))
    ref = peer.get_ref(name)
    if ref is None:
        raise NotFoundError(f"no published snapshot of commit {to_hex(cid)} at {peer.url}")
    peer.delete_ref(name, ref.token)


def check_commit_id(text: str) -> ObjectId:
    """Parse a 64-hex commit id from the command line."""
    try:
        return parse_object_id(text)
    except InvalidInputError:
        raise InvalidInputError(f"expected a 64-hex commit id, got {text!r}") from None
