"""The ``numba`` backend (fastce._numba) against the C core, at the backend contract.

Every contract function is called on the Numba module and on the C core's
bindings (``fastce._cython._core``) with identical, already-normalised
arguments (the contract of ``fastce._backends``), and the outputs must agree:

    |numba - core| <= RTOL * |core| + RTOL * max|core|      (finite entries)

with RTOL = 1e-5 for float32 and 1e-12 for float64, and identical NaN / +-inf
positions. Why these tolerances: both backends run the same algorithm with the
same float32/float64 split, but the exponentials differ in the last bit (ours:
< 1 ulp, see ``kernels.py``; glibc libmvec: < ~2 ulp) and vectorised float64 row
sums are added in a compiler-chosen order. That is a few ulp of the dtype,
far below RTOL; the absolute floor (RTOL times the array's largest magnitude)
covers entries that cancel to ~0 (a gradient p - t with p ~ t).

Also: bit-identical results for 1 and 2 threads, the accuracy of the
vectorised exp (sweep incl. extremes, vs float64 exp and mpmath), finite
gradients where the true gradient is finite, the central fast-math flags,
that ``import fastce`` does not import Numba, and a run of the contract tests
with NUMBA_DISABLE_JIT=1 so the kernel lines execute as plain Python.
"""
from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba")
nb = pytest.importorskip("fastce._numba")
cy = pytest.importorskip("fastce._cython._core")
from fastce._numba import kernels as K  # noqa: E402
from tolerances import LOG1P_UNIT_F32_ULPS  # noqa: E402

JITLESS = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")
RTOL = {np.float32: 1e-5, np.float64: 1e-12}
DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]
REDUCTIONS = ["none", "mean", "sum"]
ELEMENTWISE = ("binary_cross_entropy", "sigmoid_focal_loss")
PKG = pathlib.Path(nb.__file__).parent
ROOT = PKG.parent.parent


# --- helpers ------------------------------------------------------------------------
def call(mod, func, x, tgt=None, reduction="mean", grad=True, n_threads=1, **kw):
    """Run contract function `func` of backend module `mod`; returns (out,) or (loss, grad)."""
    n, c = x.shape
    if func in ("log_softmax", "softmax", "logsumexp"):
        out = np.full((n,) if func == "logsumexp" else (n, c), np.nan, x.dtype)
        getattr(mod, func)(x, out, n_threads)
        return (out,)
    size = 1 if reduction != "none" else (n * c if func in ELEMENTWISE else n)
    loss = np.full(size, np.nan)
    g = np.full((n, c), np.nan, x.dtype) if grad else None
    if func == "cross_entropy":
        mod.cross_entropy(x, tgt, kw.get("weight"), kw.get("ignore_index", -100),
                          kw.get("label_smoothing", 0.0), reduction, loss, g, n_threads)
    elif func == "cross_entropy_prob":
        mod.cross_entropy_prob(x, tgt, kw.get("weight"), kw.get("label_smoothing", 0.0),
                               reduction, loss, g, n_threads)
    elif func == "focal_loss":
        mod.focal_loss(x, tgt, kw.get("gamma", 2.0), kw.get("alpha", -1.0),
                       kw.get("class_alpha"), kw.get("ignore_index", -100), reduction, loss, g,
                       n_threads)
    elif func == "focal_loss_prob":
        mod.focal_loss_prob(x, tgt, kw.get("gamma", 2.0), kw.get("alpha", -1.0),
                            kw.get("class_alpha"), reduction, loss, g, n_threads)
    elif func == "binary_cross_entropy":
        mod.binary_cross_entropy(x, tgt, kw.get("weight"), kw.get("pos_weight"), reduction, loss,
                                 g, n_threads)
    elif func == "sigmoid_focal_loss":
        mod.sigmoid_focal_loss(x, tgt, kw.get("gamma", 2.0), kw.get("alpha", -1.0), reduction,
                               loss, g, n_threads)
    else:  # pragma: no cover
        raise ValueError(func)
    return (loss, g) if grad else (loss,)


