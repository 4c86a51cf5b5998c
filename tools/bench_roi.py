"""Benchmark the ROI kernels against their plain Python twins in the same run.

ptquery: 100,000 points against a 10,000-span ROI (target >= 200,000 points/s
on one core); mask: a 256^3 box. Prints each rate, the target, and the ratio
fast / reference (ratios hold better across machines than absolute numbers).
Exits 0; a missed target is reported, not fatal.

    .venv/bin/python tools/bench_roi.py [--points 100000] [--spans 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from cas_dvid.datatypes.roi import _reference
from cas_dvid.datatypes.roi.query import points_in_roi, roi_mask
from cas_dvid.datatypes.roi.spans import count_blocks, merge_spans

BLOCK = (32, 32, 32)


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time of ``repeat`` calls after one warm-up call, and the last result."""
    result = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def make_roi(n_spans: int, rng: np.random.Generator) -> np.ndarray:
    """A blob-like ROI: ``n_spans`` disjoint x-runs over a 40 x 50 grid of (z, y) rows."""
    rows = [(z, y) for z in range(40) for y in range(50)]
    per_row = n_spans // len(rows)
    spans = []
    for z, y in rows:
        x = int(rng.integers(0, 8))
        for _ in range(per_row):
            length = int(rng.integers(1, 6))
            spans.append([z, y, x, x + length - 1])
            x += length + int(rng.integers(1, 4))
    return merge_spans(spans)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--spans", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    spans = make_roi(args.spans, rng)
    hi = spans.max(axis=0)
    extent = np.array([(hi[3] + 2) * BLOCK[0], (hi[1] + 2) * BLOCK[1], (hi[0] + 2) * BLOCK[2]])
    points = (rng.random((args.points, 3)) * extent).astype(np.int64) - 16
    print(f"ROI: {len(spans)} spans, {count_blocks(spans)} blocks; {len(points)} points")

    fast_t, fast = timed(lambda: points_in_roi(spans, points, BLOCK), args.repeat)
    span_list, point_list = spans.tolist(), points.tolist()
    ref_t, ref = timed(lambda: _reference.point_query(span_list, point_list, BLOCK), 1)
    assert fast.tolist() == ref, "fast ptquery disagrees with the reference"
    rate = len(points) / fast_t
    verdict = "ok" if rate >= 200_000 else "MISSED"
    print(
        f"ptquery fast:      {rate:12,.0f} points/s  (target >= 200,000: {verdict}); "
        f"{fast.mean():.1%} inside"
    )
    print(
        f"ptquery reference: {len(points) / ref_t:12,.0f} points/s  (DVID's seekSpan walk, Python)"
    )
    print(f"ptquery ratio fast/reference: {ref_t / fast_t:.1f}x")

    box, off = (256, 256, 256), (int(extent[0]) // 3, int(extent[1]) // 3, int(extent[2]) // 3)
    mfast_t, mfast = timed(lambda: roi_mask(spans, BLOCK, off, box), args.repeat)
    mref_t, mref = timed(lambda: _reference.get_mask(span_list, BLOCK, off, box), 1)
    assert (mfast == mref).all(), "fast mask disagrees with the reference"
    nvox = box[0] * box[1] * box[2]
    print(
        f"mask 256^3 fast:   {nvox / mfast_t / 1e6:10,.0f} Mvoxel/s ({mfast_t * 1e3:.1f} ms); "
        f"reference {mref_t * 1e3:.1f} ms; ratio {mref_t / mfast_t:.1f}x"
    )

    # The whole path: POST ptquery to the app (JSON in, tree rows read, JSON out).
    import json

    import falcon.testing

    from cas_dvid.api import ServerConfig, create_app

    c = falcon.testing.TestClient(create_app(ServerConfig("memory://")))
    root = c.simulate_post("/api/repos", json={}).json["root"]
    c.simulate_post(f"/api/repo/{root}/instance", json={"typename": "roi", "dataname": "r"})
    c.simulate_post(f"/api/node/{root}/r/roi", body=json.dumps(spans.tolist()))
    body = json.dumps(point_list)
    http_t, got = timed(
        lambda: c.simulate_post(f"/api/node/{root}/r/ptquery", body=body).json, args.repeat
    )
    assert got == ref, "ptquery over HTTP disagrees with the reference"
    rate = len(points) / http_t
    verdict = "ok" if rate >= 200_000 else "MISSED"
    print(
        f"ptquery POST (app, tree rows): {rate:12,.0f} points/s (target >= 200,000: {verdict}); "
        f"ratio to the kernel alone {rate / (len(points) / fast_t):.2f}"
    )


if __name__ == "__main__":
    main()
