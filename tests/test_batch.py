"""Batch jobs on a real dask.distributed LocalCluster: roots equal the single-process loader's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
import zarr
from dask.distributed import Client, LocalCluster

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.api.client import DvidClient
from cas_dvid.backends import open_backend
from cas_dvid.batch import downres, generate, index, ingest, plan_slabs, verify
from cas_dvid.cli.load import Target, load
from cas_dvid.datatypes import open_versions
from cas_dvid.datatypes.geometry import Box3, Point3
from cas_dvid.datatypes.imageblk import ImageStore
from cas_dvid.datatypes.imageblk.pyramid import Pyramid
from cas_dvid.datatypes.imagetile import TileStore
from cas_dvid.datatypes.imagetile.generate import Generator
from cas_dvid.datatypes.labelmap.store import LabelStore
from cas_dvid.datatypes.sources import open_source
from cas_dvid.errors import InvalidInputError
from cas_dvid.objects import ObjectStore, to_hex
from cas_dvid.sync.gc import GcReport
from cas_dvid.testing import sample
from cas_dvid.testing.live import LiveServer
from cas_dvid.testing.s3server import S3TestServer
from cas_dvid.versions.stores import init_store

RNG = np.random.default_rng(11)


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


def write_zarr(path: Path, vol: np.ndarray, fmt: int = 3) -> str:
    arr = zarr.create_array(
        str(path), shape=vol.shape, chunks=(32, 64, 64), dtype=vol.dtype, zarr_format=fmt
    )
    arr[:] = vol
    return str(path)


def labels_volume(edge: int) -> np.ndarray:
    """Blobby supervoxels: a coarse random grid upsampled, so blocks hold a few labels."""
    coarse = RNG.integers(1, 40, (edge // 16 + 1,) * 3, dtype=np.uint32)
    vol = np.kron(coarse, np.ones((16, 16, 16), np.uint32))[:edge, :edge, :edge]
    vol[:8, :8, :8] = 0  # some background
    return np.ascontiguousarray(vol)


def roots(url: str, uuid: str, *names: str) -> list[bytes]:
    versions = open_versions(ObjectStore(open_backend(url), cache_bytes=0))
    at = versions.resolve(uuid)
    return [bytes(versions.root_at(at, versions.instance(at, n))) for n in names]


def _ref_files(refs: Path) -> list[str]:
    """Every ref under ``refs``: files, and symlinks (how a file store keeps small refs)."""
    return sorted(
        p.relative_to(refs).as_posix() for p in refs.rglob("*") if p.is_symlink() or p.is_file()
    )


def setup_repo(
    url: str, typename: str, names: tuple[str, ...], block: int | None = None
) -> tuple[LiveServer, str]:
    if url.startswith("file://"):
        open_backend(url, create=True)
    srv = LiveServer(create_app(ServerConfig(url))).__enter__()
    c = DvidClient(srv.url)
    root = c.post_json("/api/repos", {})["root"]
    extra = {} if block is None else {"BlockSize": f"{block},{block},{block}"}
    for n in names:
        c.post_json(f"/api/repo/{root}/instance", {"typename": typename, "dataname": n, **extra})
    return srv, root


def reference_load(srv: LiveServer, root: str, name: str, spec: str, offset=(0, 0, 0)) -> None:
    target = Target.lookup(DvidClient(srv.url), root, name)
    load(open_source(spec), target, offset, progress=False)


def test_plan_slabs_tiles_and_aligns() -> None:
    slabs = plan_slabs((100, 70, 2100), (5, 0, 0), Point3(32, 32, 32), 1, slab_bytes=1 << 23)
    assert slabs[0] == (0, 1024, 0, 96, 0, 32 * 2)
    assert {s[1] for s in slabs} == {1024, 2048, 2112}
    assert max(s[5] for s in slabs) == 128
    covered = sum((s[1] - s[0]) * (s[3] - s[2]) * (s[5] - s[4]) for s in slabs)
    assert covered == 2112 * 96 * 128


@pytest.mark.parametrize("fmt", [2, 3])
def test_uint8_root_equals_single_process_loader(client: Client, tmp_path: Path, fmt: int) -> None:
    url = f"file://{tmp_path / 'store'}"
    vol = RNG.integers(0, 255, (128, 128, 128), dtype=np.uint8)
    vol[:64, :64] = 0  # repeated all-zero blocks dedup to one object
    spec = write_zarr(tmp_path / "v.zarr", vol, fmt)
    srv, root = setup_repo(url, "uint8blk", ("ref", "dask"))
    try:
        reference_load(srv, root, "ref", spec)
        result = ingest(client, url, root, "dask", spec, slab_bytes=1 << 19)
        assert result.tasks == 4
        assert result.blocks == 64
        ref, got = roots(url, root, "ref", "dask")
        assert got == ref == bytes(result.root)
        c = DvidClient(srv.url)
        back = c.request("GET", f"/api/node/{root}/dask/raw/0_1_2/128_128_128/0_0_0")
        assert np.array_equal(np.frombuffer(back, np.uint8).reshape(vol.shape), vol)
        assert c.get_json(f"/api/node/{root}/dask/info")["Extended"]["MaxPoint"] == [127] * 3
    finally:
        srv.__exit__(None, None, None)


def test_unaligned_offset_over_existing_data(client: Client, tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    before = RNG.integers(1, 255, (64, 96, 96), dtype=np.uint8)
    vol = RNG.integers(0, 255, (40, 50, 70), dtype=np.uint8)
    spec = write_zarr(tmp_path / "v.zarr", vol)
    srv, root = setup_repo(url, "uint8blk", ("ref", "dask"))
    try:
        c = DvidClient(srv.url)
        for n in ("ref", "dask"):
            c.request("POST", f"/api/node/{root}/{n}/raw/0_1_2/96_96_64/0_0_0", before.tobytes())
        reference_load(srv, root, "ref", spec, (5, 10, 15))
        ingest(client, url, root, "dask", spec, (5, 10, 15), slab_bytes=1 << 16)
        ref, got = roots(url, root, "ref", "dask")
        assert got == ref
    finally:
        srv.__exit__(None, None, None)


def label_index(url: str, uuid: str, name: str, label: int) -> object:
    versions = open_versions(ObjectStore(open_backend(url), cache_bytes=0))
    at = versions.resolve(uuid)
    return LabelStore.on(versions).index.index(at, versions.instance(at, name), label)


def check_labels(client: Client, url: str, tmp_path: Path) -> None:
    vol = labels_volume(96)
    spec = write_zarr(tmp_path / "l.zarr", vol)
    srv, root = setup_repo(url, "labelmap", ("ref", "dask"))
    try:
        reference_load(srv, root, "ref", spec)
        result = ingest(client, url, root, "dask", spec, slab_bytes=1 << 20)
        assert result.blocks == 8  # 64^3 label blocks
        ref, got = roots(url, root, "ref", "dask")
        assert got == ref
        for label in (1, 17, 39):
            want = label_index(url, root, "ref", label)
            assert want is not None
            assert label_index(url, root, "dask", label) == want
        c = DvidClient(srv.url)
        assert c.get_json(f"/api/node/{root}/dask/maxlabel") == c.get_json(
            f"/api/node/{root}/ref/maxlabel"
        )
        n = c.get_json(f"/api/node/{root}/dask/size/17")["voxels"]
        assert n == int((vol == 17).sum())
    finally:
        srv.__exit__(None, None, None)


def test_labels_index_equals_post_raw_file(client: Client, tmp_path: Path) -> None:
    check_labels(client, f"file://{tmp_path / 'store'}", tmp_path)


def test_labels_and_uint8_on_s3(
    client: Client, tmp_path: Path, s3_server: S3TestServer, s3_bucket: str
) -> None:
    url = f"s3://{s3_bucket}/lab?endpoint_url={s3_server.endpoint}"
    check_labels(client, url, tmp_path)
    vol = RNG.integers(0, 255, (64, 64, 96), dtype=np.uint8)
    spec = write_zarr(tmp_path / "g.zarr", vol)
    srv, root = setup_repo(url, "uint8blk", ("ref", "dask"))
    try:
        reference_load(srv, root, "ref", spec)
        ingest(client, url, root, "dask", spec, slab_bytes=1 << 17)
        ref, got = roots(url, root, "ref", "dask")
        assert got == ref
    finally:
        srv.__exit__(None, None, None)


def test_wrong_dtype_is_refused(client: Client, tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    spec = write_zarr(tmp_path / "v.zarr", np.zeros((32, 32, 32), np.uint16))
    srv, root = setup_repo(url, "uint8blk", ("g",))
    try:
        with pytest.raises(ValueError, match="source voxels are uint16"):
            ingest(client, url, root, "g", spec)
    finally:
        srv.__exit__(None, None, None)


@pytest.fixture(scope="module")
def proc_cluster() -> Iterator[LocalCluster]:
    """Two real worker processes (with nannies that restart a killed one)."""
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster:
        yield cluster


@pytest.fixture(params=["file", "s3"])
def job_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store the job under test writes to: a folder, or the S3 test server."""
    if request.param == "file":
        return f"file://{tmp_path / 'dask'}"
    server: S3TestServer = request.getfixturevalue("s3_server")
    bucket: str = request.getfixturevalue("s3_bucket")
    return f"s3://{bucket}/kill?endpoint_url={server.endpoint}"


