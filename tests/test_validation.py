"""Every bad-argument path of the public API: the documented exception type, and a
message that names the argument, the offending value and (for targets and weights)
its position. Validation runs before any backend, so a bad call must fail the same
way on every backend and must not touch any output buffer.
"""
from __future__ import annotations

import numpy as np
import pytest

import fastce

X = np.arange(12, dtype=np.float64).reshape(4, 3) / 7.0   # (N, C) = (4, 3)
Y = np.array([0, 2, 1, 0])
XK = np.zeros((2, 3, 2, 2))                               # (N, C, H, W), axis=1
XB = np.zeros((4, 3))                                     # elementwise losses
TB = np.full((4, 3), 0.5)


def _call(name, x0, t0):
    """A call of loss `name` with defaults x0/t0 that tests one bad keyword set."""
    def make(x=x0, t=t0, **kw):
        return lambda b: getattr(fastce, name)(x, t, backend=b, **kw)
    return make


ce = _call("cross_entropy", X, Y)
focal = _call("focal_loss", X, Y)
bce = _call("binary_cross_entropy", XB, TB)
sfocal = _call("sigmoid_focal_loss", XB, TB)


def fam(name, x=X, **kw):
    return lambda b: getattr(fastce, name)(x, backend=b, **kw)


def _bad_target(pos, value, shape=(4,)):
    t = np.zeros(shape, dtype=np.int64)
    t[pos] = value
    return t


def _readonly(shape, dtype=np.float64):
    a = np.zeros(shape, dtype=dtype)
    a.flags.writeable = False
    return a


