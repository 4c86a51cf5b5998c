"""Repos and instances: ``repos new|list|delete``, ``repo UUID new|log|delete``."""

from __future__ import annotations

import argparse
import json

from cas_dvid.cli._commands import arguments, command
from cas_dvid.cli._common import client, server_option, store_url
from cas_dvid.datatypes import open_versions
from cas_dvid.errors import InvalidInputError
from cas_dvid.objects import ObjectStore
from cas_dvid.versions import VersionService
from cas_dvid.versions.stores import open_store_backend

GROUP = "repos and instances"


def _new_repo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("alias", nargs="?", default="")
    p.add_argument("description", nargs="?", default="")
    server_option(p)


@command("repos new", "create a repo: repos new [ALIAS] [DESCRIPTION]", group=GROUP)
@arguments(_new_repo_args)
def cmd_repos_new(args: argparse.Namespace) -> int:
    """Make a repo; print its root UUID."""
    doc = client(args).post_json(
        "/api/repos", {"alias": args.alias, "description": args.description}
    )
    print(f"Root UUID for new repo is {doc['root']}")
    return 0


@command("repos list", "one line per repo: root UUID, alias, versions, description", group=GROUP)
@arguments(server_option)
def cmd_repos_list(args: argparse.Namespace) -> int:
    """List repos."""
    repos = client(args).get_json("/api/repos/info")
    for root, r in sorted(repos.items(), key=lambda kv: kv[1].get("Created", "")):
        nodes = len(r.get("DAG", {}).get("Nodes", {}))
        alias = str(r.get("Alias", ""))
        print(f"{root}  {alias:<20} {nodes:>4} versions  {r.get('Description', '')}")
    return 0


def _new_instance_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("typename", help="datatype, e.g. uint8blk (see cas-dvid types)")
    p.add_argument("dataname", help="name of the new instance")
    p.add_argument("settings", nargs="*", help="key=value settings, e.g. BlockSize=64,64,64")
    server_option(p)


@command("repo {uuid} new", "add a data instance: repo UUID new TYPE NAME [k=v ...]", group=GROUP)
@arguments(_new_instance_args)
def cmd_repo_new(args: argparse.Namespace) -> int:
    """Add an instance, DVID's way: every setting a string."""
    body = {"typename": args.typename, "dataname": args.dataname}
    for setting in args.settings:
        key, sep, value = setting.partition("=")
        if not sep:
            raise InvalidInputError(f"setting {setting!r} must be key=value")
        body[key] = value
    doc = client(args).post_json(f"/api/repo/{args.uuid}/instance", body)
    print(doc["result"])
    return 0


@command("repo {uuid} log", "show the version DAG, newest first", group=GROUP)
@arguments(server_option)
def cmd_repo_log(args: argparse.Namespace) -> int:
    """Print the version DAG of a repo with notes and lock state."""
    repo = client(args).get_json(f"/api/repo/{args.uuid}/info")
    nodes = sorted(repo["DAG"]["Nodes"].values(), key=lambda n: -n["VersionID"])
    by_id = {n["VersionID"]: n["UUID"] for n in nodes}
    for n in nodes:
        state = "locked" if n["Locked"] else "open"
        parents = ",".join(by_id.get(p, "?")[:8] for p in n["Parents"]) or "-"
        branch = n["Branch"] or "master"
        print(
            f"{n['UUID']}  v{n['VersionID']:<3} {branch:<12} {state:<6} "
            f"parents {parents}  {n['Note']}"
        )
    for line in repo.get("Log", []):
        print(f"  log: {line}")
    return 0


def _store_or_server(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=None, help="act on a store directly instead of a server")
    server_option(p)


def _versions(store: str) -> VersionService:
    return open_versions(ObjectStore(open_store_backend(store_url(store)), cache_bytes=0))


@command("repos delete {uuid}", "delete a repo (its data becomes garbage for gc)", group=GROUP)
@arguments(_store_or_server)
def cmd_repos_delete(args: argparse.Namespace) -> int:
    """Delete a repo through the server, or on a store with --store."""
    if args.store:
        root = _versions(args.store).delete_repo(args.uuid).root
    else:
        path = f"/api/cas/repo/{args.uuid}?imsurethiscanbedeleted=true"
        root = json.loads(client(args).request("DELETE", path))["deleted"]
    print(f"Deleted repo {root}; its data is garbage for gc unless shared")
    return 0


def _delete_instance_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataname")
    _store_or_server(p)


@command("repo {uuid} delete", "delete a data instance from every version: ... NAME", group=GROUP)
@arguments(_delete_instance_args)
def cmd_repo_delete(args: argparse.Namespace) -> int:
    """Delete a data instance."""
    if args.store:
        name = _versions(args.store).delete_instance(args.uuid, args.dataname).name
    else:
        path = f"/api/cas/repo/{args.uuid}/{args.dataname}?imsurethiscanbedeleted=true"
        name = json.loads(client(args).request("DELETE", path))["deleted"]
    print(f"Deleted data instance {name!r}; its data is garbage for gc unless shared")
    return 0
