"""The bad-input matrix: every public function x every kind of bad or unusual input.

Each row of the table below is a documented outcome that the tests assert on
every ready backend (the ``backend`` parametrization of conftest.py).
"= contiguous" means bit-identical to the same call on C-contiguous, aligned,
writable copies of the arguments; "= reference" means equal to
``backend="numpy"`` within ``tolerances.backend`` (NaN where the reference has
NaN). Every call, failing or not, leaves its input arrays byte-for-byte unchanged.

==================================================  ======================  ====================
input                                               functions               outcome
==================================================  ======================  ====================
logits int/uint/bool/complex/object/str dtype       all                     TypeError
ragged nested list as logits                        all                     TypeError
0-d logits                                          class-axis functions    ValueError
0-d logits                                          elementwise losses      a 1-element loss
axis out of range (2, -3 on 2-D)                    class-axis functions    ValueError
axis not an int (1.0, True, "1")                    class-axis functions    TypeError
target of the wrong shape                           losses                  ValueError
index target bool/complex/object/str dtype          cross_entropy, focal    TypeError
elementwise target int/bool/complex dtype           bce, sigmoid_focal      TypeError
weight/alpha/pos_weight of the wrong length         losses                  ValueError
bce weight not broadcastable to the logits          bce                     ValueError
weight/alpha/pos_weight complex/bool/str dtype      losses                  TypeError
N = 0 rows                                          all                     empty result; loss
                                                                            "mean" NaN, "sum" 0,
                                                                            zero-size gradient
C = 0 classes                                       log_softmax/softmax     (N, 0) result
                                                    logsumexp               -inf per row
                                                    cross_entropy, focal    ValueError (no valid
                                                                            class) unless every
                                                                            target is ignored:
                                                                            "mean" NaN, "sum" 0
                                                    bce, sigmoid_focal      "mean" NaN, "sum" 0
C = 1 class                                         log_softmax 0, softmax 1, logsumexp = x,
                                                    cross_entropy/focal loss 0 and zero gradient
target >= C, target < 0 (not ignore_index),         cross_entropy, focal    ValueError
huge int64, uint64 >= 2**63
target == ignore_index (any int, e.g. -1, 10**12)   cross_entropy, focal    = reference
NaN/+inf/-inf in logits                             all                     = reference, and only
                                                                            the affected row(s)
                                                                            change
NaN/inf in a probability / elementwise target       losses                  = reference (NaN
                                                                            propagates, not
                                                                            checked)
NaN/inf in weight, pos_weight, alpha (scalar or     losses                  ValueError
array), gamma, label_smoothing
gamma < 0, label_smoothing outside [0, 1]           losses                  ValueError
scalar alpha < 0                                    focal_loss              ValueError
scalar alpha < 0                                    sigmoid_focal           alpha disabled
                                                                            (= reference)
negative weight / pos_weight / per-class alpha      losses                  = reference (allowed,
                                                                            as in torch)
non-contiguous, transposed, reversed, Fortran,      all (logits, targets,   = contiguous
stride-0 broadcast, misaligned, read-only arrays    weights)
class axis not last (axis=0 on the transpose)       class-axis functions    = contiguous call
                                                                            with axis=-1
out=/grad_out= of the wrong shape or dtype          all                     ValueError
out=/grad_out= read-only or overlapping an input    all                     ValueError
out=/grad_out= not an ndarray                       all                     TypeError
grad_out= with return_grad=False                    losses                  ValueError
out=/grad_out= non-contiguous, Fortran, misaligned  all                     = contiguous, and the
                                                                            very object returned
==================================================  ======================  ====================
"""
from __future__ import annotations

import numpy as np
import pytest

import fastce
import tolerances as tol

SOFTMAX_LIKE = ("log_softmax", "softmax", "logsumexp")
INDEX_LOSSES = ("cross_entropy", "focal_loss")
ELEMENTWISE = ("binary_cross_entropy", "sigmoid_focal_loss")
LOSSES = INDEX_LOSSES + ELEMENTWISE
CLASS_AXIS = SOFTMAX_LIKE + INDEX_LOSSES
FUNCS = SOFTMAX_LIKE + LOSSES
FLOATS = (np.float16, np.float32, np.float64)


# --- helpers ----------------------------------------------------------------------------------

def make_logits(n=5, c=7, dtype=np.float64, seed=0):
    return (np.random.default_rng(seed).standard_normal((n, c)) * 3).astype(dtype)


