"""S3 bulk paths against the moto server, each beside the one-request-per-object way.

- ``has_many`` of N keys (half stored, half not) answered from listings vs one
  HeadObject per key (both with the backend's 32 connections in flight);
- ``delete_many`` of N keys by DeleteObjects batches vs one DeleteObject per key.

Prints times and ratios (how many times faster the bulk path is), measured on moto
only: real S3's latencies and listing costs differ.

    .venv/bin/python tools/bench_s3.py [--objects 4000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cas_dvid.backends import _s3, open_backend  # noqa: E402
from cas_dvid.objects import Kind, ObjectStore, content_id  # noqa: E402
from cas_dvid.testing.s3server import S3TestServer  # noqa: E402


def main() -> int:
    """Run both comparisons and print the figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--objects", type=int, default=4000)
    args = p.parse_args()
    n = args.objects
    with S3TestServer() as srv:
        srv.make_bucket("bench")
        backend = open_backend(f"s3://bench/has?endpoint_url={srv.endpoint}")
        assert isinstance(backend, _s3.S3Backend)
        store = ObjectStore(backend)
        ids = store.put_many([(Kind.BLOB, i.to_bytes(4, "little")) for i in range(n)])
        asked = [o.hex() for o in ids[::2]]
        asked += [content_id(Kind.BLOB, b"absent %d" % i).hex() for i in range(n // 2)]
        t0 = time.perf_counter()
        listed = backend.has_many(asked)
        t_list = time.perf_counter() - t0
        t0 = time.perf_counter()
        headed = list(backend._executor().map(backend._head, asked))
        t_head = time.perf_counter() - t0
        assert listed == headed
        print(
            f"has_many of {len(asked)} keys (store of {n}): listings {t_list:.2f} s, "
            f"HEAD each {t_head:.2f} s, {t_head / t_list:.1f}x faster"
        )
        doomed = [o.hex() for o in ids]
        half = len(doomed) // 2
        t0 = time.perf_counter()
        backend.delete_many(doomed[:half])
        t_bulk = time.perf_counter() - t0
        t0 = time.perf_counter()
        list(backend._executor().map(backend.delete, doomed[half:]))
        t_each = time.perf_counter() - t0
        print(
            f"delete of {half} keys: DeleteObjects batches {t_bulk:.2f} s, "
            f"DeleteObject each (32 in flight) {t_each:.2f} s, {t_each / t_bulk:.1f}x faster"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
