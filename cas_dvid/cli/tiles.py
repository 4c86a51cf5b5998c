"""Tiles: ``node UUID NAME generate`` (DVID's command) with a progress bar."""

from __future__ import annotations

import argparse

from cas_dvid.api.client import node_path
from cas_dvid.cli._commands import arguments, command
from cas_dvid.cli._common import client, dask_args, follow_job, server_option, store_url
from cas_dvid.errors import InvalidInputError

GROUP = "versions and data"


def _generate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--planes", default="", help="xy,xz,yz (default: all three)")
    p.add_argument("--scales", type=int, help="number of scales (default: until one tile fits)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    dask_args(p)
    server_option(p)


@command("node {uuid} {name} generate", "make the tiles of an imagetile/multiscale2d", group=GROUP)
@arguments(_generate_args)
def cmd_generate(args: argparse.Namespace) -> int:
    """Start generation on the server, then follow its status until it ends."""
    if args.dask is not None:
        return _generate_dask(args)
    c = client(args)
    query = [f"planes={args.planes}"] if args.planes else []
    if args.scales is not None:
        query.append(f"scales={args.scales}")
    path = node_path(args.uuid, args.name, "generate")
    first = c.post_json(path + ("?" + "&".join(query) if query else ""), {})
    status = follow_job(c, path, first, "tile", args.quiet)
    print(
        f"Generated {status['Tiles']} tiles ({status['Objects']} distinct objects, "
        f"{status['Scales']} scales) for {args.name}"
    )
    return 0


def _generate_dask(args: argparse.Namespace) -> int:
    """Generate as a Dask job: workers put tiles, this process writes each plane."""
    from cas_dvid.batch import generate, open_client

    if not args.store:
        raise InvalidInputError("--dask needs --store URL: the workers write to the store directly")
    with open_client(args.dask or None, args.workers) as dask_client:
        done = generate(
            dask_client,
            store_url(args.store),
            args.uuid,
            args.name,
            args.planes or None,
            args.scales,
            progress=not args.quiet,
        )
    print(
        f"Generated {done.tiles} tiles ({done.objects} distinct objects, {done.scales} scales) "
        f"for {args.name} in {done.tasks} tasks"
    )
    return 0