def make_target(name, x, seed=1):
    """A valid target of `name` for logits `x`, classes last (None for the softmax family)."""
    rng = np.random.default_rng(seed)
    if name in INDEX_LOSSES:
        return rng.integers(0, max(x.shape[-1], 1), size=x.shape[:-1])
    if name in ELEMENTWISE:
        return rng.random(x.shape).astype(x.dtype)
    return None


def make_prob_target(x, seed=2):
    p = np.random.default_rng(seed).random(x.shape)
    return (p / p.sum(axis=-1, keepdims=True)).astype(x.dtype)


def _arrays(args, kwargs):
    return [a for a in list(args) + [v for k, v in kwargs.items() if k not in ("out", "grad_out")]
            if isinstance(a, np.ndarray)]


def call(name, *args, **kwargs):
    """fastce.<name>(*args, **kwargs), asserting that no input array changes (even on error).

    Losses get return_grad=True unless told otherwise; the result is a tuple of arrays."""
    if name in LOSSES:
        kwargs.setdefault("return_grad", True)
    inputs = _arrays(args, kwargs)
    before = [(a.tobytes(), a.shape, a.strides) for a in inputs]
    try:
        res = getattr(fastce, name)(*args, **kwargs)
    finally:
        after = [(a.tobytes(), a.shape, a.strides) for a in inputs]
        for i, (b, a) in enumerate(zip(before, after)):
            assert b == a, f"{name} modified its input array #{i}"
    return tuple(np.asarray(r) for r in res) if isinstance(res, tuple) else (np.asarray(res),)


def raises(exc, name, *args, **kwargs):
    with pytest.raises(exc):
        call(name, *args, **kwargs)


def assert_identical(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)


def assert_reference(name, got, *args, **kwargs):
    kwargs = {k: v for k, v in kwargs.items() if k != "backend"}
    want = call(name, *args, backend="numpy", **kwargs)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, equal_nan=True, **tol.backend(w.dtype))


def contiguous(a):
    return np.array(a, order="C", copy=True) if isinstance(a, np.ndarray) else a


# --- layouts ----------------------------------------------------------------------------------

def misaligned(a):
    """A copy of `a` at byte offset 1 of a uint8 buffer (unaligned for itemsize > 1)."""
    buf = np.zeros(a.nbytes + 1, dtype=np.uint8)
    m = buf[1:].view(a.dtype).reshape(a.shape)
    m[...] = a
    return m


def readonly(a):
    r = a.copy()
    r.setflags(write=False)
    return r


def strided(a):
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
    wide[..., ::2] = a
    return wide[..., ::2]


def reversed_(a):
    """`a`'s values at negative strides (the same values, a reversed buffer)."""
    r = np.ascontiguousarray(a[(slice(None, None, -1),) * a.ndim])
    return r[(slice(None, None, -1),) * a.ndim]


def broadcast(a):
    """Stride-0 rows: `a`'s first row repeated (a different value, computed both ways)."""
    return np.broadcast_to(a[:1], a.shape)


LAYOUTS = {
    "noncontiguous": strided,
    "transposed": lambda a: np.ascontiguousarray(a.T).T,
    "reversed": reversed_,
    "fortran": np.asfortranarray,
    "broadcast": broadcast,
    "misaligned": misaligned,
    "readonly": readonly,
}


# --- dtypes, shapes and axes ------------------------------------------------------------------

BAD_LOGIT_DTYPES = [np.int32, np.int64, np.uint8, np.bool_, np.complex64, np.complex128, object,
                    np.str_]


@pytest.mark.parametrize("dtype", BAD_LOGIT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", FUNCS)
def test_logits_dtype_rejected(backend, name, dtype):
    good = make_logits()
    x = good.astype(dtype)
    raises(TypeError, name, *(x, make_target(name, good))[:1 + (name in LOSSES)], backend=backend)


@pytest.mark.parametrize("name", FUNCS)
def test_ragged_list_rejected(backend, name):
    x = [[0.0, 1.0], [2.0]]
    raises(TypeError, name, *(x, [[0.0, 1.0], [1.0]])[:1 + (name in LOSSES)], backend=backend)


@pytest.mark.parametrize("name", FUNCS)
def test_list_input_equals_array(backend, name):
    x = make_logits(3, 4)
    t = make_target(name, x)
    args = (x, t)[:1 + (name in LOSSES)]
    listed = tuple(a.tolist() for a in args)
    assert_identical(call(name, *listed, backend=backend), call(name, *args, backend=backend))


@pytest.mark.parametrize("name", CLASS_AXIS)
def test_zero_dim_logits_rejected(backend, name):
    args = (np.float64(1.0), np.int64(0))[:1 + (name in LOSSES)]
    raises(ValueError, name, *args, backend=backend)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_zero_dim_elementwise_is_one_element(backend, name):
    got = call(name, np.float64(0.5), np.float64(1.0), backend=backend)
    want = call(name, np.array([0.5]), np.array([1.0]), backend=backend)
    assert got[0].shape == () and got[1].shape == ()
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1][0])


