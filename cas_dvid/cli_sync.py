"""``cas-dvid`` subcommands for distribution: push, pull, clone, verify, gc, publish, deletes."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from cas_dvid.errors import InvalidInputError

_UNITS = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}


def _rate(text: str) -> float:
    t = text.strip().lower().rstrip("b").rstrip("/s")
    unit = t[-1:] if t[-1:] in _UNITS else ""
    try:
        return float(t[: len(t) - len(unit)]) * _UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a rate like 500k or 2M (bytes/s), got {text!r}"
        ) from None


def _store_url(text: str) -> str:
    return text if "://" in text else f"file://{text}"


@contextmanager
def _bar(args: argparse.Namespace, what: str) -> Iterator[Callable[[int, int], None] | None]:
    """A tqdm bar on stderr (objects, bytes, rate); none with --quiet or off a terminal."""
    if getattr(args, "quiet", False) or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    with tqdm(
        desc=what, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr, dynamic_ncols=True
    ) as bar:
        count = [0]

        def update(objects: int, nbytes: int) -> None:
            count[0] += objects
            bar.set_postfix(objects=count[0], refresh=False)
            bar.update(nbytes)

        yield update


def _local(args: argparse.Namespace) -> Any:
    from cas_dvid.sync import open_peer

    return open_peer(args.server) if args.server else open_peer(_store_url(args.store))


def _options(args: argparse.Namespace, progress: Callable[[int, int], None] | None) -> Any:
    from cas_dvid.sync import Options

    return Options(
        batch_bytes=int(args.batch_mb * (1 << 20)), rate=args.limit_rate or 0.0, progress=progress
    )


def _data(args: argparse.Namespace) -> list[str] | None:
    if not args.data:
        return None
    names = [n.strip() for n in args.data.split(",") if n.strip()]
    if not names:
        raise InvalidInputError(
            f"--data needs instance names separated by commas, got {args.data!r}"
        )
    return names


def cmd_transfer(args: argparse.Namespace) -> int:
    """Push / pull."""
    from cas_dvid.sync import open_peer, parse_box, transfer_version

    box = parse_box(args.box) if args.box else None
    target = args.remote if args.command == "push" else (None if args.server else args.store)
    if target is not None and not target.startswith("http"):
        from cas_dvid.storeinfo import init_store

        init_store(_store_url(target))[0].close()  # NOTE: the receiving store is made if it is new
    with _local(args) as local, open_peer(args.remote) as remote, _bar(args, args.command) as bar:
        src, dst = (local, remote) if args.command == "push" else (remote, local)
        report = transfer_version(
            src,
            dst,
            args.uuid,
            data=_data(args),
            box=box,
            flatten=args.flatten,
            options=_options(args, bar),
        )
    print(report.summary())
    return 0


def cmd_clone(args: argparse.Namespace) -> int:
    """Clone REMOTE DIR."""
    from cas_dvid.storeinfo import init_store
    from cas_dvid.sync import open_peer
    from cas_dvid.sync.clone import clone

    init_store(_store_url(args.dir))[0].close()
    with (
        open_peer(args.remote) as src,
        open_peer(_store_url(args.dir)) as dst,
        _bar(args, "clone") as bar,
    ):
        report = clone(src, dst, _options(args, bar))
    print(report.summary())
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Verify [UUID | COMMIT] [--all]."""
    from cas_dvid.sync.verify import verify_all, verify_commit, verify_version

    with _local(args) as peer, _bar(args, "verify") as bar:
        if args.all or not args.target:
            report = verify_all(peer, progress=bar)
        elif len(args.target) == 64:
            from cas_dvid.sync.publish import check_commit_id

            report = verify_commit(
                peer, check_commit_id(args.target), history=args.history, progress=bar
            )
        else:
            report = verify_version(peer, args.target, progress=bar)
    for oid in report.missing:
        print(f"missing {oid}")
    for line in report.corrupt:
        print(f"corrupt {line}")
    print(report.summary())
    return 0 if report.ok else 1


def cmd_gc(args: argparse.Namespace) -> int:
    """Gc [--dry-run] [--grace S] [--full]."""
    from cas_dvid.objects import ObjectStore
    from cas_dvid.storeinfo import open_store_backend
    from cas_dvid.sync.gc import collect

    store = ObjectStore(open_store_backend(_store_url(args.store)), cache_bytes=0)
    try:
        report = collect(store, grace=args.grace, dry_run=args.dry_run, full=args.full)
    finally:
        store.close()
    if args.dry_run and args.verbose:
        for oid in report.garbage:
            print(f"would remove {oid}")
    print(report.summary())
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    """Publish UUID DEST."""
    from cas_dvid.storeinfo import init_store
    from cas_dvid.sync import open_peer
    from cas_dvid.sync.publish import publish

    init_store(_store_url(args.dest))[0].close()
    with _local(args) as src, open_peer(_store_url(args.dest)) as dst, _bar(args, "publish") as bar:
        manifest, report = publish(
            src,
            dst,
            args.uuid,
            data=_data(args),
            history=args.history,
            options=_options(args, bar),
            pin=not args.no_pin,
        )
    print(report.summary())
    print(
        f"published commit {manifest.doc['commit']} (version {manifest.doc['uuid']}) to {args.dest}"
    )
    print(f"manifest {manifest.id.hex()}")
    return 0


def cmd_unpublish(args: argparse.Namespace) -> int:
    """Unpublish COMMIT."""
    from cas_dvid.sync.publish import unpublish

    with _local(args) as peer:
        unpublish(peer, args.commit)
    print(f"unpinned {args.commit}; gc may now remove what only it kept")
    return 0


