"""Shared helpers for the benchmark scripts: timing, EM sample data, report lines."""

from __future__ import annotations

import glob
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

SAMPLE_DIR = Path(
    os.environ.get(
        "CAS_DVID_SAMPLE", Path(__file__).parents[1] / ".." / "shared" / "sample-grayscale"
    )
)


def load_sample_volume() -> np.ndarray:
    """The real 250^3 EM stack as a ZYX uint8 array (falls back to EM-like noise)."""
    from PIL import Image

    files = sorted(glob.glob(str(SAMPLE_DIR / "*.png")))
    if not files:
        rng = np.random.default_rng(0)
        return rng.normal(130, 30, (250, 250, 250)).clip(0, 255).astype(np.uint8)
    return np.stack([np.asarray(Image.open(f)) for f in files])


def em_blocks(n: int, edge: int = 64, seed: int = 1) -> list[bytes]:
    """``n`` distinct edge^3 uint8 blocks cut at random offsets from the real EM stack."""
    vol = load_sample_volume()
    rng = np.random.default_rng(seed)
    out = []
    hi = [s - edge for s in vol.shape]
    seen: set[tuple[int, int, int]] = set()
    while len(out) < n:
        z, y, x = (int(rng.integers(0, h + 1)) for h in hi)
        if (z, y, x) in seen:
            continue
        seen.add((z, y, x))
        out.append(np.ascontiguousarray(vol[z : z + edge, y : y + edge, x : x + edge]).tobytes())
    return out


def best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    """Median wall time of ``repeat`` runs of ``fn`` (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def report(
    name: str,
    ours: float,
    base: float,
    unit: str,
    target: float | None = None,
    higher_is_better: bool = True,
) -> bool:
    """Print one figure with its ratio against the baseline; return whether it met ``target``."""
    ratio = ours / base if higher_is_better else base / ours
    ok = target is None or ratio >= target
    mark = "" if target is None else (f"  target >= {target:.2f}x  {'OK' if ok else 'MISSED'}")
    print(
        f"{name:<48} {ours:>12.1f} {unit:<8} baseline {base:>12.1f} {unit:<8} ratio {ratio:5.2f}x{mark}"
    )
    return ok
