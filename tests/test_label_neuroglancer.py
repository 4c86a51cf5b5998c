"""compressed_segmentation output for raw ?compression=google, against DVID's layout."""

from __future__ import annotations

import struct

import compressed_segmentation as cseg
import numpy as np
import pytest
from _labeldata import distinct_labels, fixture_array, random_labels, voronoi
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cas_dvid.datatypes.labelmap import neuroglancer, reference
from cas_dvid.errors import InvalidInputError


def spec_decode(data: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """Neuroglancer compressed_segmentation, one channel, 8x8x8 blocks, uint64, by hand."""
    dz, dy, dx = shape
    (channel_at,) = struct.unpack_from("<I", data)
    assert channel_at == 1  # DVID: "compressed data starts after first 4 bytes"
    base = 4 * channel_at
    out = np.zeros(shape, np.uint64)
    h = 0
    for bz in range(dz // 8):
        for by in range(dy // 8):
            for bx in range(dx // 8):
                word0, values_at = struct.unpack_from("<II", data, base + 8 * h)
                h += 1
                table_at, bits = word0 & 0xFFFFFF, word0 >> 24
                assert bits in (0, 1, 2, 4, 8, 16)
                block = np.empty(512, np.uint64)
                for i in range(512):
                    if bits:
                        word = struct.unpack_from(
                            "<I", data, base + 4 * (values_at + i * bits // 32)
                        )[0]
                        v = (word >> (i * bits % 32)) & ((1 << bits) - 1)
                    else:
                        v = 0
                    block[i] = struct.unpack_from("<Q", data, base + 4 * table_at + 8 * v)[0]
                out[bz * 8 : bz * 8 + 8, by * 8 : by * 8 + 8, bx * 8 : bx * 8 + 8] = block.reshape(
                    8, 8, 8
                )
    return out


vols = st.builds(
    lambda shape, n, seed, vor: (
        voronoi(shape, n, seed)
        if vor
        else random_labels(shape, distinct_labels(n, seed, extremes=True), seed)
    ),
    st.sampled_from([(8, 8, 8), (16, 8, 24), (8, 32, 16)]),
    st.integers(1, 600),
    st.integers(0, 2**32 - 1),
    st.booleans(),
)


@settings(max_examples=40, deadline=None)
@given(vols)
@example(np.zeros((8, 8, 8), np.uint64))
@example(np.arange(512, dtype=np.uint64).reshape(8, 8, 8) * np.uint64(2**54))  # 16-bit values
def test_google_decodes_back(vol: np.ndarray) -> None:
    data = neuroglancer.encode_google(vol)
    assert np.array_equal(neuroglancer.decode_google(data, vol.shape), vol)
    assert np.array_equal(spec_decode(data, vol.shape), vol)
    xyz = cseg.decompress(data, vol.shape[::-1], np.uint64, order="F")
    assert np.array_equal(np.asarray(xyz).T, vol)
    dvid = reference.encode_google(vol)  # DVID's own loop: same layout, other bytes
    assert np.array_equal(spec_decode(dvid, vol.shape), vol)
    assert np.array_equal(neuroglancer.decode_google(dvid, vol.shape), vol)


def test_google_fixture_block() -> None:
    vol = fixture_array("cx-64x64x64-sample1.dat.gz")
    data = neuroglancer.encode_google(vol)
    assert data[:4] == b"\x01\x00\x00\x00"
    assert np.array_equal(neuroglancer.decode_google(data, vol.shape), vol)
    assert len(data) <= len(reference.encode_google(vol))  # shared tables only shrink it


@pytest.mark.parametrize(
    ("vol", "match"),
    [
        pytest.param(np.zeros((8, 8, 12), np.uint64), "multiple of the block size", id="x-not-8"),
        pytest.param(np.zeros((8, 8), np.uint64), "multiple of the block size", id="2d"),
        pytest.param(np.zeros((8, 8, 8), np.uint32), "uint64", id="uint32"),
    ],
)
def test_google_rejects(vol: np.ndarray, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        neuroglancer.encode_google(vol)