KX = np.zeros((4, 3))
#: (id, call(backend), exception, substrings the message must contain)
BAD = [
    # logits dtypes
    ("logits-int", ce(x=np.ones((4, 3), dtype=np.int64)), TypeError, ["logits", "int64"]),
    ("logits-bool", ce(x=np.ones((4, 3), dtype=bool)), TypeError, ["logits", "bool"]),
    ("logits-complex", ce(x=np.ones((4, 3), dtype=complex)), TypeError, ["logits", "complex128"]),
    ("logits-object", ce(x=np.ones((4, 3), dtype=object)), TypeError, ["logits", "object"]),
    ("logits-str", ce(x="abc"), TypeError, ["logits", "<U3"]),
    ("logits-0d", ce(x=np.float64(1.0), t=np.int64(0)), ValueError, ["logits", "dimension"]),
    ("x-int", fam("softmax", np.ones((2, 3), dtype=np.int32)), TypeError, ["x", "int32"]),
    ("bce-logits-int", bce(x=np.ones((4, 3), dtype=np.int8)), TypeError, ["logits", "int8"]),
    # axis
    ("axis-out-of-bounds", ce(axis=2), ValueError, ["axis=2", "dimension 2"]),
    ("axis-float", fam("log_softmax", axis=1.0), TypeError, ["axis", "1.0"]),
    ("softmax-axis-neg", fam("logsumexp", axis=-3), ValueError, ["axis=-3"]),
    # class-index targets
    ("target-eq-C", ce(t=_bad_target(2, 3)), ValueError, ["target[2] = 3", "[0, 3)"]),
    ("target-negative", ce(t=_bad_target(1, -2)), ValueError,
     ["target[1] = -2", "ignore_index=-100"]),
    ("target-neg1-not-ignored", ce(t=_bad_target(3, -1)), ValueError, ["target[3] = -1"]),
    ("target-kdim-position", ce(x=XK, axis=1, t=_bad_target((1, 0, 1), 5, (2, 2, 2))),
     ValueError, ["target[1, 0, 1] = 5", "[0, 3)"]),
    ("target-uint64-huge", ce(t=np.array([2**64 - 1, 0, 0, 0], dtype=np.uint64)), ValueError,
     ["target[0] = 18446744073709551615"]),
    ("focal-target-range", focal(t=_bad_target(0, 9)), ValueError, ["target[0] = 9"]),
    ("target-float-index-shape", ce(t=np.array([0.0, 2.0, 1.0, 0.0])), ValueError,
     ["floating target", "(4, 3)", "(4,)", "integer dtype"]),
    ("target-float-square", ce(x=np.zeros((2, 2)), t=np.array([1.0, 0.0])), ValueError,
     ["floating target", "(2, 2)", "(2,)"]),
    ("target-index-shape", ce(t=np.zeros(5, dtype=np.int64)), ValueError,
     ["target", "(4,)", "(5,)"]),
    ("target-bool", ce(t=np.zeros(4, dtype=bool)), TypeError, ["target", "bool"]),
    ("target-complex", ce(t=np.zeros((4, 3), dtype=complex)), TypeError, ["target", "complex"]),
    ("focal-target-float-shape", focal(t=np.zeros(4)), ValueError, ["floating target", "(4,)"]),
    ("bce-target-shape", bce(t=np.zeros((4, 1))), ValueError, ["target", "(4, 3)", "(4, 1)"]),
    ("bce-target-int", bce(t=np.zeros((4, 3), dtype=np.int64)), TypeError, ["target", "int64"]),
    ("sfocal-target-shape", sfocal(t=np.zeros(3)), ValueError, ["target", "(4, 3)", "(3,)"]),
    # scalar options
    ("smoothing-neg", ce(label_smoothing=-0.1), ValueError, ["label_smoothing", "-0.1"]),
    ("smoothing-gt1", ce(label_smoothing=1.5), ValueError, ["label_smoothing", "1.5"]),
    ("smoothing-nan", ce(label_smoothing=float("nan")), ValueError, ["label_smoothing", "nan"]),
    ("smoothing-inf", ce(label_smoothing=float("inf")), ValueError, ["label_smoothing", "inf"]),
    ("smoothing-str", ce(label_smoothing="0.1"), TypeError, ["label_smoothing", "'0.1'"]),
    ("gamma-neg", focal(gamma=-0.5), ValueError, ["gamma", "-0.5"]),
    ("gamma-nan", focal(gamma=float("nan")), ValueError, ["gamma", "nan"]),
    ("sfocal-gamma-neg", sfocal(gamma=-1.0), ValueError, ["gamma", "-1.0"]),
    ("sfocal-gamma-nan", sfocal(gamma=float("nan")), ValueError, ["gamma", "nan"]),
    ("sfocal-alpha-nan", sfocal(alpha=float("nan")), ValueError, ["alpha", "nan"]),
    ("focal-alpha-neg", focal(alpha=-0.25), ValueError, ["alpha", "-0.25"]),
    ("focal-alpha-len", focal(alpha=np.ones(2)), ValueError, ["alpha", "(3,)", "(2,)"]),
    ("focal-alpha-nan", focal(alpha=np.array([1.0, np.nan, 1.0])), ValueError,
     ["alpha", "nan", "alpha[1]"]),
    ("ignore-index-float", ce(ignore_index=-1.0), TypeError, ["ignore_index", "-1.0"]),
    ("ignore-index-huge", ce(ignore_index=2**70), ValueError, ["ignore_index", str(2**70)]),
    ("return-grad-int", ce(return_grad=1), TypeError, ["return_grad", "1"]),
    ("reduction-bad", ce(reduction="avg"), ValueError, ["reduction", "'avg'"]),
    ("reduction-none-object", ce(reduction=None), ValueError, ["reduction", "None"]),
    ("bce-reduction-bad", bce(reduction="Mean"), ValueError, ["reduction", "'Mean'"]),
    # weights
    ("weight-len", ce(weight=np.ones(4)), ValueError, ["weight", "(3,)", "(4,)"]),
    ("weight-nan", ce(weight=np.array([1.0, 1.0, np.nan])), ValueError,
     ["weight", "nan", "weight[2]"]),
    ("weight-inf", ce(weight=np.array([np.inf, 1.0, 1.0])), ValueError,
     ["weight", "inf", "weight[0]"]),
    ("weight-bool", ce(weight=np.ones(3, dtype=bool)), TypeError, ["weight", "bool"]),
    ("weight-complex", ce(weight=np.ones(3, dtype=complex)), TypeError, ["weight", "complex"]),
    ("bce-weight-shape", bce(weight=np.ones(2)), ValueError, ["weight", "(2,)", "(4, 3)"]),
    ("bce-weight-nan", bce(weight=np.array([[1.0, np.nan, 1.0]])), ValueError,
     ["weight", "nan", "weight[0, 1]"]),
    ("bce-pos-weight-shape", bce(pos_weight=np.ones(4)), ValueError, ["pos_weight", "(4,)", "3"]),
    ("bce-pos-weight-nan", bce(pos_weight=np.array([1.0, 1.0, np.nan])), ValueError,
     ["pos_weight", "nan", "pos_weight[2]"]),
    ("bce-pos-weight-str", bce(pos_weight=np.array(["a", "b", "c"])), TypeError,
     ["pos_weight", "<U1"]),
    # backend
    ("backend-bad", lambda b: fastce.cross_entropy(X, Y, backend="torch"), ValueError,
     ["backend", "'torch'"]),
    ("backend-int", lambda b: fastce.softmax(X, backend=1), ValueError, ["backend", "1"]),
    # out= / grad_out=
    ("out-shape", fam("softmax", out=np.zeros((3, 4))), ValueError, ["out", "(4, 3)", "(3, 4)"]),
    ("out-dtype", fam("log_softmax", out=np.zeros((4, 3), np.float32)), ValueError,
     ["out", "float64", "float32"]),
    ("out-readonly", fam("softmax", out=_readonly((4, 3))), ValueError, ["out", "read-only"]),
    ("out-overlap", lambda b: fastce.softmax(KX, out=KX, backend=b), ValueError,
     ["out", "overlap"]),
    ("out-list", fam("softmax", out=[[0.0] * 3] * 4), TypeError, ["out", "list"]),
    ("lse-out-shape", fam("logsumexp", out=np.zeros((4, 3))), ValueError,
     ["out", "(4,)", "(4, 3)"]),
    ("grad-out-shape", ce(return_grad=True, grad_out=np.zeros((4, 4))), ValueError,
     ["grad_out", "(4, 3)", "(4, 4)"]),
    ("grad-out-dtype", ce(return_grad=True, grad_out=np.zeros((4, 3), np.float16)), ValueError,
     ["grad_out", "float16"]),
    ("grad-out-readonly", ce(return_grad=True, grad_out=_readonly((4, 3))), ValueError,
     ["grad_out", "read-only"]),
    ("grad-out-overlap", lambda b: fastce.cross_entropy(KX, Y, return_grad=True, grad_out=KX,
                                                        backend=b), ValueError,
     ["grad_out", "overlap"]),
    ("grad-out-overlap-target", lambda b: fastce.binary_cross_entropy(
        XB, KX, return_grad=True, grad_out=KX, backend=b), ValueError, ["grad_out", "overlap"]),
    ("grad-out-no-return-grad", ce(grad_out=np.zeros((4, 3))), ValueError,
     ["grad_out", "return_grad"]),
    ("sfocal-grad-out-no-return-grad", sfocal(grad_out=np.zeros((4, 3))), ValueError,
     ["grad_out", "return_grad"]),
]


