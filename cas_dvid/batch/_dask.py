"""The one way the batch jobs run tasks: map over the workers, show progress, gather."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

R = TypeVar("R")


def results(
    client: Any,
    fn: Callable[..., R],
    *args: Iterable[Any],
    progress: bool = False,
    retries: int = 3,
) -> Iterator[R]:
    """Run ``fn`` over ``args`` (one task each, as ``client.map``) and yield results as they end.

    Tasks are impure (they write to the store) and retried on a lost worker: their
    puts are put-if-absent, so a rerun is harmless.  Each future is released once its
    result is taken, so the cluster holds only what is still running.
    """
    from dask.distributed import as_completed
    from dask.distributed import progress as show_progress

    futures = client.map(fn, *args, pure=False, retries=retries)
    if progress and futures:
        show_progress(futures)  # type: ignore[no-untyped-call]
    for future in as_completed(futures):  # type: ignore[no-untyped-call]
        result: R = future.result()
        future.release()
        yield result
