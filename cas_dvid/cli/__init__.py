"""The ``cas-dvid`` command line: DVID's verbs, plus the ones a content-addressed store adds.

Each module of this package registers its commands with ``@command`` (see
``_commands``); ``main`` imports them all and dispatches on the words of the line.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from cas_dvid.cli._commands import explain_unknown, find, overview
from cas_dvid.errors import CasDvidError


def _load_commands() -> None:
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cas-dvid`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    _load_commands()
    if not args or args[0] in ("-h", "--help"):
        print(overview())
        return 0 if args else 2
    hit = find(args)
    if hit is None:
        print(f"cas-dvid: {explain_unknown(args)}", file=sys.stderr)
        return 2
    cmd, holes = hit
    ns = cmd.parser().parse_args(args[len(cmd.words) :], argparse.Namespace(**holes))
    try:
        return cmd.run(ns)
    except CasDvidError as exc:
        print(f"cas-dvid: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
