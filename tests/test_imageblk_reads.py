"""Box reads from a mix of cached, uncached and missing blocks, every voxel type."""

from __future__ import annotations

from pathlib import Path

import falcon.testing
import numpy as np
import pytest

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.backends import open_backend
from cas_dvid.datatypes.base import value_ref
from cas_dvid.datatypes.geometry import Box3, Point3
from cas_dvid.datatypes.imageblk import ImageStore
from cas_dvid.objects import ObjectStore
from cas_dvid.versions import VersionService
from cas_dvid.versions.stores import init_store


def _store(tmp_path: Path, typename: str, vol: np.ndarray) -> tuple[str, str]:
    """A file store holding ``vol`` at (16, 0, 0) in 16^3 blocks; (url, repo uuid)."""
    url = f"file://{tmp_path / 'store'}"
    init_store(url)
    c = falcon.testing.TestClient(create_app(ServerConfig(url)))
    root = c.simulate_post("/api/repos", json={}).json["root"]
    doc = {"typename": typename, "dataname": "g", "BlockSize": "16,16,16"}
    assert c.simulate_post(f"/api/repo/{root}/instance", json=doc).status_code == 200
    z, y, x = vol.shape
    r = c.simulate_post(f"/api/node/{root}/g/raw/0_1_2/{x}_{y}_{z}/16_0_0", body=vol.tobytes())
    assert r.status_code == 200, r.text
    return url, root


@pytest.mark.parametrize(
    ("typename", "dtype"), [("uint8blk", "<u1"), ("uint16blk", "<u2"), ("uint64blk", "<u8")]
)
def test_a_box_reads_the_same_whatever_is_cached(tmp_path: Path, typename: str, dtype: str) -> None:
    rng = np.random.default_rng(11)
    vol = rng.integers(1, 2**15, (48, 48, 64)).astype(dtype)  # nonzero: unwritten shows as 0
    url, root = _store(tmp_path, typename, vol)
    store = ObjectStore(open_backend(url), cache_bytes=64 << 20)
    versions = VersionService(store)
    at = versions.resolve(root)
    inst = versions.instance(at, "g")
    images = ImageStore.on(versions)
    box = Box3(Point3(5, 3, 2), Point3(83, 50, 45))  # starts left of the data, unaligned
    want = np.zeros((43, 47, 78), dtype=dtype)
    want[:, :45, 11:75] = vol[2:45, 3:48, :]  # y 48.. and x 80.. are not stored
    np.testing.assert_array_equal(images.read(at, inst, box), want)  # all uncached
    hits = store.cache.hits
    np.testing.assert_array_equal(images.read(at, inst, box), want)  # all cached
    assert store.cache.hits - hits >= 3 * 3 * 4  # every stored block came from the cache
    first, last = box.blocks(Point3(16, 16, 16))
    stored = images.stored_in_box(at, inst, first, last)
    for i, value in enumerate(stored.values()):  # every other block leaves the cache
        oid = value_ref(value)
        if i % 2 and oid is not None:
            store.cache.discard(oid)
    np.testing.assert_array_equal(images.read(at, inst, box), want)
    slab = Box3(Point3(5, 3, 20), Point3(83, 50, 21))  # one plane, through the middle
    np.testing.assert_array_equal(images.read(at, inst, slab), want[18:19])
