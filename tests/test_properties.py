"""Property-based tests (hypothesis, bounded: ``settings(max_examples=50, deadline=None)``).

Random shapes (2-D, or 3-D with the class axis in the middle), dtypes, memory
layouts, options and values (with +-lim spikes: 1e4, or 3e4 in float16) on every
backend:

- every function agrees with the NumPy reference within ``tolerances.backend``;
- shift invariance of log_softmax and cross_entropy (logits on a 1/8 grid, integer
  shifts: exact in every dtype);
- softmax rows sum to 1; cross-entropy gradient rows sum to 0 (index and
  probability targets, weights, label smoothing);
- focal_loss with gamma = 0 and no alpha equals cross_entropy (loss and gradient);
- reductions: "sum" = sum("none"), "mean" = "sum" / denominator, and the same for
  the gradients ("none" gives the gradient of the sum).
Identities use ``tolerances.identity`` of the input dtype.
"""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastce
import tolerances as tol
from test_bad_inputs import LAYOUTS

SETTINGS = settings(max_examples=50, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FLOATS = (np.float16, np.float32, np.float64)
SPIKE = {np.float16: 3e4, np.float32: 1e4, np.float64: 1e4}
LOSSES = ("cross_entropy", "focal_loss", "binary_cross_entropy", "sigmoid_focal_loss")


# --- strategies -------------------------------------------------------------------------------

@st.composite
def logits(draw, dtype=None, grid=False):
    """(array, axis): 2-D (n, C) or 3-D (n, C, k) with axis=1, in a random layout."""
    dtype = draw(st.sampled_from(FLOATS)) if dtype is None else dtype
    n, c = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    three_d = draw(st.booleans())
    shape, axis = ((n, c, draw(st.integers(1, 3))), 1) if three_d else ((n, c), -1)
    width = np.dtype(dtype).itemsize * 8
    if grid:  # multiples of 1/8 in [-32, 32]: shifts by integers stay exact
        elements = st.integers(-256, 256).map(lambda k: k / 8)
    else:
        elements = st.one_of(st.floats(-20, 20, width=width),
                             st.sampled_from([SPIKE[dtype], -SPIKE[dtype], 0.0]))
    x = draw(hnp.arrays(dtype, shape, elements=elements))
    layout = draw(st.sampled_from(["contiguous", *LAYOUTS]))
    return (x if layout == "contiguous" else LAYOUTS[layout](x)), axis


def _class_shape(x, axis):
    return x.shape[:axis % x.ndim] + x.shape[axis % x.ndim + 1:]


@st.composite
def loss_call(draw, x, axis, func=None):
    """(function name, logits, target, options) of a random valid loss call on logits x
    (the elementwise losses get x with the class axis moved last)."""
    func = draw(st.sampled_from(LOSSES)) if func is None else func
    c = x.shape[axis]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    opts = {}
    if func in ("cross_entropy", "focal_loss"):
        if draw(st.booleans()):  # class indices, some ignored
            t = rng.integers(0, c, size=_class_shape(x, axis))
            t.reshape(-1)[rng.random(t.size) < 0.2] = -100
        else:
            p = rng.random(x.shape) ** 3
            t = (p / p.sum(axis=axis, keepdims=True)).astype(x.dtype)
        if func == "cross_entropy":
            opts["label_smoothing"] = draw(st.sampled_from([0.0, 0.1, 1.0]))
            if draw(st.booleans()):
                opts["weight"] = rng.random(c) + 0.25
        else:
            opts["gamma"] = draw(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.5]))
            opts["alpha"] = draw(st.sampled_from([None, 0.25, "vector"]))
            if opts["alpha"] == "vector":
                opts["alpha"] = rng.random(c)
        if axis != -1:
            opts["axis"] = axis
    else:
        x = np.moveaxis(x, axis, -1)
        t = rng.random(x.shape).astype(x.dtype)
        t[rng.random(x.shape) < 0.3] = 1.0
        if func == "binary_cross_entropy":
            if draw(st.booleans()):
                opts["weight"] = rng.random(x.shape[-1:]) + 0.5
            if draw(st.booleans()):
                opts["pos_weight"] = rng.random(x.shape[-1]) * 3
        else:
            opts["gamma"] = draw(st.sampled_from([0.0, 0.5, 2.0]))
            opts["alpha"] = draw(st.sampled_from([0.25, -1.0]))
    return func, x, t, opts


def assert_close(got, want, dtype, kind="backend"):
    t = tol.backend(dtype) if kind == "backend" else tol.identity(dtype)
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64),
                               np.asarray(want, dtype=np.float64), equal_nan=True, **t)


# --- agreement with the reference -------------------------------------------------------------

