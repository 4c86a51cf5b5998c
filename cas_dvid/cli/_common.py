"""What the subcommands share: store URLs, the server option, progress bars."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from cas_dvid.api.client import DEFAULT_SERVER, DvidClient
from cas_dvid.errors import CasDvidError

Progress = Callable[[int, int], None]


def store_url(text: str) -> str:
    """Return a store URL from a URL or a bare directory."""
    return text if "://" in text else f"file://{text}"


def server_option(p: argparse.ArgumentParser) -> None:
    """``--server``, the running server a command talks to."""
    p.add_argument("--server", default=DEFAULT_SERVER, help="running server (default %(default)s)")


def client(args: argparse.Namespace) -> DvidClient:
    """Return a client of ``--server``."""
    return DvidClient(args.server)


@contextmanager
def progress_bar(args: argparse.Namespace, what: str) -> Iterator[Progress | None]:
    """Return a tqdm bar on stderr (objects, bytes, rate); none with --quiet or off a terminal."""
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


def follow_job(
    c: DvidClient, path: str, status: dict[str, Any], unit: str, quiet: bool
) -> dict[str, Any]:
    """Poll a server job's status at ``path`` (GET) with a tqdm bar until it ends; 1 on failure.

    ``status`` is the first status (the POST's answer).  Raises ``CasDvidError`` with the
    job's error when it failed.
    """
    from tqdm import tqdm

    bar = tqdm(
        total=status["Total"],
        unit=unit,
        desc=path.rsplit("/", 2)[-2] + " " + path.rsplit("/", 1)[-1],
        disable=quiet or not sys.stderr.isatty(),
        file=sys.stderr,
    )
    with bar:
        while status["Status"] == "running":
            time.sleep(0.2)
            status = c.get_json(path)
            bar.update(max(0, status["Done"] - bar.n))
    if status["Status"] != "done":
        raise CasDvidError(f"{path.rsplit('/', 1)[-1]} failed: {status['Error']}")
    return status


def dask_args(p: argparse.ArgumentParser) -> None:
    """Add ``--dask [SCHEDULER]``, ``--store`` and ``--workers`` (the batch jobs' options)."""
    p.add_argument(
        "--dask",
        nargs="?",
        const="",
        metavar="SCHEDULER",
        help="run as a Dask job (workers write to --store directly); no address: a "
        "LocalCluster of 2 worker processes here",
    )
    p.add_argument("--store", help="with --dask: the store URL (s3://..., file://...) or folder")
    p.add_argument("--workers", type=int, default=2, help="with --dask and no address: workers")
