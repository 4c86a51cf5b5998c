"""``VersionService``: the one object the upper layers hold for repos, versions and data.

It takes DVID's UUID specs (prefixes, ``uuid:branch``, ``~N``), resolves them once,
and hands the work to the module that owns it: ``records`` (repo records, the UUID
index, metadata edits), ``dag`` (commit, branch, merge, deletions) and ``data``
(tree roots at a version, writes by head compare-and-swap).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from cas_dvid.errors import InvalidInputError, NotFoundError
from cas_dvid.objects import ObjectId, ObjectStore
from cas_dvid.versions.commits import Commit
from cas_dvid.versions.dag import ConflictResolver, Dag, KeyRenderer, hex_key, no_resolver
from cas_dvid.versions.data import Change, DataAccess
from cas_dvid.versions.heads import Write
from cas_dvid.versions.model import At, Instance, Repo
from cas_dvid.versions.records import Records, RepoEdits


class VersionService:
    """Repos and versions over an object store.

    Reads of heads are always fresh, so a read after an acknowledged write sees it on
    every server sharing the store.  ``metadata_ttl`` > 0 lets repo records (DAG,
    instances) be served from memory for that many seconds; it never affects data.
    ``show_key`` renders tree keys in merge-conflict messages and ``resolve`` merges keys
    both parents changed where a datatype knows how (the datatypes know their keys).
    """

    def __init__(
        self,
        store: ObjectStore,
        *,
        metadata_ttl: float = 0.0,
        show_key: KeyRenderer = hex_key,
        resolve: ConflictResolver = no_resolver,
    ) -> None:
        self.store = store
        self.data = DataAccess(store)
        self.records = Records(store, self.data.tree, metadata_ttl=metadata_ttl)
        self.edits = RepoEdits(self.records)
        self.dag = Dag(self.records, self.data, show_key, resolve)
        self.tree = self.data.tree

    # -- resolving -------------------------------------------------------------------

    def resolve(self, spec: str) -> At:
        """Resolve a DVID UUID spec as a version; 400-style errors for unknown or ambiguous ones."""
        return self.records.resolve(spec)

    def instance(self, at: At, name: str) -> Instance:
        """Return the instance called ``name`` in the repo of ``at``."""
        return at.instance(name)

    def load_repo(self, root: str) -> Repo:
        """Return a repo record by root UUID."""
        return self.records.load(root)

    def repos(self) -> dict[str, Repo]:
        """Every repo, by root UUID."""
        return self.records.all()

    # -- repos, metadata and instances -------------------------------------------------

    def create_repo(self, alias: str = "", description: str = "", root: str | None = None) -> str:
        """Make a repo with one unlocked root node on master; return the root UUID."""
        return self.records.create(alias, description, root)

    def set_repo_info(self, spec: str, alias: str | None, description: str | None) -> None:
        """Change a repo's alias and/or description."""
        self.edits.set_info(self.resolve(spec), alias, description)

    def append_repo_log(self, spec: str, lines: list[str]) -> None:
        """Append time-stamped lines to a repo's log."""
        self.edits.append_repo_log(self.resolve(spec), lines)

    def set_node_note(self, spec: str, note: str) -> None:
        """Set a node's note (refused on a locked node)."""
        self.edits.set_note(self.resolve(spec), note)

    def append_node_log(self, spec: str, lines: list[str]) -> None:
        """Append to a node's log (refused on a locked node)."""
        self.edits.append_node_log(self.resolve(spec), lines)

    def new_instance(
        self,
        spec: str,
        name: str,
        typename: str,
        *,
        versioned: bool = True,
        settings: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> Instance:
        """Add a data instance to the repo of ``spec`` (names are unique per repo)."""
        return self.edits.new_instance(
            self.resolve(spec), name, typename, versioned=versioned, settings=settings, tags=tags
        )

    def update_instance(self, spec: str, name: str, change: Callable[[Instance], None]) -> Instance:
        """Change an instance's settings or tags (repo-wide, like DVID)."""
        return self.edits.update_instance(self.resolve(spec), name, change)

    # -- the DAG -----------------------------------------------------------------------

    def commit(self, spec: str, note: str = "", log: Iterable[str] = ()) -> str:
        """Lock a node; return its commit id (hex)."""
        return self.dag.commit(self.resolve(spec), note, log)

    def new_child(
        self,
        spec: str,
        *,
        branch: str | None = None,
        note: str = "",
        uuid: str | None = None,
        any_uuid: bool = False,
    ) -> str:
        """Newversion (``branch`` None) or branch: a child of a locked node."""
        return self.dag.new_child(
            self.resolve(spec), branch=branch, note=note, uuid=uuid, any_uuid=any_uuid
        )

    def merge(
        self, spec: str, parents: list[str], note: str = "", merge_type: str = "conflict-free"
    ) -> str:
        """Make an unlocked master child of two or more locked parents."""
        at = self.resolve(spec)
        resolved = []
        for p in parents:
            try:
                resolved.append(self.resolve(p))
            except (InvalidInputError, NotFoundError) as exc:
                raise InvalidInputError(f'can\'t match parent "{p}": {exc}') from None
        return self.dag.merge(at, resolved, note, merge_type)

    def tag(self, spec: str, tag: str, note: str = "") -> str:
        """Make a committed child whose UUID is the tag."""
        return self.dag.tag(self.resolve(spec), tag, note)

    def branch_versions(self, spec: str, name: str) -> list[str]:
        """UUIDs of a branch, leaf to root."""
        return self.dag.branch_versions(self.resolve(spec), name)

    def delete_repo(self, spec: str) -> Repo:
        """Remove a repo (its objects stay until gc)."""
        return self.dag.delete_repo(self.resolve(spec))

    def delete_instance(self, spec: str, name: str) -> Instance:
        """Remove a data instance from every version of its repo."""
        return self.dag.delete_instance(self.resolve(spec), name)

    # -- data at a version ---------------------------------------------------------------

    def commit_of(self, cid: str) -> Commit:
        """Return a commit object by hex id."""
        return self.data.commit_of(cid)

    def root_at(self, at: At, inst: Instance) -> ObjectId:
        """Return the tree root of ``inst`` at version ``at``."""
        return self.data.root_at(at, inst)

    def check_writable(self, at: At, inst: Instance, what: str = "write") -> None:
        """Refuse a write of a versioned instance at a locked node, before any work."""
        self.data.check_writable(at, inst, what)

    def write(
        self,
        at: At,
        inst: Instance,
        ops: Write,
        what: str = "write",
    ) -> ObjectId:
        """Apply a batch at a version in one head swap; return the new root."""
        return self.data.write(at, inst, ops, what)

    def diff(self, a: At, b: At, inst: Instance) -> Iterator[Change]:
        """Keys whose values differ between two versions, in key order."""
        return self.data.diff(a, b, inst)
