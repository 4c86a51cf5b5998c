"""Distribution: push, pull and clone by Merkle negotiation; verify; gc; publish.

A transfer runs between two ``Peer``s: stores reached directly (``file://``,
``s3://``, ``memory://``) or servers (``http://host:port``, through the
``/api/cas/sync/`` endpoints).  See ``transfer`` for the walk, ``ops`` for
push/pull, ``clone``, ``verify``, ``gc`` and ``publish``.  Which entries a
``--box`` transfer keeps, and what a partial version holds, the datatypes say
(``cas_dvid.datatypes.regions`` and ``partial``).
"""

from __future__ import annotations

from cas_dvid.objects import ObjectStore
from cas_dvid.sync._http import HttpPeer
from cas_dvid.sync._store import StorePeer
from cas_dvid.sync.abc import Peer, PeerStats
from cas_dvid.sync.ops import Report, transfer_version
from cas_dvid.sync.transfer import Options
from cas_dvid.versions.stores import open_store_backend


def open_peer(url: str) -> Peer:
    """Return a peer for ``http://host:port`` (a server) or any store URL or directory."""
    if url.startswith("http://") or url.startswith("https://"):
        return HttpPeer(url)
    backend = open_store_backend(url if "://" in url else f"file://{url}")
    return StorePeer(ObjectStore(backend, cache_bytes=0), own=True)


__all__ = [
    "HttpPeer",
    "Options",
    "Peer",
    "PeerStats",
    "Report",
    "StorePeer",
    "open_peer",
    "transfer_version",
]
