"""The invariants every labelmap edit keeps, checked against the voxels by brute force.

At one version of an indexed labelmap:

1. every supervoxel with voxels belongs to exactly one body: the mapping's target
   (itself when unmapped), never 0;
2. the label index of a body lists exactly its supervoxels' blocks, with the voxel
   count each block really holds (no entry for a block without them, no 0 counts);
3. the mapping holds no supervoxel without voxels, except retired ones (mapped to
   0, which have none);
4. each body's summary gives its index's voxels and blocks, and no body without
   index entries keeps a summary;
5. the version's max label, and the repo's (where reservations start), is at least
   every label in blocks, mapping and index;
6. the last mutation id is the largest id in the log.

Across a DAG: max label and last mutation id never go down from parent to child.

Tests and ``cas-dvid verify`` run these; each problem is one line of text.  The
check decodes every scale-0 block, so its cost follows the volume.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from cas_dvid.datatypes.labelmap import keys as K
from cas_dvid.datatypes.labelmap.codec import decode_block
from cas_dvid.datatypes.labelmap.layout import layout_of
from cas_dvid.datatypes.labelmap.mutlog import last_mutid
from cas_dvid.objects import ObjectId
from cas_dvid.trees.keys import parse_block_key, prefix_range
from cas_dvid.versions import At, Instance
from cas_dvid.versions.values import decode_values

if TYPE_CHECKING:
    from cas_dvid.datatypes.labelmap.store import LabelStore

Coord = tuple[int, int, int]
_MAX_SHOWN = 20


def brute_counts(labels: LabelStore, root: ObjectId, inst: Instance) -> dict[Coord, dict[int, int]]:
    """Return {block: {supervoxel: voxels}} from the stored scale-0 blocks (0 left out)."""
    lay = layout_of(inst)
    lo, hi = prefix_range(K.LABEL_BLOCK_CLASS + bytes([0]))
    items = list(labels.tree.range(root, lo, hi))
    out: dict[Coord, dict[int, int]] = {}
    for i in range(0, len(items), 256):
        chunk = items[i : i + 256]
        for (key, _), blob in zip(chunk, labels.blobs([v for _, v in chunk]), strict=True):
            _, z, y, x = parse_block_key(key[1:])
            svs, n = np.unique(decode_block(blob, lay.block_shape), return_counts=True)
            counts = {int(s): int(c) for s, c in zip(svs, n, strict=True) if s}
            if counts:
                out[(x, y, z)] = counts
    return out


def check_version(labels: LabelStore, at: At, inst: Instance) -> list[str]:
    """Return every broken invariant of ``inst`` at ``at`` (empty when all hold)."""
    lay = layout_of(inst)
    if not lay.mapped or not lay.indexed:
        return []
    root = labels.root(at, inst)
    problems = list(_check(labels, root, inst))
    if len(problems) > _MAX_SHOWN:
        problems = [*problems[:_MAX_SHOWN], f"... and {len(problems) - _MAX_SHOWN} more"]
    return [f"{inst.name}@{at.uuid[:8]}: {p}" for p in problems]


def _check(labels: LabelStore, root: ObjectId, inst: Instance) -> Iterator[str]:
    truth = brute_counts(labels, root, inst)
    tree = labels.tree
    mapping = {
        K.label_of(k): K.decode_label_value(v)
        for k, v in tree.range(root, *prefix_range(K.MAPPING_CLASS))
    }
    sv_voxels: dict[int, int] = {}
    for counts in truth.values():
        for sv, n in counts.items():
            sv_voxels[sv] = sv_voxels.get(sv, 0) + n
    # 1 and 3: the mapping
    for sv in sv_voxels:
        if mapping.get(sv, sv) == 0:
            yield f"supervoxel {sv} has {sv_voxels[sv]} voxels but is retired (mapped to 0)"
    for sv, body in mapping.items():
        if body and sv not in sv_voxels:
            yield f"mapping holds supervoxel {sv} -> {body}, which has no voxels"
    # 2: the index, entry by entry
    items = list(tree.range(root, *prefix_range(K.LABEL_INDEX_CLASS)))
    payloads = decode_values(labels.store, [v for _, v in items])
    seen: dict[tuple[Coord, int], int] = {}
    per_body: dict[int, tuple[int, int]] = {}
    for (key, _), payload in zip(items, payloads, strict=True):
        body, coord = K.parse_index_key(key)
        pairs = K.decode_pairs(payload)
        if not len(pairs):
            yield f"index of body {body} has an empty entry for block {coord}"
        vox, blocks = per_body.get(body, (0, 0))
        per_body[body] = (vox + int(pairs["n"].sum()), blocks + 1)
        for sv, n in zip(pairs["sv"].tolist(), pairs["n"].tolist(), strict=True):
            if mapping.get(sv, sv) != body:
                yield f"index of body {body} lists supervoxel {sv} of body {mapping.get(sv, sv)}"
            if (coord, sv) in seen:
                yield f"supervoxel {sv} in block {coord} is indexed under two bodies"
            seen[(coord, sv)] = n
            real = truth.get(coord, {}).get(sv, 0)
            if n != real:
                yield (
                    f"index of body {body} says {n} voxels of {sv} in block {coord},"
                    f" the block has {real}"
                )
    for coord, counts in truth.items():
        for sv, n in counts.items():
            if (coord, sv) not in seen:
                yield f"supervoxel {sv} ({n} voxels in block {coord}) is in no body's index"
    # 4: summaries
    summaries = {
        K.label_of(k): K.decode_summary(v) for k, v in tree.range(root, *prefix_range(K.BODY_CLASS))
    }
    for body, (vox, blocks) in per_body.items():
        s = summaries.get(body)
        if s is None or (s.voxels, s.blocks) != (vox, blocks):
            shown = None if s is None else (s.voxels, s.blocks)
            yield f"summary of body {body} is {shown}, its index has ({vox}, {blocks})"
    for body in summaries.keys() - per_body.keys():
        yield f"body {body} has a summary but no index entries"
    # 5: max label
    top = max([0, *sv_voxels, *mapping, *mapping.values(), *per_body])
    max_label = labels.max_label(root) or 0
    if max_label < top:
        yield f"max label {max_label} is below label {top}"
    counters = labels.counters(inst).read()
    if not counters.next and counters.max_repo < top:
        yield f"repo max label {counters.max_repo} is below label {top}: a reservation may reuse it"
    # 6: the log
    last = last_mutid(labels, root)
    lo, hi = prefix_range(K.MUTATION_CLASS)
    newest = max((K.label_of(k) for k, _ in tree.range(root, lo, hi)), default=0)
    if newest != last:
        yield f"last mutation id is {last}, the log's newest record is {newest}"


def check_dag(labels: LabelStore, at: At, inst: Instance) -> list[str]:
    """Return where max label or last mutation id went down from a parent to ``at``."""
    lay = layout_of(inst)
    if not lay.mapped:
        return []
    root = labels.root(at, inst)
    mine = (labels.max_label(root) or 0, last_mutid(labels, root))
    out = []
    for parent in at.node.parents:
        if parent not in at.repo.nodes:
            continue
        proot = labels.root(At(at.repo, parent), inst)
        theirs = (labels.max_label(proot) or 0, last_mutid(labels, proot))
        for what, a, b in zip(("max label", "last mutation id"), theirs, mine, strict=True):
            if b < a:
                out.append(f"{inst.name}@{at.uuid[:8]}: {what} {b} is below parent's {a}")
    return out
