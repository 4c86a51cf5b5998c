"""``cas-dvid init`` and ``cas-dvid serve``: make a store, serve DVID's API on it."""

from __future__ import annotations

import argparse

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.api.serve import serve
from cas_dvid.cli._commands import arguments, command
from cas_dvid.cli._common import store_url
from cas_dvid.errors import InvalidInputError
from cas_dvid.objects import ObjectStore
from cas_dvid.versions.stores import init_store, open_store_backend

GROUP = "stores and servers"


def _init_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="directory, file://PATH or s3://bucket/prefix")


@command("init", "create a store in a directory or s3://bucket/prefix", group=GROUP)
@arguments(_init_args)
def cmd_init(args: argparse.Namespace) -> int:
    """Create a store."""
    backend, created = init_store(store_url(args.store))
    print(f"{'created' if created else 'already a store:'} {backend.url}")
    return 0


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "store", nargs="?", default="data", help="store URL or directory (default ./data)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    p.add_argument("--threads", type=int, default=8, help="request threads (default %(default)s)")
    p.add_argument("--read-only", action="store_true", help="refuse every write")
    p.add_argument(
        "--write-token-file",
        default=None,
        help="file holding a token every write must send as 'Authorization: Bearer TOKEN'",
    )
    p.add_argument(
        "--read-token-file",
        default=None,
        help="file holding a token reads must send (published versions stay public)",
    )
    p.add_argument(
        "--allow-split", action="store_true", help="serve labelmap split/{label} (off, as DVID)"
    )
    p.add_argument(
        "--max-body-mb",
        type=int,
        default=1024,
        help="largest request body, else a 413 (default %(default)s MiB)",
    )
    p.add_argument(
        "--max-voxel-mb",
        type=int,
        default=3072,
        help="largest voxel read or write, else a 400 before allocating (default %(default)s MiB)",
    )
    p.add_argument(
        "--memory-budget-mb",
        type=int,
        default=4096,
        help="bytes all requests may hold at once in bodies and answers (default %(default)s MiB)",
    )
    p.add_argument(
        "--budget-wait",
        type=float,
        default=2.0,
        help="seconds a request waits for budget before a 503 (default %(default)s)",
    )
    p.add_argument(
        "--stream-mb",
        type=int,
        default=64,
        help="raw reads over this are streamed in z-slabs (default %(default)s MiB)",
    )
    p.add_argument(
        "--cache-mb",
        type=int,
        default=512,
        help="decoded-object cache in MiB (default %(default)s)",
    )


def _token(path: str | None) -> str:
    """Return the token in ``path`` (stripped; refused when empty)."""
    if path is None:
        return ""
    with open(path, encoding="utf-8") as f:
        token = f.read().strip()
    if not token:
        raise InvalidInputError(f"token file {path} is empty")
    return token


@command("serve", "serve DVID's HTTP API on a store", group=GROUP)
@arguments(_serve_args)
def cmd_serve(args: argparse.Namespace) -> int:
    """Serve DVID's HTTP API on a store until interrupted."""
    url = store_url(args.store)
    config = ServerConfig(
        store_url=url,
        read_only=args.read_only,
        allow_split=args.allow_split,
        write_token=_token(args.write_token_file),
        read_token=_token(args.read_token_file),
        cache_bytes=args.cache_mb << 20,
        max_body_bytes=args.max_body_mb << 20,
        max_voxel_bytes=args.max_voxel_mb << 20,
        memory_budget_bytes=args.memory_budget_mb << 20,
        budget_wait=args.budget_wait,
        stream_bytes=args.stream_mb << 20,
    )
    store = ObjectStore(open_store_backend(url), cache_bytes=config.cache_bytes)
    app = create_app(config, store)
    mode = " (read-only)" if args.read_only else ""
    print(
        f"cas_dvid serving {store.backend.url}{mode} on http://{args.host}:{args.port}", flush=True
    )
    serve(app, host=args.host, port=args.port, threads=args.threads)
    return 0