def stacked_zarr(tmp_path: Path) -> tuple[np.ndarray, str]:
    """A 512 x 64 x 64 uint8 volume: 16 one-block-deep slabs, so a job has many tasks."""
    vol = RNG.integers(0, 255, (512, 64, 64), dtype=np.uint8)
    return vol, write_zarr(tmp_path / "s.zarr", vol)


def test_killed_worker_tasks_rerun(
    proc_cluster: LocalCluster, tmp_path: Path, job_store: str
) -> None:
    url = job_store
    _, spec = stacked_zarr(tmp_path)
    srv, root = setup_repo(url, "uint8blk", ("ref", "dask"))
    killed: list[int] = []
    with Client(proc_cluster) as c:
        pids = c.run(os.getpid)
        lost0 = job_tasks(c, "run_slab")[2]

        def kill_one(slab: tuple[int, ...]) -> None:
            if not killed:
                pid = pids[busy_workers(c, "run_slab")[0]]  # one running a slab now
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        try:
            reference_load(srv, root, "ref", spec)
            result = ingest(c, url, root, "dask", spec, slab_bytes=1, on_result=kill_one)
            ref, got = roots(url, root, "ref", "dask")
        finally:
            srv.__exit__(None, None, None)
        assert killed
        assert job_tasks(c, "run_slab")[2] > lost0  # slabs were lost with it, and reran
        assert result.tasks == 16
        assert result.blocks == 16 * 4
        assert got == ref
        back_to_two_workers(c)


DRIVER = """
import sys, time
from dask.distributed import Client
from cas_dvid.batch import ingest

def stall(slab):
    print("half", flush=True)
    time.sleep(3600)

with Client(sys.argv[1]) as c:
    ingest(c, sys.argv[2], sys.argv[3], "dask", sys.argv[4], slab_bytes=1, on_result=stall)
"""


