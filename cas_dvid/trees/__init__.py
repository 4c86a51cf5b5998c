"""Ordered Merkle map over byte keys: a history-independent prolly tree.

Choice of shape: a prolly tree (as in Dolt/Noms). Node boundaries are
content-defined by the keys alone: a key ends its node at level ``L`` when a
deterministic 32-bit hash of it (``fmix32(crc32(key))``) is below
``2**32 >> 6*(L+1)``. The shape is therefore a function of the key set, so
the same entries give the same root id whatever order of puts and deletes
built them, and a value update never moves a boundary. A fixed-shape trie
would also be history independent, but would need a fixed key width and gives
unbalanced nodes on sparse spatial keys; the prolly tree takes any byte keys.

Target node size: 64 entries on average at every level (geometric spread:
median 44, p99 ~290; the largest of ~16k leaves of a 1M-entry tree held ~630).
For 13-byte block keys and 32-byte ids that is ~2.9 KiB per leaf and
~3.4 KiB per internal node, and a depth of 4 for 1M entries, 5 up to ~64M.
Why 64: each isolated change rewrites one node per level, so the garbage per
change is ~depth x node size (~12 KiB), while fewer, larger nodes mean fewer
objects and round trips; a few KiB is also small beside a 32^3 image block,
so the tree adds ~1 % to a volume. Inline values up to ``MAX_VALUE_SIZE``
(1 KiB) keep even the worst leaf near 64 KiB on average.

Entries are ``bytes -> bytes``: a value is either a 32-byte object id or a
small inline value; the tree does not tell them apart (the caller knows).
The empty tree's root is ``EMPTY_ROOT``, never loaded from a store.
"""

from cas_dvid.trees._build import MAX_KEY_SIZE, MAX_VALUE_SIZE
from cas_dvid.trees._memory import MemoryNodeStore
from cas_dvid.trees._node import EMPTY_NODE, EMPTY_ROOT, Node, children, is_leaf, node_level
from cas_dvid.trees._tree import Tree
from cas_dvid.trees.abc import NodeStore

__all__ = [
    "EMPTY_NODE",
    "EMPTY_ROOT",
    "MAX_KEY_SIZE",
    "MAX_VALUE_SIZE",
    "MemoryNodeStore",
    "Node",
    "NodeStore",
    "Tree",
    "children",
    "is_leaf",
    "node_level",
]