@pytest.mark.parametrize("axis, exc", [(2, ValueError), (-3, ValueError), (1.0, TypeError),
                                       (True, TypeError), ("1", TypeError)],
                         ids=["2", "-3", "float", "bool", "str"])
@pytest.mark.parametrize("name", CLASS_AXIS)
def test_bad_axis(backend, name, axis, exc):
    x = make_logits()
    raises(exc, name, *(x, make_target(name, x))[:1 + (name in LOSSES)], axis=axis,
           backend=backend)


@pytest.mark.parametrize("shape", [(5,), (4,), (5, 1), (1, 5), (5, 7, 1)], ids=str)
@pytest.mark.parametrize("name", LOSSES)
def test_target_wrong_shape(backend, name, shape):
    x = make_logits()
    dtype = np.int64 if name in INDEX_LOSSES else x.dtype
    t = np.zeros(shape, dtype=dtype)
    if name in INDEX_LOSSES and shape == (5,):
        t = np.zeros((5, 7), dtype=np.int64)  # index target shaped like the logits
    raises(ValueError, name, x, t, backend=backend)


BAD_TARGET_DTYPES = {
    "cross_entropy": [np.bool_, np.complex128, object, np.str_],
    "focal_loss": [np.bool_, np.complex128, object, np.str_],
    "binary_cross_entropy": [np.bool_, np.int64, np.complex128, object],
    "sigmoid_focal_loss": [np.bool_, np.int64, np.complex128, object],
}


@pytest.mark.parametrize("name, dtype", [(n, d) for n, ds in BAD_TARGET_DTYPES.items() for d in ds],
                         ids=lambda v: v if isinstance(v, str) else np.dtype(v).name)
def test_target_dtype_rejected(backend, name, dtype):
    x = make_logits()
    t = make_target(name, x).astype(dtype)
    raises(TypeError, name, x, t, backend=backend)


# keyword, value, exception: per-class vectors of bad shape/dtype for each loss
BAD_VECTORS = [
    ("cross_entropy", "weight", np.ones(6), ValueError),
    ("cross_entropy", "weight", np.ones((1, 7)), ValueError),
    ("cross_entropy", "weight", np.ones(7, dtype=np.complex128), TypeError),
    ("cross_entropy", "weight", np.ones(7, dtype=bool), TypeError),
    ("cross_entropy", "weight", np.array(["a"] * 7), TypeError),
    ("focal_loss", "alpha", np.ones(8), ValueError),
    ("focal_loss", "alpha", np.ones(7, dtype=np.complex128), TypeError),
    ("binary_cross_entropy", "weight", np.ones((3, 7)), ValueError),
    ("binary_cross_entropy", "weight", np.ones(6), ValueError),
    ("binary_cross_entropy", "weight", np.ones(7, dtype=np.complex128), TypeError),
    ("binary_cross_entropy", "pos_weight", np.ones(6), ValueError),
    ("binary_cross_entropy", "pos_weight", np.ones((5, 7)), ValueError),
    ("binary_cross_entropy", "pos_weight", np.ones(7, dtype=bool), TypeError),
]


@pytest.mark.parametrize("name, key, value, exc", BAD_VECTORS,
                         ids=[f"{n}-{k}-{v.dtype}{v.shape}" for n, k, v, _ in BAD_VECTORS])
def test_bad_vector_argument(backend, name, key, value, exc):
    x = make_logits()
    raises(exc, name, x, make_target(name, x), backend=backend, **{key: value})


# --- empty and degenerate sizes ---------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(0, 4), (3, 0), (0, 0)], ids=str)
def test_empty_softmax_family(backend, shape, dtype):
    x = np.zeros(shape, dtype=dtype)
    for name in ("log_softmax", "softmax"):
        (r,) = call(name, x, backend=backend)
        assert r.shape == shape and r.dtype == dtype
    (r,) = call("logsumexp", x, backend=backend)
    assert r.shape == shape[:1] and r.dtype == dtype
    assert np.all(r == -np.inf)  # empty sum: log 0


