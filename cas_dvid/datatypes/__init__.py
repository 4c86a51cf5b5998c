"""Datatypes: what the trees of each instance hold, and how DVID clients see it."""

from __future__ import annotations

from cas_dvid.datatypes.base import DataType
from cas_dvid.errors import InvalidInputError


class TypeRegistry:
    """Datatypes by name (and alias)."""

    def __init__(self, types: list[DataType]) -> None:
        self._by_name: dict[str, DataType] = {}
        self.types = types
        for t in types:
            for name in (t.name, *t.aliases):
                self._by_name[name] = t

    def get(self, name: str) -> DataType:
        """The datatype called ``name``; 400-style error if unknown."""
        try:
            return self._by_name[name]
        except KeyError:
            raise InvalidInputError(
                f"Data type '{name}' is not supported in current DVID executable"
            ) from None

    def urls(self) -> dict[str, str]:
        """Name -> TypeURL for /api/server/types."""
        return {t.name: t.full_url for t in self.types}


def default_registry() -> TypeRegistry:
    """Every datatype this build serves."""
    from cas_dvid.datatypes import imageblk, keyvalue

    return TypeRegistry([keyvalue.TYPE, *(t.datatype for t in imageblk.VOXEL_TYPES.values())])


__all__ = ["DataType", "TypeRegistry", "default_registry"]
