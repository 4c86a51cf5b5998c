"""Benchmark tile generation against a plain numpy + Pillow loop making the same tiles.

Generates every xy/xz/yz tile of a SIZE^3 uint8 source (the EM sample stack mirrored to
SIZE) at TileSize T (defaults 512 and 256, the issue's target) with cas_dvid's
generator on a memory store, then times the baseline in the same run: read the source
once from the same store, and for every slice pad it to the tile grid, halve it with a
numpy 2x2 truncating mean, cut it into tiles and PNG-encode each with Pillow at the
same settings, one thread, no storing.  Prints both times and the ratio ours/baseline
(target <= 2x), and checks a sample of tiles are byte-equal; then edits a 64^3 block
and times the regeneration (target >= 20x faster than the full run).

    .venv/bin/python tools/bench_tiles.py [--size 512] [--tile 256]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from _common import load_sample_volume  # noqa: E402

from cas_dvid.backends import open_backend  # noqa: E402
from cas_dvid.datatypes.geometry import Box3, Point3  # noqa: E402
from cas_dvid.datatypes.imageblk import ImageStore  # noqa: E402
from cas_dvid.datatypes.imagetile import TileStore  # noqa: E402
from cas_dvid.datatypes.imagetile.generate import Generator  # noqa: E402
from cas_dvid.objects import ObjectStore  # noqa: E402
from cas_dvid.versions import VersionService  # noqa: E402


def source(size: int) -> np.ndarray:
    """The EM stack mirrored (reflect padding) to ``size`` voxels per axis."""
    vol = load_sample_volume()
    while vol.shape[0] < size:
        vol = np.concatenate([vol, vol[::-1]], axis=0)
        vol = np.concatenate([vol, vol[:, ::-1]], axis=1)
        vol = np.concatenate([vol, vol[:, :, ::-1]], axis=2)
    return np.ascontiguousarray(vol[:size, :size, :size])


def png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img), mode="L").save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def baseline(images: ImageStore, at: object, inst: object, n: int, t: int) -> dict[str, bytes]:
    """Every tile, plain: one read, then pad, halve, cut, encode; keyed like ours."""
    vol = images.read(at, inst, Box3(Point3(0, 0, 0), Point3(n, n, n)))  # type: ignore[arg-type]
    scales = 1
    while t << (scales - 1) < n:
        scales += 1
    grid = t << (scales - 1)
    out: dict[str, bytes] = {}
    for plane in ("xy", "xz", "yz"):
        for f in range(n):
            img = np.zeros((grid, grid), np.uint8)
            img[:n, :n] = vol[f] if plane == "xy" else vol[:, f] if plane == "xz" else vol[:, :, f]
            for s in range(scales):
                if s:
                    h = img.shape[0] // 2
                    img = (img.reshape(h, 2, h, 2).sum(axis=(1, 3), dtype=np.uint16) // 4).astype(
                        np.uint8
                    )
                cover = (n - 1) // (t << s) + 1
                for tb in range(cover):
                    for ta in range(cover):
                        out[f"{plane}/{s}/{ta}_{tb}_{f}"] = png(
                            img[tb * t : (tb + 1) * t, ta * t : (ta + 1) * t]
                        )
    return out


def main() -> int:
    """Run the benchmark and print the figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--tile", type=int, default=256)
    args = p.parse_args()
    n, t = args.size, args.tile
    v = VersionService(ObjectStore(open_backend("memory://")))
    root = v.create_repo()
    src = v.new_instance(root, "grayscale", "uint8blk")
    tiles_inst = v.new_instance(
        root, "tiles", "imagetile", settings={"source": "grayscale", "tilesize": str(t)}
    )
    images, tiles = ImageStore.on(v), TileStore.on(v)
    vol = source(n)
    for z in range(0, n, 32):
        images.write(v.resolve(root), src, Point3(0, 0, z), vol[z : z + 32], "bench")
    at = v.resolve(root)

    t0 = time.perf_counter()
    counts = Generator(tiles, images, at, tiles_inst).run()
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    plain = baseline(images, at, src, n, t)
    base = time.perf_counter() - t0

    at = v.resolve(root)
    for name in list(plain)[:: max(1, len(plain) // 50)]:
        plane, scale, coord = name.split("/")
        x, y, z = (int(c) for c in coord.split("_"))
        xyz = {"xy": (x, y, z), "xz": (x, z, y), "yz": (z, x, y)}[plane]
        got = tiles.tile(at, tiles_inst, plane, int(scale), xyz)  # type: ignore[arg-type]
        assert got == plain[name], f"tile {name} differs from the baseline's"
    # Two 64^3 edits, each at its own child version of the fully tiled one: EM-like
    # voxels (another part of the stack pasted in: what a re-imaged or re-aligned block
    # looks like), and white noise (the worst case for PNG: its tiles encode ~3x slower).
    corner = n // 2 - 64 if n >= 128 else 0
    v.commit(root, "tiled")
    regens = {}
    for kind, edit in (
        ("EM-like", np.ascontiguousarray(vol[:64, 64:128, 128:192][::-1])),
        ("noise", np.random.default_rng(1).integers(0, 256, (64, 64, 64), dtype=np.uint8)),
    ):
        child = v.new_child(root, branch=f"edit-{kind}")
        images.write(v.resolve(child), src, Point3(corner, corner, corner), edit, "bench edit")
        t0 = time.perf_counter()
        redo = Generator(tiles, images, v.resolve(child), tiles_inst).run()
        regens[kind] = (time.perf_counter() - t0, redo["Tiles"])
    ratio = ours / base
    verdict = "ok" if ratio <= 2 else "MISSED"
    print(
        f"tiles of a {n}^3 source at TileSize {t}: {counts['Tiles']} tiles "
        f"({counts['Objects']} distinct objects), baseline {len(plain)}"
    )
    print(
        f"ours {ours:.2f} s ({counts['Tiles'] / ours:.0f} tiles/s), "
        f"plain numpy+Pillow {base:.2f} s ({len(plain) / base:.0f} tiles/s), "
        f"ratio {ratio:.2f}x (target <= 2x: {verdict})"
    )
    for kind, (regen, remade) in regens.items():
        speedup = ours / regen
        verdict = "ok" if speedup >= 20 else "MISSED"
        print(
            f"after a 64^3 {kind} edit: {remade} tiles remade in {regen:.2f} s, "
            f"{speedup:.1f}x faster than the full run (target >= 20x: {verdict}); "
            f"the tile-count bound is {counts['Tiles'] / remade:.1f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