@pytest.mark.parametrize("reduction, loss", [("mean", np.nan), ("sum", 0.0)])
@pytest.mark.parametrize("name", LOSSES)
def test_empty_rows(backend, name, reduction, loss):
    x = np.zeros((0, 4))
    t = np.zeros((0,), dtype=np.int64) if name in INDEX_LOSSES else np.zeros((0, 4))
    value, grad = call(name, x, t, reduction=reduction, backend=backend)
    np.testing.assert_array_equal(value, loss)
    assert grad.shape == (0, 4)
    (none,) = call(name, x, t, reduction="none", return_grad=False, backend=backend)
    assert none.shape == ((0,) if name in INDEX_LOSSES else (0, 4))


@pytest.mark.parametrize("name", INDEX_LOSSES)
def test_zero_classes_index_target(backend, name):
    x = np.zeros((3, 0))
    raises(ValueError, name, x, np.zeros(3, dtype=np.int64), backend=backend)
    ignored = np.full(3, -100)
    value, grad = call(name, x, ignored, backend=backend)
    assert np.isnan(value) and grad.shape == (3, 0)
    value, _ = call(name, x, ignored, reduction="sum", backend=backend)
    assert value == 0.0


@pytest.mark.parametrize("reduction, loss", [("mean", np.nan), ("sum", 0.0)])
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_zero_classes_elementwise(backend, name, reduction, loss):
    value, grad = call(name, np.zeros((3, 0)), np.zeros((3, 0)), reduction=reduction,
                       backend=backend)
    np.testing.assert_array_equal(value, loss)
    assert grad.shape == (3, 0)


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
def test_one_class(backend, dtype):
    x = make_logits(6, 1, dtype)
    np.testing.assert_array_equal(call("log_softmax", x, backend=backend)[0], np.zeros_like(x))
    np.testing.assert_array_equal(call("softmax", x, backend=backend)[0], np.ones_like(x))
    np.testing.assert_array_equal(call("logsumexp", x, backend=backend)[0], x[:, 0])
    y = np.zeros(6, dtype=np.int64)
    for name in INDEX_LOSSES:
        value, grad = call(name, x, y, backend=backend)
        assert value == 0 and value.dtype == dtype
        np.testing.assert_array_equal(grad, np.zeros_like(x))


# --- target ranges ----------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [7, 8, -1, -101, 2**40, -(2**62)], ids=str)
@pytest.mark.parametrize("name", INDEX_LOSSES)
def test_target_out_of_range(backend, name, bad):
    x = make_logits()
    y = make_target(name, x)
    y[3] = bad
    raises(ValueError, name, x, y, backend=backend)


@pytest.mark.parametrize("name", INDEX_LOSSES)
def test_uint64_target_beyond_int64(backend, name):
    x = make_logits()
    y = make_target(name, x).astype(np.uint64)
    y[2] = 2**63 + 3
    raises(ValueError, name, x, y, backend=backend)


@pytest.mark.parametrize("ignore", [-100, -1, 0, 10**12], ids=str)
@pytest.mark.parametrize("name", INDEX_LOSSES)
def test_ignore_index_values(backend, name, ignore):
    x = make_logits()
    y = make_target(name, x)
    y[[1, 4]] = ignore
    got = call(name, x, y, ignore_index=ignore, backend=backend)
    assert_reference(name, got, x, y, ignore_index=ignore)


# --- non-finite values ------------------------------------------------------------------------

NONFINITE = {"nan": np.nan, "+inf": np.inf, "-inf": -np.inf}


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("value", NONFINITE.values(), ids=NONFINITE.keys())
@pytest.mark.parametrize("name", FUNCS)
def test_nonfinite_logits(backend, name, value, dtype):
    x = make_logits(5, 7, dtype)
    t = make_target(name, x)
    if name in INDEX_LOSSES:
        t[2] = 3
    x[2, 3] = value
    extra = {"reduction": "none"} if name in LOSSES else {}
    got = call(name, *(x, t)[:1 + (name in LOSSES)], backend=backend, **extra)
    assert_reference(name, got, *(x, t)[:1 + (name in LOSSES)], **extra)
    # locality: every other row equals the call without the bad row
    keep = [0, 1, 3, 4]
    clean = call(name, *(x[keep], t[keep] if t is not None else None)[:1 + (name in LOSSES)],
                 backend=backend, **extra)
    for g, c in zip(got, clean):
        np.testing.assert_array_equal(g[keep], c)


