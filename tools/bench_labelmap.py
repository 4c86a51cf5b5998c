"""Label ingest: POST blocks of a segmentation (index included) vs tensorstore, same run.

A Voronoi-like label volume (cells of random uint64 ids with jittered borders, default
256^3; ``--edge 512`` for the issue's size) in 64^3 blocks:

- ours: the POST blocks body (records of gzip(DVID label Block), as clients send it)
  through ``LabelWriter.write_stream`` on a file store: gunzip, decode, encode,
  put, label index and summaries, one head swap per call of 64 blocks;
- peer: tensorstore writing the same array as neuroglancer_precomputed with
  compressed_segmentation encoding (64^3 chunks) to a local directory.

Prints voxels/s of each and the ratio per run, and the median of ``--runs`` interleaved
runs (issue 16 target: ours >= 0.5x the peer's speed).  The body's Blocks are in
canonical form (as cas_dvid encodes them), so they are stored as sent; a client whose
encoder orders labels otherwise pays a decode and an encode per block.  Building the
request body is not timed (a client does that), nor the codec kernels' one-time
compile or cache load (done before the clock starts).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cas_dvid.backends import open_backend
from cas_dvid.datatypes.labelmap import LabelStore
from cas_dvid.datatypes.labelmap.codec import decode_block, encode_block
from cas_dvid.objects import ObjectStore
from cas_dvid.testing import sample
from cas_dvid.versions import VersionService
from cas_dvid.versions.stores import init_store

B = 64


def label_volume(edge: int, cell: int = 16, seed: int = 0) -> np.ndarray:
    """Return cells of ``cell`` voxels with random ids, borders jittered by a voxel or two."""
    rng = np.random.default_rng(seed)
    n = -(-edge // cell) + 1
    ids = rng.choice(2**40, n**3, replace=False).astype(np.uint64).reshape(n, n, n) + 1
    z, y, x = np.ogrid[:edge, :edge, :edge]
    j = rng.integers(0, 3, (edge,))
    return ids[(z + j[y % edge]) // cell, (y + j[x % edge]) // cell, (x + j[z % edge]) // cell]


def body_of(vol: np.ndarray, z0: int) -> bytes:
    """Return the POST blocks body of the 64-voxel slab starting at z0."""
    return sample.label_blocks_body(np.ascontiguousarray(vol[z0 : z0 + B]), B, z0)


def ours(vol: np.ndarray, tmp: Path) -> float:
    url = f"file://{tmp / 'store'}"
    init_store(url)
    versions = VersionService(ObjectStore(open_backend(url)))
    labels = LabelStore.on(versions)
    uuid = versions.create_repo()
    versions.new_instance(uuid, "seg", "labelmap", settings={"blocksize": "64,64,64"})
    at = versions.resolve(uuid)
    inst = at.instance("seg")
    bodies = [body_of(vol, z0) for z0 in range(0, vol.shape[0], B)]
    # The codec kernels compile (or load from numba's cache) on first use, ~1 s once per
    # process; a server pays it at its first label request, not per ingest.
    decode_block(encode_block(np.ascontiguousarray(vol[:B, :B, :B])), (B, B, B))
    t0 = time.perf_counter()
    for i, body in enumerate(bodies):
        labels.writer.write_stream(at, inst, body, "POST blocks")
        print(f"\rours {i + 1}/{len(bodies)}", end="", file=sys.stderr)
    print(file=sys.stderr)
    return time.perf_counter() - t0


def peer(vol: np.ndarray, tmp: Path) -> float:
    import tensorstore as ts

    e = vol.shape[0]
    spec = {
        "driver": "neuroglancer_precomputed",
        "kvstore": {"driver": "file", "path": str(tmp / "precomputed")},
        "multiscale_metadata": {"data_type": "uint64", "num_channels": 1, "type": "segmentation"},
        "scale_metadata": {
            "size": [e, e, e],
            "encoding": "compressed_segmentation",
            "compressed_segmentation_block_size": [8, 8, 8],
            "chunk_size": [B, B, B],
            "resolution": [8, 8, 8],
        },
        "create": True,
        "delete_existing": True,
    }
    store = ts.open(spec).result()
    xyz = np.ascontiguousarray(vol.transpose(2, 1, 0))[..., np.newaxis]  # x, y, z, channel
    t0 = time.perf_counter()
    for z0 in range(0, e, B):
        store[:, :, z0 : z0 + B, :].write(xyz[:, :, z0 : z0 + B, :]).result()
    return time.perf_counter() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--edge", type=int, default=256)
    p.add_argument("--runs", type=int, default=3, help="interleaved runs; the median is judged")
    args = p.parse_args()
    vol = label_volume(args.edge)
    voxels = vol.size
    ratios = []
    for run in range(args.runs):
        tmp = Path(tempfile.mkdtemp(prefix="bench-lm-"))
        try:
            # Alternate who goes first, so a slow spell of the machine hits both sides.
            if run % 2:
                t_peer, t_ours = peer(vol, tmp), ours(vol, tmp)
            else:
                t_ours, t_peer = ours(vol, tmp), peer(vol, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        a, b = voxels / t_ours / 1e6, voxels / t_peer / 1e6
        ratios.append(a / b)
        print(
            f"run {run + 1}: ours {a:.1f} Mvox/s, tensorstore precomputed cseg {b:.1f} Mvox/s, "
            f"ratio {a / b:.2f}x"
        )
    med = statistics.median(ratios)
    ok = "OK" if med >= 0.5 else "MISSED"
    print(
        f"ingest {args.edge}^3 labels ({len(np.unique(vol))} ids), index included: median ratio "
        f"{med:.2f}x of {args.runs} interleaved runs ({', '.join(f'{r:.2f}' for r in ratios)})"
        f"  target >= 0.5x  {ok}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
