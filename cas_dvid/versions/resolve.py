"""UUID resolution as DVID does it: unique prefixes, ``uuid:branch``, ``:branch``, ``~N``."""

from __future__ import annotations

from collections.abc import Mapping

from cas_dvid.errors import InvalidInputError, NotFoundError
from cas_dvid.versions.model import Repo


def branch_leaf(repo: Repo, branch: str) -> str:
    """The newest node on ``branch`` that has no child on the same branch."""
    name = "" if branch == "master" else branch
    on = [n for n in repo.nodes.values() if n.branch == name]
    leaves = [
        n
        for n in on
        if not any(repo.nodes[c].branch == name for c in n.children if c in repo.nodes)
    ]
    if not leaves:
        raise InvalidInputError(f'branch "{branch}" not found in repo "{repo.root}"')
    return max(leaves, key=lambda n: n.version_id).uuid


def walk_back(repo: Repo, uuid: str, steps: int, branch: str) -> str:
    """The ``steps``-th ancestor along first parents."""
    for _ in range(steps):
        parents = repo.nodes[uuid].parents
        if not parents:
            raise InvalidInputError(f'parent {steps} is out of range for branch "{branch}"')
        uuid = parents[0]
    return uuid


def split_spec(spec: str) -> tuple[str, str | None, int]:
    """``prefix[:branch[~N]]`` -> (prefix, branch or None, N)."""
    prefix, branch, steps = spec, None, 0
    if spec.count(":") > 1:
        raise InvalidInputError(f'bad UUID specification "{spec}"')
    if ":" in spec:
        prefix, branch = spec.split(":", 1)
    tail = branch if branch is not None else prefix
    if "~" in tail:
        head, _, n = tail.rpartition("~")
        if not n.isdigit():
            raise InvalidInputError(f'can\'t parse parent "{n}" in branch "{head}"')
        steps = int(n)
        if branch is not None:
            branch = head
        else:
            prefix = head
    return prefix, branch, steps


def match_prefix(index: Mapping[str, str], prefix: str) -> tuple[str, str]:
    """(node uuid, repo root) for a unique prefix of a node UUID among all repos."""
    if prefix in index:
        return prefix, index[prefix]
    hits = [u for u in index if u.startswith(prefix)] if prefix else []
    if len(hits) > 1:
        raise InvalidInputError(f"more than one UUID matches {prefix}")
    if not hits:
        raise NotFoundError(f"could not find UUID with partial match to {prefix}")
    return hits[0], index[hits[0]]
