"""Huge sizes: 64-bit indexing, memory use, MemoryError and leaks (each in a child process).

- (42731, 50257) float32 logits = 2 147 531 867 elements > 2**31, as a stride-0
  broadcast of one row (200 KB of memory): cross_entropy "mean" equals the closed
  form mean_i(logsumexp(row) - row[t_i]).
- A (40000, 50257) broadcast view is scored without materialising its 8 GB: the
  child's peak RSS (ru_maxrss) stays under 1 GB, and "none" gives every row's value.
- return_grad=True / log_softmax on the huge view need an 8.6 GB output: under a
  lowered RLIMIT_AS they raise MemoryError (never crash), and the process keeps working.
- 10**5 small calls of every function: RSS after them equals RSS after 10**4
  (within LEAK_BYTES).
The children run under a timeout (killed if they hang); crashes fail one test.
"""
from __future__ import annotations

import textwrap

import pytest

import tolerances as tol
from conftest import ACCELERATED, backend_params
from test_threads import assert_child_ok, run_child

ACCEL = backend_params(ACCELERATED)
N_HUGE, N_RSS, C_HUGE = 42731, 40000, 50257
assert N_HUGE * C_HUGE > 2**31
RSS_LIMIT = 1 << 30  # bytes: the materialised view alone would be 8 GB
LEAK_BYTES = 2 << 20  # 9*10**4 calls: catches a leak of >= 24 bytes per call

_PRELUDE = textwrap.dedent('''
    import resource, sys
    import numpy as np
    import fastce

    backend = sys.argv[1]
    row = (3 * np.random.default_rng(0).standard_normal({c})).astype(np.float32)
    r64 = row.astype(np.float64)
    lse = r64.max() + np.log(np.sum(np.exp(r64 - r64.max())))  # float64 closed form

    def view(n):
        return np.broadcast_to(row, (n, {c}))  # stride-0 rows, no copy

    def targets(n):
        return (np.arange(n) * 7919) % {c}
''')

_SCORE = _PRELUDE + textwrap.dedent('''
    t = targets({n_huge})
    mean = fastce.cross_entropy(view({n_huge}), t, backend=backend)
    want = lse - r64[t].mean()
    assert abs(float(mean) - want) <= {rtol} * abs(want) + {atol}, (float(mean), want)
    n = {n_rss}
    none = fastce.cross_entropy(view(n), targets(n), reduction="none", backend=backend)
    np.testing.assert_allclose(none, lse - r64[targets(n)], rtol={rtol}, atol={atol})
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert rss < {rss_limit}, f"peak RSS {{rss / 2**20:.0f}} MiB"
    print("OK", flush=True)
''')


@pytest.mark.parametrize("backend", ACCEL)
def test_broadcast_view_beyond_int32(backend, tmp_path):
    t = tol.backend("float32")
    code = _SCORE.format(c=C_HUGE, n_huge=N_HUGE, n_rss=N_RSS, rss_limit=RSS_LIMIT, **t)
    assert_child_ok(run_child(["-c", code, backend], tmp_path, timeout=300), "OK")


_MEMORY = _PRELUDE + textwrap.dedent('''
    x = view({n_huge})
    t = targets({n_huge})
    small = fastce.cross_entropy(x[:3], t[:3], return_grad=True, backend=backend)
    with open("/proc/self/statm") as f:
        vm = int(f.read().split()[0]) * resource.getpagesize()
    limit = vm + (2 << 30)  # 2 GB more address space: far below the 8.6 GB output
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    calls = {{"cross_entropy-grad": lambda: fastce.cross_entropy(x, t, return_grad=True,
                                                                  backend=backend),
             "focal_loss-grad": lambda: fastce.focal_loss(x, t, return_grad=True, backend=backend),
             "log_softmax": lambda: fastce.log_softmax(x, backend=backend),
             "softmax": lambda: fastce.softmax(x, backend=backend)}}
    for name, call in calls.items():
        try:
            call()
        except MemoryError:
            print("MemoryError", name, flush=True)
        else:
            raise AssertionError(name + " fitted in 2 GB of address space")
    again = fastce.cross_entropy(x[:3], t[:3], return_grad=True, backend=backend)
    assert again[0] == small[0] and (again[1] == small[1]).all()
    print("OK", flush=True)
''')


@pytest.mark.parametrize("backend", ACCEL)
def test_huge_output_raises_memory_error(backend, tmp_path):
    proc = run_child(["-c", _MEMORY.format(c=C_HUGE, n_huge=N_HUGE), backend], tmp_path)
    assert_child_ok(proc, "OK")
    assert proc.stdout.count("MemoryError") == 4


_LEAK = textwrap.dedent('''
    import sys
    import numpy as np
    import fastce

    backend = sys.argv[1]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 5))
    y = rng.integers(0, 5, size=4)
    t = rng.random((4, 5))
    w = rng.random(5) + 0.5
    calls = [lambda: fastce.log_softmax(x, backend=backend),
             lambda: fastce.softmax(x, backend=backend),
             lambda: fastce.logsumexp(x, backend=backend),
             lambda: fastce.cross_entropy(x, y, weight=w, return_grad=True, backend=backend),
             lambda: fastce.cross_entropy(x, t, return_grad=True, backend=backend),
             lambda: fastce.focal_loss(x, y, alpha=w, return_grad=True, backend=backend),
             lambda: fastce.binary_cross_entropy(x, t, pos_weight=w, return_grad=True,
                                                 backend=backend),
             lambda: fastce.sigmoid_focal_loss(x, t, return_grad=True, backend=backend)]

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    def loop(n):
        for i in range(n):
            calls[i % len(calls)]()

    loop(10**4)
    before = rss()
    loop(9 * 10**4)
    grown = rss() - before
    assert grown <= {leak}, f"RSS grew by {{grown}} bytes over 9*10**4 calls"
    print("OK", grown, flush=True)
''')


@pytest.mark.parametrize("backend", ACCEL)
def test_small_calls_do_not_leak(backend, tmp_path):
    proc = run_child(["-c", _LEAK.format(leak=LEAK_BYTES), backend], tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("OK"), proc.stdout + proc.stderr
