"""What every datatype shares: its identity and settings, its service, and the values it stores.

A datatype module (or package) under ``cas_dvid/datatypes/`` defines:

- ``DATATYPES``: the ``DataType`` records it offers (name, aliases, DVID's type URL,
  settings check, help text, how it keys its blocks if it is spatial, how to show a
  tree key to people);
- a ``TypeService`` subclass named by those records: the reads and writes of its
  instances at a version, built once per server with a ``Context``.

The registry (``cas_dvid.datatypes``) finds every such module by itself; nothing
else lists the datatypes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Self

from cas_dvid.datatypes.regions import Spatial
from cas_dvid.errors import InvalidInputError
from cas_dvid.objects import ObjectStore
from cas_dvid.trees import Tree
from cas_dvid.versions import At, Instance, VersionService
from cas_dvid.versions.dag import UNRESOLVED, Resolution
from cas_dvid.versions.values import (  # re-exported: the value encodings datatypes use
    BLOB,
    BLOB_TAGS,
    INLINE,
    JPEG_BLOB,
    MAX_INLINE,
    blob_value,
    decode_values,
    encode_value,
    inline_payload,
    inline_value,
    value_ref,
    value_tag,
)

TYPE_URL_ROOT = "github.com/janelia-flyem/dvid/datatype/"


@dataclass(frozen=True, slots=True)
class Context:
    """What a datatype's service is handed: the versions, and the store and tree under them."""

    versions: VersionService
    store: ObjectStore
    max_voxel_bytes: int = 3 << 30
    """Largest voxel request (read or write) a service will serve (DVID's is 3 GB)."""

    @property
    def tree(self) -> Tree:
        """The tree every instance's versions live in."""
        return self.versions.tree


class TypeService:
    """Reads and writes of one datatype family's instances at versions (one per server)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.versions = ctx.versions
        self.store = ctx.store
        self.tree = ctx.tree

    @classmethod
    def on(cls, versions: VersionService) -> Self:
        """Return a service over ``versions`` and its store, with default limits (tests, tools)."""
        return cls(Context(versions, versions.store))

    def check_voxel_bytes(self, nbytes: int) -> None:
        """Refuse a request for more voxel bytes than the server's limit, naming it."""
        limit = self.ctx.max_voxel_bytes
        if nbytes > limit:
            raise InvalidInputError(
                f"request for {nbytes} bytes of voxels is over the server's limit of "
                f"{limit} bytes (max_voxel_bytes)"
            )

    def info(self, at: At, inst: Instance) -> dict[str, Any]:
        """DVID's ``Extended`` (and, for volumes, ``Extents``) of GET info at a version."""
        return {"Extended": {}}


def _hex(key: bytes) -> str:
    return key.hex()


def _not_spatial(inst: Instance) -> Spatial | None:
    return None


def _as_given(settings: dict[str, str]) -> dict[str, str]:
    return settings


def _no_extended(inst: Instance) -> dict[str, Any]:
    return {}


def _unresolved(
    key: bytes, base: bytes | None, ours: bytes | None, theirs: bytes | None
) -> Resolution:
    return UNRESOLVED


def _lz4_text(inst: Instance) -> str:
    return "LZ4 compression, level -1"


class DiffSummary:
    """What a datatype sums up from a version diff's changes; nothing by default."""

    def add(self, key: bytes, old: bytes | None, new: bytes | None) -> None:
        """Take one changed key (old or new None when added or removed)."""

    def doc(self) -> dict[str, Any]:
        """Return the fields added to the diff's JSON."""
        return {}


