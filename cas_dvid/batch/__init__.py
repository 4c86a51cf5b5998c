"""Batch jobs on dask.distributed: workers write block objects straight to the store.

Only the small results (tree entries, supervoxel counts) travel back to the driver,
which makes one write at the version.  See ``_ingest`` and README "Batch jobs on Dask".
"""

from __future__ import annotations

from cas_dvid.batch._downres import DownresResult, downres
from cas_dvid.batch._gc import collect_on
from cas_dvid.batch._index import IndexResult, index
from cas_dvid.batch._ingest import (
    IngestResult,
    SlabTask,
    ingest,
    open_client,
    plan_slabs,
    run_slab,
)
from cas_dvid.batch._tiles import TilesResult, generate
from cas_dvid.batch._verify import VerifyResult, verify

__all__ = [
    "DownresResult",
    "IndexResult",
    "IngestResult",
    "SlabTask",
    "TilesResult",
    "VerifyResult",
    "collect_on",
    "downres",
    "generate",
    "index",
    "ingest",
    "open_client",
    "plan_slabs",
    "run_slab",
    "verify",
]
