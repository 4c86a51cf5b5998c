"""Run the WSGI app under waitress with settings measured to suit large bodies."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import waitress

from cas_dvid.api._body import BufferStream

CONNECTION_LIMIT = 512
"""Open connections waitress keeps (its default, 100, let ~100 idle keep-alive clients
stop the server from accepting anyone else until they timed out)."""
CHANNEL_TIMEOUT = 60
"""Seconds an idle or stalled connection is kept (was 300: five minutes of a dead slot)."""


OUTBUF_HIGH_WATERMARK = 32 << 20
"""Output a request thread may queue before it waits for the socket to drain (was 256 MiB:
a streamed 512 MiB raw GET then sat 0.78x its size above idle RSS; 32 MiB gives 0.43x,
tools/bench_rss.py). A one-piece body is queued whole either way."""


def waitress_settings() -> dict[str, Any]:
    """Return the waitress settings every cas_dvid server uses (serve and the tests)."""
    return {
        "outbuf_overflow": 64 << 20,
        "inbuf_overflow": 64 << 20,
        "outbuf_high_watermark": OUTBUF_HIGH_WATERMARK,
        "connection_limit": CONNECTION_LIMIT,
        "channel_timeout": CHANNEL_TIMEOUT,
        "ident": "cas_dvid",
        "clear_untrusted_proxy_headers": True,
    }


def serve(app: Any, host: str = "127.0.0.1", port: int = 8000, threads: int = 8) -> None:
    """Serve ``app`` until interrupted.

    PERF: waitress spools responses over 1 MiB and request bodies over 512 KiB to
    temp files by default; keeping 64 MiB in memory made 16 MiB bodies ~1.5x faster
    on loopback (PERF-NOTES.md).
    """
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    waitress.serve(
        in_place_bodies(app), host=host, port=port, threads=threads, **waitress_settings()
    )


def in_place_bodies(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """Wrap ``app`` so waitress sends ``BufferStream`` bodies from their buffers, uncopied.

    Waitress's ``wsgi.file_wrapper`` reads a body a send-buffer at a time and passes
    each read straight to ``socket.send``, so reads there may be views (``views``);
    anywhere else a body read stays ``bytes``, as a WSGI iterable's must.

    PERF: a cached 256^3 raw GET went from 14.7 to 11.8 ms of server CPU (user 9.8 to
    7.5), tools/bench_table.py row 1.
    """

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        wrapper = environ.get("wsgi.file_wrapper")
        if wrapper is not None:

            def wrap(body: Any, block_size: int = 8192) -> Any:
                if isinstance(body, BufferStream):
                    body.views = True
                return wrapper(body, block_size)

            environ["wsgi.file_wrapper"] = wrap
        return app(environ, start_response)

    return wrapped