@SETTINGS
@given(data=st.data())
def test_softmax_family_matches_reference(backend, data):
    x, axis = data.draw(logits())
    for name in ("log_softmax", "softmax", "logsumexp"):
        got = getattr(fastce, name)(x, axis=axis, backend=backend)
        want = getattr(fastce, name)(x, axis=axis, backend="numpy")
        assert got.dtype == x.dtype and got.shape == want.shape
        assert_close(got, want, x.dtype)


@SETTINGS
@given(data=st.data(), reduction=st.sampled_from(["none", "mean", "sum"]))
def test_losses_match_reference(backend, data, reduction):
    x, axis = data.draw(logits())
    func, x, t, opts = data.draw(loss_call(x, axis))
    call = getattr(fastce, func)
    got = call(x, t, reduction=reduction, return_grad=True, backend=backend, **opts)
    want = call(x, t, reduction=reduction, return_grad=True, backend="numpy", **opts)
    for g, w in zip(got, want):
        assert np.asarray(g).dtype == x.dtype and np.shape(g) == np.shape(w)
        assert_close(g, w, x.dtype)


# --- invariants -------------------------------------------------------------------------------

@SETTINGS
@given(data=st.data(), shift=st.integers(-64, 64))
def test_shift_invariance(backend, data, shift):
    x, axis = data.draw(logits(grid=True))
    xs = (x + x.dtype.type(shift)).astype(x.dtype)
    for name in ("log_softmax", "softmax"):
        assert_close(getattr(fastce, name)(xs, axis=axis, backend=backend),
                     getattr(fastce, name)(x, axis=axis, backend=backend), x.dtype, "identity")
    _, _, t, opts = data.draw(loss_call(x, axis, "cross_entropy"))
    for g, w in zip(fastce.cross_entropy(xs, t, return_grad=True, backend=backend, **opts),
                    fastce.cross_entropy(x, t, return_grad=True, backend=backend, **opts)):
        assert_close(g, w, x.dtype, "identity")


@SETTINGS
@given(data=st.data())
def test_softmax_sums_to_one(backend, data):
    x, axis = data.draw(logits())
    s = fastce.softmax(x, axis=axis, backend=backend).astype(np.float64).sum(axis=axis)
    assert_close(s, np.ones_like(s), x.dtype, "identity")


@SETTINGS
@given(data=st.data())
def test_cross_entropy_gradient_rows_sum_to_zero(backend, data):
    x, axis = data.draw(logits())
    _, _, t, opts = data.draw(loss_call(x, axis, "cross_entropy"))
    _, g = fastce.cross_entropy(x, t, reduction="sum", return_grad=True, backend=backend, **opts)
    g = g.astype(np.float64)
    scale = max(1.0, float(np.abs(g).max()))  # the sum cancels terms of this size
    rows = g.sum(axis=axis) / scale
    assert_close(rows, np.zeros_like(rows), x.dtype, "identity")


@SETTINGS
@given(data=st.data(), reduction=st.sampled_from(["none", "mean", "sum"]))
def test_focal_gamma_zero_is_cross_entropy(backend, data, reduction):
    x, axis = data.draw(logits())
    _, _, t, _ = data.draw(loss_call(x, axis, "cross_entropy"))
    kw = {"axis": axis, "reduction": reduction, "return_grad": True, "backend": backend}
    for f, c in zip(fastce.focal_loss(x, t, gamma=0.0, alpha=None, **kw),
                    fastce.cross_entropy(x, t, **kw)):
        assert_close(f, c, x.dtype, "identity")


def _denominator(func, x, t, opts, axis):
    """The "mean" divisor: non-ignored weights (index cross-entropy), non-ignored
    samples (index focal), samples (probabilities), elements (elementwise losses)."""
    if func in ("binary_cross_entropy", "sigmoid_focal_loss"):
        return x.size
    if not np.issubdtype(t.dtype, np.integer):
        return x.size // x.shape[axis]
    keep = t != -100
    if func == "cross_entropy" and "weight" in opts:
        return float(opts["weight"][t[keep]].sum())
    return int(keep.sum())


@SETTINGS
@given(data=st.data())
def test_reduction_identities(backend, data):
    x, axis = data.draw(logits(dtype=np.float64))
    func, x, t, opts = data.draw(loss_call(x, axis))
    call = getattr(fastce, func)
    res = {r: call(x, t, reduction=r, return_grad=True, backend=backend, **opts)
           for r in ("none", "mean", "sum")}
    d = _denominator(func, x, t, opts, axis)
    assert_close(res["sum"][0], np.sum(res["none"][0]), x.dtype, "identity")
    assert_close(res["none"][1], res["sum"][1], x.dtype, "identity")
    if d == 0:  # every target ignored: NaN loss, zero gradient
        assert np.isnan(res["mean"][0]) and not res["mean"][1].any()
        return
    assert_close(res["mean"][0], res["sum"][0] / d, x.dtype, "identity")
    assert_close(res["mean"][1], res["sum"][1] / d, x.dtype, "identity")
