"""What the subcommands share: store URLs, the server option, progress bars."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from cas_dvid.api.client import DEFAULT_SERVER, DvidClient

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
