"""Repos, the version DAG and data instances, on refs and immutable commit objects."""

from cas_dvid.versions.commits import Commit
from cas_dvid.versions.dag import MergeConflictError
from cas_dvid.versions.model import At, Instance, Repo, new_uuid, now
from cas_dvid.versions.node import Node
from cas_dvid.versions.service import VersionService

__all__ = [
    "At",
    "Commit",
    "Instance",
    "MergeConflictError",
    "Node",
    "Repo",
    "VersionService",
    "new_uuid",
    "now",
]
