"""Thread settings of the accelerated backends (one place for both).

``set_num_threads(n)`` applies to the compiled core (its OpenMP team size,
which threadpoolctl also sees and can limit, ``user_api="openmp"``) and to
Numba once it is loaded. Results never depend on the thread count.
"""
from __future__ import annotations

import os
import sys

_requested = 0  # 0: the default, all cores as OpenMP/threadpoolctl allow


def _core():
    from fastce import _backends

    try:
        return _backends.load("cython")
    except ImportError:
        return None


def set_num_threads(n: int) -> None:
    """Use at most `n` threads (n >= 1) in the accelerated backends; 0 restores the default."""
    global _requested
    if isinstance(n, bool) or not isinstance(n, (int,)) and not hasattr(n, "__index__"):
        raise TypeError(f"n_threads must be an int, got {type(n).__name__}")
    n = int(n)
    if n < 0:
        raise ValueError(f"n_threads must be >= 0 (0 = default), got {n}")
    _requested = n
    core = _core()
    if core is not None:
        core.set_num_threads(n)
    if "fastce._numba" in sys.modules:
        sys.modules["fastce._numba"].set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads a call will use (>= 1)."""
    core = _core()
    if core is not None:
        return max(1, int(core.get_num_threads()))
    return _requested or (os.cpu_count() or 1)
