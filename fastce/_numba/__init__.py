"""The ``numba`` backend: the backend contract of ``fastce._backends`` on Numba kernels.

This module is thin glue; the math is in ``kernels.py`` (a mirror of the C
core, see its design note). Here, per call:

- each matrix becomes a read-only 1-D unit-stride view of its buffer plus its
  row stride in elements (0 for a broadcast row), so every layout the contract
  allows (sliced rows, ``np.broadcast_to`` rows, read-only inputs) runs through
  one compiled specialisation per dtype, with vectorisable class loops;
- absent options (None) become a dummy array and a ``has_*`` flag, the
  reduction string an int;
- the dtype of ``x`` (float32 / float64) selects the specialisation (Numba
  compiles each on first use and caches it on disk, ``cache=True``);
- inputs too small to repay a parallel start-up run the serial path
  (``par=False``), others set Numba's thread count for the call only.

Importing ``fastce`` never imports this module (nor Numba); only
``fastce._backends.load("numba")`` does.
"""
from __future__ import annotations

import os
import threading

import numba
import numpy as np
from numpy.lib.stride_tricks import as_strided

# --- threading layer (must be chosen before the first parallel launch) -------------
# Numba's default order is tbb > omp > workqueue. Its "omp" layer is GNU OpenMP on
# Linux wheels, which is not fork-safe: after one parallel call, a forked child (a
# multiprocessing "fork" pool, a test runner) hangs or dies in the next kernel.
# So, unless the user chose a layer (NUMBA_THREADING_LAYER / ..._PRIORITY):
#   tbb        if installed: thread-safe, fork-safe, low start-up cost;
#   workqueue  otherwise: always available and fork-safe. It is NOT thread-safe:
#              two Python threads launching parallel regions at once abort the
#              process (Numba releases the GIL around a parallel launch). So at
#              most one of our calls runs the parallel path at a time (_PAR_LOCK);
#              a concurrent call takes the serial path instead of waiting, which
#              gives the same bits. Its start-up is slow (50-90 us per parallel
#              region on a 2-vCPU VM): hence the higher _PAR_MIN_ELEMS below.
#   omp        last resort only.
if (numba.config.THREADING_LAYER == "default"
        and "NUMBA_THREADING_LAYER_PRIORITY" not in os.environ):
    numba.config.THREADING_LAYER_PRIORITY = ["tbb", "workqueue", "omp"]

from fastce._numba import kernels as _k  # noqa: E402  (after the layer is set)

__all__ = ["log_softmax", "softmax", "logsumexp", "cross_entropy", "cross_entropy_prob",
           "focal_loss", "focal_loss_prob", "binary_cross_entropy", "sigmoid_focal_loss",
           "set_num_threads", "get_num_threads"]

_REDUCTIONS = {"none": _k.NONE, "mean": _k.MEAN, "sum": _k.SUM}


def _tbb_available():
    try:
        import tbb  # noqa: F401
    except ImportError:
        return False
    return True


# Below this many elements a call stays on the calling thread. The C core uses 2^15
# with GNU OpenMP's spinning team. Numba's workqueue wakes sleeping threads, 50-90 us
# per parallel region on a 2-vCPU VM, while the serial kernel does ~0.7 ns/element
# (float32 cross-entropy fwd+grad): two threads pay off from ~2^18 elements.
_PAR_MIN_ELEMS = 1 << 15 if _tbb_available() else 1 << 18

# --- threads ------------------------------------------------------------------------
_default_threads = 0  # 0: all of Numba's threads (NUMBA_NUM_THREADS)


def set_num_threads(n):
    """Default thread count of this backend (0 restores the default: all of Numba's)."""
    global _default_threads
    n = int(n)
    _default_threads = n if n > 0 else 0


def get_num_threads():
    cap = numba.config.NUMBA_NUM_THREADS
    return min(_default_threads, cap) if _default_threads > 0 else cap


