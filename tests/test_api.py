"""The public API on the accelerated backends against the NumPy reference.

The matrix: every loss x option set (conftest.LOSS_CASES) x reduction x dtype, and
the softmax family x axis x dtype, compared with backend="numpy"; then the contract
of the API: ``out=``/``grad_out=`` really used, result shapes and dtypes, any memory
layout gives the contiguous result, inputs never modified, results bit-identical for
1 and 2 threads (also under threadpoolctl), and the identities of the math.
"""
from __future__ import annotations

import numpy as np
import pytest

import fastce
import tolerances as tol
from conftest import ACCELERATED, DTYPES, LOSS_CASES, REDUCTIONS, backend_params

ACCEL = backend_params(ACCELERATED)
DTYPE_PARAMS = [pytest.param(np.dtype(d), id=np.dtype(d).name) for d in DTYPES]
SOFTMAX_FAMILY = ("log_softmax", "softmax", "logsumexp")
ELEMENTWISE = ("binary_cross_entropy", "sigmoid_focal_loss")


def loss_shape(case):
    """Shape of the 'none' loss: logits' shape (elementwise) or without the class axis."""
    if case.func in ELEMENTWISE:
        return case.shape
    ax = case.axis % len(case.shape)
    return case.shape[:ax] + case.shape[ax + 1:]


def assert_same(actual, expected, dtype, exact=False):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype == dtype
    if exact:
        np.testing.assert_array_equal(actual, expected)
    else:
        np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64),
                                   **tol.backend(dtype))


# --- backend vs reference ----------------------------------------------------------------

