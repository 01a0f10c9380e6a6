"""pytest-benchmark suite: every public function x shape x (fwd, fwd+grad), one benchmark
group per case comparing fastce's backends with the NumPy reference and the peers
(PyTorch CPU, JAX, scikit-learn; a missing one skips only its own column).

The cases and the implementations are those of ``fastce bench`` (``fastce._bench``);
run ``pytest bench`` (see bench/README.md for the options).
"""
import functools

import numpy as np
import pytest

from fastce import _bench

IMPLS = _bench.FASTCE + _bench.PEERS
PARAMS = [pytest.param(case, name,
                       id=f"{case.function}-{case.shape}-{case.dtype}-{case.mode}-{name}",
                       marks=[pytest.mark.big] if case.n * case.c > 10_000_000 else [])
          for case in _bench.make_cases() for name in IMPLS if _bench.applicable(name, case)]


@functools.lru_cache(maxsize=2)
def _inputs(n, c, dtype, elementwise, loss):
    """Inputs shared by the benchmarks of one shape (the cases of a shape run together)."""
    case = _bench.Case("binary_cross_entropy" if elementwise else
                       "cross_entropy" if loss else "log_softmax", n, c, dtype, "fwd")
    return _bench.make_inputs(case)


@functools.lru_cache(maxsize=1)
def _reference(case):
    """The NumPy reference's value of `case` (one case at a time: its tests run together)."""
    x, t = _inputs(case.n, case.c, case.dtype, case.function in _bench.ELEMENTWISE,
                   case.function in _bench.LOSSES)
    return _bench.value_of(_bench.implementation("numpy", case, x, t)())


@pytest.mark.parametrize("case, name", PARAMS)
def test_bench(benchmark, case, name):
    x, t = _inputs(case.n, case.c, case.dtype, case.function in _bench.ELEMENTWISE,
                   case.function in _bench.LOSSES)
    try:
        fn = _bench.implementation(name, case, x, t)
        fn()  # warm-up (JIT compilation)
    except ImportError as exc:
        pytest.skip(f"{name} is not installed: {exc}")
    benchmark.group = case.label
    benchmark.extra_info.update(name=name, function=case.function, shape=case.shape,
                                dtype=case.dtype, mode=case.mode)
    result = benchmark(fn)
    # every column computes the same thing: the NumPy reference's value
    ref = _reference(case)
    tol = 1e-3 if case.dtype == "float32" else 1e-8
    np.testing.assert_allclose(_bench.value_of(result), ref, rtol=tol, atol=tol)
