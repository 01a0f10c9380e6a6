"""Gradients of every loss, every reduction and option set, on every backend.

Ordinary inputs: float64 central finite differences of the reduced loss (for
"none", of the sum of the per-sample losses, as the API documents). Extreme
inputs (focal gamma < 1 with p_t -> 1, -inf logits under zero-probability
targets, logits of +-1e4), where finite differences or float64 are not an
independent truth: the loss is written in mpmath and differentiated at high
precision; the kernels must give finite gradients equal to it.
"""
from __future__ import annotations

import mpmath
import numpy as np
import pytest

import fastce
import tolerances as tol
from conftest import REDUCTIONS


def finite_difference(f, x, h=tol.FD_STEP):
    """Central differences of the scalar f at x (float64), element by element."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        g[i] = (f(xp) - f(xm)) / (2 * h)
    return g


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradient_finite_difference(loss_case, reduction, backend):
    x, t = loss_case.inputs(np.float64, seed=7, scale=1.5)
    _, grad = loss_case(x, t, backend, reduction=reduction, return_grad=True)
    fd = finite_difference(lambda z: np.sum(loss_case(z, t, backend, reduction=reduction)), x)
    np.testing.assert_allclose(grad, fd, **tol.FD)


# --- mpmath truth for extreme inputs --------------------------------------------------------

def _lp(row):
    lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in row))
    return [v - lse for v in row]


def _ce_index(row, y, eps=0.0):
    lp = _lp(row)
    return (1 - eps) * -lp[y] + eps / len(row) * -mpmath.fsum(lp)


def _ce_prob(row, t):
    return -mpmath.fsum(tc * lc for tc, lc in zip(t, _lp(row)) if tc != 0)


def _focal_index(row, y, gamma, alpha=1.0):
    lpt = _lp(row)[y]
    return -alpha * (-mpmath.expm1(lpt)) ** gamma * lpt


def _focal_prob(row, t, gamma):
    return -mpmath.fsum(tc * (-mpmath.expm1(lc)) ** gamma * lc
                        for tc, lc in zip(t, _lp(row)) if tc != 0)


def _softplus(v):
    return mpmath.log1p(mpmath.exp(v))


def _bce(row, t, pos_weight=1.0):
    return mpmath.fsum(pos_weight * tc * _softplus(-v) + (1 - tc) * _softplus(v)
                       for v, tc in zip(row, t))


def _sfocal(row, t, gamma, alpha=0.25):
    total = 0
    for v, tc in zip(row, t):
        p = 1 / (1 + mpmath.exp(-v))
        ce = tc * _softplus(-v) + (1 - tc) * _softplus(v)
        pt = p * tc + (1 - p) * (1 - tc)
        total += (alpha * tc + (1 - alpha) * (1 - tc)) * ce * (1 - pt) ** gamma
    return total


def mp_loss_and_grad(row_loss, x, t, *params):
    """sum_i row_loss(x_i, t_i, *params) and its gradient, in mpmath. t: (n,) class indices
    or (n, C) targets. -inf logits are left out of their row (the limit) with gradient 0."""
    loss, grad = mpmath.mpf(0), np.zeros_like(x)
    with mpmath.workdps(tol.MPMATH_DPS):
        for i, row in enumerate(x):
            keep = [k for k, v in enumerate(row) if v != -np.inf]
            ti = [t[i, k] for k in keep] if t.ndim == 2 else keep.index(t[i])
            vals = [mpmath.mpf(float(row[k])) for k in keep]

            def f(*v, _ti=ti):
                return row_loss(list(v), _ti, *params)

            loss += f(*vals)
            for j, k in enumerate(keep):
                order = tuple(int(j == m) for m in range(len(keep)))
                grad[i, k] = float(mpmath.diff(f, vals, order))
    return float(loss), grad


_P = np.array([[0.0, 0.7, 0.3], [0.5, 0.0, 0.5]])
EXTREME = {
    # id: (fastce function, kwargs, logits, target, mpmath row loss, extra per-row args)
    "focal-g0.5-pt-to-1": ("focal_loss", {"gamma": 0.5, "alpha": None},
                           [[40.0, 0.0, 0.0], [0.0, 38.0, -5.0], [0.5, 1.0, -1.0]], [0, 1, 2],
                           _focal_index, (0.5,)),
    "focal-g0.25-pt-to-1-alpha": ("focal_loss", {"gamma": 0.25, "alpha": 0.5},
                                  [[20.0, -3.0, 0.0], [1.0, 0.0, 25.0], [0.5, 1.0, -1.0]],
                                  [0, 2, 0],
                                  _focal_index,
                                  (0.25, 0.5)),
    "focal-prob-g0.5-pt-to-1": ("focal_loss", {"gamma": 0.5, "alpha": None},
                                [[-30.0, 10.0, 0.0], [35.0, 0.0, 1.0]], _P[::-1].copy(),
                                _focal_prob, (0.5,)),
    "sfocal-g0.5-saturated": ("sigmoid_focal_loss", {"gamma": 0.5, "alpha": 0.25},
                              [[40.0, -40.0, 30.0, 0.3]], [[1.0, 0.0, 0.0, 1.0]], _sfocal,
                              (0.5, 0.25)),
    "ce-prob-neginf": ("cross_entropy", {}, [[-np.inf, 1.0, 0.0], [2.0, -np.inf, 0.5]], _P,
                       _ce_prob, ()),
    "focal-prob-neginf": ("focal_loss", {"gamma": 2.0, "alpha": None},
                          [[-np.inf, 1.0, 0.0], [2.0, -np.inf, 0.5]], _P, _focal_prob, (2.0,)),
    "ce-index-neginf": ("cross_entropy", {}, [[-np.inf, 1.0, 0.0], [2.0, -np.inf, 0.5]], [1, 2],
                        _ce_index, ()),
    "ce-1e4": ("cross_entropy", {"label_smoothing": 0.1}, [[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0]],
               [1, 0], _ce_index, (0.1,)),
    "ce-prob-1e4": ("cross_entropy", {}, [[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0]], _P, _ce_prob, ()),
    "focal-1e4": ("focal_loss", {"gamma": 2.0, "alpha": None},
                  [[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0]], [1, 1], _focal_index, (2.0,)),
    "bce-1e4": ("binary_cross_entropy", {"pos_weight": [2.0, 2.0, 2.0]},
                [[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0]], [[0.0, 1.0, 0.5], [1.0, 0.0, 1.0]],
                _bce, (2.0,)),
    "sfocal-1e4": ("sigmoid_focal_loss", {"gamma": 2.0, "alpha": 0.25},
                   [[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0]], [[0.0, 1.0, 0.5], [1.0, 0.0, 1.0]],
                   _sfocal, (2.0, 0.25)),
}


@pytest.mark.parametrize("reduction", ["sum", "none"])
@pytest.mark.parametrize("cid", list(EXTREME))
def test_gradient_extreme_inputs(cid, reduction, backend):
    func, kw, x, t, row_loss, args = EXTREME[cid]
    x = np.array(x, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64 if np.asarray(t).dtype.kind == "f" else np.int64)
    kw = {k: (np.asarray(v) if isinstance(v, list) else v) for k, v in kw.items()}
    loss, grad = getattr(fastce, func)(x, t, reduction=reduction, return_grad=True,
                                       backend=backend, **kw)
    assert np.isfinite(grad).all() and np.isfinite(loss).all(), (loss, grad)
    want_loss, want_grad = mp_loss_and_grad(row_loss, x, t, *args)
    # absolute accuracy on the scale of the batch: a saturated row's ~1e-20 terms may round
    # to 0 (log p_t rounds to 0 once p_t > 1 - 2**-53)
    rtol = tol.MPMATH["rtol"]
    np.testing.assert_allclose(np.sum(loss), want_loss, rtol=rtol, atol=rtol * max(1, want_loss))
    np.testing.assert_allclose(grad, want_grad, rtol=rtol,
                               atol=rtol * max(1.0, np.max(np.abs(want_grad))))
