"""Moving versions between stores and servers: push, pull, clone, verify, gc, publish."""

from __future__ import annotations

import argparse

from cas_dvid.cli._commands import arguments, command
from cas_dvid.cli._common import Progress, progress_bar, store_url
from cas_dvid.datatypes import open_versions
from cas_dvid.datatypes.geometry import parse_box
from cas_dvid.datatypes.labelmap import LabelStore
from cas_dvid.datatypes.labelmap.invariants import check_dag, check_version
from cas_dvid.errors import InvalidInputError, NotFoundError
from cas_dvid.objects import ObjectStore
from cas_dvid.sync import Options, Peer, StorePeer, open_peer, transfer_version
from cas_dvid.sync.clone import clone
from cas_dvid.sync.gc import DEFAULT_GRACE, collect
from cas_dvid.sync.publish import check_commit_id, publish, unpublish
from cas_dvid.sync.verify import verify_all, verify_commit, verify_version
from cas_dvid.versions.stores import init_store, open_store_backend

GROUP = "sharing versions"
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


def _local(args: argparse.Namespace) -> Peer:
    return open_peer(args.server) if args.server else open_peer(store_url(args.store))


def _options(args: argparse.Namespace, progress: Progress | None) -> Options:
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


def _push_pull_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("remote", help="store URL, directory or http://host:port of a server")
    p.add_argument("uuid", help="version (UUID prefix, uuid:branch)")
    p.add_argument("--data", help="only these instances, comma-separated")
    p.add_argument(
        "--box", help="only blocks touching voxels X0,Y0,Z0,X1,Y1,Z1 (upper corner exclusive)"
    )
    p.add_argument(
        "--init", action="store_true", help="create the receiving store if there is none"
    )
    p.add_argument("--roi", help="only blocks inside this roi instance (as it is at that version)")
    p.add_argument("--flatten", action="store_true", help="this version only, without its history")
    _local_args(p)
    _transfer_args(p)


def _transfer(args: argparse.Namespace, push: bool) -> int:
    box = parse_box(args.box) if args.box else None
    target = args.remote if push else (None if args.server else args.store)
    if args.init and target is not None and not target.startswith("http"):
        # Only when asked: a mistyped destination is an error, as verify and gc say.
        init_store(store_url(target))[0].close()
    what = "push" if push else "pull"
    with _local(args) as local, open_peer(args.remote) as remote, progress_bar(args, what) as bar:
        src, dst = (local, remote) if push else (remote, local)
        report = transfer_version(
            src,
            dst,
            args.uuid,
            data=_data(args),
            box=box,
            roi=args.roi,
            flatten=args.flatten,
            options=_options(args, bar),
        )
    print(report.summary())
    return 0


@command("push", "send a locked version (and its history): push REMOTE UUID", group=GROUP)
@arguments(_push_pull_args)
def cmd_push(args: argparse.Namespace) -> int:
    """Push a version to REMOTE."""
    return _transfer(args, push=True)


@command("pull", "fetch a locked version (and its history): pull REMOTE UUID", group=GROUP)
@arguments(_push_pull_args)
def cmd_pull(args: argparse.Namespace) -> int:
    """Pull a version from REMOTE."""
    return _transfer(args, push=False)


def _clone_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("remote", help="store URL, directory or http://host:port of a server")
    p.add_argument("dir", help="the new store (directory or URL)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--roi",
        help="of spatial data only blocks inside each repo's roi instance of this name "
        "(as it is at each version); published snapshots are left out",
    )
    _transfer_args(p)


@command("clone", "copy every repo of REMOTE into a new store: clone REMOTE DIR", group=GROUP)
@arguments(_clone_args)
def cmd_clone(args: argparse.Namespace) -> int:
    """Clone a whole store or server, open versions included."""
    init_store(store_url(args.dir))[0].close()
    with (
        open_peer(args.remote) as src,
        open_peer(store_url(args.dir)) as dst,
        progress_bar(args, "clone") as bar,
    ):
        report = clone(src, dst, _options(args, bar), roi=args.roi)
    print(report.summary())
    return 0


def _verify_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", nargs="?", help="UUID, or a 64-hex commit id")
    p.add_argument("--all", action="store_true", help="every version and published snapshot")
    p.add_argument("--history", action="store_true", help="with a commit id: its parents too")
    p.add_argument(
        "--no-labels", action="store_true", help="skip the labelmap invariants (they read voxels)"
    )
    _local_args(p)


