"""Response bodies over ready buffers, read as a file so the WSGI server sends them in place.

PERF: waitress copies every chunk of a response iterable into its output buffer (a
``BytesIO``) before sending; for a 16 MiB raw GET that copy was 40% of the server's
time, most of it faulting in fresh pages (the buffer's arena heap is unmapped after
each answer: 250k page faults in 5 s of raw GETs).  A file-like body goes through
``wsgi.file_wrapper`` instead, and waitress reads it a send-buffer at a time straight
from the buffers the answer was assembled in (tools/bench_table.py rows 1 and 3).
"""

from __future__ import annotations

import bisect
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cas_dvid.objects.ids import BytesLike

if TYPE_CHECKING:
    from cas_dvid.api.budget import Hold


SMALL_PIECE = 1 << 20
"""With ``views``, a read that would end in a part sooner than this copies out the
parts it spans instead (a record stream's 16-byte headers and 256 KiB blocks)."""


class BufferStream(io.RawIOBase):
    """A read-only, seekable file over buffers (never copied but by ``read``).

    The buffers must not change while the answer is sent: pass arrays assembled for it
    or immutable objects (cached block payloads, ``bytes``).  ``holds`` (memory budget
    claims) are released when the server closes the file, after the last byte went out.
    """

    def __init__(self, parts: Sequence[BytesLike], holds: list[Hold] | None = None) -> None:
        super().__init__()
        self._parts = [memoryview(p).cast("B") for p in parts]
        self._starts: list[int] = []
        n = 0
        for mv in self._parts:
            self._starts.append(n)
            n += mv.nbytes
        self.size = n
        self._pos = 0
        self.holds: list[Hold] = holds if holds is not None else []
        self.views = False
        """Whether ``read`` may answer views of the parts (``api.serve.in_place_bodies``
        sets it for waitress's file wrapper, which only sends what it reads)."""

    def readable(self) -> bool:
        """Return True: it is a body to send."""
        return True

    def seekable(self) -> bool:
        """Return True (waitress seeks to the end to learn the size)."""
        return True

    def tell(self) -> int:
        """Return the read position."""
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the read position (clamped to the body) and return it."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = min(max(0, base + offset), self.size)
        return self._pos

    def read(self, size: int | None = -1) -> bytes | memoryview:
        """Return up to ``size`` bytes (all that is left for -1 or None).

        With ``views`` set, a read of a size inside a big part, or of the body's last
        bytes, is a view of that part (no copy; a short read at the part's end, as a raw
        file may give): waitress reads a send-buffer (4 MiB on loopback) a time, and
        copying it was 31% of a cached raw GET's samples.  Anything else is copied out:
        always without ``views`` (a WSGI iterable must yield ``bytes``), and for reads
        that would stop within ``SMALL_PIECE`` in a part.

        PERF: a record stream (16-byte headers, 256 KiB blocks) sent as views went out
        in two sends a block and took more system time than the copy saved (specificblocks
        of 32 blocks: 2.5 against 2.1 ms of server sys CPU a request); joined into 4 MiB
        reads it costs what it did before.
        """
        if self.closed:
            raise ValueError("read of a closed BufferStream")
        end = self.size if size is None or size < 0 else min(self.size, self._pos + size)
        if end <= self._pos:
            return b""
        i = bisect.bisect_right(self._starts, self._pos) - 1
        mv, start = self._parts[i], self._starts[i]
        if self.views and size is not None and size >= 0:
            take = min(end, start + mv.nbytes)
            if take - self._pos >= SMALL_PIECE or take == end:
                piece = mv[self._pos - start : take - start]
                self._pos = take
                return piece
        pieces = []
        pos = self._pos
        while pos < end:
            mv, start = self._parts[i], self._starts[i]
            take = min(end, start + mv.nbytes)
            pieces.append(mv[pos - start : take - start])
            pos = take
            i += 1
        self._pos = end
        return bytes(pieces[0]) if len(pieces) == 1 else b"".join(pieces)

    def close(self) -> None:
        """Drop the buffers and give back every hold (the server calls this when done)."""
        if not self.closed:
            self._parts, self._starts = [], []
            try:
                super().close()
            finally:
                for hold in self.holds:
                    hold.release()
