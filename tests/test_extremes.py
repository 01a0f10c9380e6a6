"""Extreme logits against mpmath truths (``tolerances.MPMATH_DPS`` digits).

Rows: +-1e4, +-1e30, +inf, -inf, entirely -inf, subnormals, the float16 limits
(+-65504, 2**-24), one row of C = 100 000 classes and a dominant maximum
([30, 0, 0]: log p = -1.9e-13), in every dtype that represents them.
Functions: log_softmax, softmax, logsumexp, cross_entropy, focal_loss (gamma
0.5 and 2), binary_cross_entropy, sigmoid_focal_loss (gamma 0.5 and 2).
Per-sample losses (``reduction="none"``) and the gradients of their sum are
compared with the truth computed from the input's exact values and rounded to
the input's dtype: ``tolerances.MPMATH`` in float64,
``tolerances.backend(dtype)`` in float32/float16. Gradients are finite wherever
the true gradient is finite. mpmath costs ~1 s for the whole module (the truths
are cached; the 100 000-class row has 2 000 distinct values).

Conventions hit (asserted, NaN where the table says NaN):

=====================================  =========================================
row                                    result
=====================================  =========================================
entirely -inf                          logsumexp -inf; log_softmax, softmax NaN;
                                       cross_entropy/focal loss and gradient NaN
contains +inf (its max is +inf)        logsumexp +inf; log_softmax, softmax,
                                       cross_entropy/focal loss and gradient NaN
                                       for the whole row (inf - inf)
-inf logit at the target               cross_entropy/focal loss +inf, gradient
                                       finite (softmax - one-hot)
-inf logit elsewhere                   log_softmax -inf, softmax 0, gradient 0
x = +-inf in the elementwise losses    the limits: softplus(-inf) = 0,
                                       sigmoid(+-inf) = 1/0; loss +inf only where
                                       the true loss is +inf; finite gradients
=====================================  =========================================
"""
from __future__ import annotations

import functools

import mpmath as mp
import numpy as np
import pytest

import fastce
import tolerances as tol

INF = float("inf")
FLOATS = (np.float16, np.float32, np.float64)
CLASSES = 100_000


def _row_c100000():
    """100 000 logits drawn from 2 000 distinct values (so the mpmath truth needs only
    2 000 exponentials)."""
    rng = np.random.default_rng(7)
    return rng.choice(3 * rng.standard_normal(2000), size=CLASSES).tolist()


#: id -> (row of logits, dtypes that represent it)
ROWS = {
    "pm1e4": ([1e4, -1e4, 0.0, 9999.0], FLOATS),
    "pm1e30": ([1e30, -1e30, 0.0, 1e30 * (1 - 1e-6)], (np.float32, np.float64)),
    "plus-inf": ([INF, 0.0, 1.0], FLOATS),
    "minus-inf": ([-INF, 0.0, 1.0], FLOATS),
    "all-minus-inf": ([-INF, -INF, -INF], FLOATS),
    "subnormal": ("subnormal", FLOATS),
    "f16-limits": ([65504.0, -65504.0, 2.0**-24, 0.0], FLOATS),
    "c100000": ("c100000", (np.float32, np.float64)),
    "dominant-max": ([30.0, 0.0, 0.0], FLOATS),
}
#: "dominant-max": log p of the dominant class is -log1p(2 exp(-30)) = -1.87e-13; every
#: backend must keep its relative accuracy (log1p of the non-max sum, not log(1 + s)), and so
#: 1 - p_t of the focal loss too.
ROW_CASES = [pytest.param(r, d, id=f"{r}-{np.dtype(d).name}") for r, (_, ds) in ROWS.items()
             for d in ds]



def row_values(row_id, dtype):
    """The row's logits in `dtype` (a (1, C) array)."""
    spec = ROWS[row_id][0]
    if spec == "subnormal":
        s = float(np.finfo(dtype).smallest_subnormal)
        spec = [s, -s, 3 * s, 0.0]
    elif spec == "c100000":
        spec = _row_c100000()
    return np.array([spec], dtype=dtype)


