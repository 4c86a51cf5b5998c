"""Where a keyvalue POST and GET spend their time: the WSGI app called in-process.

No waitress and no client: each request goes straight into ``create_app``'s app on
a file store, and a timer around the layers below it (tree apply and its node
writes, the head swap, the head read, version resolution, blob and value
decoding) prints microseconds per request for each, round by round.  Round 0
inserts new keys, later rounds overwrite them with a new value (as
bench_keyvalue.py does).  ``--cprofile`` prints cProfile's top functions instead.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cas_dvid.backends._local as local  # noqa: E402
import cas_dvid.datatypes.keyvalue as kv  # noqa: E402
import cas_dvid.trees._apply as apply  # noqa: E402
import cas_dvid.trees._build as build  # noqa: E402
import cas_dvid.trees._tree as tree  # noqa: E402
import cas_dvid.versions.heads as heads  # noqa: E402
import cas_dvid.versions.records as records  # noqa: E402
from cas_dvid.api import ServerConfig, create_app  # noqa: E402
from cas_dvid.objects import ObjectStore  # noqa: E402
from cas_dvid.versions.stores import init_store, open_store_backend  # noqa: E402

SECTIONS = [
    (kv.KeyValueStore, "put_many", "kv put_many"),
    (tree.Tree, "apply", "tree apply"),
    (apply, "apply_ops", "tree apply: compute"),
    (build.NodeWriter, "flush", "tree apply: node writes"),
    (kv, "encode_value", "value blob put"),
    (local.LocalBackend, "cas_ref", "head swap"),
    (heads.Heads, "read", "head read"),
    (records.Records, "resolve", "version resolve"),
    (records.Records, "load", "version resolve: record read"),
    (kv.KeyValueStore, "get", "kv get"),
    (tree.Tree, "get", "tree get"),
    (kv, "decode_values", "value decode"),
]


def _timed(spent: collections.Counter[str], fn: Callable[..., Any], label: str) -> Any:
    def wrapper(*args: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kw)
        finally:
            spent[label] += time.perf_counter() - t0

    return wrapper


def _wsgi(app: Any, method: str, path: str, body: bytes = b"") -> bytes:
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    status: list[str] = []
    out: Iterable[bytes] = app(env, lambda s, h, e=None: status.append(s))
    data = b"".join(out)
    assert status[0].startswith("200"), (status, data[:200])
    return data


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    ap.add_argument("--cprofile", action="store_true", help="cProfile the last round instead")
    args = ap.parse_args()
    spent: collections.Counter[str] = collections.Counter()
    if not args.cprofile:
        for owner, name, label in SECTIONS:
            setattr(owner, name, _timed(spent, getattr(owner, name), label))
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        url = f"file://{tmp}/store"
        init_store(url)
        config = ServerConfig(store_url=url)
        app = create_app(config, ObjectStore(open_store_backend(url)))
        root = json.loads(_wsgi(app, "POST", "/api/repos", b"{}"))["root"]
        _wsgi(app, "POST", f"/api/repo/{root}/instance", b'{"typename":"keyvalue","dataname":"kv"}')
        paths = [f"/api/node/{root}/kv/key/k{i:06d}" for i in range(args.requests)]
        for rnd in range(args.rounds):
            value = os.urandom(4096)
            for method in ("POST", "GET"):
                prof = cProfile.Profile() if args.cprofile and rnd == args.rounds - 1 else None
                spent.clear()
                t0 = time.perf_counter()
                if prof:
                    prof.enable()
                for path in paths:
                    _wsgi(app, method, path, value if method == "POST" else b"")
                if prof:
                    prof.disable()
                us = 1e6 * (time.perf_counter() - t0) / args.requests
                parts = ", ".join(
                    f"{k} {1e6 * v / args.requests:.0f}" for k, v in spent.most_common() if v
                )
                print(f"round {rnd} {method} {us:5.0f} us/request: {parts}")
                if prof:
                    out = io.StringIO()
                    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(30)
                    print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