@command("verify", "re-hash a version's closure (a UUID, a commit id, or --all)", group=GROUP)
@arguments(_verify_args)
def cmd_verify(args: argparse.Namespace) -> int:
    """Verify; exit status 1 on any missing or corrupt object."""
    with _local(args) as peer, progress_bar(args, "verify") as bar:
        if args.all or not args.target:
            report = verify_all(peer, progress=bar)
        elif len(args.target) == 64:
            cid = check_commit_id(args.target)
            report = verify_commit(peer, cid, history=args.history, progress=bar)
        else:
            report = verify_version(peer, args.target, progress=bar)
    for oid in report.missing:
        print(f"missing {oid}")
    for line in report.corrupt:
        print(f"corrupt {line}")
    print(report.summary())
    problems = []
    if report.ok and isinstance(peer, StorePeer) and report.versions and not args.no_labels:
        problems = label_invariants(peer.store, report.versions)
        for line in problems:
            print(f"label invariant: {line}")
        print(f"label invariants: {'OK' if not problems else f'{len(problems)} broken'}")
    return 0 if report.ok and not problems else 1


def label_invariants(store: ObjectStore, uuids: list[str]) -> list[str]:
    """Check every labelmap instance at each version (datatypes/labelmap/invariants.py)."""
    versions = open_versions(store)
    labels = LabelStore.on(versions)
    out: list[str] = []
    for uuid in uuids:
        try:
            at = versions.resolve(uuid)
        except NotFoundError:
            continue  # a commit-only snapshot keeps no repo record to read instances from
        for inst in at.repo.instances.values():
            if inst.typename == "labelmap":
                out += check_version(labels, at, inst) + check_dag(labels, at, inst)
    return out


def _gc_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default="data", help="store URL or directory (default ./data)")
    p.add_argument(
        "--grace",
        type=float,
        default=DEFAULT_GRACE,
        help="never remove objects younger than this many seconds (default %(default)s)",
    )
    p.add_argument("--dry-run", action="store_true", help="report what would be removed")
    p.add_argument(
        "--full", action="store_true", help="mark everything, even when incremental would do"
    )
    p.add_argument("--verbose", action="store_true", help="with --dry-run: list the ids")
    p.add_argument(
        "--dask",
        nargs="?",
        const="",
        metavar="SCHEDULER",
        help="read the mark phase's objects on Dask workers; no address: a LocalCluster here",
    )
    p.add_argument("--workers", type=int, default=2, help="with --dask and no address: workers")


@command("gc", "remove objects no ref reaches (older than --grace)", group=GROUP)
@arguments(_gc_args)
def cmd_gc(args: argparse.Namespace) -> int:
    """Garbage-collect a store."""
    options = {"grace": args.grace, "dry_run": args.dry_run, "full": args.full}
    if args.dask is not None:
        from cas_dvid.batch import collect_on, open_client

        open_store_backend(store_url(args.store)).close()  # a missing store: the usual error
        with open_client(args.dask or None, args.workers) as dask_client:
            report = collect_on(dask_client, store_url(args.store), **options)
    else:
        store = ObjectStore(open_store_backend(store_url(args.store)), cache_bytes=0)
        try:
            report = collect(store, **options)
        finally:
            store.close()
    if args.dry_run and args.verbose:
        for oid in report.garbage:
            print(f"would remove {oid}")
    print(report.summary())
    return 0


def _publish_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("uuid", help="a locked version")
    p.add_argument("dest", help="directory or s3://bucket/prefix")
    p.add_argument("--data", help="only these instances, comma-separated")
    p.add_argument("--history", action="store_true", help="with its history")
    p.add_argument("--no-pin", action="store_true", help="do not pin the snapshot in the source")
    _local_args(p)
    _transfer_args(p)


@command("publish", "copy a locked version as a snapshot: publish UUID DEST", group=GROUP)
@arguments(_publish_args)
def cmd_publish(args: argparse.Namespace) -> int:
    """Publish a locked version to a directory or bucket prefix."""
    init_store(store_url(args.dest))[0].close()
    with (
        _local(args) as src,
        open_peer(store_url(args.dest)) as dst,
        progress_bar(args, "publish") as bar,
    ):
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


def _unpublish_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("commit", help="the 64-hex commit id of the snapshot")
    _local_args(p)


@command("unpublish", "drop the pin of a published snapshot: unpublish COMMIT", group=GROUP)
@arguments(_unpublish_args)
def cmd_unpublish(args: argparse.Namespace) -> int:
    """Unpin a snapshot so gc may collect what only it kept."""
    with _local(args) as peer:
        unpublish(peer, args.commit)
    print(f"unpinned {args.commit}; gc may now remove what only it kept")
    return 0
