"""Proofreading branches: merging them key by key, and what a diff between versions says.

A version merge (versions/dag.py) is a three-way merge of each instance's tree.
Proofreading edits touch only their own bodies' keys (index entries, summary), their
supervoxels' mapping entries and log records with repo-unique ids, so independent
merges, cleaves and splits of different bodies on two branches combine key by key.
What both sides always change is resolved here:

- max label and last mutation id: the larger of the two (neither ever goes down);
- stale marks of lower-res blocks: kept if either side has one;
- extents: the union of both boxes.

Anything else both sides changed (the same body, supervoxel or block) stays a
conflict; a body's conflict names both sides' last mutation ids, from its summary.
"""

from __future__ import annotations

import json
from typing import Any

from cas_dvid.datatypes.base import DiffSummary
from cas_dvid.datatypes.labelmap import keys as K
from cas_dvid.versions.dag import UNRESOLVED, Resolution
from cas_dvid.versions.values import inline_payload, inline_value


def resolve_conflict(
    key: bytes, base: bytes | None, ours: bytes | None, theirs: bytes | None
) -> Resolution:
    """Return the merged value of a key both branches changed, or a conflict note."""
    if key in (K.MAXLABEL_KEY, K.LAST_MUTID_KEY):
        both = [K.decode_label_value(v) for v in (ours, theirs) if v is not None]
        return Resolution(True, K.encode_label_value(max(both)) if both else None)
    if key[:1] == K.DIRTY_CLASS:
        return Resolution(True, ours if ours is not None else theirs)
    if key == K.LABEL_EXTENTS_KEY and ours is not None and theirs is not None:
        a, b = (json.loads(inline_payload(v)) for v in (ours, theirs))
        lo = [min(x, y) for x, y in zip(a["MinPoint"], b["MinPoint"], strict=True)]
        hi = [max(x, y) for x, y in zip(a["MaxPoint"], b["MaxPoint"], strict=True)]
        return Resolution(True, inline_value(json.dumps({"MinPoint": lo, "MaxPoint": hi}).encode()))
    if key[:1] == K.BODY_CLASS:
        sides = [
            "deleted" if v is None else f"mutation {K.decode_summary(v).mutid}"
            for v in (ours, theirs)
        ]
        return Resolution(False, note=f"ours: {sides[0]}, theirs: {sides[1]}")
    return UNRESOLVED


class BodyDiff(DiffSummary):
    """A labelmap diff summed up: bodies created, deleted and changed, mutations made."""

    def __init__(self) -> None:
        self.bodies: dict[str, list[int]] = {"created": [], "deleted": [], "changed": []}
        self.supervoxels = 0
        self.mutations: list[int] = []

    def add(self, key: bytes, old: bytes | None, new: bytes | None) -> None:
        """Take one changed key."""
        cls = key[:1]
        if cls == K.BODY_CLASS and len(key) == 9:
            kind = "created" if old is None else "deleted" if new is None else "changed"
            self.bodies[kind].append(K.label_of(key))
        elif cls == K.MAPPING_CLASS:
            self.supervoxels += 1
        elif cls == K.MUTATION_CLASS and old is None:
            self.mutations.append(K.label_of(key))

    def doc(self) -> dict[str, Any]:
        """Return ``bodies``, ``remapped supervoxels`` and ``mutations``."""
        return {
            "bodies": self.bodies,
            "remapped_supervoxels": self.supervoxels,
            "mutations": self.mutations,
        }