@pytest.mark.parametrize("backend", ACCEL)
@pytest.mark.parametrize("dtype", DTYPE_PARAMS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_loss_matches_reference(loss_case, reduction, dtype, backend):
    x, t = loss_case.inputs(dtype)
    loss, grad = loss_case(x, t, backend, reduction=reduction, return_grad=True)
    ref_loss, ref_grad = loss_case(x, t, "numpy", reduction=reduction, return_grad=True)
    assert np.shape(loss) == (loss_shape(loss_case) if reduction == "none" else ())
    assert_same(loss, ref_loss, dtype)
    assert_same(grad, ref_grad, dtype)
    assert_same(loss_case(x, t, backend, reduction=reduction), loss, dtype, exact=True)


def special_rows(dtype):
    """Rows with +-inf, an all -inf row, huge and tiny values (class axis last)."""
    big = np.finfo(dtype).max / 4
    return np.array([[0.0, -np.inf, 1.0, 2.0], [np.inf, 0.0, 1.0, -np.inf],
                     [-np.inf] * 4, [big, -big, 0.0, big], [1e-3, -1e-3, 0.0, 0.0]], dtype=dtype)


@pytest.mark.parametrize("backend", ACCEL)
@pytest.mark.parametrize("dtype", DTYPE_PARAMS)
@pytest.mark.parametrize("func", SOFTMAX_FAMILY)
@pytest.mark.parametrize("layout", ["2d-last", "2d-axis0", "4d-axis1", "1d", "special"])
def test_softmax_family_matches_reference(func, layout, dtype, backend):
    rng = np.random.default_rng(1)
    x, axis = {"2d-last": ((6, 5), -1), "2d-axis0": ((6, 5), 0), "4d-axis1": ((2, 3, 4, 2), 1),
               "1d": ((7,), 0), "special": (None, -1)}[layout]
    x = special_rows(dtype) if x is None else (3 * rng.standard_normal(x)).astype(dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        got = getattr(fastce, func)(x, axis=axis, backend=backend)
        ref = getattr(fastce, func)(x, axis=axis, backend="numpy")
    want_shape = np.delete(np.array(x.shape), axis).tolist() if func == "logsumexp" else x.shape
    assert got.shape == tuple(want_shape)
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    assert_same(np.nan_to_num(got), np.nan_to_num(ref), dtype)


# --- out= and grad_out= --------------------------------------------------------------------

def _buffer(shape, dtype, order):
    return np.full(shape, -7, dtype=dtype, order=order)


@pytest.mark.parametrize("backend", ACCEL)
@pytest.mark.parametrize("dtype", DTYPE_PARAMS)
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("func, axis", [(f, a) for f in SOFTMAX_FAMILY for a in (-1, 0)])
def test_out_is_used(func, axis, order, dtype, backend):
    x = np.random.default_rng(2).standard_normal((4, 6)).astype(dtype)
    expected = getattr(fastce, func)(x, axis=axis, backend="numpy")
    out = _buffer(expected.shape, dtype, order)
    res = getattr(fastce, func)(x, axis=axis, out=out, backend=backend)
    assert res is out and np.shares_memory(res, out)
    assert_same(out, expected, dtype)


@pytest.mark.parametrize("backend", ACCEL)
@pytest.mark.parametrize("dtype", DTYPE_PARAMS)
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("case", [c for c in LOSS_CASES if c.id in (
    "ce-plain", "ce-kdim-axis1", "ce-axis0", "focal-prob-g2", "bce-3d", "sfocal-g2.0-a0.25")],
    ids=lambda c: c.id)
def test_grad_out_is_used(case, order, dtype, backend):
    x, t = case.inputs(dtype)
    _, expected = case(x, t, "numpy", return_grad=True)
    buf = _buffer(x.shape, dtype, order)
    _, grad = case(x, t, backend, return_grad=True, grad_out=buf)
    assert grad is buf and np.shares_memory(grad, buf)
    assert_same(buf, expected, dtype)


# --- memory layouts ----------------------------------------------------------------------

def _layout(a, kind):
    """`a`'s values in another memory layout."""
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "transposed":
        return np.ascontiguousarray(a.T).T
    if kind == "reversed":
        return np.ascontiguousarray(a[::-1, ::-1])[::-1, ::-1]
    if kind == "strided":
        wide = np.zeros((a.shape[0], 2 * a.shape[1]), dtype=a.dtype)
        wide[:, ::2] = a
        return wide[:, ::2]
    if kind == "readonly":
        b = a.copy()
        b.flags.writeable = False
        return b
    raise ValueError(kind)


LAYOUTS = ("fortran", "transposed", "reversed", "strided", "readonly")
LAYOUT_CASES = [c for c in LOSS_CASES if c.id in (
    "ce-weight-smooth-ignore", "ce-prob-weight-smooth", "focal-g0.5-aarray",
    "focal-prob-g0.5-aarray", "bce-weight-pos_weight", "sfocal-g0.5-a0.25")]


@pytest.mark.parametrize("backend", backend_params())
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", LAYOUT_CASES, ids=lambda c: c.id)
def test_layout_gives_contiguous_result(case, layout, backend):
    x, t = case.inputs(np.float32)
    loss, grad = case(x, t, backend, reduction="none", return_grad=True)
    t2 = _layout(t, layout) if t.ndim == 2 else t
    loss2, grad2 = case(_layout(x, layout), t2, backend, reduction="none", return_grad=True)
    np.testing.assert_array_equal(loss2, loss)
    np.testing.assert_array_equal(grad2, grad)


@pytest.mark.parametrize("backend", backend_params())
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("func", SOFTMAX_FAMILY)
def test_layout_softmax_family(func, layout, backend):
    x = np.random.default_rng(3).standard_normal((5, 7))
    f = getattr(fastce, func)
    np.testing.assert_array_equal(f(_layout(x, layout), backend=backend), f(x, backend=backend))


@pytest.mark.parametrize("backend", backend_params())
@pytest.mark.parametrize("case", LAYOUT_CASES, ids=lambda c: c.id)
def test_broadcast_logits_stride0(case, backend):
    """A stride-0 (broadcast) view of one row equals the materialised array."""
    x, t = case.inputs(np.float64)
    xb = np.broadcast_to(x[1], x.shape)
    assert xb.strides[0] == 0
    loss, grad = case(xb, t, backend, reduction="none", return_grad=True)
    ref_loss, ref_grad = case(xb.copy(), t, backend, reduction="none", return_grad=True)
    np.testing.assert_array_equal(loss, ref_loss)
    np.testing.assert_array_equal(grad, ref_grad)


@pytest.mark.parametrize("backend", backend_params())
@pytest.mark.parametrize("func", SOFTMAX_FAMILY)
def test_broadcast_softmax_family(func, backend):
    xb = np.broadcast_to(np.linspace(-3.0, 3.0, 6), (4, 6))
    f = getattr(fastce, func)
    np.testing.assert_array_equal(f(xb, backend=backend), f(xb.copy(), backend=backend))


# --- inputs never modified ---------------------------------------------------------------

@pytest.mark.parametrize("backend", backend_params())
@pytest.mark.parametrize("case", [c for c in LOSS_CASES if "weight" in c.opts or "alpha" in c.opts
                                  or c.target == "prob" or c.ignored], ids=lambda c: c.id)
def test_inputs_not_modified(case, backend):
    x, t = case.inputs(np.float32)
    kw = case.kwargs()
    before = [a.copy() for a in (x, t, *kw.values()) if isinstance(a, np.ndarray)]
    case(x, t, backend, reduction="mean", return_grad=True)
    after = [a for a in (x, t, *kw.values()) if isinstance(a, np.ndarray)]
    for a, b in zip(after, before):
        np.testing.assert_array_equal(a, b)


# --- threads -----------------------------------------------------------------------------

BIG_SHAPE = (8192, 8)  # 65536 elements > 32768: the accelerated backends use a team


@pytest.mark.parametrize("backend", ACCEL)
@pytest.mark.parametrize("case", [c for c in LOSS_CASES if c.id in (
    "ce-weight-smooth-ignore", "ce-prob-weight-smooth", "focal-g0.5-aarray", "focal-prob-g2",
    "bce-weight-pos_weight", "sfocal-g2.0-a0.25")], ids=lambda c: c.id)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_threads_bit_identical(case, reduction, backend, threads):
    big = type(case)(case.id, case.func, case.target, case.opts, BIG_SHAPE[:1] + case.shape[1:],
                     ignored=case.ignored)
    x, t = big.inputs(np.float32)
    results = []
    for n in (1, 2):
        threads(n)
        results.append(big(x, t, backend, reduction=reduction, return_grad=True))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend", ACCEL)
@pytest.mark.parametrize("func", SOFTMAX_FAMILY)
def test_threads_softmax_family(func, backend, threads):
    x = np.random.default_rng(4).standard_normal(BIG_SHAPE, dtype=np.float32)
    results = []
    for n in (1, 2):
        threads(n)
        assert fastce.get_num_threads() == n
        results.append(getattr(fastce, func)(x, backend=backend))
    np.testing.assert_array_equal(*results)


def test_threadpoolctl_limits_the_core(threads):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    threads(2)
    x = np.random.default_rng(5).standard_normal(BIG_SHAPE)
    y = np.zeros(BIG_SHAPE[0], dtype=np.int64)
    full = fastce.cross_entropy(x, y, backend="cython")
    apis = {i["user_api"] for i in threadpoolctl.threadpool_info()}
    assert "openmp" in apis
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert fastce.get_num_threads() == 1
        assert fastce.cross_entropy(x, y, backend="cython") == full
    assert fastce.get_num_threads() == 2


# --- identities --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPE_PARAMS)
def test_softmax_identities(dtype, backend):
    # multiples of 1/8 in (-16, 16): x + 64 is exact even in float16
    x = np.clip(np.round(32 * np.random.default_rng(6).standard_normal((6, 5))) / 8, -15, 15)
    x = x.astype(dtype)
    t = tol.identity(dtype)
    p = fastce.softmax(x, backend=backend).astype(np.float64)
    lp = fastce.log_softmax(x, backend=backend).astype(np.float64)
    lse = fastce.logsumexp(x, backend=backend).astype(np.float64)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, **t)
    np.testing.assert_allclose(np.exp(lp), p, **t)
    np.testing.assert_allclose(lp, x.astype(np.float64) - lse[:, None], **t)
    shift = dtype.type(64)
    np.testing.assert_allclose(fastce.log_softmax(x + shift, backend=backend).astype(np.float64),
                               lp, **t)
    np.testing.assert_allclose(fastce.logsumexp(x + shift, backend=backend).astype(np.float64),
                               lse + 64, **t)


@pytest.mark.parametrize("target", ["index", "prob"])
def test_ce_grad_rows_sum_to_zero(target, backend):
    case = next(c for c in LOSS_CASES if c.id == f"ce-{'plain' if target == 'index' else 'prob'}")
    x, t = case.inputs(np.float64)
    _, g = fastce.cross_entropy(x, t, label_smoothing=0.1, reduction="sum", return_grad=True,
                                backend=backend)
    np.testing.assert_allclose(g.sum(axis=1), 0.0, **tol.identity(np.float64))


@pytest.mark.parametrize("target", ["index", "prob"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_focal_gamma0_is_cross_entropy(target, reduction, backend):
    case = next(c for c in LOSS_CASES if c.id == f"ce-{'plain' if target == 'index' else 'prob'}")
    x, t = case.inputs(np.float64)
    f = fastce.focal_loss(x, t, gamma=0.0, alpha=None, reduction=reduction, return_grad=True,
                          backend=backend)
    c = fastce.cross_entropy(x, t, reduction=reduction, return_grad=True, backend=backend)
    for a, b in zip(f, c):
        np.testing.assert_allclose(a, b, **tol.identity(np.float64))


def _count(case, x, t):
    """The 'mean' denominator of a case's inputs."""
    kw = case.kwargs()
    if case.func in ELEMENTWISE or case.target == "prob":
        return t.size if case.func in ELEMENTWISE else t.size // x.shape[case.axis]
    keep = t != kw.get("ignore_index", -100)
    if case.func == "cross_entropy" and "weight" in kw:
        return np.asarray(kw["weight"])[t[keep]].sum()
    return keep.sum()


@pytest.mark.parametrize("case", [c for c in LOSS_CASES if c.id in (
    "ce-weight", "ce-ignore", "ce-weight-smooth-ignore", "ce-prob", "ce-kdim-axis1", "ce-axis0",
    "focal-g2.0-aarray", "focal-ignore-neg1", "bce-weight", "sfocal-g0.5-a0.25")],
    ids=lambda c: c.id)
def test_reduction_identities(case, backend):
    """mean * count == sum == sum(none), and the gradients scale the same way."""
    x, t = case.inputs(np.float64)
    (lm, gm), (ls, gs), (ln, gn) = (case(x, t, backend, reduction=r, return_grad=True)
                                    for r in ("mean", "sum", "none"))
    n = _count(case, x, t)
    t64 = tol.identity(np.float64)
    np.testing.assert_allclose(lm * n, ls, **t64)
    np.testing.assert_allclose(ln.sum(), ls, **t64)
    np.testing.assert_allclose(gm * n, gs, **t64)
    np.testing.assert_array_equal(gn, gs)


# --- edge inputs, against hand-computed values -------------------------------------------

_SIG2 = 1 / (1 + np.exp(-2.0))
_P01 = np.exp([0.0, 1.0]) / np.exp([0.0, 1.0]).sum()
EDGES = {
    # id: (call(backend), expected output(s) as nested tuples of arrays)
    "ce-empty-mean": (lambda b: fastce.cross_entropy(np.zeros((0, 3)), np.zeros(0, int),
                                                     return_grad=True, backend=b),
                      (np.nan, np.zeros((0, 3)))),
    "ce-empty-sum": (lambda b: fastce.cross_entropy(np.zeros((0, 3)), np.zeros(0, int),
                                                    reduction="sum", backend=b), 0.0),
    "lse-no-classes": (lambda b: fastce.logsumexp(np.zeros((3, 0)), backend=b), [-np.inf] * 3),
    "bce-0d": (lambda b: fastce.binary_cross_entropy(np.float64(2.0), np.float64(1.0),
                                                     return_grad=True, backend=b),
               (np.log1p(np.exp(-2.0)), _SIG2 - 1)),
    "ce-target-weights-zero-mean": (lambda b: fastce.cross_entropy(
        np.array([[0.0, 0.0, 1.0]]), np.array([0]), weight=np.array([0.0, 1.0, 1.0]),
        return_grad=True, backend=b), (np.nan, np.zeros((1, 3)))),
    "ce-neginf-target-class": (lambda b: fastce.cross_entropy(
        np.array([[-np.inf, 0.0, 1.0]]), np.array([0]), return_grad=True, backend=b),
        (np.inf, [[-1.0, *_P01]])),
    "ce-uint8-ignore-255": (lambda b: fastce.cross_entropy(
        np.array([[0.0, 1.0], [5.0, 5.0]]), np.array([1, 255], np.uint8), ignore_index=255,
        reduction="none", backend=b), [-np.log(_P01[1]), 0.0]),
    "ce-nan-row-only": (lambda b: fastce.cross_entropy(
        np.array([[np.nan, 0.0], [0.0, 1.0]]), np.array([0, 1]), reduction="none", backend=b),
        [np.nan, -np.log(_P01[1])]),
    "bce-inf-logits": (lambda b: fastce.binary_cross_entropy(
        np.array([np.inf, -np.inf]), np.array([1.0, 0.0]), reduction="none", return_grad=True,
        backend=b), ([0.0, 0.0], [0.0, 0.0])),
}


@pytest.mark.parametrize("eid", list(EDGES))
def test_edge_inputs(eid, backend):
    call, expected = EDGES[eid]
    with np.errstate(invalid="ignore"):
        got = call(backend)
    pairs = zip(got, expected) if isinstance(expected, tuple) else [(got, expected)]
    for g, e in pairs:
        np.testing.assert_allclose(np.asarray(g, dtype=np.float64), e, **tol.identity(np.float64))
