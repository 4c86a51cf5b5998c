"""The server-wide memory budget: bytes in flight in request bodies and responses.

A request that will hold a large buffer (a POST body, a raw read, a block stream)
claims its estimated bytes before allocating; when they do not fit beside what other
requests hold, it waits up to ``wait`` seconds and then gets a 503 with
``Retry-After``.  A claim is held until the WSGI server has taken the whole answer
(the response iterable is closed), so a response counts until waitress has it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import falcon

from cas_dvid.api._body import BufferStream
from cas_dvid.errors import BusyError

COUNT_FROM = 1 << 20
"""Bodies and answers under 1 MiB are not counted (they cannot exhaust a server)."""


class Hold:
    """Bytes one request holds in the budget; ``release`` gives them back (idempotent)."""

    __slots__ = ("_budget", "nbytes")

    def __init__(self, budget: MemoryBudget, nbytes: int) -> None:
        self._budget: MemoryBudget | None = budget
        self.nbytes = nbytes

    def release(self) -> None:
        """Return the bytes to the budget, once."""
        budget, self._budget = self._budget, None
        if budget is not None:
            budget.give_back(self.nbytes)


class MemoryBudget:
    """A count of in-flight bytes shared by every request thread of one server.

    Attributes:
        total: bytes all requests together may hold; a request larger than this
            takes the whole budget (so it runs alone rather than never).
        wait: seconds a request waits for room before it is refused with a 503.
        peak: the most bytes ever held at once (for tests and ``server/info``).

    """

    def __init__(self, total: int, wait: float = 2.0) -> None:
        self.total = max(1, total)
        self.wait = wait
        self.used = 0
        self.peak = 0
        self._cond = threading.Condition()

    def reserve(self, nbytes: int) -> Hold:
        """Claim ``nbytes`` (clamped to the total), waiting up to ``wait`` seconds for room.

        Raises:
            BusyError: the bytes did not fit in time.

        """
        n = min(max(0, nbytes), self.total)
        deadline = time.monotonic() + self.wait
        with self._cond:
            while self.used + n > self.total:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BusyError(
                        f"server is busy: {nbytes} bytes do not fit in its memory budget "
                        f"({self.used} of {self.total} bytes in flight); retry shortly",
                        retry_after=max(1, round(self.wait)),
                    )
                self._cond.wait(left)
            self.used += n
            self.peak = max(self.peak, self.used)
        return Hold(self, n)

    def give_back(self, nbytes: int) -> None:
        """Return bytes a ``Hold`` had (use ``Hold.release``)."""
        with self._cond:
            self.used -= nbytes
            self._cond.notify_all()


def claim(budget: MemoryBudget, req: falcon.Request, nbytes: int) -> None:
    """Claim ``nbytes`` for ``req`` until its answer is sent (nothing under ``COUNT_FROM``)."""
    if nbytes < COUNT_FROM:
        return
    hold = budget.reserve(nbytes)
    holds: list[Hold] = req.context.setdefault("budget_holds", [])  # type: ignore[assignment]
    holds.append(hold)


class Released:
    """A WSGI response iterable that releases its request's holds when the server closes it.

    ``chunks`` may be a generator (a streamed answer): its own ``close`` runs too.
    """

    def __init__(self, chunks: Iterable[bytes], holds: list[Hold] | None = None) -> None:
        self.chunks = chunks
        self.holds = holds if holds is not None else []

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)

    def close(self) -> None:
        """Close the chunk source, then give back every hold (waitress calls this)."""
        try:
            close = getattr(self.chunks, "close", None)
            if close is not None:
                close()
        finally:
            for hold in self.holds:
                hold.release()


class BudgetMiddleware:
    """Claim POST/PUT bodies on arrival; keep every claim until the answer is sent."""

    def __init__(self, budget: MemoryBudget, max_body_bytes: int) -> None:
        self.budget = budget
        self.max_body_bytes = max_body_bytes

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Claim a large body before the resource reads it (one it will refuse: not)."""
        n = req.content_length
        if req.method in ("POST", "PUT") and n and n <= self.max_body_bytes:
            claim(self.budget, req, n)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, ok: bool
    ) -> None:
        """Hand the holds to the response iterable (or give them back for an empty answer)."""
        holds: list[Hold] = req.context.get("budget_holds") or []
        if not holds:
            return
        # NOTE: falcon sends no body (and never closes the stream) for HEAD, 204 and 304.
        bodiless = req.method == "HEAD" or falcon.code_to_http_status(resp.status)[:3] in (
            "204",
            "304",
        )
        if isinstance(resp.stream, (Released, BufferStream)):
            resp.stream.holds.extend(holds)
            if bodiless:
                resp.stream.close()
            return
        body = resp.render_body()
        if bodiless or not body or resp.stream is not None:
            for hold in holds:
                hold.release()
            return
        resp.data = None
        resp.text = None
        resp.content_length = len(body)
        resp.stream = BufferStream([body], holds)