def assert_truth(got, truth, dtype):
    """`got` equals the float64 `truth` rounded to `dtype` (NaN/inf at the same places)."""
    want = np.asarray(truth, dtype=np.float64)
    with np.errstate(over="ignore"):
        want = want.astype(dtype).astype(np.float64)
    got = np.asarray(got, dtype=np.float64)
    t = tol.MPMATH if np.dtype(dtype) == np.float64 else tol.backend(dtype)
    np.testing.assert_allclose(got, want, equal_nan=True, **t)


def assert_grad(got, truth, dtype):
    """Finite wherever the true gradient is finite, and equal to it."""
    finite = np.isfinite(np.asarray(truth, dtype=np.float64))
    assert np.isfinite(np.asarray(got)[finite]).all(), \
        "non-finite gradient where the truth is finite"
    assert_truth(got, truth, dtype)


# --- mpmath truths ------------------------------------------------------------------------------

def _mp(v):
    return mp.mpf(float(v))


def _xmul(a, b):
    """a * b with 0 * anything := 0."""
    return mp.mpf(0) if a == 0 else a * b


@functools.lru_cache(maxsize=None)
def softmax_truth(row_id, dtype):
    """(lse as mpf, [log p_k] as mpf, p as float64) of the row, the conventions applied.

    p_k = exp(float64(log p_k)): relative error <= |log p_k| 2**-53, far inside
    tolerances.MPMATH, and it keeps the 100 000-class row cheap."""
    row = row_values(row_id, dtype)[0]
    values, inverse, counts = np.unique(row, return_inverse=True, return_counts=True)
    with mp.workdps(tol.MPMATH_DPS):
        x = [_mp(v) for v in values]  # distinct values, ascending (NaN-free rows only)
        m = x[-1]
        if mp.isinf(m) or mp.isinf(x[0]) and x[0] > 0:  # all -inf, or inf - inf: NaN row
            return m, [mp.nan] * len(row), np.full(len(row), np.nan)
        s = mp.fsum(int(c) * mp.exp(v - m) for v, c in zip(x, counts)) - 1  # minus the max
        log1p_s = mp.log1p(s)
        lp = [(v - m) - log1p_s for v in x]
        return m + log1p_s, [lp[i] for i in inverse], np.exp(_f(lp))[inverse]


def _targets(x):
    """Index targets of the three repeated rows: argmax, argmin, 1."""
    return np.array([int(np.argmax(x)), int(np.argmin(x)), 1])


@functools.lru_cache(maxsize=None)
def index_loss_truth(row_id, dtype, gamma):
    """Per-sample focal loss (gamma None: cross-entropy) and the gradient of their sum,
    for the row repeated with targets _targets, as float64 arrays.

    gradient = dl/dlog p_y * (onehot_y - p), with 1 - p_y = -expm1(log p_y) in mpmath."""
    _, lp, p = softmax_truth(row_id, dtype)
    losses, grads = [], []
    with mp.workdps(tol.MPMATH_DPS):
        for y in _targets(row_values(row_id, dtype)[0]):
            q = -mp.expm1(lp[y])
            if gamma is None:
                losses.append(-lp[y])
                dl = mp.mpf(-1)  # d loss / d log p_y
            else:
                losses.append(-(q ** gamma) * lp[y])
                r = _xmul(mp.exp(lp[y]), lp[y])  # p log p -> 0 as p -> 0; r = 0 where q = 0
                dl = (gamma * r * q ** (gamma - 1) if r != 0 else 0) - q ** gamma
            g = float(dl) * -p
            g[y] = float(dl * q)
            grads.append(g)
    return _f(losses), np.array(grads)


def _softplus(x):
    return x if x == mp.inf else (mp.mpf(0) if x == -mp.inf else mp.log1p(mp.exp(x)))


def _sigmoid(x):
    return mp.mpf(1) / (1 + mp.exp(-x))


BINARY_TARGETS = (0.0, 1.0, 0.3)