def target_kind(func):
    if func in ("cross_entropy", "focal_loss"):
        return "index"
    if func in ("cross_entropy_prob", "focal_loss_prob"):
        return "prob"
    if func in ELEMENTWISE:
        return "binary"
    return None


def make(func, dtype, n=7, c=5, seed=0, scale=3.0):
    """(logits, target) drawn reproducibly; probability targets have exact zeros."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, c)) * scale).astype(dtype)
    kind = target_kind(func)
    if kind == "index":
        t = rng.integers(0, c, n).astype(np.int64)
    elif kind == "prob":
        t = rng.random((n, c))
        t[rng.random((n, c)) < 0.3] = 0.0
        t[:, 0] += 1e-3
        t = (t / t.sum(1, keepdims=True)).astype(dtype)
    elif kind == "binary":
        t = rng.random((n, c)).astype(dtype)
        t[::2, ::2] = 1.0
        t[1::3, 1::2] = 0.0
    else:
        t = None
    return x, t


def assert_agree(got, ref, dtype, what=""):
    got = np.asarray(got, np.float64)
    ref = np.asarray(ref, np.float64)
    assert got.shape == ref.shape, what
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=f"NaN positions {what}")
    inf = np.isinf(ref)
    np.testing.assert_array_equal(got[inf], ref[inf], err_msg=f"inf entries {what}")
    np.testing.assert_array_equal(np.isinf(got), inf, err_msg=f"inf positions {what}")
    fin = np.isfinite(ref)
    if fin.any():
        rtol = RTOL[dtype]
        atol = rtol * np.max(np.abs(ref[fin]))
        np.testing.assert_allclose(got[fin], ref[fin], rtol=rtol, atol=atol, err_msg=what)


def compare(func, x, tgt, dtype, **kw):
    """Both backends, with and without the gradient; agreement of every output.
    Returns Numba's (loss, grad)."""
    first = None
    for grad in (True, False):
        a = call(nb, func, x, tgt, grad=grad, **kw)
        b = call(cy, func, x, tgt, grad=grad, **kw)
        for i, (u, v) in enumerate(zip(a, b)):
            assert_agree(u, v, dtype, f"{func} output {i} grad={grad} {kw}")
        first = a if first is None else first
    return first


# --- option matrix --------------------------------------------------------------------
C5 = 5
W5 = np.array([0.5, 2.0, 1.0, 0.0, 1.5])  # a zero weight too
CASES = [
    ("cross_entropy", "plain", {}),
    ("cross_entropy", "weight", {"weight": W5}),
    ("cross_entropy", "ignore-100", {"ignore": -100}),
    ("cross_entropy", "ignore-1", {"ignore": -1}),
    ("cross_entropy", "ignore-class2", {"ignore": 2}),
    ("cross_entropy", "smooth0.2", {"label_smoothing": 0.2}),
    ("cross_entropy", "weight-smooth-ignore", {"weight": W5, "label_smoothing": 0.3,
                                               "ignore": -100}),
    ("cross_entropy", "smooth1", {"label_smoothing": 1.0, "weight": W5}),
    ("cross_entropy", "all-ignored", {"ignore": -7, "all_ignored": True}),
    ("cross_entropy_prob", "plain", {}),
    ("cross_entropy_prob", "weight", {"weight": W5}),
    ("cross_entropy_prob", "smooth", {"label_smoothing": 0.25}),
    ("cross_entropy_prob", "weight-smooth", {"weight": W5, "label_smoothing": 0.1}),
    ("binary_cross_entropy", "plain", {}),
    ("binary_cross_entropy", "pos_weight", {"pos_weight": W5}),
    ("binary_cross_entropy", "weight", {"bweight": "full"}),
    ("binary_cross_entropy", "weight-row0", {"bweight": "row", "pos_weight": W5}),
    ("binary_cross_entropy", "weight-col0", {"bweight": "col"}),
    ("binary_cross_entropy", "weight-scalar", {"bweight": "scalar"}),
]
for _g in (0.0, 0.5, 2.0, 3.0):
    for _aid, _a in (("noalpha", {}), ("alpha.25", {"alpha": 0.25}),
                     ("classalpha", {"class_alpha": np.array([0.1, 0.2, 0.0, 0.9, 1.0])})):
        CASES.append(("focal_loss", f"g{_g}-{_aid}", {"gamma": _g, **_a}))
        CASES.append(("focal_loss_prob", f"g{_g}-{_aid}", {"gamma": _g, **_a}))
    CASES.append(("focal_loss", f"g{_g}-ignore", {"gamma": _g, "ignore": -1}))
    CASES.append(("sigmoid_focal_loss", f"g{_g}", {"gamma": _g}))
    CASES.append(("sigmoid_focal_loss", f"g{_g}-alpha.25", {"gamma": _g, "alpha": 0.25}))


