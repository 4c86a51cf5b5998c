"""The numba decorator all label kernels use, and uint64 hash tables for them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np
from numba import njit

F = TypeVar("F", bound=Callable[..., Any])

_MUL = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: the top bits are well mixed


def jit(fn: F) -> F:
    """Compile ``fn`` with numba (nopython, cached on disk, GIL released), typed for mypy.

    Compilation happens on the first call, not at import; the cache in __pycache__
    makes later processes skip it.
    """
    return cast(F, njit(cache=True, nogil=True)(fn))


@jit
def slot(key: np.uint64, shift: np.uint64) -> int:
    """Return the home slot of ``key`` in a table of 2**(64 - shift) slots."""
    return np.int64((key * _MUL) >> shift)  # type: ignore[return-value]


@jit
def table_shape(n: int) -> tuple[int, np.uint64]:
    """Return (capacity, shift) of a table that holds ``n`` keys at most half full."""
    bits = 4
    while (1 << bits) < 2 * n:
        bits += 1
    return 1 << bits, np.uint64(64 - bits)


@jit
def find_or_insert(
    keys: np.ndarray, vals: np.ndarray, used: np.ndarray, shift: np.uint64, key: np.uint64, new: int
) -> int:
    """Return the value stored for ``key``; if absent, store ``new`` and return it.

    A slot ``s`` is occupied when ``used[s]`` is true.
    """
    mask = keys.shape[0] - 1
    s = slot(key, shift)
    while used[s]:
        if keys[s] == key:
            return int(vals[s])
        s = (s + 1) & mask
    used[s] = True
    keys[s] = key
    vals[s] = new
    return new
