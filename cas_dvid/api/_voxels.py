"""Voxel answers under the memory budget: whole bodies for small reads, z-slabs for big ones."""

from __future__ import annotations

from collections.abc import Iterator

import falcon
import numpy as np

from cas_dvid.api._body import BufferStream
from cas_dvid.api._images import OCTET
from cas_dvid.api.budget import MemoryBudget, Released, claim

SLAB_BYTES = 16 << 20
"""Largest slab a streamed answer assembles at once."""
WAITRESS_BUFFER = 64 << 20
"""What waitress may keep in memory of an answer before it spools to a file
(``outbuf_overflow`` in ``api.serve``)."""


def whole_claim(budget: MemoryBudget, req: falcon.Request, nbytes: int) -> None:
    """Claim a whole-body answer: the assembled array and its bytes (twice the answer)."""
    claim(budget, req, 2 * nbytes)


def send_array(resp: falcon.Response, vol: np.ndarray) -> None:
    """Answer the bytes of ``vol`` in place (``BufferStream``: no copy of the whole)."""
    body = BufferStream([np.ascontiguousarray(vol).data])
    resp.content_type = OCTET
    resp.content_length = body.size
    resp.stream = body


def stream_slabs(
    req: falcon.Request,
    resp: falcon.Response,
    budget: MemoryBudget,
    nbytes: int,
    slabs: Iterator[np.ndarray],
) -> None:
    """Answer ``nbytes`` of voxels as the WSGI iterable of ``slabs`` (their bytes, in order).

    Claims what a slab at a time costs (its array, its bytes, waitress's buffer). The
    first slab is built here, so store damage in it is still a 500; a fault in a later
    slab can only cut the answer short (the client sees fewer bytes than
    Content-Length), and is logged by the server.
    """
    claim(budget, req, min(2 * nbytes, 2 * SLAB_BYTES + WAITRESS_BUFFER))
    first = next(slabs)
    resp.content_type = OCTET
    resp.content_length = nbytes
    resp.stream = Released(_chunks(first, slabs))


def _chunks(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[bytes]:
    """Bytes of each slab; a slab is dropped before the next is assembled."""
    slab: np.ndarray | None = first
    del first
    while slab is not None:
        data = slab.tobytes()
        slab = None
        yield data
        del data
        slab = next(rest, None)
