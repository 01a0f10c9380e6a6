"""Threads, processes and interruption of the accelerated backends.

- Results are bit-identical for 1..4 threads (4 even on 2 cores: threadpoolctl raises
  the OpenMP cap, Numba is capped at NUMBA_NUM_THREADS) on an input above every
  backend's threading threshold (2**18 elements).
- 8 Python threads calling at once, with racing ``fastce.set_num_threads``
  values, get the serial results bit for bit (in a child process, so that an
  abort fails one test, not the session).
- ``threadpoolctl.threadpool_limits(1)`` limits the compiled core.
- A child started with ``fork`` after a multi-threaded call neither hangs nor
  differs (the C core runs a forked child single-threaded; Numba's workqueue
  layer is fork-safe); ``spawn`` and ``forkserver`` children agree too. Every
  child runs under a timeout and is killed if it hangs.
- SIGINT during a loop of long calls (in the main thread, or in a worker thread
  while the main thread waits) raises KeyboardInterrupt; later calls in that
  process are still correct.
"""
from __future__ import annotations

import concurrent.futures
import functools
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import fastce
from fastce import _backends
from conftest import ACCELERATED, backend_params

ACCEL = backend_params(ACCELERATED)
SHAPE = (1200, 257)  # 308 400 elements: threaded by every backend (thresholds <= 2**18)
MAX_THREADS = 4
CHILD_TIMEOUT = 120  # seconds; a healthy child takes a few (a Numba child loads its cache)
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


@functools.lru_cache(maxsize=None)
def inputs(seed=0):
    """float32 logits of SHAPE and every kind of target (read-only, shared by threads)."""
    rng = np.random.default_rng(seed)
    n, c = SHAPE
    x = (3 * rng.standard_normal(SHAPE)).astype(np.float32)
    y = rng.integers(0, c, size=n)
    y[::7] = -100
    p = rng.random(SHAPE).astype(np.float32)
    prob = p / p.sum(axis=1, keepdims=True)
    w = rng.random(c) + 0.5
    for a in (x, y, p, prob, w):
        a.setflags(write=False)
    return {"x": x, "y": y, "binary": p, "prob": prob, "w": w}


#: Every public function, with options that reach its reductions and gradients.
CALLS = {
    "log_softmax": lambda d, b: fastce.log_softmax(d["x"], backend=b),
    "softmax": lambda d, b: fastce.softmax(d["x"], backend=b),
    "logsumexp": lambda d, b: fastce.logsumexp(d["x"], backend=b),
    "cross_entropy": lambda d, b: fastce.cross_entropy(
        d["x"], d["y"], weight=d["w"], label_smoothing=0.1, return_grad=True, backend=b),
    "cross_entropy-prob-sum": lambda d, b: fastce.cross_entropy(
        d["x"], d["prob"], reduction="sum", return_grad=True, backend=b),
    "focal_loss": lambda d, b: fastce.focal_loss(
        d["x"], d["y"], gamma=2.0, alpha=0.25, return_grad=True, backend=b),
    "focal_loss-prob": lambda d, b: fastce.focal_loss(
        d["x"], d["prob"], gamma=0.5, return_grad=True, backend=b),
    "binary_cross_entropy": lambda d, b: fastce.binary_cross_entropy(
        d["x"], d["binary"], pos_weight=d["w"], return_grad=True, backend=b),
    "sigmoid_focal_loss-none": lambda d, b: fastce.sigmoid_focal_loss(
        d["x"], d["binary"], reduction="none", return_grad=True, backend=b),
}


def run(name, backend):
    res = CALLS[name](inputs(), backend)
    return tuple(np.array(r, copy=True) for r in (res if isinstance(res, tuple) else (res,)))


