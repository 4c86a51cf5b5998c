"""``canonical_with_counts`` against its plain twin: encode(decode(b)) == b.

Canonical Blocks are stored as sent (no decode, no re-encode); any other Block must be
recognised as not canonical, or equal voxels would be stored as two objects.
"""

from __future__ import annotations

import numpy as np
from _labeldata import fixture_array, fixture_block, stream_block
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cas_dvid.datatypes.labelmap.codec import (
    canonical_with_counts,
    decode_block,
    encode_block,
    encode_block_with_counts,
    parse_block,
)

SHAPE = (16, 16, 16)


def reference(data: bytes, shape: tuple[int, int, int]) -> bool:
    """The twin: a Block is canonical when re-encoding its voxels gives its bytes."""
    return encode_block(decode_block(data, shape)) == data[: parse_block(data).nbytes]


def check(data: bytes, shape: tuple[int, int, int] = SHAPE) -> None:
    got = canonical_with_counts(data, shape)
    assert (got is not None) == reference(data, shape)
    if got is not None:
        want = encode_block_with_counts(decode_block(data, shape))
        assert got[0] == want[0]
        assert np.array_equal(got[1], want[1])
        assert np.array_equal(got[2], want[2])


def variants(data: bytes, rng: np.random.Generator) -> list[bytes]:
    """Other encodings of the same voxels (or near them): permuted tables and local lists."""
    p = parse_block(data)
    if p.solid:
        return []
    out = []
    nsb = len(p.ns)
    head = data[:16]
    labels, ns, idx = p.labels.copy(), p.ns.copy(), p.indices.copy()
    # 1. a permuted label table (indices remapped): same voxels, other bytes unless n == 1
    perm = rng.permutation(len(labels))
    inv = np.argsort(perm)
    out.append(
        head
        + labels[perm].astype("<u8").tobytes()
        + ns.astype("<u2").tobytes()
        + inv[idx].astype("<u4").tobytes()
        + p.values.tobytes()
    )
    # 2. a duplicate table entry used by the last listing
    labels2 = np.append(labels, labels[idx[-1]])
    idx2 = idx.copy()
    idx2[-1] = len(labels)
    out.append(
        np.array([*np.frombuffer(data[:12], "<u4"), len(labels2)], "<u4").tobytes()
        + labels2.astype("<u8").tobytes()
        + ns.astype("<u2").tobytes()
        + idx2.astype("<u4").tobytes()
        + p.values.tobytes()
    )
    # 3. one sub-block's local list reversed, its values remapped to match
    sb = int(rng.integers(nsb))
    start = int(ns[:sb].sum())
    n = int(ns[sb])
    if n > 1:
        vol = decode_block(data)
        idx3 = idx.copy()
        idx3[start : start + n] = idx[start : start + n][::-1]
        values = _values_with_local_reversed(p, sb)
        out.append(
            data[: 16 + 8 * len(labels)]
            + ns.astype("<u2").tobytes()
            + idx3.astype("<u4").tobytes()
            + values
        )
        assert np.array_equal(decode_block(out[-1]), vol)
    # 4. trailing bytes (ignored, as DVID ignores them)
    out.append(data + b"\x00\x07")
    return out


def _values_with_local_reversed(p, sb: int) -> bytes:  # noqa: ANN001
    bits = [0 if n < 2 else (int(n) - 1).bit_length() for n in p.ns]
    off = 64 * sum(bits[:sb])
    b, n = bits[sb], int(p.ns[sb])
    chunk = np.unpackbits(p.values[off : off + 64 * b]).reshape(512, b)
    v = chunk.dot(1 << np.arange(b)[::-1])
    v = (n - 1) - v
    rows = ((v[:, None] >> np.arange(b)[::-1]) & 1).astype(np.uint8)
    new = np.packbits(rows.reshape(-1))
    vals = p.values.copy()
    vals[off : off + 64 * b] = new
    return vals.tobytes()


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), nlabels=st.integers(1, 300), zero=st.booleans())
@example(seed=0, nlabels=1, zero=False)
def test_canonical_matches_its_twin(seed: int, nlabels: int, zero: bool) -> None:
    rng = np.random.default_rng(seed)
    pool = np.unique(rng.integers(0, 2**64 - 1, nlabels, np.uint64, endpoint=True))
    if zero:
        pool[0] = 0
    # Smooth blocks (few labels per sub-block) and noisy ones (many).
    coarse = rng.choice(pool, (4, 4, 4))
    vol = np.kron(coarse, np.ones((4, 4, 4), np.uint64)).astype(np.uint64)
    noisy = rng.random(SHAPE) < rng.random() * 0.5
    vol[noisy] = rng.choice(pool, int(noisy.sum()))
    data = encode_block(vol)
    check(data)
    for other in variants(data, rng):
        check(other)


def test_dvid_blocks() -> None:
    """DVID's golden Block and the stream fixture's, whatever their table order."""
    for data in (fixture_block(), stream_block()):
        check(data, (64, 64, 64))
    check(encode_block(fixture_array("fib19-64x64x64-sample1.dat.gz")), (64, 64, 64))


def test_ns_zero_subblock_is_not_canonical() -> None:
    """DVID writes Ns = 0 for an all-background sub-block; cas_dvid tables label 0."""
    vol = np.zeros((8, 8, 16), np.uint64)
    vol[:, :, 8:] = 5
    vol[0, 0, 9] = 6
    canon = encode_block(vol)
    p = parse_block(canon)
    labels = np.array([5, 6], np.uint64)
    dvid = (
        np.array([2, 1, 1, 2], "<u4").tobytes()
        + labels.astype("<u8").tobytes()
        + np.array([0, 2], "<u2").tobytes()
        + np.array([0, 1], "<u4").tobytes()
        + p.values.tobytes()
    )
    assert np.array_equal(decode_block(dvid), vol)
    assert canonical_with_counts(dvid, (8, 8, 16)) is None
    check(dvid, (8, 8, 16))
