"""keyvalue: string keys to byte values, versioned; small values inline in the tree."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from cas_dvid.datatypes.base import Context, DataType, TypeService, decode_values, encode_value
from cas_dvid.errors import InvalidInputError
from cas_dvid.trees import MAX_KEY_SIZE
from cas_dvid.versions import At, Instance

CLASS = b"\xb1"  # DVID's keyvalue TKey class 177; one tree can hold other classes beside it

HELP = """keyvalue: string keys to byte values, versioned.

  GET  .../key/{k}            the value (Range: bytes=a-b, or ?byte_start=&byte_end=, inclusive)
  HEAD .../key/{k}            200 if present, 404 if not
  POST .../key/{k}            the body is the value
  DELETE .../key/{k}          hide the key at this version (ancestors keep it)
  GET  .../keys               every key, a sorted JSON list
  GET  .../keyrange/{k1}/{k2} keys in [k1, k2]
  GET  .../keyrangevalues/{k1}/{k2}[?json=true|tar=true]  values (protobuf KeyValues default)
  GET  .../keyvalues          body: protobuf Keys, or a JSON list with json=true / tar=true
  POST .../keyvalues          body: protobuf KeyValues, written in one batch
  GET|POST .../tags           instance tags

Keys are UTF-8, without '/' (DVID would act on the part before it; refused here).
"""


def tree_key(key: str) -> bytes:
    """Tree key for a keyvalue key."""
    raw = key.encode("utf-8")
    if not raw:
        raise InvalidInputError("key must not be empty")
    if len(raw) + 1 > MAX_KEY_SIZE:
        raise InvalidInputError(
            f"key of {len(raw)} bytes is over the {MAX_KEY_SIZE - 1}-byte limit"
        )
    return CLASS + raw


def check_key_name(key: str) -> bytes:
    """Return the tree key of a key a client writes: non-empty, short enough, no '/'.

    Such a key could never be read or deleted through ``key/{k}``: DVID splits
    instance paths on '/', even when escaped as %2F.
    """
    if "/" in key:
        raise InvalidInputError(f"key \"{key[:200]}\" must not contain '/'")
    return tree_key(key)


def user_key(tkey: bytes) -> str:
    """Return the keyvalue key of a tree key."""
    return tkey[1:].decode("utf-8", "surrogateescape")


def show_key(tkey: bytes) -> str:
    """Return a tree key as people read it: the key itself for keyvalue entries."""
    if tkey[:1] == CLASS:
        return tkey[1:].decode("utf-8", "backslashreplace")
    return tkey.hex()


class KeyValueStore(TypeService):
    """Reads and writes of keyvalue instances at a version."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)

    def get(self, at: At, inst: Instance, key: str) -> bytes | None:
        """Return the value of ``key``, or None."""
        v = self.tree.get(self.versions.root_at(at, inst), tree_key(key))
        return None if v is None else decode_values(self.store, [v])[0]

    def get_many(self, at: At, inst: Instance, keys: list[str]) -> dict[str, bytes]:
        """Values of the present keys, in one tree pass."""
        tkeys = {tree_key(k): k for k in keys}
        found = self.tree.get_many(self.versions.root_at(at, inst), list(tkeys))
        ks = list(found)
        return dict(
            zip(
                (tkeys[k] for k in ks),
                decode_values(self.store, [found[k] for k in ks]),
                strict=True,
            )
        )

    def put_many(self, at: At, inst: Instance, items: Mapping[str, bytes], what: str) -> None:
        """Write several keys in one tree apply and one head swap."""
        keys = [check_key_name(k) for k in items]
        ops: dict[bytes, bytes | None] = {}
        for tk, v in zip(keys, items.values(), strict=True):
            ops[tk] = encode_value(self.store, v)[0]
        self.versions.write(at, inst, ops, what)

    def delete(self, at: At, inst: Instance, key: str, what: str) -> None:
        """Hide ``key`` at this version (ancestors keep it); absent keys are fine."""
        self.versions.write(at, inst, {tree_key(key): None}, what)

    def keys(
        self, at: At, inst: Instance, first: str | None = None, last: str | None = None
    ) -> list[str]:
        """Keys in order, optionally within [first, last] inclusive."""
        return [user_key(k) for k, _ in self._range(at, inst, first, last)]

    def items(
        self,
        at: At,
        inst: Instance,
        first: str | None = None,
        last: str | None = None,
        batch: int = 256,
    ) -> Iterator[tuple[str, bytes]]:
        """(key, value) in key order within [first, last], blobs fetched in batches."""
        chunk: list[tuple[bytes, bytes]] = []
        for entry in self._range(at, inst, first, last):
            chunk.append(entry)
            if len(chunk) >= batch:
                yield from self._decode(chunk)
                chunk = []
        yield from self._decode(chunk)

    def _decode(self, chunk: list[tuple[bytes, bytes]]) -> Iterator[tuple[str, bytes]]:
        values = decode_values(self.store, [v for _, v in chunk])
        return ((user_key(k), v) for (k, _), v in zip(chunk, values, strict=True))

    def _range(
        self, at: At, inst: Instance, first: str | None, last: str | None
    ) -> Iterator[tuple[bytes, bytes]]:
        start = CLASS if first is None else tree_key(first)
        root = self.versions.root_at(at, inst)
        if last is None:
            return self.tree.range(root, start, bytes((CLASS[0] + 1,)))
        return self.tree.range(root, start, tree_key(last), end_inclusive=True)


DATATYPES = [
    DataType(
        "keyvalue", "keyvalue", "0.2", KeyValueStore, show_key=show_key, has_tags=True, help=HELP
    )
]
