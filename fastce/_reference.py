"""The NumPy reference backend (``backend="numpy"``): ground truth and benchmark baseline.

Plain, vectorised NumPy in float64, written for obviousness rather than speed;
it implements the backend contract of ``fastce._backends`` and the math of
``include/fastce.h``. Conventions shared with the accelerated backends:
0 * log 0 := 0 (a zero target or weight contributes nothing, even at a -inf
logit); 1 - p is formed as -expm1(log p); the focal gradient uses r = log p / (1 - p)
(limit -1) so it stays finite for gamma < 1.
"""
from __future__ import annotations

import numpy as np

#: NaN and inf inputs propagate as IEEE prescribes (documented); NumPy's warnings about
#: them would only be noise for the caller.
_ieee = np.errstate(invalid="ignore", over="ignore", divide="ignore")


def _shifted(x):
    """Row-wise (x - m, log(sum(exp(x - m)))) in float64, m = the row max (0 where not finite).

    log s is log1p(s - 1) with s - 1 = (number of maxima - 1) + (sum of the others):
    the max terms are exactly 1, so no (1 + tiny) - 1 cancellation when one class dominates."""
    m = np.max(x, axis=1, keepdims=True) if x.shape[1] else np.full((x.shape[0], 1), -np.inf)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d = x - m
        rest = np.sum(np.where(d == 0, 0.0, np.exp(d)), axis=1)
        return d, m[:, 0], np.log1p((np.sum(d == 0, axis=1) - 1.0) + rest)


def _lse(x):
    """Row-wise log-sum-exp in float64 (all -inf row -> -inf, +inf -> +inf)."""
    _, m, ls = _shifted(x)
    return ls + m


def _log_softmax(x):
    """(x - m) - log(sum(exp(x - m))): shifted first, so two equal huge maxima give -log 2;
    a row whose max is +inf is all NaN (as the formula and torch give), an all -inf row too."""
    x = np.asarray(x, dtype=np.float64)
    d, m, ls = _shifted(x)
    with np.errstate(invalid="ignore"):
        lp = d - ls[:, None]
    lp[ls == np.inf] = np.nan
    return lp


