"""Distribution: push, pull and clone by Merkle negotiation; verify; gc; publish.

A transfer runs between two ``Peer``s: stores reached directly (``file://``,
``s3://``, ``memory://``) or servers (``http://host:port``, through the
``/api/cas/sync/`` endpoints).  See ``transfer`` for the walk, ``ops`` for
push/pull, ``clone``, ``verify``, ``gc``, ``publish``, and ``partial`` for the
read-path hook of box-filtered versions.
"""

from __future__ import annotations

from cas_dvid.objects import ObjectStore
from cas_dvid.sync._http import HttpPeer
from cas_dvid.sync._store import StorePeer
from cas_dvid.sync.abc import Peer, PeerStats
from cas_dvid.sync.filters import Box, BoxFilter, KeyFilter, parse_box
from cas_dvid.sync.ops import Report, transfer_version
from cas_dvid.sync.partial import OutsideRegionError, Region, partial_box, require_covered
from cas_dvid.sync.transfer import Options


def open_peer(url: str) -> Peer:
    """A peer for ``http://host:port`` (a server) or any store URL or directory."""
    if url.startswith("http://") or url.startswith("https://"):
        return HttpPeer(url)
    from cas_dvid.storeinfo import open_store_backend

    return StorePeer(
        ObjectStore(open_store_backend(url if "://" in url else f"file://{url}"), cache_bytes=0),
        own=True,
    )


__all__ = [
    "Box",
    "BoxFilter",
    "HttpPeer",
    "KeyFilter",
    "Options",
    "OutsideRegionError",
    "Peer",
    "PeerStats",
    "Region",
    "Report",
    "StorePeer",
    "open_peer",
    "parse_box",
    "partial_box",
    "require_covered",
    "transfer_version",
]
