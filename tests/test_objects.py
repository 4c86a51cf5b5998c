"""Object store behaviour: ids, codecs, verification, cache, batches, on memory and file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cas_dvid.backends import LocalBackend, MemoryBackend
from cas_dvid.errors import CorruptObjectError, InvalidInputError, NotFoundError
from cas_dvid.objects import Codec, Kind, ObjectStore, content_id, parse_object_id, to_hex
from cas_dvid.objects.codec import HEADER, HEADER_SIZE, MAGIC, decode, encode


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "memory":
        return ObjectStore(MemoryBackend())
    return ObjectStore(LocalBackend(tmp_path / "s", create=True))


@pytest.fixture(autouse=True)
def _loose(loose_objects: None) -> None:
    """These tests damage object files (tests/test_logs.py damages a log)."""


def _file(store: ObjectStore, oid: bytes) -> Path:
    assert isinstance(store.backend, LocalBackend)
    h = to_hex(oid)
    return store.backend.root / "objects" / h[:2] / h[2:]


def em_block(seed: int = 0) -> bytes:
    """64^3 uint8 with EM-like texture: incompressible for lz4."""
    rng = np.random.default_rng(seed)
    return rng.normal(128, 30, (64, 64, 64)).clip(0, 255).astype(np.uint8).tobytes()


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=5000), kind=st.sampled_from(list(Kind)))
@example(data=b"", kind=Kind.BLOB)
@example(data=bytes(100_000), kind=Kind.TREE)
def test_codec_round_trip(data: bytes, kind: Kind) -> None:
    for codec in Codec:
        stored = b"".join(encode(kind, data, codec))
        got_kind, raw = decode(stored)
        assert got_kind is kind and bytes(raw) == data


def test_id_ignores_codec(tmp_path: Path) -> None:
    data = bytes(10_000) + b"tail"
    ids = set()
    for codec in Codec:
        s = ObjectStore(MemoryBackend(), codec=codec)
        ids.add(s.put(Kind.BLOB, data))
    assert ids == {content_id(Kind.BLOB, data)}


def test_kind_is_part_of_the_id() -> None:
    assert content_id(Kind.BLOB, b"x") != content_id(Kind.TREE, b"x")


def test_id_is_blake3_of_kind_byte_and_data() -> None:
    import blake3

    assert content_id(Kind.TREE, b"abc") == blake3.blake3(b"\x02abc").digest()
    big = os.urandom(3 << 20)  # the multi-threaded path gives the same digest
    assert content_id(Kind.BLOB, big) == blake3.blake3(b"\x01" + big).digest()


def test_codec_that_does_not_shrink_falls_back_to_none() -> None:
    data = em_block()
    header, payload = encode(Kind.BLOB, data, Codec.LZ4)
    assert HEADER.unpack(header)[3] == Codec.NONE
    assert payload is data
    header, payload = encode(Kind.BLOB, bytes(len(data)), Codec.LZ4)
    assert HEADER.unpack(header)[3] == Codec.LZ4 and len(payload) < 2000


def test_round_trip_and_get_kind(store: ObjectStore) -> None:
    blob = em_block()
    oid = store.put(Kind.BLOB, blob)
    assert bytes(store.get(oid)) == blob
    assert bytes(store.get(oid, Kind.BLOB)) == blob
    with pytest.raises(CorruptObjectError, match="expected TREE"):
        store.get(oid, Kind.TREE)


def test_get_returns_read_only_view(store: ObjectStore) -> None:
    oid = store.put(Kind.BLOB, b"abc" * 1000)
    view = store.get(oid)
    with pytest.raises(TypeError):
        view[0] = 0  # type: ignore[index]


def test_missing_object(store: ObjectStore) -> None:
    oid = content_id(Kind.BLOB, b"never stored")
    with pytest.raises(NotFoundError, match=to_hex(oid)):
        store.get(oid)
    assert not store.has(oid)


def test_batches(store: ObjectStore) -> None:
    blobs = [em_block(i)[: 1000 * (i + 1)] for i in range(20)]
    ids = store.put_many([(Kind.BLOB, b) for b in blobs])
    assert ids == [content_id(Kind.BLOB, b) for b in blobs]
    assert [bytes(v) for v in store.get_many(ids)] == blobs
    ghost = content_id(Kind.BLOB, b"ghost")
    assert store.has_many([ids[0], ghost, ids[5]]) == [True, False, True]
    assert store.missing([ids[0], ghost]) == [ghost]


def test_put_known_and_put_stored(store: ObjectStore) -> None:
    node = b"node bytes" * 50
    oid = content_id(Kind.TREE, node)
    store.put_known(Kind.TREE, {oid: node})
    stored = store.get_stored(oid)
    other = ObjectStore(MemoryBackend())
    assert other.put_stored(oid, stored)
    assert bytes(other.get(oid, Kind.TREE)) == node
    wrong = content_id(Kind.TREE, b"something else")
    with pytest.raises(CorruptObjectError, match="checksum mismatch"):
        other.put_stored(wrong, stored)
    assert not other.has(wrong)


def test_equal_content_stored_once(tmp_path: Path) -> None:
    store = ObjectStore(LocalBackend(tmp_path / "s", create=True))
    for _ in range(3):
        store.put(Kind.BLOB, bytes(262_144))
    assert len(list(store.iter_objects())) == 1


# -- faults -------------------------------------------------------------------


@pytest.mark.parametrize("codec", list(Codec))
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_flipped_byte_is_detected(tmp_path: Path, codec: Codec, where: str) -> None:
    store = ObjectStore(LocalBackend(tmp_path / "s", create=True), codec=codec, cache_bytes=0)
    data = (b"label" * 400) + bytes(3000)
    oid = store.put(Kind.BLOB, data)
    path = _file(store, oid)
    raw = bytearray(path.read_bytes())
    at = {"first": HEADER_SIZE, "middle": (HEADER_SIZE + len(raw)) // 2, "last": -1}[where]
    raw[at] ^= 0x40
    path.chmod(0o644)
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptObjectError, match=to_hex(oid)):
        store.get(oid)


def test_mismatch_names_expected_and_actual(tmp_path: Path) -> None:
    store = ObjectStore(LocalBackend(tmp_path / "s", create=True), codec=Codec.NONE)
    oid = store.put(Kind.BLOB, b"A" * 100)
    path = _file(store, oid)
    path.write_bytes(b"".join(encode(Kind.BLOB, b"B" * 100, Codec.NONE)))
    actual = content_id(Kind.BLOB, b"B" * 100)
    with pytest.raises(CorruptObjectError) as err:
        store.get(oid)
    assert f"checksum mismatch for {to_hex(oid)}: got {to_hex(actual)}" == str(err.value)


def test_corrupt_object_is_not_cached_or_returned_later(tmp_path: Path) -> None:
    store = ObjectStore(LocalBackend(tmp_path / "s", create=True), codec=Codec.NONE)
    oid = store.put(Kind.BLOB, b"A" * 100)
    good = _file(store, oid).read_bytes()
    _file(store, oid).write_bytes(good[:-1] + b"Z")
    for _ in range(2):
        with pytest.raises(CorruptObjectError):
            store.get(oid)
    assert len(store.cache) == 0


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        pytest.param(lambda b: b[:10], "truncated", id="shorter-than-header"),
        pytest.param(lambda b: b[:-7], "truncated|does not decode", id="truncated-payload"),
        pytest.param(
            lambda b: b[:2] + b"\x09" + b[3:], "unknown object format version 9", id="version"
        ),
        pytest.param(lambda b: b[:4] + b"\x07" + b[5:], "unknown kind 1 or codec 7", id="codec"),
        pytest.param(lambda b: b"XX" + b[2:], "bad magic", id="magic"),
        pytest.param(lambda b: b"", "truncated", id="empty-file"),
    ],
)
@pytest.mark.parametrize("codec", [Codec.NONE, Codec.LZ4, Codec.ZSTD])
def test_damaged_stored_form(tmp_path: Path, mangle, message: str, codec: Codec) -> None:  # type: ignore[no-untyped-def]
    store = ObjectStore(LocalBackend(tmp_path / "s", create=True), codec=codec)
    data = b"0123456789abcdef" * 300
    oid = store.put(Kind.BLOB, data)
    path = _file(store, oid)
    path.write_bytes(mangle(path.read_bytes()))
    with pytest.raises(CorruptObjectError, match=message):
        store.get(oid)


def test_verify_can_be_turned_off_but_decode_still_checks(tmp_path: Path) -> None:
    store = ObjectStore(LocalBackend(tmp_path / "s", create=True), codec=Codec.NONE, verify=False)
    oid = store.put(Kind.BLOB, b"A" * 100)
    _file(store, oid).write_bytes(_file(store, oid).read_bytes()[:50])
    with pytest.raises(CorruptObjectError, match="truncated"):
        store.get(oid)


# -- cache --------------------------------------------------------------------


def test_cache_hit_does_not_touch_backend(tmp_path: Path) -> None:
    store = ObjectStore(LocalBackend(tmp_path / "s", create=True))
    oid = store.put(Kind.BLOB, b"hot" * 1000)
    first = store.get(oid)
    _file(store, oid).unlink()
    assert store.get(oid) is first
    assert store.cache.hits == 1


def test_cache_is_bounded_in_bytes() -> None:
    store = ObjectStore(MemoryBackend(), cache_bytes=100_000)
    ids = [store.put(Kind.BLOB, os.urandom(10_000)) for _ in range(30)]
    for oid in ids:
        store.get(oid)
    assert store.cache.size <= 100_000
    assert 5 <= len(store.cache) <= 10
    store.get(ids[-1])
    assert store.cache.hits == 1


# -- parsing ------------------------------------------------------------------


def test_parse_object_id() -> None:
    oid = content_id(Kind.BLOB, b"x")
    assert parse_object_id(to_hex(oid)) == oid
    assert parse_object_id(to_hex(oid).upper()) == oid
    for bad in ["", "abc", to_hex(oid)[:-1], "zz" * 32]:
        with pytest.raises(InvalidInputError, match="64-hex"):
            parse_object_id(bad)


def test_unknown_codec_name() -> None:
    with pytest.raises(InvalidInputError, match="unknown codec 'gzip'"):
        ObjectStore(MemoryBackend(), codec="gzip")


def test_header_layout_is_stable() -> None:
    header, _ = encode(Kind.COMMIT, b"abc", Codec.NONE)
    assert bytes(header) == MAGIC + b"\x01\x03\x00\x00\x00\x00" + (3).to_bytes(8, "little")
