"""How subcommands register: a word pattern (DVID's verb order), a help line, a function.

DVID's CLI puts names between verbs (``node UUID NAME load X,Y,Z GLOB``), which
argparse's subparsers cannot express, so commands are matched on their words first:
literal words must appear as written, ``{name}`` takes any one word.  Of the commands
that match, the one with the most literal words wins (``types {type} help`` over
``types``).  The rest of the line goes to that command's own argparse parser.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Run = Callable[[argparse.Namespace], int]
Arguments = Callable[[argparse.ArgumentParser], None]

_HOLE = re.compile(r"\{([a-z_]+)\}")


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    pass


@dataclass(frozen=True, slots=True)
class Command:
    """One subcommand: ``words`` such as ``("node", "{uuid}", "commit")``."""

    words: tuple[str, ...]
    help: str
    run: Run
    arguments: Arguments = _no_arguments
    group: str = ""

    @property
    def literals(self) -> int:
        """How many of its words are literal."""
        return sum(1 for w in self.words if not _HOLE.fullmatch(w))

    def match(self, argv: Sequence[str]) -> dict[str, str] | None:
        """Return the values of its holes if ``argv`` starts with its words, else None."""
        if len(argv) < len(self.words):
            return None
        values: dict[str, str] = {}
        for word, arg in zip(self.words, argv, strict=False):
            hole = _HOLE.fullmatch(word)
            if hole is None:
                if arg != word:
                    return None
            elif arg.startswith("-"):
                return None
            else:
                values[hole.group(1)] = arg
        return values

    def parser(self) -> argparse.ArgumentParser:
        """Return the parser of the words after the pattern."""
        p = argparse.ArgumentParser(prog="cas-dvid " + " ".join(self.words), description=self.help)
        self.arguments(p)
        return p

    def usage(self) -> str:
        """Return the pattern in upper case for the holes, as help shows it."""
        return " ".join(w[1:-1].upper() if _HOLE.fullmatch(w) else w for w in self.words)


COMMANDS: list[Command] = []
GROUPS = (
    "stores and servers",
    "repos and instances",
    "versions and data",
    "sharing versions",
    "about the server",
)
"""The order ``overview`` shows command groups in."""


def command(pattern: str, help: str, *, group: str = "") -> Callable[[Run], Run]:
    """Register the decorated function as the command ``pattern`` (e.g. ``"repo {uuid} log"``).

    The function may carry an ``arguments`` attribute set with ``@arguments``.
    """

    def register(run: Run) -> Run:
        add: Arguments = getattr(run, "cli_arguments", _no_arguments)
        COMMANDS.append(Command(tuple(pattern.split()), help, run, add, group))
        return run

    return register


def arguments(add: Arguments) -> Callable[[Run], Run]:
    """Attach the options and trailing arguments of a command (apply below ``@command``)."""

    def attach(run: Run) -> Run:
        run.cli_arguments = add  # type: ignore[attr-defined]
        return run

    return attach


def find(argv: Sequence[str]) -> tuple[Command, dict[str, str]] | None:
    """Return the command ``argv`` names, and its hole values."""
    hits = [(c, v) for c in COMMANDS if (v := c.match(argv)) is not None]
    if not hits:
        return None
    return max(hits, key=lambda hit: (hit[0].literals, len(hit[0].words)))


def _prefix(cmd: Command, argv: Sequence[str]) -> int:
    """How many leading words of ``argv`` fit the start of ``cmd``'s pattern."""
    n = 0
    for word, arg in zip(cmd.words, argv, strict=False):
        hole = _HOLE.fullmatch(word)
        if (hole is None and arg != word) or (hole is not None and arg.startswith("-")):
            break
        n += 1
    return n


def explain_unknown(argv: Sequence[str]) -> str:
    """Say which word of a line no command takes, and the commands that fit up to it."""
    fits = [(_prefix(c, argv), c) for c in COMMANDS]
    best = max((n for n, _ in fits), default=0)
    near = [c for n, c in fits if n == best and len(c.words) > best]
    if best == 0 or not near:
        return f"unknown command {argv[0]!r}\n\n{overview()}"
    done = " ".join(argv[:best])
    what = (
        f"unknown word {argv[best]!r} after {done!r}"
        if len(argv) > best and not argv[best].startswith("-")
        else f"{done!r} needs more words"
    )
    width = max(len(c.usage()) for c in near)
    lines = "\n".join(f"  {c.usage():<{width}}  {c.help}" for c in near)
    return f"{what}; commands that fit:\n{lines}"


def overview() -> str:
    """Every command, one line each, by group."""
    width = max(len(c.usage()) for c in COMMANDS)
    lines = ["usage: cas-dvid COMMAND [ARGS] [--help]", ""]
    groups: dict[str, list[Command]] = {g: [] for g in GROUPS}
    for c in COMMANDS:
        groups.setdefault(c.group, []).append(c)
    for group, cmds in groups.items():
        if not cmds:
            continue
        lines.append(f"{group}:")
        lines += [f"  {c.usage():<{width}}  {c.help}" for c in cmds]
        lines.append("")
    lines.append("Each command takes --help.  Commands that change a running server talk to it")
    lines.append("over HTTP (--server, default http://127.0.0.1:8000), as DVID's CLI does.")
    return "\n".join(lines)