def _threads_for(n_threads, n, c):
    """Threads for a (n, c) call: 1 for small inputs or a single block."""
    if n * c < _PAR_MIN_ELEMS or numba.config.DISABLE_JIT:
        return 1
    nt = int(n_threads) if n_threads and n_threads > 0 else get_num_threads()
    nt = min(nt, numba.config.NUMBA_NUM_THREADS, -(-n // _k._block_rows(c)))
    return max(nt, 1)


_PAR_LOCK = threading.Lock()  # one parallel launch at a time (see the layer note)


def _run(kernel, n_threads, n, c, *args):
    """kernel(*args, par) with Numba's thread count set for this call only."""
    nt = _threads_for(n_threads, n, c)
    if nt <= 1 or not _PAR_LOCK.acquire(blocking=False):
        kernel(*args, False)
        return
    try:
        _run_parallel(kernel, nt, args)
    finally:
        _PAR_LOCK.release()


def _run_parallel(kernel, nt, args):
    prev = numba.get_num_threads()
    numba.set_num_threads(nt)
    # Numba's default (static) split of the blocks: with the workqueue layer, handing
    # out one block at a time (set_parallel_chunksize(1)) measured 1.5-2.3x slower
    # with 2 threads at (65536, 128) float32 and no better at (4096, 1000). Results
    # do not depend on which thread runs which block.
    try:
        kernel(*args, True)
    finally:
        numba.set_num_threads(prev)


# --- array normalisation -----------------------------------------------------------
_NO_F64 = np.zeros(1)
_NO_F64.flags.writeable = False
_NO_GRAD = {np.dtype(np.float32): np.zeros(1, np.float32),
            np.dtype(np.float64): np.zeros(1, np.float64)}


def _mat(a):
    """(1-D read-only unit-stride view over a 2-D array's elements, row stride in
    elements). The class axis must have unit stride (the contract)."""
    n, c = a.shape
    isz = a.itemsize
    rs = a.strides[0] // isz if n > 1 else c
    ext = (n - 1) * rs + c if n > 0 and c > 0 else 0
    return as_strided(a, shape=(ext,), strides=(isz,), writeable=False), rs


def _vec(a, dtype):
    """1-D read-only C-contiguous `dtype` view (a copy only if needed)."""
    v = np.ascontiguousarray(a, dtype=dtype).view()
    v.flags.writeable = False
    return v


def _opt(a):
    """(read-only float64 vector, present) for an optional (C,) option."""
    if a is None:
        return _NO_F64, False
    return _vec(a, np.float64), True


def _grad(grad, x):
    """(flat writable gradient, present)."""
    if grad is None:
        return _NO_GRAD[x.dtype], False
    return grad.reshape(-1), True


def _elem_weight(weight, n, c):
    """(flat view, row stride, col stride, present) of a float64 (n, C) weight view."""
    if weight is None:
        return _NO_F64, 0, 0, False
    isz = weight.itemsize
    wrs = weight.strides[0] // isz if n > 1 else 0
    wcs = weight.strides[1] // isz if c > 1 else 0
    ext = (n - 1) * wrs + (c - 1) * wcs + 1 if n > 0 and c > 0 else 0
    return as_strided(weight, shape=(ext,), strides=(isz,), writeable=False), wrs, wcs, True


# --- the contract ----------------------------------------------------------------------
def _softmax_family(which, x, out, n_threads):
    n, c = x.shape
    if n == 0 or (c == 0 and which != 2):
        return
    xf, rs = _mat(x)
    _run(_k._softmax_family, n_threads, n, c, which, xf, rs, n, c, out.reshape(-1))


def log_softmax(x, out, n_threads):
    """out = log_softmax(x) along the rows."""
    _softmax_family(0, x, out, n_threads)


def softmax(x, out, n_threads):
    """out = softmax(x) along the rows."""
    _softmax_family(1, x, out, n_threads)


def logsumexp(x, out, n_threads):
    """out[i] = logsumexp(x[i]); an all -inf (or empty) row gives -inf."""
    _softmax_family(2, x, out, n_threads)


def cross_entropy(x, y, weight, ignore_index, label_smoothing, reduction, loss, grad,
                  n_threads):
    """Cross-entropy with class-index targets (fastce_cross_entropy_*)."""
    n, c = x.shape
    xf, rs = _mat(x)
    w, has_w = _opt(weight)
    g, has_g = _grad(grad, x)
    _run(_k._cross_entropy, n_threads, n, c, xf, rs, n, c, _vec(y, np.int64), w, has_w,
         int(ignore_index), float(label_smoothing), _REDUCTIONS[reduction], loss, g, has_g)


def cross_entropy_prob(x, t, weight, label_smoothing, reduction, loss, grad, n_threads):
    """Cross-entropy with probability targets (fastce_cross_entropy_prob_*)."""
    n, c = x.shape
    xf, rs = _mat(x)
    tf, trs = _mat(t)
    w, has_w = _opt(weight)
    g, has_g = _grad(grad, x)
    _run(_k._cross_entropy_prob, n_threads, n, c, xf, rs, n, c, tf, trs, w, has_w,
         float(label_smoothing), _REDUCTIONS[reduction], loss, g, has_g)


def focal_loss(x, y, gamma, alpha, class_alpha, ignore_index, reduction, loss, grad,
               n_threads):
    """Softmax focal loss with class-index targets (fastce_focal_loss_*)."""
    n, c = x.shape
    xf, rs = _mat(x)
    ca, has_ca = _opt(class_alpha)
    g, has_g = _grad(grad, x)
    _run(_k._focal_loss, n_threads, n, c, xf, rs, n, c, _vec(y, np.int64), float(gamma),
         float(alpha), ca, has_ca, int(ignore_index), _REDUCTIONS[reduction], loss, g, has_g)


def focal_loss_prob(x, t, gamma, alpha, class_alpha, reduction, loss, grad, n_threads):
    """Softmax focal loss with probability targets (fastce_focal_loss_prob_*)."""
    n, c = x.shape
    xf, rs = _mat(x)
    tf, trs = _mat(t)
    ca, has_ca = _opt(class_alpha)
    g, has_g = _grad(grad, x)
    _run(_k._focal_loss_prob, n_threads, n, c, xf, rs, n, c, tf, trs, float(gamma),
         float(alpha), ca, has_ca, _REDUCTIONS[reduction], loss, g, has_g)


def _binary(which, x, t, weight, pos_weight, gamma, alpha, reduction, loss, grad, n_threads):
    n, c = x.shape
    xf, rs = _mat(x)
    tf, trs = _mat(t)
    pw, has_pw = _opt(pos_weight)
    w, wrs, wcs, has_w = _elem_weight(weight, n, c)
    g, has_g = _grad(grad, x)
    _run(_k._binary, n_threads, n, c, which, xf, rs, n, c, tf, trs, pw, has_pw, w, wrs, wcs,
         has_w, float(gamma), float(alpha), _REDUCTIONS[reduction], loss, g, has_g)


def binary_cross_entropy(x, t, weight, pos_weight, reduction, loss, grad, n_threads):
    """Elementwise BCE with logits (fastce_binary_cross_entropy_*)."""
    _binary(0, x, t, weight, pos_weight, 2.0, -1.0, reduction, loss, grad, n_threads)


def sigmoid_focal_loss(x, t, gamma, alpha, reduction, loss, grad, n_threads):
    """Elementwise sigmoid focal loss (fastce_sigmoid_focal_loss_*)."""
    _binary(1, x, t, None, None, gamma, alpha, reduction, loss, grad, n_threads)
