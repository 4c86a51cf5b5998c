"""The ``cas-dvid`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from cas_dvid.cli_sync import add_sync_commands
from cas_dvid.errors import CasDvidError, InvalidInputError

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
    print(
        f"cas_dvid serving {store.backend.url}{mode} on http://{args.host}:{args.port}", flush=True
    )
    serve(app, host=args.host, port=args.port, threads=args.threads)
    return 0


def _client(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from cas_dvid.client import DvidClient

    return DvidClient(args.server)


def _print_json(doc: object) -> None:
    print(json.dumps(doc, indent=2, sort_keys=True))


def cmd_repos_new(args: argparse.Namespace) -> int:
    """Dvid repos new ALIAS DESCRIPTION."""
    doc = _client(args).post_json(
        "/api/repos", {"alias": args.alias, "description": args.description}
    )
    print(f"Root UUID for new repo is {doc['root']}")
    return 0


def cmd_repos_list(args: argparse.Namespace) -> int:
    """One line per repo: root UUID, alias, node count, description."""
    repos = _client(args).get_json("/api/repos/info")
    for root, r in sorted(repos.items(), key=lambda kv: kv[1].get("Created", "")):
        nodes = len(r.get("DAG", {}).get("Nodes", {}))
        print(f"{root}  {r.get('Alias', '')!s:<20} {nodes:>4} versions  {r.get('Description', '')}")
    return 0


def cmd_repo_new(args: argparse.Namespace) -> int:
    """Dvid repo UUID new TYPE NAME [key=value ...]."""
    body = {"typename": args.typename, "dataname": args.dataname}
    for setting in args.settings:
        key, sep, value = setting.partition("=")
        if not sep:
            raise InvalidInputError(f"setting {setting!r} must be key=value")
        body[key] = value
    doc = _client(args).post_json(f"/api/repo/{args.uuid}/instance", body)
    print(doc["result"])
    return 0


def cmd_repo_log(args: argparse.Namespace) -> int:
    """Print the version DAG of a repo, newest first, with notes and lock state."""
    repo = _client(args).get_json(f"/api/repo/{args.uuid}/info")
    nodes = sorted(repo["DAG"]["Nodes"].values(), key=lambda n: -n["VersionID"])
    by_id = {n["VersionID"]: n["UUID"] for n in nodes}
    for n in nodes:
        state = "locked" if n["Locked"] else "open"
        parents = ",".join(by_id.get(p, "?")[:8] for p in n["Parents"]) or "-"
        branch = n["Branch"] or "master"
        print(
            f"{n['UUID']}  v{n['VersionID']:<3} {branch:<12} {state:<6} parents {parents}  {n['Note']}"
        )
    for line in repo.get("Log", []):
        print(f"  log: {line}")
    return 0


def cmd_load(args: argparse.Namespace, name: str, rest: list[str]) -> int:
    """Node UUID NAME load X,Y,Z SOURCE: an image glob or a zarr array."""
    from cas_dvid.loader import Target, load, open_source

    if len(rest) != 2:
        raise InvalidInputError('usage: node UUID NAME load X,Y,Z "GLOB" (or a zarr path)')
    try:
        offset = tuple(int(v) for v in rest[0].replace("_", ",").split(","))
    except ValueError:
        raise InvalidInputError(f"offset must be X,Y,Z integers, got {rest[0]!r}") from None
    if len(offset) != 3:
        raise InvalidInputError(f"offset must be X,Y,Z, got {rest[0]!r}")
    source = open_source(rest[1])
    target = Target.lookup(_client(args), args.uuid, name)
    n = load(source, target, (offset[0], offset[1], offset[2]), progress=not args.quiet)
    z, y, x = source.shape
    print(f"Loaded {n} voxels ({x}x{y}x{z}) into {name} at {rest[0]}")
    return 0


def cmd_node(args: argparse.Namespace) -> int:
    """Dvid node UUID commit|branch|newversion ... | node UUID NAME load X,Y,Z GLOB."""
    c = _client(args)
    if args.action not in ("commit", "branch", "newversion"):
        if len(args.rest) >= 1 and args.rest[0] == "load":
            return cmd_load(args, args.action, args.rest[1:])
        raise InvalidInputError(
            f"unknown node command {args.action!r}: commit, branch, newversion or NAME load"
        )
    if args.action == "commit":
        doc = c.post_json(f"/api/node/{args.uuid}/commit", {"note": " ".join(args.rest)})
        print(f"Locked node {doc['committed']} (commit id {doc.get('commit_id', '')})")
    elif args.action == "branch":
        if not args.rest:
            raise InvalidInputError("usage: node UUID branch NAME [NOTE]")
        doc = c.post_json(
            f"/api/node/{args.uuid}/branch",
            {"branch": args.rest[0], "note": " ".join(args.rest[1:])},
        )
        print(f"Created branch {args.rest[0]} node: {doc['child']}")
    else:
        doc = c.post_json(f"/api/node/{args.uuid}/newversion", {"note": " ".join(args.rest)})
        print(f"New version (child) node: {doc['child']}")
    return 0


def cmd_types(args: argparse.Namespace) -> int:
    """Datatypes the server offers."""
    for name, url in sorted(_client(args).get_json("/api/server/types").items()):
        print(f"{name:<12} {url}")
    return 0


def cmd_about(args: argparse.Namespace) -> int:
    """Version of this client and, if one answers, of the server."""
    from cas_dvid import __version__

    print(f"cas-dvid {__version__}")
    try:
        info = _client(args).get_json("/api/server/info")
    except CasDvidError:
        print(f"(no server answering at {args.server})")
        return 0
    for k, v in sorted(info.items()):
        print(f"{k}: {v}")
    return 0


def cmd_help(args: argparse.Namespace) -> int:
    """The server's /api/help, or this program's usage when none answers."""
    try:
        print(_client(args).request("GET", "/api/help").decode())
    except CasDvidError:
        build_parser().print_help()
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    p = argparse.ArgumentParser(prog="cas-dvid", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("init", help="create a store in a directory or s3://bucket/prefix")
    s.add_argument("store", help="directory, file://PATH or s3://bucket/prefix")
    s.set_defaults(func=cmd_init)

    s = sub.add_parser("serve", help="serve DVID's HTTP API on a store")
    s.add_argument(
        "store", nargs="?", default="data", help="store URL or directory (default ./data)"
    )
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--threads", type=int, default=8)
    s.add_argument("--read-only", action="store_true", help="refuse every write")
    s.add_argument("--cache-mb", type=int, default=512, help="decoded-object cache size")
    s.set_defaults(func=cmd_serve)

    server = argparse.ArgumentParser(add_help=False)
    server.add_argument(
        "--server", default="http://127.0.0.1:8000", help="running server (default %(default)s)"
    )

    repos = sub.add_parser("repos", help="repos new | list").add_subparsers(
        dest="repos_cmd", required=True
    )
    s = repos.add_parser("new", parents=[server], help="create a repo")
    s.add_argument("alias", nargs="?", default="")
    s.add_argument("description", nargs="?", default="")
    s.set_defaults(func=cmd_repos_new)
    s = repos.add_parser("list", parents=[server], help="list repos")
    s.set_defaults(func=cmd_repos_list)

    s = sub.add_parser("repo", parents=[server], help="repo UUID new TYPE NAME [k=v ...] | log")
    s.add_argument("uuid")
    rsub = s.add_subparsers(dest="repo_cmd", required=True)
    r = rsub.add_parser("new", parents=[server], help="add a data instance")
    r.add_argument("typename")
    r.add_argument("dataname")
    r.add_argument("settings", nargs="*", help="key=value settings, e.g. BlockSize=64,64,64")
    r.set_defaults(func=cmd_repo_new)
    r = rsub.add_parser("log", parents=[server], help="show the version DAG")
    r.set_defaults(func=cmd_repo_log)

    s = sub.add_parser(
        "node",
        parents=[server],
        help='node UUID commit [NOTE] | branch NAME | newversion | NAME load X,Y,Z "GLOB"|ZARR',
    )
    s.add_argument("uuid")
    s.add_argument("action", metavar="commit|branch|newversion|NAME")
    s.add_argument("rest", nargs="*")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_node)

    for name, fn, text in (
        ("types", cmd_types, "datatypes the server offers"),
        ("about", cmd_about, "versions of client and server"),
        ("help", cmd_help, "the server's API help"),
    ):
        s = sub.add_parser(name, parents=[server], help=text)
        s.set_defaults(func=fn)
    add_sync_commands(sub)
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