def _versions(args: argparse.Namespace) -> Any:
    from cas_dvid.objects import ObjectStore
    from cas_dvid.storeinfo import open_store_backend
    from cas_dvid.versions import VersionService

    return VersionService(ObjectStore(open_store_backend(_store_url(args.store)), cache_bytes=0))


def cmd_repos_delete(args: argparse.Namespace) -> int:
    """Repos delete UUID: through the server, or on a store with --store."""
    if args.store:
        root = _versions(args).delete_repo(args.uuid).root
    else:
        from cas_dvid.client import DvidClient

        doc = json.loads(
            DvidClient(args.server).request(
                "DELETE", f"/api/cas/repo/{args.uuid}?imsurethiscanbedeleted=true"
            )
        )
        root = doc["deleted"]
    print(f"Deleted repo {root}; its data is garbage for gc unless shared")
    return 0


def cmd_repo_delete(args: argparse.Namespace) -> int:
    """Repo UUID delete NAME."""
    if args.store:
        name = _versions(args).delete_instance(args.uuid, args.dataname).name
    else:
        from cas_dvid.client import DvidClient

        path = f"/api/cas/repo/{args.uuid}/{args.dataname}?imsurethiscanbedeleted=true"
        name = json.loads(DvidClient(args.server).request("DELETE", path))["deleted"]
    print(f"Deleted data instance {name!r}; its data is garbage for gc unless shared")
    return 0


def _local_args(p: argparse.ArgumentParser, *, server: bool = True) -> None:
    p.add_argument("--store", default="data", help="local store URL or directory (default ./data)")
    if server:
        p.add_argument(
            "--server", default=None, help="use a running server as the local side instead"
        )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _transfer_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--batch-mb", type=float, default=16.0, help="objects per request, in MiB (default 16)"
    )
    p.add_argument("--limit-rate", type=_rate, default=None, help="bytes/s to stay under, e.g. 20M")


def _subparsers(p: argparse.ArgumentParser) -> Any:
    for action in p._actions:  # noqa: SLF001 - argparse has no public way to reach them
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return action
    raise RuntimeError(f"parser {p.prog} has no subcommands")


def add_sync_commands(sub: Any) -> None:
    """Add push, pull, clone, verify, gc, publish, unpublish and the delete commands to ``sub``."""
    for name, text in (
        ("push", "send a locked version (and its history) to REMOTE"),
        ("pull", "fetch a locked version (and its history) from REMOTE"),
    ):
        s = sub.add_parser(name, help=text)
        s.add_argument("remote", help="store URL, directory or http://host:port of a server")
        s.add_argument("uuid", help="version (UUID prefix, uuid:branch)")
        s.add_argument("--data", help="only these instances, comma-separated")
        s.add_argument(
            "--box", help="only blocks touching voxels X0,Y0,Z0,X1,Y1,Z1 (upper corner exclusive)"
        )
        s.add_argument(
            "--flatten", action="store_true", help="this version only, without its history"
        )
        _local_args(s)
        _transfer_args(s)
        s.set_defaults(func=cmd_transfer)

    s = sub.add_parser("clone", help="copy every repo of REMOTE into a new store DIR")
    s.add_argument("remote")
    s.add_argument("dir")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    _transfer_args(s)
    s.set_defaults(func=cmd_clone)

    s = sub.add_parser("verify", help="re-hash a version's closure (or a commit id's, or --all)")
    s.add_argument("target", nargs="?", help="UUID, or a 64-hex commit id")
    s.add_argument("--all", action="store_true", help="every version and published snapshot")
    s.add_argument("--history", action="store_true", help="with a commit id: its parents too")
    _local_args(s)
    s.set_defaults(func=cmd_verify)

    s = sub.add_parser("gc", help="remove objects no ref reaches")
    s.add_argument("--store", default="data", help="store URL or directory (default ./data)")
    s.add_argument(
        "--grace", type=float, default=3600.0, help="never remove objects younger than this (s)"
    )
    s.add_argument("--dry-run", action="store_true", help="report what would be removed")
    s.add_argument(
        "--full", action="store_true", help="mark everything, even when incremental would do"
    )
    s.add_argument("--verbose", action="store_true", help="with --dry-run: list the ids")
    s.set_defaults(func=cmd_gc)

    s = sub.add_parser("publish", help="copy a locked version to a directory or bucket prefix")
    s.add_argument("uuid")
    s.add_argument("dest", help="directory or s3://bucket/prefix")
    s.add_argument("--data", help="only these instances, comma-separated")
    s.add_argument("--history", action="store_true", help="with its history")
    s.add_argument(
        "--no-pin", action="store_true", help="do not pin the snapshot in the source store"
    )
    _local_args(s)
    _transfer_args(s)
    s.set_defaults(func=cmd_publish)

    s = sub.add_parser("unpublish", help="drop the pin of a published snapshot")
    s.add_argument("commit")
    _local_args(s)
    s.set_defaults(func=cmd_unpublish)

    repos = _subparsers(sub.choices["repos"])
    s = repos.add_parser("delete", help="delete a repo (its data becomes garbage for gc)")
    s.add_argument("uuid")
    _store_or_server(s)
    s.set_defaults(func=cmd_repos_delete)

    repo = _subparsers(sub.choices["repo"])
    s = repo.add_parser("delete", help="delete a data instance from every version")
    s.add_argument("dataname")
    _store_or_server(s)
    s.set_defaults(func=cmd_repo_delete)


def _store_or_server(s: argparse.ArgumentParser) -> None:
    """Deletes act on a store directly with --store, else on a running server."""
    s.add_argument("--store", default=None, help="act on a store directly instead of a server")
    s.add_argument(
        "--server", default="http://127.0.0.1:8000", help="running server (default %(default)s)"
    )