def _xmul(a, v):
    """a * v with 0 where a == 0 (so 0 * inf := 0)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where(a != 0, a * v, 0.0)


def _reduce(l, reduction, denominator, loss):
    """Write the reduced loss; return the gradient scale."""
    if reduction == "none":
        loss[:] = l.reshape(-1)
        return 1.0
    total = float(np.sum(l, dtype=np.float64))
    if reduction == "sum":
        loss[0] = total
        return 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        loss[0] = np.float64(total) / np.float64(denominator)
    return 1.0 / denominator if denominator != 0 else 0.0


def _write(dst, value):
    if dst is not None:
        with np.errstate(invalid="ignore", over="ignore"):
            dst[...] = value


# --- softmax family -------------------------------------------------------------

@_ieee
def log_softmax(x, out, n_threads):
    _write(out, _log_softmax(x))


@_ieee
def softmax(x, out, n_threads):
    with np.errstate(invalid="ignore"):
        _write(out, np.exp(_log_softmax(x)))


@_ieee
def logsumexp(x, out, n_threads):
    _write(out, _lse(np.asarray(x, dtype=np.float64)))


# --- cross-entropy ------------------------------------------------------------------

@_ieee
def cross_entropy(x, y, weight, ignore_index, label_smoothing, reduction, loss, grad, n_threads):
    n, c = x.shape
    lp = _log_softmax(x)
    w = np.ones(c) if weight is None else np.asarray(weight, dtype=np.float64)
    keep = y != ignore_index
    yy = np.where(keep, y, 0)
    rows = np.arange(n)
    eps = float(label_smoothing)
    wy = np.where(keep, w[yy], 0.0)
    with np.errstate(invalid="ignore"):
        l = (1.0 - eps) * wy * -lp[rows, yy]
        if eps > 0:
            l = l + eps / c * -np.sum(_xmul(w[None, :], lp), axis=1)
    l = np.where(keep, l, 0.0)
    scale = _reduce(l, reduction, np.sum(wy), loss)
    if grad is not None:
        p = np.exp(lp)
        a = (1.0 - eps) * wy + eps / c * np.sum(w)
        g = a[:, None] * p - eps / c * w[None, :]
        # at the target, p_y - 1 = expm1(logp_y): no cancellation as p_y -> 1
        lpy = lp[rows, yy]
        with np.errstate(invalid="ignore"):
            g[rows, yy] = (1.0 - eps) * wy * np.expm1(lpy) + eps / c * (np.sum(w) * p[rows, yy]
                                                                        - w[yy])
        g[~keep] = 0.0
        _write(grad, scale * g)


@_ieee
def cross_entropy_prob(x, t, weight, label_smoothing, reduction, loss, grad, n_threads):
    n, c = x.shape
    lp = _log_softmax(x)
    w = np.ones(c) if weight is None else np.asarray(weight, dtype=np.float64)
    eps = float(label_smoothing)
    a = w[None, :] * ((1.0 - eps) * np.asarray(t, dtype=np.float64) + eps / c)
    l = -np.sum(_xmul(a, lp), axis=1)
    scale = _reduce(l, reduction, n, loss)
    if grad is not None:
        with np.errstate(invalid="ignore"):
            _write(grad, scale * (np.exp(lp) * np.sum(a, axis=1, keepdims=True) - a))


# --- focal loss -----------------------------------------------------------------------

def _focal_parts(lp, gamma):
    """For log-probabilities lp: (q = 1 - p, q**gamma, G = q**gamma (1 - gamma p lp/q))."""
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.exp(lp)
        q = -np.expm1(lp)
        qg = np.power(q, gamma)
        r = np.where(q > 0, lp / np.where(q > 0, q, 1.0), -1.0)
        pr = np.where(p > 0, p * r, 0.0)
    return q, qg, qg * (1.0 - gamma * pr)


def _alpha_vector(alpha, class_alpha, c):
    if class_alpha is not None:
        return np.asarray(class_alpha, dtype=np.float64)
    return np.full(c, alpha if alpha >= 0 else 1.0)


@_ieee
def focal_loss(x, y, gamma, alpha, class_alpha, ignore_index, reduction, loss, grad, n_threads):
    n, c = x.shape
    lp = _log_softmax(x)
    keep = y != ignore_index
    yy = np.where(keep, y, 0)
    rows = np.arange(n)
    at = np.where(keep, _alpha_vector(alpha, class_alpha, c)[yy], 0.0)
    lpt = lp[rows, yy]
    q, qg, G = _focal_parts(lpt, float(gamma))
    l = np.where(keep, at * qg * (0.0 - lpt), 0.0)
    scale = _reduce(l, reduction, np.count_nonzero(keep), loss)
    if grad is not None:
        with np.errstate(invalid="ignore"):
            g = (at * G)[:, None] * np.exp(lp)
            g[rows, yy] = at * G * np.expm1(lpt)
        g[~keep] = 0.0
        _write(grad, scale * g)


@_ieee
def focal_loss_prob(x, t, gamma, alpha, class_alpha, reduction, loss, grad, n_threads):
    n, c = x.shape
    lp = _log_softmax(x)
    a = _alpha_vector(alpha, class_alpha, c)[None, :] * np.asarray(t, dtype=np.float64)
    q, qg, G = _focal_parts(lp, float(gamma))
    l = np.sum(_xmul(a, qg * (0.0 - lp)), axis=1)
    scale = _reduce(l, reduction, n, loss)
    if grad is not None:
        gk = _xmul(a, G)
        gs = np.sum(gk, axis=1, keepdims=True)
        with np.errstate(invalid="ignore"):
            _write(grad, scale * (np.exp(lp) * (gs - gk) - _xmul(gk, q)))


# --- elementwise sigmoid losses ---------------------------------------------------------

def _sigmoid_parts(x):
    """softplus(x), softplus(-x), sigmoid(x), sigmoid(-x), all without overflow."""
    x = np.asarray(x, dtype=np.float64)
    sp = np.logaddexp(0.0, x)
    spn = np.logaddexp(0.0, -x)
    return sp, spn, np.exp(-spn), np.exp(-sp)


@_ieee
def binary_cross_entropy(x, t, weight, pos_weight, reduction, loss, grad, n_threads):
    n, c = x.shape
    t = np.asarray(t, dtype=np.float64)
    sp, spn, sig, sign = _sigmoid_parts(x)
    w = 1.0 if weight is None else np.asarray(weight, dtype=np.float64)
    pwt = t if pos_weight is None else np.asarray(pos_weight, dtype=np.float64)[None, :] * t
    l = w * (_xmul(pwt, spn) + _xmul(1.0 - t, sp))
    scale = _reduce(l, reduction, n * c, loss)
    if grad is not None:
        _write(grad, scale * w * ((1.0 - t) * sig - pwt * sign))


@_ieee
def sigmoid_focal_loss(x, t, gamma, alpha, reduction, loss, grad, n_threads):
    n, c = x.shape
    t = np.asarray(t, dtype=np.float64)
    sp, spn, p, pn = _sigmoid_parts(x)
    ce = _xmul(t, spn) + _xmul(1.0 - t, sp)
    m = p * (1.0 - t) + pn * t
    mg = np.power(m, float(gamma))
    at = alpha * t + (1.0 - alpha) * (1.0 - t) if alpha >= 0 else 1.0
    l = at * ce * mg
    scale = _reduce(l, reduction, n * c, loss)
    if grad is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(m > 0, p * pn / np.where(m > 0, m, 1.0), 1.0)
        g = at * ((p * (1.0 - t) - pn * t) * mg + gamma * _xmul(r, ce) * mg * (1.0 - 2.0 * t))
        _write(grad, scale * g)


def set_num_threads(n):  # the reference is single-threaded
    pass
