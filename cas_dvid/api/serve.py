"""Run the WSGI app under waitress with settings measured to suit large bodies."""

from __future__ import annotations

import logging
from typing import Any

import waitress

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
    waitress.serve(app, host=host, port=port, threads=threads, **waitress_settings())
