"""The loader: image stacks and zarr arrays into a voxel instance, at any offset."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zarr
from PIL import Image

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.api.client import DvidClient
from cas_dvid.cli.load import Target, load
from cas_dvid.datatypes.sources import ImageStack, ZarrSource, open_source
from cas_dvid.testing.live import LiveServer

RNG = np.random.default_rng(3)


@pytest.fixture
def server() -> Iterator[LiveServer]:
    with LiveServer(create_app(ServerConfig("memory://"))) as srv:
        yield srv


def make_instance(server: LiveServer, typename: str = "uint8blk") -> tuple[DvidClient, str]:
    c = DvidClient(server.url)
    root = c.post_json("/api/repos", {})["root"]
    c.post_json(f"/api/repo/{root}/instance", {"typename": typename, "dataname": "g"})
    return c, root


def read(
    c: DvidClient,
    root: str,
    size: tuple[int, int, int],
    offset: tuple[int, int, int],
    dtype: str = "u1",
) -> np.ndarray:
    data = c.request(
        "GET",
        f"/api/node/{root}/g/raw/0_1_2/{size[0]}_{size[1]}_{size[2]}/{offset[0]}_{offset[1]}_{offset[2]}",
    )
    return np.frombuffer(data, dtype=dtype).reshape(size[2], size[1], size[0])


def write_pngs(folder: Path, vol: np.ndarray) -> str:
    folder.mkdir()
    for z, plane in enumerate(vol):
        Image.fromarray(plane).save(folder / f"slice.{z:04d}.png")
    return str(folder / "*.png")


def test_png_stack_at_unaligned_offset_keeps_neighbours(server: LiveServer, tmp_path: Path) -> None:
    c, root = make_instance(server)
    before = RNG.integers(1, 255, (96, 96, 96), dtype=np.uint8)
    c.request("POST", f"/api/node/{root}/g/raw/0_1_2/96_96_96/0_0_0", before.tobytes())
    vol = RNG.integers(0, 255, (40, 50, 70), dtype=np.uint8)
    pattern = write_pngs(tmp_path / "pngs", vol)
    n = load(ImageStack(pattern), Target.lookup(c, root, "g"), (5, 10, 15), progress=False)
    assert n == vol.size
    got = read(c, root, (96, 96, 96), (0, 0, 0))
    want = before.copy()
    want[15:55, 10:60, 5:75] = vol
    assert np.array_equal(got, want)


def test_zarr_v3_and_v2_sources(server: LiveServer, tmp_path: Path) -> None:
    c, root = make_instance(server, "uint16blk")
    vol = RNG.integers(0, 60000, (33, 20, 70), dtype=np.uint16)
    for fmt, offset in ((3, (-40, 0, 0)), (2, (100, 64, 32))):
        path = tmp_path / f"v{fmt}.zarr"
        arr = zarr.create_array(
            str(path), shape=vol.shape, chunks=(16, 16, 16), dtype=vol.dtype, zarr_format=fmt
        )
        arr[:] = vol
        src = open_source(str(path))
        assert isinstance(src, ZarrSource) and src.shape == vol.shape
        load(src, Target.lookup(c, root, "g"), offset, progress=False)
        got = read(c, root, (70, 20, 33), offset, "<u2")
        assert np.array_equal(got, vol)


def test_zarr_array_inside_group(server: LiveServer, tmp_path: Path) -> None:
    c, root = make_instance(server)
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    arr = group.create_array("s0", shape=(32, 32, 32), chunks=(32, 32, 32), dtype="u1")
    vol = RNG.integers(0, 255, (32, 32, 32), dtype=np.uint8)
    arr[:] = vol
    load(
        open_source(f"{tmp_path / 'g.zarr'}::s0"),
        Target.lookup(c, root, "g"),
        (0, 0, 0),
        progress=False,
    )
    assert np.array_equal(read(c, root, (32, 32, 32), (0, 0, 0)), vol)


def test_wrong_dtype_is_refused(server: LiveServer, tmp_path: Path) -> None:
    c, root = make_instance(server, "uint16blk")
    pattern = write_pngs(tmp_path / "pngs", RNG.integers(0, 255, (2, 8, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        load(ImageStack(pattern), Target.lookup(c, root, "g"), (0, 0, 0), progress=False)


def test_cli_load_errors(server: LiveServer, tmp_path: Path) -> None:
    c, root = make_instance(server)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "cas_dvid.cli",
            "node",
            root,
            "g",
            "load",
            "1,2",
            str(tmp_path / "*.png"),
            "--server",
            server.url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1 and "offset must be X,Y,Z" in r.stderr
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "cas_dvid.cli",
            "node",
            root,
            "g",
            "load",
            "0,0,0",
            str(tmp_path / "none*.png"),
            "--server",
            server.url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1 and "no files match" in r.stderr


def test_label_volumes_load_into_labelmap_with_their_index(
    server: LiveServer, tmp_path: Path
) -> None:
    """A uint32 zarr of labels at an unaligned offset, through the CLI: voxels and index."""
    c, root = make_instance(server, "labelmap")
    vol = (RNG.integers(1, 40, (10, 12, 14)) * 1000).astype(np.uint32).repeat(4, 0).repeat(4, 1)
    base = np.full((64, 64, 64), 7, np.uint64)  # what was there: the load keeps its neighbours
    c.request("POST", f"/api/node/{root}/g/raw/0_1_2/64_64_64/0_0_0", base.tobytes())
    path = tmp_path / "labels.zarr"
    arr = zarr.create_array(str(path), shape=vol.shape, chunks=(16, 16, 16), dtype=vol.dtype)
    arr[:] = vol
    offset = (5, 3, 9)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cas_dvid.cli",
            "node",
            root,
            "g",
            "load",
            "5,3,9",
            str(path),
            "--quiet",
            "--server",
            server.url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    nz, ny, nx = vol.shape
    got = read(c, root, (nx, ny, nz), offset, "<u8")
    assert np.array_equal(got, vol.astype(np.uint64))
    assert read(c, root, (4, 4, 4), (0, 0, 0), "<u8").max() == 7
    for label in np.unique(vol).tolist()[:5]:
        size = c.get_json(f"/api/node/{root}/g/size/{label}")["voxels"]
        assert size == int((vol == label).sum())
    want = int((base == 7).sum()) - vol.size
    assert c.get_json(f"/api/node/{root}/g/size/7")["voxels"] == want
