"""The other side of a transfer: a ``Peer`` moves objects and refs, and says what it has."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

from cas_dvid.backends import Ref
from cas_dvid.errors import ConflictError, NotFoundError
from cas_dvid.objects import ObjectId
from cas_dvid.objects.ids import BytesLike
from cas_dvid.versions.refs import INCOMPLETE_REF, incomplete_ids


@dataclass(slots=True)
class PeerStats:
    """What crossed the boundary of one peer (requests are round trips for HTTP peers)."""

    requests: int = 0
    have_requests: int = 0
    have_ids: int = 0
    objects_in: int = 0
    bytes_in: int = 0
    objects_out: int = 0
    bytes_out: int = 0
    wire_bytes_sent: int = 0
    wire_bytes_received: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        """Add to counters (thread-safe)."""
        with self._lock:
            for k, v in counts.items():
                setattr(self, k, getattr(self, k) + v)

    def as_dict(self) -> dict[str, int]:
        """Return the counters by name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


class Peer(ABC):
    """A store reached directly (``file://``, ``s3://``) or through a server (``http://``).

    ``has`` answers for complete closures: an id is reported present only if the
    object is stored and, for a tree node, everything below it is too.  Objects are
    written bottom-up (blobs, then leaves, then each level up, commits last) so a
    stored node always has its children, except where a filtered (``--box``)
    transfer left some out: those ids are listed in the ``sync/incomplete`` ref and
    ``has`` reports them absent.  A commit's presence says nothing of its parents.
    """

    url: str

    def __init__(self) -> None:
        self.stats = PeerStats()

    @property
    def parallelism(self) -> int:
        """Batches worth having in flight at once."""
        return 4

    @abstractmethod
    def get_ref(self, name: str) -> Ref | None:
        """Return a ref's value and token, or None."""

    @abstractmethod
    def cas_ref(self, name: str, expected: str | None, value: bytes) -> str:
        """Compare-and-swap a ref; ConflictError when it changed."""

    @abstractmethod
    def delete_ref(self, name: str, expected: str) -> None:
        """Delete a ref if unchanged."""

    @abstractmethod
    def list_refs(self, prefix: str = "") -> list[str]:
        """Ref names starting with ``prefix``."""

    @abstractmethod
    def has(self, ids: Sequence[ObjectId]) -> list[bool]:
        """For each id, whether its complete closure is stored (one round trip)."""

    @abstractmethod
    def fetch(self, ids: Sequence[ObjectId]) -> list[tuple[ObjectId, bytes]]:
        """Return stored forms, in input order; NotFoundError naming the first missing id."""

    @abstractmethod
    def put(self, items: Sequence[tuple[ObjectId, BytesLike]]) -> int:
        """Store objects given in stored form, each re-hashed first; return how many were new.

        A bad object raises ``CorruptObjectError`` naming its id.
        """

    def negotiate(
        self, refs: Sequence[str], ids: Sequence[ObjectId]
    ) -> tuple[dict[str, Ref | None], list[bool]]:
        """Read refs and ask about ids in one round trip where the peer can."""
        return {n: self.get_ref(n) for n in refs}, self.has(ids) if ids else []

    def get_refs(self, names: Sequence[str]) -> dict[str, Ref | None]:
        """Several refs (one round trip where the peer can)."""
        return self.negotiate(names, [])[0]

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def update_incomplete(peer: Peer, add: set[ObjectId], complete: set[ObjectId]) -> None:
    """Add ids to the incomplete list and drop ids now known complete (compare-and-swap)."""
    for _ in range(100):
        ref = peer.get_ref(INCOMPLETE_REF)
        have = incomplete_ids(ref)
        new = (have - complete) | add
        if new == have:
            return
        try:
            if new:
                peer.cas_ref(
                    INCOMPLETE_REF, None if ref is None else ref.token, b"".join(sorted(new))
                )
            elif ref is not None:
                peer.delete_ref(INCOMPLETE_REF, ref.token)
            return
        except (ConflictError, NotFoundError):
            continue
    raise ConflictError(f"could not update {INCOMPLETE_REF} on {peer.url}: it kept changing")