@functools.lru_cache(maxsize=None)
def binary_truth(row_id, dtype, gamma, alpha):
    """Elementwise BCE (gamma None) or sigmoid focal loss and gradient, targets rows 0, 1, 0.3.

    At x = +-inf the gradient is the limit, taken at x = +-10**6 (exp(-10**6) is an mpf)."""
    xs = row_values(row_id, dtype)[0]
    losses, grads = [], []
    with mp.workdps(tol.MPMATH_DPS):
        for t in (_mp(np.dtype(dtype).type(v)) for v in BINARY_TARGETS):
            lrow, grow = [], []
            for v in xs:
                x = _mp(v)
                ce = _xmul(t, _softplus(-x)) + _xmul(1 - t, _softplus(x))
                xg = mp.sign(x) * 10**6 if mp.isinf(x) else x
                p, pn = _sigmoid(xg), _sigmoid(-xg)  # 1 - p without cancellation
                if gamma is None:
                    lrow.append(ce)
                    grow.append(p - t)
                    continue
                ceg = _xmul(t, _softplus(-xg)) + _xmul(1 - t, _softplus(xg))
                at = alpha * t + (1 - alpha) * (1 - t)
                mod = p * (1 - t) + pn * t  # 1 - p_t
                lrow.append(at * _xmul(ce, mod ** gamma))
                grow.append(at * ((p - t) * mod ** gamma
                                  + ceg * gamma * mod ** (gamma - 1) * p * pn * (1 - 2 * t)))
            losses.append(lrow)
            grads.append(grow)
    return _f(losses), _f(grads)


def _f(vals):
    return np.array([[float(v) for v in r] for r in vals]) if isinstance(vals[0], list) else \
        np.array([float(v) for v in vals])


# --- the tests ------------------------------------------------------------------------------------

@pytest.mark.parametrize("row_id, dtype", ROW_CASES)
def test_softmax_family(backend, row_id, dtype):
    x = row_values(row_id, dtype)
    lse, lp, p = softmax_truth(row_id, dtype)
    assert_truth(fastce.logsumexp(x, backend=backend), [float(lse)], dtype)
    assert_truth(fastce.log_softmax(x, backend=backend), _f([lp]), dtype)
    assert_truth(fastce.softmax(x, backend=backend), p[None, :], dtype)


@pytest.mark.parametrize("gamma", [None, 0.5, 2.0], ids=["cross_entropy", "focal-0.5", "focal-2"])
@pytest.mark.parametrize("row_id, dtype", ROW_CASES)
def test_index_losses(backend, row_id, dtype, gamma):
    x1 = row_values(row_id, dtype)
    x = np.repeat(x1, 3, axis=0)
    y = _targets(x1[0])
    if gamma is None:
        loss, grad = fastce.cross_entropy(x, y, reduction="none", return_grad=True,
                                          backend=backend)
    else:
        loss, grad = fastce.focal_loss(x, y, gamma=gamma, reduction="none", return_grad=True,
                                       backend=backend)
    want_loss, want_grad = index_loss_truth(row_id, dtype, gamma)
    assert_truth(loss, want_loss, dtype)
    assert_grad(grad, want_grad, dtype)


BINARY = [pytest.param(None, None, id="bce"), pytest.param(0.5, 0.25, id="sfocal-0.5"),
          pytest.param(2.0, 0.25, id="sfocal-2")]


@pytest.mark.parametrize("gamma, alpha", BINARY)
@pytest.mark.parametrize("row_id, dtype", [p for p in ROW_CASES if "c100000" not in p.id])
def test_binary_losses(backend, row_id, dtype, gamma, alpha):
    x = np.repeat(row_values(row_id, dtype), len(BINARY_TARGETS), axis=0)
    t = np.array(BINARY_TARGETS, dtype=dtype)[:, None] * np.ones_like(x)
    if gamma is None:
        loss, grad = fastce.binary_cross_entropy(x, t, reduction="none", return_grad=True,
                                                 backend=backend)
    else:
        loss, grad = fastce.sigmoid_focal_loss(x, t, gamma=gamma, alpha=alpha, reduction="none",
                                               return_grad=True, backend=backend)
    want_loss, want_grad = binary_truth(row_id, dtype, gamma, alpha)
    assert_truth(loss, want_loss, dtype)
    assert_grad(grad, want_grad, dtype)