@pytest.mark.parametrize("value", NONFINITE.values(), ids=NONFINITE.keys())
@pytest.mark.parametrize("name", LOSSES)
def test_nonfinite_float_target(backend, name, value):
    x = make_logits()
    t = make_prob_target(x) if name in INDEX_LOSSES else make_target(name, x)
    t[1, 2] = value
    got = call(name, x, t, reduction="none", backend=backend)
    assert_reference(name, got, x, t, reduction="none")


BAD_SCALARS = [
    ("cross_entropy", "label_smoothing", [np.nan, np.inf, -0.1, 1.5]),
    ("focal_loss", "gamma", [np.nan, np.inf, -1.0, -1e-300]),
    ("focal_loss", "alpha", [np.nan, np.inf, -0.25]),
    ("sigmoid_focal_loss", "gamma", [np.nan, np.inf, -2.0]),
    ("sigmoid_focal_loss", "alpha", [np.nan, np.inf, -np.inf]),
]


@pytest.mark.parametrize("name, key, value",
                         [(n, k, v) for n, k, vs in BAD_SCALARS for v in vs],
                         ids=lambda v: v if isinstance(v, str) else repr(v))
def test_bad_scalar_option(backend, name, key, value):
    x = make_logits()
    raises(ValueError, name, x, make_target(name, x), backend=backend, **{key: value})


NONFINITE_VECTORS = [("cross_entropy", "weight", (7,)), ("focal_loss", "alpha", (7,)),
                     ("binary_cross_entropy", "weight", (5, 7)),
                     ("binary_cross_entropy", "weight", (7,)),
                     ("binary_cross_entropy", "pos_weight", (7,))]


@pytest.mark.parametrize("value", NONFINITE.values(), ids=NONFINITE.keys())
@pytest.mark.parametrize("name, key, shape", NONFINITE_VECTORS,
                         ids=[f"{n}-{k}{s}" for n, k, s in NONFINITE_VECTORS])
def test_nonfinite_vector_rejected(backend, name, key, shape, value):
    x = make_logits()
    w = np.ones(shape)
    w.flat[-1] = value
    raises(ValueError, name, x, make_target(name, x), backend=backend, **{key: w})


NEGATIVE_OPTIONS = [("cross_entropy", {"weight": np.linspace(-1, 2, 7)}),
                    ("cross_entropy", {"weight": -np.ones(7), "label_smoothing": 0.2}),
                    ("focal_loss", {"alpha": np.linspace(-1, 1, 7)}),
                    ("binary_cross_entropy", {"weight": -np.ones((5, 7))}),
                    ("binary_cross_entropy", {"pos_weight": np.linspace(-3, 3, 7)}),
                    ("sigmoid_focal_loss", {"alpha": -1.0}),
                    ("sigmoid_focal_loss", {"alpha": -1e-9})]


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("name, options", NEGATIVE_OPTIONS,
                         ids=[f"{n}-{','.join(o)}{i}" for i, (n, o) in enumerate(NEGATIVE_OPTIONS)])
def test_negative_weights_follow_the_formula(backend, name, options, reduction):
    x = make_logits()
    t = make_target(name, x)
    got = call(name, x, t, backend=backend, reduction=reduction, **options)
    assert_reference(name, got, x, t, reduction=reduction, **options)


# --- memory layouts ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", FUNCS)
def test_logits_layout(backend, name, layout, dtype):
    x = LAYOUTS[layout](make_logits(6, 9, dtype))
    t = make_target(name, x)
    args = (x, t)[:1 + (name in LOSSES)]
    got = call(name, *args, backend=backend)
    assert_identical(got, call(name, *map(contiguous, args), backend=backend))


TARGET_KINDS = [("cross_entropy", "index"), ("cross_entropy", "prob"), ("focal_loss", "index"),
                ("focal_loss", "prob"), ("binary_cross_entropy", "elem"),
                ("sigmoid_focal_loss", "elem")]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name, kind", TARGET_KINDS, ids=[f"{n}-{k}" for n, k in TARGET_KINDS])
def test_target_layout(backend, name, kind, layout):
    x = make_logits(6, 9, np.float32)
    t = make_prob_target(x) if kind == "prob" else make_target(name, x)
    t = LAYOUTS[layout](t)
    got = call(name, x, t, backend=backend)
    assert_identical(got, call(name, x, contiguous(t), backend=backend))


