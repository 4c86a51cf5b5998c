"""``CasZarrStore``: a ``zarr.abc.store.Store`` over one instance at one version.

``zarr.open_array(store=CasZarrStore.open_version(versions, uuid, "grey"), mode="r")``
reads a version in-process, without HTTP: the same keys and bytes as the /zarr view
(see the package docstring for the axis order). Imported on demand (zarr is heavy):
nothing in the server imports this module.

Read-only by default (``set`` and ``delete`` raise as zarr's read-only stores do).
With ``read_only=False`` a uint8blk at an unlocked version is written through zarr:
each chunk ``c/z/y/x`` is one block write (the block object, the tree entry and the
extents in one head swap, as ``POST raw``), and a chunk zarr deletes (one it would
write as all zeros) is removed, which DVID reads as zeros.  The metadata is the
instance's: a ``zarr.json`` write must say what it already says.  Labelmaps stay
read-only (the view shows bodies; supervoxels go through the DVID API).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable

from zarr.abc.store import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    Store,
    SuffixByteRequest,
)
from zarr.core.buffer import Buffer, BufferPrototype

from cas_dvid.datatypes.base import Context
from cas_dvid.datatypes.zarrview import ZarrVolumes
from cas_dvid.versions import VersionService


class CasZarrStore(Store):
    """The zarr keys of instance ``name`` at version ``spec`` (UUID spec or commit id)."""

    supports_writes: bool = False
    supports_deletes: bool = False
    supports_listing: bool = True

    def __init__(
        self, volumes: ZarrVolumes, spec: str, name: str, *, read_only: bool = True
    ) -> None:
        """Serve ``name`` at ``spec`` from ``volumes``; writable where the version is open."""
        super().__init__(read_only=read_only)
        self.volumes = volumes
        self.spec = spec
        self.name = name
        version = volumes.resolve(spec)
        self._at = version.at
        self._inst = version.at.instance(name)
        if not read_only:
            volumes.check_writable(self._at, self._inst)  # refuse a locked version up front
            self.supports_writes = self.supports_deletes = True

    @classmethod
    def open_version(
        cls, versions: VersionService, spec: str, name: str, *, read_only: bool = True
    ) -> CasZarrStore:
        """Build the store from a VersionService (its object store and the datatypes)."""
        from cas_dvid.datatypes import default_registry

        data = default_registry().open(Context(versions, versions.store))
        return cls(ZarrVolumes(versions, data), spec, name, read_only=read_only)

    def __repr__(self) -> str:
        """Name the version and instance."""
        return f"CasZarrStore({self.spec!r}, {self.name!r})"

    def __eq__(self, other: object) -> bool:
        """Equal when over the same volumes, version and instance."""
        return (
            isinstance(other, CasZarrStore)
            and other.volumes is self.volumes
            and (other.spec, other.name) == (self.spec, self.name)
        )

    def __hash__(self) -> int:
        """Hash by version and instance."""
        return hash((self.spec, self.name))

    # -- reads -----------------------------------------------------------------------

    def _read(self, key: str) -> bytes | None:
        at, inst, vols = self._at, self._inst, self.volumes
        parts = key.split("/")
        pyramid = vols.levels(inst) > 1
        if key == "zarr.json":
            doc = vols.group_meta(at, inst) if pyramid else vols.array_meta(at, inst)
            return json.dumps(doc).encode()
        scale = 0
        if pyramid:
            if not (parts[0].startswith("s") and parts[0][1:].isdigit()):
                return None
            scale = int(parts[0][1:])
            if scale >= vols.levels(inst):
                return None
            parts = parts[1:]
        if parts == ["zarr.json"]:
            return json.dumps(vols.array_meta(at, inst, scale)).encode()
        if len(parts) != 4 or parts[0] != "c" or not all(p.isdigit() for p in parts[1:]):
            return None
        zyx = (int(parts[1]), int(parts[2]), int(parts[3]))
        chunk = vols.locate(at, inst, scale, zyx)
        return None if chunk is None else vols.chunk_bytes(at, inst, chunk)

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        """Return the value of ``key`` (or a byte range of it), None when absent."""
        data = self._read(key)
        if data is None:
            return None
        if isinstance(byte_range, RangeByteRequest):
            data = data[byte_range.start : byte_range.end]
        elif isinstance(byte_range, OffsetByteRequest):
            data = data[byte_range.offset :]
        elif isinstance(byte_range, SuffixByteRequest):
            data = data[-byte_range.suffix :] if byte_range.suffix else b""
        return prototype.buffer.from_bytes(data)

    async def get_partial_values(
        self, prototype: BufferPrototype, key_ranges: Iterable[tuple[str, ByteRequest | None]]
    ) -> list[Buffer | None]:
        """Return each (key, range), None where absent."""
        return [await self.get(k, prototype, r) for k, r in key_ranges]

    async def exists(self, key: str) -> bool:
        """Whether ``key`` has a value."""
        return self._read(key) is not None

    # -- writes (uint8blk at an unlocked version) ------------------------------------

    def _chunk(self, key: str) -> tuple[int, int, int]:
        parts = key.split("/")
        if len(parts) != 4 or parts[0] != "c" or not all(p.isdigit() for p in parts[1:]):
            raise ValueError(f"{key!r} is not a chunk key of this array (c/z/y/x)")
        return int(parts[1]), int(parts[2]), int(parts[3])

    async def set(self, key: str, value: Buffer) -> None:
        """Write chunk ``key`` as one block; a ``zarr.json`` must equal the instance's."""
        self._check_writable()
        if key == "zarr.json":
            if json.loads(value.to_bytes()) != json.loads(self._read(key) or b"null"):
                raise ValueError(
                    "the array's metadata follows the instance (extents, block size): "
                    "it cannot be rewritten through zarr"
                )
            return
        self.volumes.write_chunk(self._at, self._inst, self._chunk(key), value.to_bytes())

    async def delete(self, key: str) -> None:
        """Remove chunk ``key`` (it then reads as the fill value, 0)."""
        self._check_writable()
        self.volumes.delete_chunk(self._at, self._inst, self._chunk(key))

    # -- listing -------------------------------------------------------------------

    def _keys(self) -> list[str]:
        at, inst, vols = self._at, self._inst, self.volumes
        levels = vols.levels(inst)
        keys = ["zarr.json"]
        for scale in range(levels):
            prefix = f"s{scale}/" if levels > 1 else ""
            if levels > 1:
                keys.append(f"{prefix}zarr.json")
            keys += [f"{prefix}c/{z}/{y}/{x}" for z, y, x in vols.stored_chunks(at, inst, scale)]
        return keys

    async def list(self) -> AsyncIterator[str]:
        """Every key."""
        for k in self._keys():
            yield k

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        """Every key starting with ``prefix``."""
        for k in self._keys():
            if k.startswith(prefix):
                yield k

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        """Yield the names directly under ``prefix`` (keys and folders)."""
        prefix = prefix.rstrip("/")
        lead = f"{prefix}/" if prefix else ""
        seen: set[str] = set()
        for k in self._keys():
            if k.startswith(lead):
                name = k[len(lead) :].split("/", 1)[0]
                if name not in seen:
                    seen.add(name)
                    yield name