def case_inputs(func, opts, dtype, n=7, c=C5, seed=0):
    x, t = make(func, dtype, n, c, seed)
    kw = {k: v for k, v in opts.items() if k not in ("ignore", "all_ignored", "bweight")}
    if "ignore" in opts:
        kw["ignore_index"] = opts["ignore"]
        if opts.get("all_ignored"):
            t[:] = opts["ignore"]
        elif opts["ignore"] < 0:
            t[::3] = opts["ignore"]
    bw = opts.get("bweight")
    if bw is not None:
        w = np.random.default_rng(1).random((n, c)) * 2
        kw["weight"] = {"full": w, "row": np.broadcast_to(w[0], (n, c)),
                        "col": np.broadcast_to(w[:, :1], (n, c)),
                        "scalar": np.broadcast_to(np.float64(0.7), (n, c))}[bw]
    return x, t, kw


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("func,opts", [pytest.param(f, o, id=f"{f}-{i}") for f, i, o in CASES])
def test_contract_losses(func, opts, dtype, reduction):
    x, t, kw = case_inputs(func, opts, dtype)
    compare(func, x, t, dtype, reduction=reduction, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("func", ["log_softmax", "softmax", "logsumexp"])
def test_contract_softmax_family(func, dtype):
    x, _ = make(func, dtype, n=9, c=6)
    x[1, 2] = -np.inf  # one -inf entry
    x[2] = -np.inf  # an all -inf row (NaN for log_softmax/softmax, -inf for logsumexp)
    x[3, 0] = np.nan
    x[4, 1] = np.inf
    x[5] = [1e4, -1e4, 0, 3, 1e4, -2]
    x[6, :3] = np.inf
    (got,) = call(nb, func, x)
    (ref,) = call(cy, func, x)
    assert_agree(got, ref, dtype, func)
    if func == "logsumexp":
        assert got[2] == -np.inf and np.isnan(got[3]) and got[4] == np.inf


@pytest.mark.parametrize("dtype", DTYPES)
def test_contract_logsumexp_empty_rows(dtype):
    x = np.zeros((3, 0), dtype)
    out = np.zeros(3, dtype)
    nb.logsumexp(x, out, 1)
    assert np.all(out == -np.inf)


LAYOUT_FUNCS = ["log_softmax", "softmax", "logsumexp", "cross_entropy", "cross_entropy_prob",
                "focal_loss", "focal_loss_prob", "binary_cross_entropy", "sigmoid_focal_loss"]


def relayout(a, layout):
    if a is None or a.ndim != 2:
        return a
    if layout == "sliced":  # rows c + 3 apart, class axis unit stride
        big = np.full((a.shape[0], a.shape[1] + 3), np.nan, a.dtype)
        big[:, 1:-2] = a
        return big[:, 1:-2]
    if layout == "broadcast":  # one row for all (row stride 0)
        return np.broadcast_to(a[0], a.shape)
    if layout == "readonly":
        b = a.copy()
        b.flags.writeable = False
        return b
    return a


@pytest.mark.parametrize("reduction", ["none", "mean"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["sliced", "broadcast", "readonly"])
@pytest.mark.parametrize("func", LAYOUT_FUNCS)
def test_contract_layouts(func, layout, dtype, reduction):
    x, t = make(func, dtype, n=6, c=7)
    x = relayout(x, layout)
    t = relayout(t, layout)
    if t is not None and t.ndim == 1 and layout == "readonly":
        t = t.copy()
        t.flags.writeable = False
    if x.strides[0] == 0 or layout == "sliced":
        assert x.strides[1] == x.itemsize
    if func in ("log_softmax", "softmax", "logsumexp"):
        (got,) = call(nb, func, x)
        (ref,) = call(cy, func, x)
        assert_agree(got, ref, dtype, func)
    else:
        compare(func, x, t, dtype, reduction=reduction)


# --- numerics at the edges ------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("gamma", [0.0, 0.3, 0.5, 2.0])
def test_contract_focal_finite_gradient_pt_to_one(dtype, gamma):
    """p_t -> 1 (and == 1): the true gradient is finite also for gamma < 1."""
    x = np.zeros((5, 4), dtype)
    x[:, 0] = np.array([5, 10, 20, 50, 1e4], dtype)
    y = np.zeros(5, np.int64)
    loss, g = compare("focal_loss", x, y, dtype, reduction="sum", gamma=gamma)
    assert np.all(np.isfinite(g)) and np.isfinite(loss).all()
    t = np.zeros((5, 4), dtype)
    t[:, 0] = 1
    loss, g = compare("focal_loss_prob", x, t, dtype, reduction="sum", gamma=gamma)
    assert np.all(np.isfinite(g)) and np.isfinite(loss).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("func", ["cross_entropy_prob", "focal_loss_prob"])
def test_contract_minus_inf_logits_zero_targets(func, dtype):
    """-inf logits where the target is 0: finite loss and gradient (0 log 0 := 0)."""
    x, t = make(func, dtype, n=4, c=5)
    x[:, 1] = -np.inf
    t[:, 1] = 0
    t = (t / t.sum(1, keepdims=True)).astype(dtype)
    loss, g = compare(func, x, t, dtype, reduction="mean")
    assert np.all(np.isfinite(g)) and np.isfinite(loss).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("func", LAYOUT_FUNCS[3:])
def test_contract_large_logits(func, dtype):
    """Logits of +-1e4 (and -inf off-target for the index losses): finite gradients."""
    x, t = make(func, dtype, n=6, c=5)
    x[::2] *= 1e4 / 3
    x[1, 0] = 1e4
    x[3, 2] = -1e4
    if target_kind(func) == "index":
        x[5, (t[5] + 1) % 5] = -np.inf
    loss, g = compare(func, x, t, dtype, reduction="sum")
    assert np.all(np.isfinite(g)) and np.isfinite(loss).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_contract_sigmoid_focal_infinite_logits(dtype, gamma):
    """x = +-inf with fractional targets: the loss is inf, the gradient its finite limit."""
    x = np.array([[np.inf, -np.inf, 1.0, np.inf, -np.inf, 0.0]], dtype)
    t = np.array([[0.3, 0.3, 0.5, 1.0, 0.0, 1.0]], dtype)
    for alpha in (-1.0, 0.25):
        loss, g = compare("sigmoid_focal_loss", x, t, dtype, reduction="none", gamma=gamma,
                          alpha=alpha)
        assert np.all(np.isfinite(g))
        assert np.isinf(loss[:2]).all() and np.isfinite(loss[2:]).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("func", LAYOUT_FUNCS[3:])
def test_contract_nan_propagates(func, dtype):
    x, t = make(func, dtype, n=4, c=5)
    x[2, 3] = np.nan
    x[0, 1] = -np.inf
    compare(func, x, t, dtype, reduction="none")


@pytest.mark.parametrize("dtype", DTYPES)
def test_contract_empty(dtype):
    x = np.zeros((0, 4), dtype)
    y = np.zeros(0, np.int64)
    for red in REDUCTIONS:
        compare("cross_entropy", x, y, dtype, reduction=red)
        compare("focal_loss", x, y, dtype, reduction=red)
        compare("binary_cross_entropy", x, x, dtype, reduction=red)


@pytest.mark.parametrize("dtype", DTYPES)
def test_row_max(dtype):
    """The integer-key max: NaN skipped, -inf for empty / all-NaN rows, order of negatives."""
    rng = np.random.default_rng(5)
    for n in (0, 1, 7, 8, 9, 33):
        for _ in range(5):
            x = (rng.standard_normal(n) * 10 - 5).astype(dtype)
            x[rng.random(n) < 0.2] = np.nan
            x[rng.random(n) < 0.1] = -np.inf
            ref = np.max(x[~np.isnan(x)]) if (~np.isnan(x)).any() else -np.inf
            assert K._row_max(x) == ref
    assert K._row_max(np.array([-0.0, -1e-45, -3.0], dtype)) == 0.0
    assert K._row_max(np.array([np.nan, np.inf, 1.0], dtype)) == np.inf
    assert K._row_max(np.full(9, -np.inf, dtype)) == -np.inf
    assert K._row_max(np.full(9, np.nan, dtype)) == -np.inf


# --- the vectorised exp -----------------------------------------------------------------
def _ulp_err(got, exact, dtype):
    """|got - exact| in units of the last place of exact rounded to dtype."""
    ref = exact.astype(dtype)
    ulp = np.spacing(np.abs(ref)).astype(np.float64)
    return np.abs(got.astype(np.float64) - exact) / ulp


EXP_SPECIAL = {np.float32: [np.inf, -np.inf, np.nan, 0.0, -0.0, 88.72283, 88.72284, 89.0, 1e30,
                            -87.33655, -87.34, -103.2789, -103.97208, -103.9721, -104.0, -1e30,
                            1e-30, -1e-30, 1e-45, np.float32(3.4e38), np.float32(-3.4e38)],
               np.float64: [np.inf, -np.inf, np.nan, 0.0, -0.0, 709.782712893384,
                            709.7827128933841, 710.0, 1e300, -708.3964185322641, -708.4,
                            -744.44007192138, -745.1332191019411, -745.1332191019412, -746.0,
                            -1e300, 1e-300, -1e-300, 5e-324, 1.7e308, -1.7e308]}


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_special_values(dtype):
    """overflow -> inf, underflow -> 0, exp(-inf) = 0, NaN -> NaN, exactly as np.exp."""
    x = np.array(EXP_SPECIAL[dtype], dtype)
    out = np.empty_like(x)
    K._exp_array(x, out)
    with np.errstate(over="ignore", under="ignore"):
        ref = np.exp(x)
    np.testing.assert_array_equal(out, ref)  # NaN == NaN here
    assert np.all(np.signbit(out[~np.isnan(out)]) == 0)


def test_exp_accuracy_float32():
    """Dense sweep over the whole useful range incl. the subnormal results, against exp
    computed in float64 (whose own error is ~1e-16 relative): measured max 1.01 ulp."""
    n = 200_001 if JITLESS else 4_000_001
    x = np.linspace(-104.5, 89.5, n).astype(np.float32)
    rng = np.random.default_rng(0)
    x = np.concatenate([x, rng.uniform(-0.4, 0.4, n // 4).astype(np.float32),
                        np.array(EXP_SPECIAL[np.float32], np.float32)])
    out = np.empty_like(x)
    K._exp_array(x, out)
    with np.errstate(over="ignore"):
        exact = np.exp(x.astype(np.float64))
        ok = np.isfinite(exact) & (exact.astype(np.float32) < np.inf) & (exact > 0)
    err = _ulp_err(out[ok], exact[ok], np.float32)
    assert err.max() < 1.1, (err.max(), x[ok][err.argmax()])
    assert np.array_equal(out[x > 89], np.full((x > 89).sum(), np.inf, np.float32))
    assert np.all(out[x < -104] == 0)


def test_exp_accuracy_float64():
    """< 1 ulp against mpmath (random and extreme arguments, subnormal results included),
    and within 1 ulp of np.exp over a dense sweep."""
    mpmath = pytest.importorskip("mpmath")
    rng = np.random.default_rng(1)
    pts = np.concatenate([rng.uniform(-745, 709.78, 1500), rng.uniform(-1, 1, 500),
                          rng.uniform(-0.35, 0.35, 300), rng.uniform(-745.13, -708, 300),
                          rng.uniform(700, 709.78, 100),
                          np.array([x for x in EXP_SPECIAL[np.float64]
                                    if np.isfinite(x) and -745.2 < x < 709.79])])
    out = np.empty_like(pts)
    K._exp_array(pts, out)
    mpmath.mp.prec = 120
    hp = [mpmath.exp(mpmath.mpf(float(v))) for v in pts]
    exact = np.array([float(h) for h in hp])  # inf where exp overflows
    fin = np.isfinite(exact)
    assert np.all(out[~fin] == np.inf)
    err = np.array([float(abs(mpmath.mpf(float(o)) - h) / np.spacing(e))
                    for o, h, e, f in zip(out, hp, exact, fin) if f])
    assert err.max() < 1.0, (err.max(), pts[fin][err.argmax()])
    n = 100_001 if JITLESS else 2_000_001
    x = np.linspace(-746, 710, n)
    out = np.empty_like(x)
    K._exp_array(x, out)
    with np.errstate(over="ignore", under="ignore"):
        ref = np.exp(x)
    fin = np.isfinite(ref) & (ref > 0)
    assert (_ulp_err(out[fin], ref[fin], np.float64)).max() <= 1.0
    assert np.array_equal(out[~fin], ref[~fin])


def _log1p_args(dtype, n):
    rng = np.random.default_rng(3)
    lo = 745 if dtype is np.float64 else 103
    return np.concatenate([np.linspace(0, 1, n), rng.random(n // 20) ** 8,
                           np.exp(-rng.uniform(0, lo, n // 20)),
                           [0.0, 1.0, 1e-45, 5e-324, 0.41421356, 0.41421357]]).astype(dtype)


def test_log1p_accuracy_float32():
    """log1p(e), 0 <= e <= 1 (the sigmoid forms): the C core's float32 series, measured max
    2.8 ulp vs float64 log1p."""
    e = _log1p_args(np.float32, 100_001 if JITLESS else 2_000_001)
    out = np.empty_like(e)
    K._log1p_unit_array(e, out)
    ref = np.log1p(e.astype(np.float64))
    assert np.all(out[ref == 0] == 0)
    assert _ulp_err(out[ref > 0], ref[ref > 0], np.float32).max() <= LOG1P_UNIT_F32_ULPS
    K._log1p_unit_array(np.array([np.nan], np.float32), out[:1])
    assert np.isnan(out[0])


def test_log1p_accuracy_float64():
    """Measured max 1.0 ulp vs mpmath."""
    mpmath = pytest.importorskip("mpmath")
    e = _log1p_args(np.float64, 20_001)
    e = e[np.random.default_rng(4).choice(e.size, 3000, replace=False)]
    out = np.empty_like(e)
    K._log1p_unit_array(e, out)
    mpmath.mp.prec = 120
    exact = np.array([float(mpmath.log1p(mpmath.mpf(float(v)))) for v in e])
    assert np.all(out[exact == 0] == 0)
    assert _ulp_err(out[exact > 0], exact[exact > 0], np.float64).max() <= 1.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_logsumexp_accuracy_vs_mpmath(dtype):
    """The per-row log (libm) and the float64 sum: logsumexp within 2 ulp of dtype."""
    mpmath = pytest.importorskip("mpmath")
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((20, 50)) * 10).astype(dtype)
    x[3] += 1e3
    x[4] -= 1e3
    out = np.empty(20, dtype)
    nb.logsumexp(x, out, 1)
    mpmath.mp.prec = 100
    exact = np.array([float(mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(float(v))) for v in r)))
                      for r in x])
    assert _ulp_err(out, exact, dtype).max() <= 2.0


# --- threads ------------------------------------------------------------------------
THREAD_CASES = [(f, i, o) for f, i, o in CASES if i in ("plain", "weight-smooth-ignore",
                                                       "weight-smooth", "weight-row0",
                                                       "g0.5-classalpha", "g2.0-alpha.25")]


@pytest.mark.skipif(JITLESS, reason="threads need the compiler")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("func,opts", [pytest.param(f, o, id=f"{f}-{i}")
                                       for f, i, o in THREAD_CASES]
                         + [pytest.param(f, {}, id=f) for f in LAYOUT_FUNCS[:3]])
def test_threads_bit_identical(func, opts, dtype, monkeypatch):
    """1 thread (serial path) vs 2 threads (prange path): bit-identical outputs."""
    monkeypatch.setattr(nb, "_PAR_MIN_ELEMS", 0)  # parallel path even for this size
    x, t, kw = case_inputs(func, opts, dtype, n=7000, c=C5, seed=3)  # 3 blocks of 3276 rows
    assert nb._threads_for(2, 7000, C5) == (2 if nb.numba.config.NUMBA_NUM_THREADS >= 2 else 1)
    for red in REDUCTIONS if target_kind(func) else ["none"]:
        if target_kind(func):
            kw["reduction"] = red
        one = call(nb, func, x, t, n_threads=1, **kw)
        two = call(nb, func, x, t, n_threads=2, **kw)
        for a, b in zip(one, two):
            assert a.tobytes() == b.tobytes()


@pytest.mark.skipif(JITLESS, reason="threads need the compiler")
@pytest.mark.parametrize("dtype", DTYPES)
def test_threads_large_default_threshold(dtype):
    """Above the size threshold (no patching) the parallel path agrees with the core and
    is bit-identical to the serial one; Numba's own thread count is restored."""
    n, c = 1000, 300
    assert nb._threads_for(2, n, c) == min(2, nb.numba.config.NUMBA_NUM_THREADS)
    x, y = make("cross_entropy", dtype, n, c, seed=4)
    before = nb.numba.get_num_threads(), nb.numba.get_parallel_chunksize()
    one = call(nb, "cross_entropy", x, y, n_threads=1, label_smoothing=0.1)
    two = call(nb, "cross_entropy", x, y, n_threads=2, label_smoothing=0.1)
    assert (nb.numba.get_num_threads(), nb.numba.get_parallel_chunksize()) == before
    assert all(a.tobytes() == b.tobytes() for a, b in zip(one, two))
    ref = call(cy, "cross_entropy", x, y, n_threads=2, label_smoothing=0.1)
    for a, b in zip(two, ref):
        assert_agree(a, b, dtype)


FORK_SCRIPT = """
import multiprocessing as mp, numba, numpy as np
import fastce._numba as nb
nb._PAR_MIN_ELEMS = 0
x = np.random.default_rng(0).standard_normal((7000, 5)).astype(np.float32)
y = np.zeros(7000, np.int64)

def run(_=None):
    loss = np.zeros(1)
    nb.cross_entropy(x, y, None, -100, 0.0, "mean", loss, None, 2)
    return loss[0]

parent = run()
print(numba.threading_layer())
with mp.get_context("fork").Pool(1) as pool:
    assert pool.map(run, [0])[0] == parent
print("ok")
"""


@pytest.mark.skipif(JITLESS, reason="threads need the compiler")
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
@pytest.mark.skipif(bool(os.environ.get("NUMBA_THREADING_LAYER")), reason="layer set by the user")
def test_fork_after_parallel_call():
    """The layer chosen on import is fork-safe (not GNU OpenMP): a forked child runs a
    kernel after the parent ran a parallel one."""
    r = subprocess.run([sys.executable, "-c", FORK_SCRIPT], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    layer, ok = r.stdout.split()[-2:]
    assert layer in ("tbb", "workqueue") and ok == "ok"


CONCURRENT_SCRIPT = """
import concurrent.futures as cf, numpy as np
import fastce._numba as nb
x = np.random.default_rng(0).standard_normal((1000, 300)).astype(np.float32)
y = np.zeros(1000, np.int64)

def run(nt):
    loss, g = np.zeros(1), np.empty_like(x)
    for _ in range(20):
        nb.cross_entropy(x, y, None, -100, 0.1, "mean", loss, g, nt)
    return loss.tobytes() + g.tobytes()

ref = run(1)
with cf.ThreadPoolExecutor(4) as ex:
    assert all(r == ref for r in ex.map(run, [2] * 8))
print("ok")
"""


@pytest.mark.skipif(JITLESS, reason="threads need the compiler")
def test_concurrent_python_threads():
    """Python threads calling at once (above the threading threshold): no abort of
    the (non-thread-safe) workqueue layer, and the serial result bit for bit."""
    r = subprocess.run([sys.executable, "-c", CONCURRENT_SCRIPT], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.split()[-1] == "ok", r.stderr[-3000:]


def test_set_get_num_threads():
    cap = nb.numba.config.NUMBA_NUM_THREADS
    try:
        nb.set_num_threads(1)
        assert nb.get_num_threads() == 1
        nb.set_num_threads(cap + 5)
        assert nb.get_num_threads() == cap
    finally:
        nb.set_num_threads(0)
    assert nb.get_num_threads() == cap


# --- structure --------------------------------------------------------------------------
def test_fastmath_flags_are_central():
    """Every fastmath= in fastce/_numba names a set of fastmath.py; no nnan/ninf/fast."""
    from fastce._numba import fastmath

    for s in (fastmath.FASTMATH, fastmath.FASTMATH_STRICT):
        assert not s & {"nnan", "ninf", "fast"}
    assert "reassoc" not in fastmath.FASTMATH_STRICT
    for path in PKG.glob("*.py"):
        if path.name == "fastmath.py":
            continue
        for m in re.finditer(r"fastmath\s*=\s*([^,)\s]+)", path.read_text()):
            assert m.group(1) in ("FASTMATH", "FASTMATH_STRICT"), (path.name, m.group(0))


def test_import_fastce_does_not_import_numba():
    code = "import sys, fastce; assert 'numba' not in sys.modules, 'numba imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_contract_functions_present():
    for name in LAYOUT_FUNCS + ["set_num_threads", "get_num_threads"]:
        assert callable(getattr(nb, name)), name


@pytest.mark.skipif(JITLESS, reason="already running without the JIT")
def test_kernels_run_as_plain_python():
    """The contract and exp tests with NUMBA_DISABLE_JIT=1: every kernel line runs as
    Python (coverage of the kernels), and must still agree with the C core."""
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    r = subprocess.run(
        [sys.executable, "-m", "pytest", __file__, "-q", "-x", "-p", "no:cacheprovider",
         "-W", "ignore::RuntimeWarning", "-k", "contract or exp_special or row_max or log1p",
         "--import-mode=importlib"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert " passed" in r.stdout