WEIGHT_KINDS = [("cross_entropy", "weight", (9,)), ("focal_loss", "alpha", (9,)),
                ("binary_cross_entropy", "weight", (6, 9)),
                ("binary_cross_entropy", "pos_weight", (9,))]


@pytest.mark.parametrize("layout", ["noncontiguous", "reversed", "fortran", "misaligned",
                                    "readonly", "broadcast"])
@pytest.mark.parametrize("name, key, shape", WEIGHT_KINDS,
                         ids=[f"{n}-{k}" for n, k, _ in WEIGHT_KINDS])
def test_weight_layout(backend, name, key, shape, layout):
    x = make_logits(6, 9)
    t = make_target(name, x)
    w = LAYOUTS[layout](np.random.default_rng(3).random(shape) + 0.5)
    got = call(name, x, t, backend=backend, **{key: w})
    assert_identical(got, call(name, x, t, backend=backend, **{key: contiguous(w)}))


@pytest.mark.parametrize("name", CLASS_AXIS)
def test_class_axis_first(backend, name):
    x = make_logits(6, 9)
    t = make_target(name, x)
    got = call(name, *(np.ascontiguousarray(x.T), t)[:1 + (name in LOSSES)], axis=0,
               backend=backend)
    want = call(name, *(x, t)[:1 + (name in LOSSES)], backend=backend)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w.T if g.ndim == 2 else w)


# --- out= and grad_out= -----------------------------------------------------------------------

def _out_key(name):
    return "grad_out" if name in LOSSES else "out"


def _out_shape(name, x):
    return x.shape[:-1] if name == "logsumexp" else x.shape


BAD_OUTS = ["shape", "transposed-shape", "dtype", "int-dtype", "readonly", "list",
            "overlaps-logits", "overlaps-logits-view", "overlaps-target"]


def _bad_out(case, name, x, t):
    """(out array, expected exception) of the bad-output `case` of `name`."""
    shape = _out_shape(name, x)
    if case == "readonly":
        return readonly(np.zeros(shape, dtype=x.dtype)), ValueError
    if case == "list":
        return np.zeros(shape).tolist(), TypeError
    if case == "overlaps-target":
        return t, ValueError
    return {"shape": np.zeros(shape + (1,), dtype=x.dtype),
            "transposed-shape": np.zeros(x.shape[::-1] if name != "logsumexp" else x.shape[1:],
                                         dtype=x.dtype),
            "dtype": np.zeros(shape, dtype=np.float32),
            "int-dtype": np.zeros(shape, dtype=np.int64),
            "overlaps-logits": x if name != "logsumexp" else x[:, 0],
            "overlaps-logits-view": x[::-1] if name != "logsumexp" else x[::-1, 1],
            }[case], ValueError


# only elementwise losses take a target of the gradient's shape and dtype
@pytest.mark.parametrize("name, case", [(n, c) for n in FUNCS for c in BAD_OUTS
                                        if c != "overlaps-target" or n in ELEMENTWISE])
def test_bad_out(backend, name, case):
    x = make_logits()
    t = make_target(name, x)
    out, exc = _bad_out(case, name, x, t)
    raises(exc, name, *(x, t)[:1 + (name in LOSSES)], backend=backend, **{_out_key(name): out})


@pytest.mark.parametrize("name", LOSSES)
def test_grad_out_without_return_grad(backend, name):
    x = make_logits()
    raises(ValueError, name, x, make_target(name, x), backend=backend, return_grad=False,
           grad_out=np.zeros_like(x))


OUT_LAYOUTS = {"noncontiguous": lambda s, d: np.zeros(s[:-1] + (2 * s[-1],), d)[..., ::2],
               "fortran": lambda s, d: np.zeros(s, d, order="F"),
               "misaligned": lambda s, d: misaligned(np.zeros(s, d)),
               "reversed": lambda s, d: np.zeros(s, d)[(slice(None, None, -1),) * len(s)]}


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("layout", OUT_LAYOUTS)
@pytest.mark.parametrize("name", FUNCS)
def test_out_layout(backend, name, layout, dtype):
    x = make_logits(6, 9, dtype)
    t = make_target(name, x)
    args = (x, t)[:1 + (name in LOSSES)]
    out = OUT_LAYOUTS[layout](_out_shape(name, x), x.dtype)
    got = call(name, *args, backend=backend, **{_out_key(name): out})
    assert got[-1] is out
    assert_identical(got, call(name, *args, backend=backend))