@pytest.mark.parametrize("call, exc, words", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_argument(call, exc, words, backend):
    with pytest.raises(exc) as info:
        call(backend)
    msg = str(info.value)
    missing = [w for w in words if w not in msg]
    assert not missing, f"message {msg!r} lacks {missing}"


@pytest.mark.parametrize("func", ["cross_entropy", "focal_loss"])
def test_failed_call_leaves_buffers_untouched(func, backend):
    """A bad last target (after 40000 good rows, so a threaded core would have started):
    ValueError naming it, and grad_out never written."""
    x = np.zeros((40000, 3))
    t = _bad_target(39999, 3, (40000,))
    buf = np.full((40000, 3), 7.0)
    with pytest.raises(ValueError, match=r"target\[39999\] = 3"):
        getattr(fastce, func)(x, t, return_grad=True, grad_out=buf, backend=backend)
    np.testing.assert_array_equal(buf, 7.0)


@pytest.mark.parametrize("n, exc", [(-1, ValueError), (1.5, TypeError), (True, TypeError)],
                         ids=["negative", "float", "bool"])
def test_set_num_threads_rejects(n, exc, threads):
    with pytest.raises(exc, match="n_threads"):
        threads(n)


@pytest.mark.parametrize("ignore_index", [-100, -1, 2], ids=lambda i: f"ignore{i}")
def test_ignore_index_is_accepted_anywhere(ignore_index, backend):
    """The converse: a target equal to ignore_index is valid whatever its value."""
    t = _bad_target(1, ignore_index)
    loss = fastce.cross_entropy(X, t, ignore_index=ignore_index, reduction="none", backend=backend)
    assert loss[1] == 0.0 and np.isfinite(loss).all()
