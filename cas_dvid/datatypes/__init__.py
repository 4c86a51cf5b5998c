"""Datatypes: what the trees of each instance hold, and how DVID clients see it.

Every module or package here that defines ``DATATYPES`` (a list of ``DataType``)
is a datatype; ``default_registry()`` finds them all, so adding one touches no list.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Iterator
from typing import Any, TypeVar

from cas_dvid.datatypes.base import Context, DataType, TypeService, parse_instance_config
from cas_dvid.datatypes.regions import Spatial
from cas_dvid.errors import InvalidInputError, LockedError
from cas_dvid.objects import ObjectStore
from cas_dvid.versions import At, Instance, VersionService
from cas_dvid.versions.dag import Resolution

S = TypeVar("S", bound=TypeService)


class TypeRegistry:
    """Datatypes by name (and alias)."""

    def __init__(self, types: list[DataType]) -> None:
        self._by_name: dict[str, DataType] = {}
        self.types = sorted(types, key=lambda t: t.name)
        for t in self.types:
            for name in (t.name, *t.aliases):
                if name in self._by_name:
                    raise ValueError(f"two datatypes are called {name!r}")
                self._by_name[name] = t

    def get(self, name: str) -> DataType:
        """Return the datatype called ``name``; 400-style error if unknown."""
        try:
            return self._by_name[name]
        except KeyError:
            raise InvalidInputError(
                f"Data type '{name}' is not supported in current DVID executable"
            ) from None

    def urls(self) -> dict[str, str]:
        """Name -> TypeURL for /api/server/types."""
        return {t.name: t.full_url for t in self.types}

    def spatial(self, inst: Instance) -> Spatial | None:
        """How ``inst`` keys its blocks, None if it is not spatial."""
        return self.get(inst.typename).spatial(inst)

    def show_key(self, inst: Instance, key: bytes) -> str:
        """Return a tree key of ``inst`` as people read it."""
        return self.get(inst.typename).show_key(key)

    def resolve(
        self,
        inst: Instance,
        key: bytes,
        base: bytes | None,
        ours: bytes | None,
        theirs: bytes | None,
    ) -> Resolution:
        """Merge a key both parents of a version merge changed, if ``inst``'s type knows how."""
        return self.get(inst.typename).resolve(key, base, ours, theirs)

    def open(self, ctx: Context) -> DataServices:
        """One service per datatype family, over ``ctx``."""
        return DataServices(self, ctx)


class DataServices:
    """The services of every datatype, built once per server."""

    def __init__(self, registry: TypeRegistry, ctx: Context) -> None:
        self.registry = registry
        self.ctx = ctx
        self._by_class: dict[type[TypeService], TypeService] = {}
        for t in registry.types:
            if t.service not in self._by_class:
                self._by_class[t.service] = t.service(ctx)

    def of(self, cls: type[S]) -> S:
        """Return the one service of class ``cls``."""
        service = self._by_class[cls]
        assert isinstance(service, cls)
        return service

    def create_instance(self, spec: str, config: dict[str, Any]) -> tuple[At, Instance]:
        """POST /api/repo/{uuid}/instance: a new instance from DVID's instance config."""
        at = self.ctx.versions.resolve(spec)
        if at.node.locked:
            raise LockedError(f"New data instance cannot be created on locked node {at.uuid}")
        typename, name, versioned, tags, settings = parse_instance_config(config)
        dtype = self.registry.get(typename)
        inst = self.ctx.versions.edits.new_instance(
            at,
            name,
            dtype.name,
            versioned=versioned,
            settings=dtype.check_settings(settings),
            tags=tags,
        )
        return at, inst

    def for_instance(self, inst: Instance) -> TypeService:
        """Return the service of ``inst``'s datatype."""
        return self._by_class[self.registry.get(inst.typename).service]


def _datatype_modules() -> Iterator[object]:
    for info in pkgutil.iter_modules(__path__):
        yield importlib.import_module(f"{__name__}.{info.name}")


@functools.cache
def default_registry() -> TypeRegistry:
    """Every datatype this build serves: the ``DATATYPES`` of each module here."""
    types: list[DataType] = []
    for module in _datatype_modules():
        types += getattr(module, "DATATYPES", [])
    return TypeRegistry(types)


def open_versions(store: ObjectStore, *, metadata_ttl: float = 0.0) -> VersionService:
    """Return a VersionService whose merges and messages know the datatypes' keys."""
    registry = default_registry()
    return VersionService(
        store, metadata_ttl=metadata_ttl, show_key=registry.show_key, resolve=registry.resolve
    )


__all__ = [
    "Context",
    "DataServices",
    "DataType",
    "TypeRegistry",
    "TypeService",
    "default_registry",
    "open_versions",
]