@dataclass(frozen=True, slots=True)
class DataType:
    """A datatype as DVID shows it (name, TypeURL, version) and what it knows of its data.

    Attributes:
        service: the ``TypeService`` class serving its instances (shared by a family).
        check_settings: validates (and may normalise) the lower-cased settings of a
            new instance, raising InvalidInputError with DVID's kind of message.
        spatial: for an instance, how its blocks are keyed (None: not spatial).
        show_key: a tree key as people read it (diffs, merge conflicts).
        diff_summary: a fresh ``DiffSummary`` the version diff feeds every change.
        resolve: how a version merge combines a key both parents changed
            (key, base, ours, theirs); by default it stays a conflict.
        has_tags: whether DVID offers the generic ``tags`` endpoint for it.
        help: the text of ``/api/help/{type}``.
        extended: DVID's ``Extended`` info block without any I/O (repo listings).
        compression: the ``Base.Compression`` text of an instance.

    """

    name: str
    url: str
    version: str
    service: type[TypeService]
    aliases: tuple[str, ...] = ()
    check_settings: Callable[[dict[str, str]], dict[str, str]] = _as_given
    spatial: Callable[[Instance], Spatial | None] = _not_spatial
    show_key: Callable[[bytes], str] = _hex
    resolve: Callable[[bytes, bytes | None, bytes | None, bytes | None], Resolution] = _unresolved
    diff_summary: Callable[[], DiffSummary] = lambda: DiffSummary()
    has_tags: bool = False
    help: str = ""
    extended: Callable[[Instance], dict[str, Any]] = _no_extended
    compression: Callable[[Instance], str] = _lz4_text

    @property
    def full_url(self) -> str:
        """The TypeURL field."""
        return TYPE_URL_ROOT + self.url


def parse_bool(value: Any, what: str) -> bool:
    """DVID's booleans in settings: true/false, or strings true/false/1/0."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0"):
        return value.strip().lower() in ("true", "1")
    raise InvalidInputError(
        f"Illegal setting for '{what}' (needs to be 'false', '0', 'true', or '1'): {value}"
    )


def parse_settings(body: Mapping[str, Any], skip: Iterable[str] = ()) -> dict[str, str]:
    """Instance settings: keys are case-insensitive, values must be strings (as in DVID)."""
    skipped = {s.lower() for s in skip}
    out: dict[str, str] = {}
    for key, value in body.items():
        if key.lower() in skipped:
            continue
        if not isinstance(value, str):
            raise InvalidInputError(f"Setting for '{key}' was not a string: {json.dumps(value)}")
        out[key.lower()] = value
    return out


InstanceConfig = tuple[str, str, bool, dict[str, str], dict[str, str]]
"""(typename, dataname, versioned, tags, settings) of a new instance."""


def _config_string(doc: Mapping[str, Any], key: str, value: Any) -> str:
    if isinstance(value, bool) and key.lower() == "versioned":
        return "true" if value else "false"
    if not isinstance(value, str):
        raise InvalidInputError(f"Setting for '{key}' was not a string: {json.dumps(value)}")
    return value


def parse_instance_config(doc: Mapping[str, Any]) -> InstanceConfig:
    """Parse DVID's instance config: keys in any case, every value a string (as DVID)."""
    by_lower = {k.lower(): k for k in doc}
    fields: dict[str, str] = {}
    for key in ("typename", "dataname", "versioned", "tags"):
        if key in by_lower:
            fields[key] = _config_string(doc, by_lower[key], doc[by_lower[key]])
    for key in ("typename", "dataname"):
        if not fields.get(key):
            raise InvalidInputError(
                f"POST on repo endpoint requires specification of valid '{key}'"
            )
    versioned = parse_bool(fields["versioned"], "versioned") if "versioned" in fields else True
    tags = parse_tags(fields.get("tags", ""))
    settings = parse_settings(doc, skip=("typename", "dataname", "versioned", "tags"))
    return fields["typename"], fields["dataname"], versioned, tags, settings


def parse_tags(text: str) -> dict[str, str]:
    """``"k=v,k2=v2"`` -> dict."""
    tags = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        k, sep, v = part.partition("=")
        if not sep or not k:
            raise InvalidInputError(f"bad tag {part!r}: expected key=value")
        tags[k] = v
    return tags


__all__ = [
    "BLOB",
    "BLOB_TAGS",
    "INLINE",
    "JPEG_BLOB",
    "MAX_INLINE",
    "Context",
    "DataType",
    "TypeService",
    "blob_value",
    "decode_values",
    "encode_value",
    "inline_payload",
    "inline_value",
    "parse_bool",
    "parse_instance_config",
    "parse_settings",
    "parse_tags",
    "value_ref",
    "value_tag",
]