def test_killed_driver_moves_no_ref_and_rerun_finishes(
    proc_cluster: LocalCluster, tmp_path: Path, job_store: str
) -> None:
    url = job_store
    vol, spec = stacked_zarr(tmp_path)
    srv, root = setup_repo(url, "uint8blk", ("ref", "dask"))
    try:
        reference_load(srv, root, "ref", spec)
        (empty,) = roots(url, root, "dask")
        local = url.startswith("file://")
        refs = tmp_path / "dask" / "refs"
        before, files = ref_values(url), _ref_files(refs) if local else []
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
        args = [sys.executable, "-c", DRIVER, proc_cluster.scheduler_address, url, root, spec]
        with subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env) as driver:
            assert driver.stdout is not None
            assert driver.stdout.readline().strip() == "half"  # mid-job: objects are in
            driver.send_signal(signal.SIGKILL)
        assert roots(url, root, "dask") == [empty]
        assert ref_values(url) == before  # no ref moved
        if local:
            assert _ref_files(refs) == files  # none half-written either
        cli = [sys.executable, "-m", "cas_dvid.cli", "node", root, "dask", "load", "0,0,0", spec]
        cli += ["--store", url, "--dask", proc_cluster.scheduler_address, "--quiet"]
        done = subprocess.run(cli, capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "Loaded 2097152 voxels into dask" in done.stdout
        ref, got = roots(url, root, "ref", "dask")
        assert got == ref
        assert done.stdout.strip().endswith(got.hex())
    finally:
        srv.__exit__(None, None, None)


def test_cli_dask_local_cluster_on_s3(
    tmp_path: Path, s3_server: S3TestServer, s3_bucket: str
) -> None:
    url = f"s3://{s3_bucket}/cli?endpoint_url={s3_server.endpoint}"
    vol = RNG.integers(0, 255, (64, 64, 64), dtype=np.uint8)
    spec = write_zarr(tmp_path / "v.zarr", vol, 2)
    srv, root = setup_repo(url, "uint8blk", ("ref", "dask"))
    try:
        reference_load(srv, root, "ref", spec)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
        cli = [sys.executable, "-m", "cas_dvid.cli", "node", root, "dask", "load", "0,0,0", spec]
        done = subprocess.run(
            [*cli, "--store", url, "--quiet", "--dask"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        ref, got = roots(url, root, "ref", "dask")
        assert got == ref
        missing = subprocess.run([*cli, "--dask"], capture_output=True, text=True, env=env)
        assert missing.returncode != 0
        assert "--dask needs --store" in missing.stderr
    finally:
        srv.__exit__(None, None, None)


def test_verify_rehashes_on_workers_and_names_a_corrupt_block(
    client: Client, tmp_path: Path
) -> None:
    # NOTE: 64^3 blocks of noise, 256 KiB incompressible: each a file of its own (small
    # objects go to a log, where a stale view of another process may still read a
    # deleted member: tests/test_logs.py)
    url = f"file://{tmp_path / 'store'}"
    vol = RNG.integers(0, 255, (64, 128, 256), dtype=np.uint8)
    spec = write_zarr(tmp_path / "v.zarr", vol)
    srv, root = setup_repo(url, "uint8blk", ("g",), block=64)
    srv.__exit__(None, None, None)
    ingest(client, url, root, "g", spec)
    good = verify(client, url, root, batch=3)
    assert good.ok
    assert good.objects == 8
    assert good.nbytes == 8 * 64**3
    assert good.nodes >= 1
    versions = open_versions(ObjectStore(open_backend(url), cache_bytes=0))
    at = versions.resolve(root)
    blob = next(v for _, v in versions.tree.range(versions.root_at(at, at.instance("g"))))
    hex_id = blob[1:].hex()
    path = tmp_path / "store" / "objects" / hex_id[:2] / hex_id[2:]
    other = tmp_path / "v2.zarr"
    flipped = vol.copy()
    flipped[0, 0, 0] ^= 1
    write_zarr(other, flipped)
    # swap in another valid object's bytes: the header parses, the hash does not match
    srv, root2 = setup_repo(f"file://{tmp_path / 'store2'}", "uint8blk", ("g",), block=64)
    srv.__exit__(None, None, None)
    ingest(client, f"file://{tmp_path / 'store2'}", root2, "g", str(other))
    versions2 = open_versions(ObjectStore(open_backend(f"file://{tmp_path / 'store2'}")))
    at2 = versions2.resolve(root2)
    blob2 = next(v for _, v in versions2.tree.range(versions2.root_at(at2, at2.instance("g"))))
    hex2 = blob2[1:].hex()
    path.write_bytes((tmp_path / "store2" / "objects" / hex2[:2] / hex2[2:]).read_bytes())
    bad = verify(client, url, root, ["g"])
    assert list(bad.faults) == [hex_id]
    assert "mismatch" in bad.faults[hex_id] or hex_id[:8] in bad.faults[hex_id]
    path.unlink()
    gone = verify(client, url, root, ["g"])
    assert gone.faults == {hex_id: f"object {hex_id} is missing"}


def grey_store(path: Path | str, vol: np.ndarray) -> tuple[str, str]:
    """A store (a folder, or an s3:// URL) with repo -> uint8blk ``grey`` (32^3 blocks)
    holding ``vol``; return (url, uuid)."""
    url = path if isinstance(path, str) else f"file://{path}"
    open_backend(url, create=True)
    versions = open_versions(ObjectStore(open_backend(url)))
    root = versions.create_repo()
    inst = versions.new_instance(root, "grey", "uint8blk", settings={"BlockSize": "32,32,32"})
    ImageStore.on(versions).write(versions.resolve(root), inst, Point3(0, 0, 0), vol, "load")
    return url, root


def level_roots(url: str, uuid: str, n: int) -> list[bytes]:
    return roots(url, uuid, *[f"grey_{k}" for k in range(1, n + 1)])


def test_downres_levels_equal_the_server_job(client: Client, tmp_path: Path) -> None:
    vol = RNG.integers(0, 255, (96, 128, 160), dtype=np.uint8)
    vol[:32] = 0  # whole zero blocks still make (zero) parents
    ref_url, ref_uuid = grey_store(tmp_path / "ref", vol)
    url, uuid = grey_store(tmp_path / "dask", vol)
    ref = open_versions(ObjectStore(open_backend(ref_url)))
    at = ref.resolve(ref_uuid)
    expected = Pyramid(ImageStore.on(ref), at, ref.instance(at, "grey"), None).run()
    done = downres(client, url, uuid, "grey", task_bytes=1 << 19)  # 2 parents a task
    assert (done.levels, done.blocks) == (expected["Levels"], expected["Blocks"]) == (3, 12 + 2 + 1)
    assert done.tasks > done.levels  # level 1's 12 parents went out in several tasks
    assert level_roots(url, uuid, 3) == level_roots(ref_url, ref_uuid, 3)
    # An edit, then both refresh incrementally: still the same trees.
    edit = RNG.integers(0, 255, (32, 32, 32), dtype=np.uint8)
    for u, v in ((ref_url, ref_uuid), (url, uuid)):
        vs = open_versions(ObjectStore(open_backend(u)))
        a = vs.resolve(v)
        ImageStore.on(vs).write(a, vs.instance(a, "grey"), Point3(64, 32, 64), edit, "edit")
    at = ref.resolve(ref_uuid)
    again = Pyramid(ImageStore.on(ref), at, ref.instance(at, "grey"), None).run()
    redo = downres(client, url, uuid, "grey")
    assert redo.blocks == again["Blocks"] == 3  # one parent per level
    assert level_roots(url, uuid, 3) == level_roots(ref_url, ref_uuid, 3)
    vs = open_versions(ObjectStore(open_backend(url)))
    a = vs.resolve(uuid)
    half = ImageStore.on(vs).read(
        a, vs.instance(a, "grey_1"), Box3(Point3(32, 16, 32), Point3(48, 32, 48))
    )
    cells = vol.copy()
    cells[64:96, 32:64, 64:96] = edit
    want = cells[64:96, 32:64, 64:96].reshape(16, 2, 16, 2, 16, 2).astype(np.uint16)
    want = (want.sum(axis=(1, 3, 5)) + 4) // 8  # round-half-up mean of 2x2x2
    assert np.array_equal(half, want.astype(np.uint8))


def test_cli_downres_on_dask(tmp_path: Path) -> None:
    vol = RNG.integers(0, 255, (64, 64, 64), dtype=np.uint8)
    url, uuid = grey_store(tmp_path / "s", vol)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    cli = [sys.executable, "-m", "cas_dvid.cli", "node", uuid, "grey", "downres"]
    done = subprocess.run(
        [*cli, "--store", url, "--quiet", "--dask"],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert "Built 1 levels of grey" in done.stdout
    assert "1 blocks written" in done.stdout


def write_precomputed_and_n5(tmp: Path, vol: np.ndarray) -> tuple[str, str]:
    """The ZYX ``vol`` as a neuroglancer precomputed volume and an N5 dataset (x first)."""
    import tensorstore as ts

    z, y, x = vol.shape
    pc = ts.open(
        {
            "driver": "neuroglancer_precomputed",
            "kvstore": {"driver": "file", "path": str(tmp / "pc")},
            "multiscale_metadata": {"data_type": "uint8", "num_channels": 1, "type": "image"},
            "scale_metadata": {
                "size": [x, y, z],
                "encoding": "raw",
                "chunk_size": [32, 32, 32],
                "resolution": [8, 8, 8],
            },
            "create": True,
        }
    ).result()
    pc[...] = vol.transpose(2, 1, 0)[..., None]
    n5 = ts.open(
        {
            "driver": "n5",
            "kvstore": {"driver": "file", "path": str(tmp / "n5")},
            "metadata": {
                "dimensions": [x, y, z],
                "blockSize": [32, 32, 32],
                "dataType": "uint8",
                "compression": {"type": "gzip"},
            },
            "create": True,
        }
    ).result()
    n5[...] = vol.transpose(2, 1, 0)
    return f"precomputed:{tmp / 'pc'}", f"n5:{tmp / 'n5'}"


def test_precomputed_and_n5_sources_equal_zarr(client: Client, tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    vol = RNG.integers(0, 255, (70, 96, 80), dtype=np.uint8)
    spec = write_zarr(tmp_path / "v.zarr", vol)
    precomputed, n5 = write_precomputed_and_n5(tmp_path, vol)
    srv, root = setup_repo(url, "uint8blk", ("ref", "pc", "n5"))
    try:
        reference_load(srv, root, "ref", spec, (3, 5, 7))
        ingest(client, url, root, "pc", precomputed, (3, 5, 7), slab_bytes=1 << 19)
        reference_load(srv, root, "n5", n5, (3, 5, 7))  # the single-process loader too
        ref, pc, five = roots(url, root, "ref", "pc", "n5")
        assert pc == ref
        assert five == ref
    finally:
        srv.__exit__(None, None, None)
    with pytest.raises(InvalidInputError, match="cannot open"):
        open_source(f"n5:{tmp_path / 'nothing'}")
    with pytest.raises(InvalidInputError, match="JSON spec"):
        open_source("tensorstore:{not json")


def test_index_after_noindexing_equals_indexed_post_blocks(client: Client, tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    vol = labels_volume(128).astype(np.uint64)
    body = sample.label_blocks_body(vol)
    srv, root = setup_repo(url, "labelmap", ("ref", "late"))
    try:
        c = DvidClient(srv.url)
        c.request("POST", f"/api/node/{root}/ref/blocks", body)
        c.request("POST", f"/api/node/{root}/late/blocks?noindexing=true", body)
        assert roots(url, root, "ref") != roots(url, root, "late")  # no index yet
        done = index(client, url, root, "late")
        assert (done.blocks, done.tasks) == (8, 1)
        assert done.supervoxels == len(np.unique(vol[vol != 0]))
        assert roots(url, root, "ref") == roots(url, root, "late")  # index, summaries and all
        assert c.get_json(f"/api/node/{root}/late/size/17")["voxels"] == int((vol == 17).sum())
        again = index(client, url, root, "late")  # indexing twice changes nothing
        assert again.blocks == 8
        assert roots(url, root, "ref") == roots(url, root, "late")
    finally:
        srv.__exit__(None, None, None)


def tiles_store(path: Path | str, vol: np.ndarray) -> tuple[str, str]:
    """grey_store plus an imagetile ``tiles`` of it (TileSize 64)."""
    url, uuid = grey_store(path, vol)
    versions = open_versions(ObjectStore(open_backend(url)))
    settings = {"source": "grey", "tilesize": "64"}
    versions.new_instance(uuid, "tiles", "imagetile", settings=settings)
    return url, uuid


def server_generate(url: str, uuid: str) -> dict[str, int]:
    versions = open_versions(ObjectStore(open_backend(url)))
    at = versions.resolve(uuid)
    gen = Generator(TileStore.on(versions), ImageStore.on(versions), at, at.instance("tiles"))
    return gen.run()


def test_tiles_on_dask_equal_the_server_job(client: Client, tmp_path: Path) -> None:
    vol = RNG.integers(1, 255, (96, 128, 160), dtype=np.uint8)
    ref_url, ref_uuid = tiles_store(tmp_path / "ref", vol)
    url, uuid = tiles_store(tmp_path / "dask", vol)
    want = server_generate(ref_url, ref_uuid)
    got = generate(client, url, uuid, "tiles", task_bytes=1 << 18)
    assert got.tiles == want["Tiles"]
    assert got.tasks > 3
    assert roots(url, uuid, "tiles") == roots(ref_url, ref_uuid, "tiles")
    edit = RNG.integers(1, 255, (32, 32, 32), dtype=np.uint8)
    for u, v in ((ref_url, ref_uuid), (url, uuid)):
        vs = open_versions(ObjectStore(open_backend(u)))
        a = vs.resolve(v)
        ImageStore.on(vs).write(a, vs.instance(a, "grey"), Point3(64, 32, 32), edit, "edit")
    want = server_generate(ref_url, ref_uuid)
    got = generate(client, url, uuid, "tiles")
    assert got.tiles == want["Tiles"] < 1000  # only the tiles over the edit
    assert roots(url, uuid, "tiles") == roots(ref_url, ref_uuid, "tiles")


def test_gc_mark_on_dask_removes_what_a_local_gc_removes(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from cas_dvid.batch import _gc
    from cas_dvid.sync import StorePeer
    from cas_dvid.sync.gc import collect
    from cas_dvid.sync.verify import verify_all

    monkeypatch.setattr(_gc, "BATCH", 4)  # small levels still go out to the workers
    url, uuid = grey_store(tmp_path / "a", RNG.integers(0, 255, (64, 128, 128), dtype=np.uint8))
    versions = open_versions(ObjectStore(open_backend(url)))
    versions.commit(uuid, "kept")
    child = versions.new_child(uuid)
    images = ImageStore.on(versions)
    for salt in range(3):  # each overwrite of the open child leaves the last one's garbage
        at = versions.resolve(child)
        block = RNG.integers(0, 255, (32, 64, 64), dtype=np.uint8)
        images.write(at, at.instance("grey"), Point3(salt * 32, 0, 0), block, "overwrite")
    shutil.copytree(tmp_path / "a", tmp_path / "b", symlinks=True)  # (small refs are links)
    local = collect(ObjectStore(open_backend(url)), grace=0, full=True)
    dask = _gc.collect_on(client, f"file://{tmp_path / 'b'}", grace=0, full=True)
    assert local.deleted > 0
    assert sorted(dask.garbage) == sorted(local.garbage)
    assert (dask.reachable, dask.nodes_read) == (local.reachable, local.nodes_read)
    assert verify_all(StorePeer(ObjectStore(open_backend(f"file://{tmp_path / 'b'}")))).ok


def test_downres_tiles_index_and_gc_jobs_on_s3(
    client: Client, tmp_path: Path, s3_server: S3TestServer, s3_bucket: str
) -> None:
    """The other jobs on the S3 test server give the trees single-process runs give locally."""
    from cas_dvid.batch import collect_on
    from cas_dvid.datatypes.labelmap.store import LabelStore

    s3 = f"s3://{s3_bucket}/jobs?endpoint_url={s3_server.endpoint}"
    vol = RNG.integers(1, 255, (64, 64, 96), dtype=np.uint8)
    labels = labels_volume(128).astype(np.uint64)
    stores = {}
    for where in (s3, tmp_path / "local"):
        url, uuid = grey_store(where, vol)
        versions = open_versions(ObjectStore(open_backend(url)))
        versions.new_instance(
            uuid, "tiles", "imagetile", settings={"source": "grey", "tilesize": "32"}
        )
        seg = versions.new_instance(uuid, "seg", "labelmap")
        body = sample.label_blocks_body(labels)
        LabelStore.on(versions).writer.write_stream(
            versions.resolve(uuid), seg, body, "x", index=False
        )
        stores[url] = uuid
    (s3_url, s3_uuid), (local_url, local_uuid) = stores.items()
    downres(client, s3_url, s3_uuid, "grey")
    generate(client, s3_url, s3_uuid, "tiles", task_bytes=1 << 17)
    index(client, s3_url, s3_uuid, "seg")
    local = open_versions(ObjectStore(open_backend(local_url)))
    at = local.resolve(local_uuid)
    Pyramid(ImageStore.on(local), at, at.instance("grey"), None).run()
    Generator(TileStore.on(local), ImageStore.on(local), at, at.instance("tiles")).run()
    LabelStore.on(local).writer.write_stream(
        at, at.instance("seg"), sample.label_blocks_body(labels), "x"
    )
    names = ("grey_1", "grey_2", "tiles", "seg")
    assert roots(s3_url, s3_uuid, *names) == roots(local_url, local_uuid, *names)
    report = collect_on(client, s3_url, grace=0, dry_run=True, full=True)
    assert report.reachable > 0
    assert report.missing == 0


# -- kills mid-job: downres, the label index, tiles and gc's mark phase ----------------

T = TypeVar("T")
ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
CLI = [sys.executable, "-m", "cas_dvid.cli"]


def job_tasks(c: Client, prefix: str) -> tuple[int, int, int]:
    """The scheduler's count of a job's tasks (keys ``prefix-...``, the task function's name):
    (finished so far, waiting or running now, lost with a dead worker so far)."""

    def read(dask_scheduler: Any) -> tuple[int, int, int]:
        pf = dask_scheduler.task_prefixes.get(prefix)
        if pf is None:
            return 0, 0, 0
        pending = sum(pf.states[s] for s in ("waiting", "queued", "processing", "no-worker"))
        return pf.state_counts["memory"], pending, pf.suspicious

    result: tuple[int, int, int] = c.run_on_scheduler(read)
    return result


def busy_workers(c: Client, prefix: str) -> list[str]:
    """Addresses of the workers running one of the job's tasks now."""

    def read(dask_scheduler: Any) -> list[str]:
        return [
            addr
            for addr, ws in dask_scheduler.workers.items()
            if any(ts.prefix.name == prefix for ts in ws.processing)
        ]

    result: list[str] = c.run_on_scheduler(read)
    return result


def wait_mid_job(c: Client, prefix: str, done0: int, pending: int, alive: Callable[[], bool]):
    """Poll until some of the job's tasks have finished and at least ``pending`` are still out."""
    deadline = time.monotonic() + 60
    while True:
        done, left, _ = job_tasks(c, prefix)
        if done > done0 and left >= pending:
            return
        assert alive(), "the job ended before the kill: nothing was tested"
        assert time.monotonic() < deadline, f"no {prefix} tasks ran"
        time.sleep(0.005)


def back_to_two_workers(c: Client) -> None:
    """Wait for the nanny to restart a killed worker; if it gave up, start a new one.

    The module's cluster serves the tests after this one.  A nanny has been seen
    closing itself right after restarting its worker (once in CI, distributed's
    own doing), leaving one worker and its spec: the spec of a name the scheduler
    no longer knows goes, and scaling back to two starts a fresh nanny for it.
    """
    try:
        c.wait_for_workers(2, timeout=30)
    except TimeoutError:
        cluster = c.cluster
        alive = {w["name"] for w in c.scheduler_info()["workers"].values()}
        for name in [n for n in cluster.worker_spec if n not in alive]:
            del cluster.worker_spec[name]
            cluster.workers.pop(name, None)
        cluster.scale(2)
        c.wait_for_workers(2, timeout=60)


def kill_a_busy_worker(c: Client, prefix: str, job: Callable[[], T]) -> T:
    """Run ``job`` on a thread; mid-job, SIGKILL a worker running one of its tasks.

    Return the job's result once it ends, after checking that the scheduler lost
    tasks with the worker (so they had to run again: the kill hit work in flight).
    """
    pids = c.run(os.getpid)
    done0, _, lost0 = job_tasks(c, prefix)
    out: list[T] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            out.append(job())
        except BaseException as e:  # noqa: BLE001 - re-raised in the test's thread
            failed.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        wait_mid_job(c, prefix, done0, 4, thread.is_alive)
        busy = busy_workers(c, prefix)
        assert busy, "no worker was running the job's tasks"
        os.kill(pids[busy[0]], signal.SIGKILL)
    finally:
        thread.join(120)
    if failed:
        raise failed[0]
    assert out, "the job did not finish"
    assert job_tasks(c, prefix)[2] > lost0, "the killed worker held none of the job's tasks"
    back_to_two_workers(c)
    return out[0]


DRIVERS = """
import sys
from dask.distributed import Client
from cas_dvid import batch
from cas_dvid.batch import _gc, _index

job, address, url, *rest = sys.argv[1:]
_gc.BATCH = _index.BATCH = 1  # an object (a block) a task: the jobs have many tasks
with Client(address) as c:
    if job == "downres":
        batch.downres(c, url, rest[0], rest[1], task_bytes=1 << 18)  # a parent a task
    elif job == "index":
        batch.index(c, url, rest[0], rest[1])
    elif job == "tiles":
        batch.generate(c, url, rest[0], rest[1], task_bytes=1 << 16)
    else:
        batch.collect_on(c, url, grace=0, full=True)
"""


def kill_driver_mid_job(c: Client, address: str, prefix: str, job: str, *args: str) -> None:
    """Run ``DRIVERS`` ``job`` in a process; mid-job, SIGKILL it.

    Once some of its tasks have finished (their objects are in the store) and some
    are still out, the workers are stopped (SIGSTOP), so that no more can finish and
    the driver cannot reach its write; the driver is killed and the workers resumed.
    """
    pids = list(c.run(os.getpid).values())
    done0 = job_tasks(c, prefix)[0]
    argv = [sys.executable, "-c", DRIVERS, job, address, *args]
    with subprocess.Popen(argv, env=ENV, stderr=subprocess.PIPE, text=True) as driver:
        try:
            wait_mid_job(c, prefix, done0, 1, lambda: driver.poll() is None)
            for pid in pids:
                os.kill(pid, signal.SIGSTOP)
            try:
                time.sleep(0.2)  # results the workers sent before the stop reach the scheduler
                assert job_tasks(c, prefix)[1] > 0, "every task ended: the driver may have written"
                assert driver.poll() is None, "the driver ended before the kill"
                driver.send_signal(signal.SIGKILL)
                driver.wait()
            finally:
                for pid in pids:
                    os.kill(pid, signal.SIGCONT)
        finally:
            if driver.poll() is None:
                driver.kill()
            assert driver.returncode == -signal.SIGKILL, driver.stderr.read()


def ref_values(url: str) -> dict[str, bytes]:
    """Every ref of the store at ``url`` and its value, as its backend reads them."""
    backend = open_backend(url)
    try:
        return {name: backend.get_ref(name).value for name in backend.list_refs()}
    finally:
        backend.close()


def object_ids(url: str) -> set[str]:
    """The hex ids of the objects in the store at ``url``."""
    store = ObjectStore(open_backend(url), cache_bytes=0)
    try:
        return {to_hex(oid) for oid, _ in store.iter_objects()}
    finally:
        store.close()


def run_cli(*args: str) -> str:
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def pyramid_stores(tmp_path: Path, where: str) -> tuple[str, str, str, str]:
    """A 128 x 256 x 256 uint8blk of 32^3 blocks (32 level-1 parents) in a folder and at
    ``where``, and the first one's pyramid by the server job; return (ref url, ref uuid,
    url, uuid)."""
    vol = RNG.integers(0, 255, (128, 256, 256), dtype=np.uint8)
    ref_url, ref_uuid = grey_store(tmp_path / "ref", vol)
    url, uuid = grey_store(where, vol)
    ref = open_versions(ObjectStore(open_backend(ref_url)))
    at = ref.resolve(ref_uuid)
    Pyramid(ImageStore.on(ref), at, ref.instance(at, "grey"), None).run()
    return ref_url, ref_uuid, url, uuid


def test_killed_worker_mid_downres_reruns_its_tasks(
    proc_cluster: LocalCluster, tmp_path: Path, job_store: str
) -> None:
    ref_url, ref_uuid, url, uuid = pyramid_stores(tmp_path, job_store)
    with Client(proc_cluster) as c:
        done = kill_a_busy_worker(
            c, "run_batch", lambda: downres(c, url, uuid, "grey", task_bytes=1 << 18)
        )
    assert done.levels == 3
    assert done.blocks == 32 + 4 + 1  # no parent twice, none missing
    assert level_roots(url, uuid, 3) == level_roots(ref_url, ref_uuid, 3)


def test_killed_driver_mid_downres_moves_no_ref_and_rerun_finishes(
    proc_cluster: LocalCluster, tmp_path: Path, job_store: str
) -> None:
    ref_url, ref_uuid, url, uuid = pyramid_stores(tmp_path, job_store)
    before, objects = ref_values(url), object_ids(url)
    (grey,) = roots(url, uuid, "grey")
    address = proc_cluster.scheduler_address
    with Client(proc_cluster) as c:
        kill_driver_mid_job(c, address, "run_batch", "downres", url, uuid, "grey")
        back_to_two_workers(c)
    assert object_ids(url) > objects  # the level blocks put before the kill: garbage
    assert ref_values(url) == before  # no ref moved: no head, no level added to the repo
    assert roots(url, uuid, "grey") == [grey]
    out = run_cli("node", uuid, "grey", "downres", "--store", url, "--quiet", "--dask", address)
    assert "Built 3 levels of grey" in out
    assert level_roots(url, uuid, 3) == level_roots(ref_url, ref_uuid, 3)


def unindexed_labels(url: str) -> str:
    """A repo with labelmaps ``ref`` (POST blocks, indexed) and ``late`` (``noindexing``)
    of the same 128^3 labels in 32^3 blocks (64 blocks) at ``url``; return its uuid."""
    open_backend(url, create=True)
    versions = open_versions(ObjectStore(open_backend(url)))
    uuid = versions.create_repo()
    body = sample.label_blocks_body(labels_volume(128).astype(np.uint64), edge=32)
    writer = LabelStore.on(versions).writer
    for name, indexed in (("ref", True), ("late", False)):
        inst = versions.new_instance(uuid, name, "labelmap", settings={"blocksize": "32,32,32"})
        writer.write_stream(versions.resolve(uuid), inst, body, "load", index=indexed)
    assert roots(url, uuid, "ref") != roots(url, uuid, "late")  # no index yet
    return uuid


def test_killed_worker_mid_index_job_reruns_its_tasks(
    proc_cluster: LocalCluster, job_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cas_dvid.batch import _index

    monkeypatch.setattr(_index, "BATCH", 1)  # a block a task: 64 tasks
    url = job_store
    uuid = unindexed_labels(url)
    with Client(proc_cluster) as c:
        done = kill_a_busy_worker(c, "count_batch", lambda: index(c, url, uuid, "late"))
    assert (done.blocks, done.tasks) == (64, 64)
    assert roots(url, uuid, "ref") == roots(url, uuid, "late")


def test_killed_driver_mid_index_job_moves_no_ref_and_rerun_finishes(
    proc_cluster: LocalCluster, job_store: str
) -> None:
    url = job_store
    uuid = unindexed_labels(url)
    before = ref_values(url)
    late = roots(url, uuid, "late")
    address = proc_cluster.scheduler_address
    with Client(proc_cluster) as c:
        kill_driver_mid_job(c, address, "count_batch", "index", url, uuid, "late")
        back_to_two_workers(c)
    assert ref_values(url) == before  # no ref moved
    assert roots(url, uuid, "late") == late
    out = run_cli("node", uuid, "late", "index", "--store", url, "--dask", address)
    assert "Indexed 64 blocks of late" in out
    assert roots(url, uuid, "ref") == roots(url, uuid, "late")


def test_killed_worker_mid_tile_job_reruns_its_tasks(
    proc_cluster: LocalCluster, tmp_path: Path, job_store: str
) -> None:
    """SIGKILL a worker while the tile job runs: its tasks rerun, the tree is still exact."""
    vol = RNG.integers(1, 255, (64, 96, 128), dtype=np.uint8)  # 38 tasks, ~1,000 tiles (S3 puts)
    ref_url, ref_uuid = tiles_store(tmp_path / "ref", vol)
    url, uuid = tiles_store(job_store, vol)
    want = server_generate(ref_url, ref_uuid)
    with Client(proc_cluster) as c:
        got = kill_a_busy_worker(
            c, "run_task", lambda: generate(c, url, uuid, "tiles", task_bytes=1 << 16)
        )
    assert got.tiles == want["Tiles"]  # no tile twice, none missing
    assert roots(url, uuid, "tiles") == roots(ref_url, ref_uuid, "tiles")


def test_killed_driver_mid_tile_job_moves_no_ref_and_rerun_finishes(
    proc_cluster: LocalCluster, tmp_path: Path, job_store: str
) -> None:
    vol = RNG.integers(1, 255, (64, 64, 96), dtype=np.uint8)  # 6 tasks a plane
    ref_url, ref_uuid = tiles_store(tmp_path / "ref", vol)
    url, uuid = tiles_store(job_store, vol)
    server_generate(ref_url, ref_uuid)
    before, objects = ref_values(url), object_ids(url)
    empty = roots(url, uuid, "tiles")
    address = proc_cluster.scheduler_address
    with Client(proc_cluster) as c:
        kill_driver_mid_job(c, address, "run_task", "tiles", url, uuid, "tiles")
        back_to_two_workers(c)
    assert object_ids(url) > objects  # tiles put before the kill: garbage
    assert ref_values(url) == before  # no plane was written: no ref moved
    assert roots(url, uuid, "tiles") == empty
    out = run_cli("node", uuid, "tiles", "generate", "--store", url, "--quiet", "--dask", address)
    assert "Generated" in out
    assert roots(url, uuid, "tiles") == roots(ref_url, ref_uuid, "tiles")


def history_store(where: str) -> tuple[str, GcReport]:
    """A store at ``where`` with 8 committed versions (many roots to mark from) and garbage
    (an open child overwritten); return its URL and what a single-process gc of it would
    remove (a dry run: the store is left as it is)."""
    from cas_dvid.sync.gc import collect

    url, uuid = grey_store(where, RNG.integers(0, 255, (128, 128, 128), dtype=np.uint8))
    init_store(url)  # the gc command opens only initialised stores
    versions = open_versions(ObjectStore(open_backend(url)))
    images = ImageStore.on(versions)
    node = uuid
    for i in range(8):
        versions.commit(node, f"v{i}")
        node = versions.new_child(node)
        at = versions.resolve(node)
        block = RNG.integers(0, 255, (32, 32, 32), dtype=np.uint8)
        images.write(at, at.instance("grey"), Point3(32 * (i % 4), 0, 0), block, "edit")
    for salt in range(3):  # each overwrite of the open child leaves the last one's garbage
        at = versions.resolve(node)
        block = RNG.integers(0, 255, (32, 64, 64), dtype=np.uint8)
        images.write(at, at.instance("grey"), Point3(salt * 32, 0, 0), block, "overwrite")
    local = collect(ObjectStore(open_backend(url), cache_bytes=0), grace=0, dry_run=True, full=True)
    assert local.deleted > 0
    return url, local


def test_killed_worker_mid_gc_mark_reruns_its_tasks(
    proc_cluster: LocalCluster, job_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cas_dvid.batch import _gc

    monkeypatch.setattr(_gc, "BATCH", 1)  # an object a task
    b, local = history_store(job_store)
    objects = object_ids(b)
    with Client(proc_cluster) as c:
        dask = kill_a_busy_worker(c, "refs_batch", lambda: _gc.collect_on(c, b, grace=0, full=True))
    assert sorted(dask.garbage) == sorted(local.garbage)  # a lost read marks nothing less
    assert (dask.reachable, dask.nodes_read, dask.missing) == (local.reachable, local.nodes_read, 0)
    assert objects - object_ids(b) == set(local.garbage)


def test_killed_driver_mid_gc_mark_deletes_nothing_and_rerun_finishes(
    proc_cluster: LocalCluster, job_store: str
) -> None:
    b, local = history_store(job_store)
    before, objects = ref_values(b), object_ids(b)
    address = proc_cluster.scheduler_address
    with Client(proc_cluster) as c:
        kill_driver_mid_job(c, address, "refs_batch", "gc", b)
        back_to_two_workers(c)
    assert object_ids(b) == objects  # killed mid-mark: nothing swept
    assert ref_values(b) == before  # gc/last included
    out = run_cli("gc", "--store", b, "--grace", "0", "--full", "--dask", address)
    assert f"removed {local.deleted} " in out
    assert objects - object_ids(b) == set(local.garbage)
    assert ref_values(b).keys() - before.keys() == {"gc/last"}  # the finished run's state


def test_killed_worker_mid_verify_reruns_its_tasks(
    proc_cluster: LocalCluster, job_store: str
) -> None:
    vol = RNG.integers(0, 255, (128, 128, 128), dtype=np.uint8)  # 64 distinct blocks
    url, uuid = grey_store(job_store, vol)
    with Client(proc_cluster) as c:
        want = verify(c, url, uuid, batch=1)
        got = kill_a_busy_worker(c, "check_batch", lambda: verify(c, url, uuid, batch=1))
    assert got.ok
    assert (got.objects, got.nbytes) == (want.objects, want.nbytes) == (64, 64 * 32**3)
