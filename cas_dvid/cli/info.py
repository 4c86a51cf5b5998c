"""What a server offers: ``types``, ``types TYPE help``, ``about``, ``help``."""

from __future__ import annotations

import argparse

from cas_dvid import __version__
from cas_dvid.cli._commands import arguments, command, overview
from cas_dvid.cli._common import client, server_option
from cas_dvid.errors import CasDvidError

GROUP = "about the server"


@command("types", "datatypes the server offers", group=GROUP)
@arguments(server_option)
def cmd_types(args: argparse.Namespace) -> int:
    """Datatypes by name, with DVID's type URL."""
    for name, url in sorted(client(args).get_json("/api/server/types").items()):
        print(f"{name:<12} {url}")
    return 0


@command("types {typename} help", "a datatype's help: settings and endpoints", group=GROUP)
@arguments(server_option)
def cmd_type_help(args: argparse.Namespace) -> int:
    """Return the server's /api/help/{type}."""
    print(client(args).request("GET", f"/api/help/{args.typename}").decode(), end="")
    return 0


@command("about", "versions of this client and of the server", group=GROUP)
@arguments(server_option)
def cmd_about(args: argparse.Namespace) -> int:
    """Version of this client and, if one answers, of the server."""
    print(f"cas-dvid {__version__}")
    try:
        info = client(args).get_json("/api/server/info")
    except CasDvidError:
        print(f"(no server answering at {args.server})")
        return 0
    for k, v in sorted(info.items()):
        print(f"{k}: {v}")
    return 0


@command("help", "the server's API help (this list when no server answers)", group=GROUP)
@arguments(server_option)
def cmd_help(args: argparse.Namespace) -> int:
    """Return the server's /api/help, or the command list."""
    try:
        print(client(args).request("GET", "/api/help").decode())
    except CasDvidError:
        print(overview())
    return 0
