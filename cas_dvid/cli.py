"""The ``cas-dvid`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from cas_dvid.errors import CasDvidError

Handler = Callable[[argparse.Namespace], int]


def _store_url(text: str) -> str:
    return text if "://" in text else f"file://{text}"


def cmd_init(args: argparse.Namespace) -> int:
    """Create a store."""
    from cas_dvid.storeinfo import init_store

    backend, created = init_store(_store_url(args.store))
    print(f"{'created' if created else 'already a store:'} {backend.url}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve DVID's HTTP API on a store."""
    from cas_dvid.api import ServerConfig, create_app
    from cas_dvid.objects import ObjectStore
    from cas_dvid.serve import serve
    from cas_dvid.storeinfo import open_store_backend

    url = _store_url(args.store)
    config = ServerConfig(store_url=url, read_only=args.read_only, cache_bytes=args.cache_mb << 20)
    store = ObjectStore(open_store_backend(url), cache_bytes=config.cache_bytes)
    app = create_app(config, store)
    mode = " (read-only)" if args.read_only else ""
    print(f"cas_dvid serving {store.backend.url}{mode} on http://{args.host}:{args.port}", flush=True)
    serve(app, host=args.host, port=args.port, threads=args.threads)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    p = argparse.ArgumentParser(prog="cas-dvid", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("init", help="create a store in a directory or s3://bucket/prefix")
    s.add_argument("store", help="directory, file://PATH or s3://bucket/prefix")
    s.set_defaults(func=cmd_init)

    s = sub.add_parser("serve", help="serve DVID's HTTP API on a store")
    s.add_argument("store", nargs="?", default="data", help="store URL or directory (default ./data)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--threads", type=int, default=8)
    s.add_argument("--read-only", action="store_true", help="refuse every write")
    s.add_argument("--cache-mb", type=int, default=512, help="decoded-object cache size")
    s.set_defaults(func=cmd_serve)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cas-dvid`` console script."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.func
    try:
        return handler(args)
    except CasDvidError as exc:
        print(f"cas-dvid: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
