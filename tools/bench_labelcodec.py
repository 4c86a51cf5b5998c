"""Benchmark the labelmap kernels on real-ish 64^3 label blocks.

Blocks: DVID's five test blocks (tests/fixtures/labels) and Voronoi blocks of about
10..1000 labels. Prints, one thread each, medians of interleaved repeats:

- MB/s (of uint64 voxels) of our Block encode/decode against the compressed-segmentation
  package's encode/decode of the same blocks (target: ratio >= 0.5x);
- stored bytes per block of our Block under lz4 and zstd-1 against DVID's storage,
  gzip (default level 6) of the Block (target: <= 1.1x);
- label counts, downres, sparsevol RLE and binary blocks against their reference twins.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import compressed_segmentation as cseg
import lz4.block
import numpy as np
import zstandard

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from _labeldata import FIXTURES, fixture_array, stream_block, voronoi  # noqa: E402

from cas_dvid.datatypes.labelmap import (  # noqa: E402
    codec,
    counts,
    downres,
    reference,
    rle,
    sparsevol,
)

MB = 1e6


def load_blocks() -> dict[str, list[np.ndarray]]:
    fixtures = [fixture_array(p.name) for p in sorted(FIXTURES.glob("*64x64x64-sample?.dat.gz"))]
    fixtures.append(codec.decode_block(stream_block()))
    vor = [voronoi((64, 64, 64), n, seed) for seed, n in enumerate((10, 30, 100, 300, 1000))]
    return {"dvid fixtures": fixtures, "voronoi 10..1000": vor}


def interleaved(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median seconds of each function, the functions taking turns in every round."""
    for fn in fns.values():
        fn()  # warm-up (numba compiles on first call)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def codec_speed(name: str, vols: list[np.ndarray], repeat: int) -> list[float]:
    nbytes = sum(v.nbytes for v in vols)
    ours = [codec.encode_block(v) for v in vols]
    theirs = [cseg.compress(v.T, order="F") for v in vols]
    xyz = [v.shape[::-1] for v in vols]
    t = interleaved(
        {
            "ours encode": lambda: [codec.encode_block(v) for v in vols],
            "cseg encode": lambda: [cseg.compress(v.T, order="F") for v in vols],
            "ours decode": lambda: [codec.decode_block(b) for b in ours],
            "cseg decode": lambda: [
                cseg.decompress(b, s, np.uint64, order="F")
                for b, s in zip(theirs, xyz, strict=True)
            ],
        },
        repeat,
    )
    ratios = []
    for op in ("encode", "decode"):
        mine, pkg = nbytes / t[f"ours {op}"] / MB, nbytes / t[f"cseg {op}"] / MB
        ratios.append(mine / pkg)
        ok = "OK" if mine / pkg >= 0.5 else "MISSED"
        print(
            f"  {name:<18} {op}: ours {mine:8.0f} MB/s   compressed-segmentation {pkg:8.0f} MB/s"
            f"   ratio {mine / pkg:5.2f}x  (target >= 0.5x {ok})"
        )
    return ratios


def stored_bytes(name: str, vols: list[np.ndarray]) -> None:
    blocks = [codec.encode_block(v) for v in vols]
    zc = zstandard.ZstdCompressor(level=1)
    zc3 = zstandard.ZstdCompressor(level=3)
    sizes = {
        "gzip-6 (DVID)": [len(gzip.compress(b, 6)) for b in blocks],
        "raw Block": [len(b) for b in blocks],
        "lz4": [len(lz4.block.compress(b, store_size=False)) for b in blocks],
        "zstd-1": [len(zc.compress(b)) for b in blocks],
        "zstd-3": [len(zc3.compress(b)) for b in blocks],
        "lz4 hc-9": [
            len(lz4.block.compress(b, mode="high_compression", compression=9)) for b in blocks
        ],
        "cseg (neuroglancer)": [len(cseg.compress(v.T, order="F")) for v in vols],
    }
    base = statistics.mean(sizes["gzip-6 (DVID)"])
    for codec_name, s in sizes.items():
        mean = statistics.mean(s)
        verdict = ""
        if codec_name in ("lz4", "zstd-1", "zstd-3", "lz4 hc-9"):
            verdict = f"  (target <= 1.10x {'OK' if mean / base <= 1.1 else 'MISSED'})"
        print(
            f"  {name:<18} {codec_name:<20} {mean:10.0f} B/block  {mean / base:5.2f}x gzip{verdict}"
        )


def twin(label: str, fast: Callable[[], object], slow: Callable[[], object], repeat: int) -> None:
    t = interleaved({"fast": fast, "slow": slow}, repeat)
    print(
        f"  {label:<44} fast {t['fast'] * 1e3:9.2f} ms   reference {t['slow'] * 1e3:9.1f} ms"
        f"   speed-up {t['slow'] / t['fast']:7.0f}x"
    )


def kernels_vs_twins(vols: list[np.ndarray], repeat: int) -> None:
    vol = vols[0]
    data = codec.encode_block(vol)
    twin(
        "counts (array, 64^3)",
        lambda: counts.label_counts(vol),
        lambda: reference.label_counts(vol),
        repeat,
    )
    twin(
        "counts (encoded Block, 64^3)",
        lambda: counts.block_label_counts(data),
        lambda: reference.label_counts(reference.decode_block(data)),
        max(1, repeat // 3),
    )
    twin(
        "downres 64^3 -> 32^3",
        lambda: downres.downres_labels(vol),
        lambda: reference.downres_labels(vol),
        max(1, repeat // 3),
    )
    body = [((x, 0, 0), v) for x, v in enumerate(vols[:4])]
    svs = np.unique(np.concatenate([np.unique(v)[::2] for _, v in body]))
    twin(
        "sparsevol rles, 4 blocks",
        lambda: rle.encode_rles(body, svs),
        lambda: reference.sparsevol_runs(body, svs.tolist()),
        max(1, repeat // 3),
    )
    twin(
        "sparsevol blocks format, 4 blocks",
        lambda: b"".join(sparsevol.encode_binary_blocks(body, 1, svs)),
        lambda: reference.binary_blocks(body, 1, svs.tolist()),
        max(1, repeat // 3),
    )
    twin(
        "Block encode (reference = Go port)",
        lambda: codec.encode_block(vol),
        lambda: reference.encode_block(vol),
        1,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=9, help="interleaved rounds per figure")
    args = ap.parse_args()
    sets = load_blocks()
    print("Block codec throughput, one thread (MB/s of uint64 voxels):")
    ratios = [r for name, vols in sets.items() for r in codec_speed(name, vols, args.repeat)]
    print(f"  worst ratio against compressed-segmentation: {min(ratios):.2f}x")
    print("Stored bytes per 64^3 block:")
    for name, vols in sets.items():
        stored_bytes(name, vols)
    print("Kernels against their reference twins (fixture blocks):")
    kernels_vs_twins(sets["dvid fixtures"], args.repeat)


if __name__ == "__main__":
    main()
