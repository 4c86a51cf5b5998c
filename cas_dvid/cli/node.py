"""Versions and data: ``node UUID commit|branch|newversion`` and ``node UUID NAME load``."""

from __future__ import annotations

import argparse

from cas_dvid.api.client import node_path
from cas_dvid.cli._commands import arguments, command
from cas_dvid.cli._common import client, dask_args, follow_job, server_option, store_url
from cas_dvid.cli.load import Target, load
from cas_dvid.datatypes.geometry import parse_ints
from cas_dvid.datatypes.sources import open_source
from cas_dvid.errors import InvalidInputError

GROUP = "versions and data"


def _note_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("note", nargs="*", help="a note for the version")
    server_option(p)


@command("node {uuid} commit", "lock a version: node UUID commit [NOTE]", group=GROUP)
@arguments(_note_args)
def cmd_commit(args: argparse.Namespace) -> int:
    """Commit; prints the commit (snapshot) id."""
    doc = client(args).post_json(f"/api/node/{args.uuid}/commit", {"note": " ".join(args.note)})
    print(f"Locked node {doc['committed']} (commit id {doc.get('commit_id', '')})")
    return 0


@command("node {uuid} newversion", "a writable child of a locked version", group=GROUP)
@arguments(_note_args)
def cmd_newversion(args: argparse.Namespace) -> int:
    """Make a child on the parent's branch."""
    doc = client(args).post_json(f"/api/node/{args.uuid}/newversion", {"note": " ".join(args.note)})
    print(f"New version (child) node: {doc['child']}")
    return 0


def _branch_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("branch", help="name of the new branch")
    _note_args(p)


@command("node {uuid} branch", "a child on a new branch: node UUID branch NAME [NOTE]", group=GROUP)
@arguments(_branch_args)
def cmd_branch(args: argparse.Namespace) -> int:
    """Make a child on a new branch."""
    body = {"branch": args.branch, "note": " ".join(args.note)}
    doc = client(args).post_json(f"/api/node/{args.uuid}/branch", body)
    print(f"Created branch {args.branch} node: {doc['child']}")
    return 0


def _load_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("offset", help="X,Y,Z voxel offset of the source's first voxel")
    p.add_argument(
        "source",
        help='image glob ("slices/*.png"), a zarr array (a.zarr::s0), precomputed:PATH, '
        "n5:PATH or tensorstore:{JSON spec}",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    dask_args(p)
    server_option(p)


@command(
    "node {uuid} {name} load", 'load slices or a zarr array: ... X,Y,Z "GLOB"|ZARR', group=GROUP
)
@arguments(_load_args)
def cmd_load(args: argparse.Namespace) -> int:
    """Load an image glob or a zarr array into a voxel instance."""
    try:
        x, y, z = parse_ints(args.offset.replace("_", ","), 3, "offset", ",")
    except InvalidInputError:
        raise InvalidInputError(f"offset must be X,Y,Z integers, got {args.offset!r}") from None
    if args.dask is not None:
        return _load_dask(args, (x, y, z))
    source = open_source(args.source)
    target = Target.lookup(client(args), args.uuid, args.name)
    n = load(source, target, (x, y, z), progress=not args.quiet)
    sz, sy, sx = source.shape
    print(f"Loaded {n} voxels ({sx}x{sy}x{sz}) into {args.name} at {args.offset}")
    return 0


def _load_dask(args: argparse.Namespace, offset: tuple[int, int, int]) -> int:
    """Load as a Dask job: workers put blocks into the store, this process swaps the head."""
    from cas_dvid.batch import ingest, open_client

    if not args.store:
        raise InvalidInputError("--dask needs --store URL: the workers write to the store directly")
    with open_client(args.dask or None, args.workers) as dask_client:
        done = ingest(
            dask_client,
            store_url(args.store),
            args.uuid,
            args.name,
            args.source,
            offset,
            progress=not args.quiet,
        )
    x, y, z = offset
    print(
        f"Loaded {done.voxels} voxels into {args.name} at {x},{y},{z}: {done.blocks} blocks "
        f"in {done.tasks} tasks, root {done.root.hex()}"
    )
    return 0


def _downres_dask(args: argparse.Namespace) -> int:
    """Build a grayscale pyramid as a Dask job: workers put level blocks, this process writes."""
    from cas_dvid.batch import downres, open_client

    if not args.store:
        raise InvalidInputError("--dask needs --store URL: the workers write to the store directly")
    with open_client(args.dask or None, args.workers) as dask_client:
        done = downres(
            dask_client,
            store_url(args.store),
            args.uuid,
            args.name,
            args.levels,
            progress=not args.quiet,
        )
    print(
        f"Built {done.levels} levels of {args.name} ({args.name}_1..): {done.blocks} blocks "
        f"written, {done.deleted} deleted, in {done.tasks} tasks"
    )
    return 0


def _index_args(p: argparse.ArgumentParser) -> None:
    dask_args(p)


@command(
    "node {uuid} {name} index",
    "labelmap: index blocks ingested with noindexing=true, as a Dask job (--store URL)",
    group=GROUP,
)
@arguments(_index_args)
def cmd_index(args: argparse.Namespace) -> int:
    """Build a labelmap's label index from its stored blocks on Dask workers."""
    from cas_dvid.batch import index, open_client

    if not args.store:
        raise InvalidInputError("index needs --store URL: the workers read the store directly")
    with open_client(args.dask or None, args.workers) as dask_client:
        done = index(dask_client, store_url(args.store), args.uuid, args.name)
    print(
        f"Indexed {done.blocks} blocks of {args.name} ({done.supervoxels} supervoxels) "
        f"in {done.tasks} tasks"
    )
    return 0


def _downres_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--levels", type=int, help="grayscale: levels NAME_1..NAME_N (default: until one block)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    dask_args(p)
    server_option(p)


@command(
    "node {uuid} {name} downres",
    "labelmap: rebuild stale lower-res blocks; uint8blk: build NAME_1, NAME_2...",
    group=GROUP,
)
@arguments(_downres_args)
def cmd_downres(args: argparse.Namespace) -> int:
    """POST .../downres; a grayscale pyramid runs as a server job, followed with a bar."""
    if args.dask is not None:
        return _downres_dask(args)
    c = client(args)
    path = node_path(args.uuid, args.name, "downres")
    query = f"?levels={args.levels}" if args.levels is not None else ""
    doc = c.post_json(path + query, {})
    if "Status" not in doc:  # labelmap: done in the request
        print(f"Rebuilt {doc['blocks']} lower-resolution blocks of {args.name}")
        return 0
    status = follow_job(c, path, doc, "block", args.quiet)
    print(
        f"Built {status['Levels']} levels of {args.name} ({args.name}_1..): "
        f"{status['Blocks']} blocks written, {status['Deleted']} deleted"
    )
    return 0