def assert_bitwise(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert g.tobytes() == w.tobytes(), "results differ bitwise"


def effective_threads(backend):
    """Threads a call of `backend` will use now."""
    if backend == "numba":
        return _backends.load("numba").get_num_threads()
    return fastce.get_num_threads()


@pytest.mark.parametrize("name", CALLS)
@pytest.mark.parametrize("backend", ACCEL)
def test_bit_identical_for_any_thread_count(backend, name, threads):
    threads(1)
    serial = run(name, backend)
    for n in range(2, MAX_THREADS + 1):
        with threadpool_limits(limits=n, user_api="openmp"):  # lifts the OpenMP cap to n
            threads(n)
            if backend == "cython":
                assert fastce.get_num_threads() == n
            assert_bitwise(run(name, backend), serial)


def test_threadpool_limits_one(threads):
    threads(0)
    libs = [i for i in threadpool_info() if i["user_api"] == "openmp"]
    assert libs, "no OpenMP runtime visible to threadpoolctl"
    want = run("cross_entropy", "cython")
    with threadpool_limits(limits=1, user_api="openmp"):
        assert fastce.get_num_threads() == 1
        assert_bitwise(run("cross_entropy", "cython"), want)
    with threadpool_limits(limits=1):  # every API
        assert fastce.get_num_threads() == 1


def concurrent_check(backend, n_workers=8):
    """8 Python threads x (function, thread count) tasks on `backend`, each compared
    bitwise with the serial result; AssertionError on a difference."""
    fastce.set_num_threads(1)
    want = {name: run(name, backend) for name in CALLS}
    tasks = [(name, 1 + i % 3) for i, name in enumerate(want)] * 2

    def task(name, k):
        fastce.set_num_threads(k)  # process-wide: the threads race on it, results must not
        return run(name, backend)

    with concurrent.futures.ThreadPoolExecutor(max_workers=n_workers) as pool:
        futures = {pool.submit(task, *t): t for t in tasks}
        for fut in concurrent.futures.as_completed(futures):
            assert_bitwise(fut.result(), want[futures[fut][0]])


def run_child(args, cwd, timeout=CHILD_TIMEOUT):
    """Run `python args` in a fresh process (a crash or a hang there fails one test instead
    of the whole session); the CompletedProcess, killed on timeout."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS_DIR] + sys.path))
    try:
        return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                              timeout=timeout, cwd=cwd, env=env)
    except subprocess.TimeoutExpired as exc:  # subprocess.run kills the child
        pytest.fail(f"child process hung for {timeout} s: {exc.stdout!r} {exc.stderr!r}")


def assert_child_ok(proc, last_line):
    why = f"exit status {proc.returncode}"
    if proc.returncode < 0:
        why = f"killed by {signal.Signals(-proc.returncode).name}"
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and lines and lines[-1] == last_line, \
        f"{why}\nstdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[:3000]}"


@pytest.mark.parametrize("backend", ACCEL)
def test_concurrent_python_threads(backend, tmp_path):
    code = f"import test_threads as t; t.concurrent_check({backend!r}); print('SAME')"
    assert_child_ok(run_child(["-c", code], tmp_path), "SAME")


# --- processes ---------------------------------------------------------------------------------

_CHILD_SCRIPT = textwrap.dedent('''
    import multiprocessing as mp, queue, sys
    import numpy as np
    import fastce

    def compute(backend):
        rng = np.random.default_rng(0)
        x = (3 * rng.standard_normal({shape})).astype(np.float32)
        y = rng.integers(0, {shape}[1], size={shape}[0])
        loss, grad = fastce.cross_entropy(x, y, return_grad=True, backend=backend)
        return np.float64(loss).tobytes() + grad.tobytes()

    def child(backend, q):
        q.put(compute(backend))

    if __name__ == "__main__":
        backend, method = sys.argv[1], sys.argv[2]
        fastce.set_num_threads(2)
        want = compute(backend)  # a multi-threaded call before the child starts
        ctx = mp.get_context(method)
        q = ctx.Queue()
        p = ctx.Process(target=child, args=(backend, q))
        p.start()
        try:
            got = q.get(timeout={timeout})
        except queue.Empty:
            p.kill()
            print("HANG: the child gave no result in {timeout} s", flush=True)
            sys.exit(3)
        p.join({timeout})
        print("EXIT", p.exitcode, "SAME" if got == want else "DIFFERENT", flush=True)
''')


#: fork on every accelerated backend; spawn/forkserver start a fresh interpreter, which
#: the parent's threads cannot affect: the compiled core suffices (a Numba child costs ~5 s).
CHILD_CASES = [pytest.param(p.values[0], "fork", id=f"{p.id}-fork", marks=p.marks)
               for p in ACCEL] + [("cython", "spawn"), ("cython", "forkserver")]


@pytest.mark.parametrize("backend, method", CHILD_CASES)
def test_child_process_after_threaded_call(backend, method, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(_CHILD_SCRIPT.format(shape=SHAPE, timeout=CHILD_TIMEOUT // 2))
    assert_child_ok(run_child([str(script), backend, method], tmp_path), "EXIT 0 SAME")


_SIGINT_SCRIPT = textwrap.dedent('''
    import sys, threading
    import numpy as np
    import fastce

    backend, where = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(0)
    x = (3 * rng.standard_normal((2000, 1000))).astype(np.float32)
    y = rng.integers(0, 1000, size=2000)
    call = lambda: fastce.focal_loss(x, y, gamma=2.0, return_grad=True, backend=backend)
    want_loss, want_grad = call()
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            call()

    if where == "thread":
        worker = threading.Thread(target=loop)
        worker.start()
    try:
        print("READY", flush=True)
        if where == "main":
            loop()
        while worker.is_alive():
            worker.join(0.05)
    except KeyboardInterrupt:
        stop.set()
        if where == "thread":
            worker.join()
        loss, grad = call()
        same = loss.tobytes() == want_loss.tobytes() and grad.tobytes() == want_grad.tobytes()
        print("INTERRUPTED", "SAME" if same else "DIFFERENT", flush=True)
        sys.exit(0)
    print("NOT INTERRUPTED", flush=True)
''')


@pytest.mark.skipif(os.name != "posix", reason="SIGINT to a subprocess")
@pytest.mark.parametrize("where", ["main", "thread"])
@pytest.mark.parametrize("backend", ACCEL)
def test_sigint_during_long_calls(backend, where, tmp_path):
    script = tmp_path / "sigint.py"
    script.write_text(_SIGINT_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), backend, where], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert proc.stdout.readline().strip() == "READY"
        time.sleep(0.3)  # into the loop of calls
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=CHILD_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out + err
    assert out.strip() == "INTERRUPTED SAME", out + err
