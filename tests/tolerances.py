"""Every numerical tolerance of the test suite, in one place.

Other test modules import from here; no test file writes a tolerance literal.
A tolerance is a dict of keyword arguments for ``numpy.testing.assert_allclose``
(``rtol``, ``atol``).
"""
from __future__ import annotations

import numpy as np

#: A backend against the NumPy reference, on the same inputs, per input dtype.
#: float16 results are rounded from float32 (accelerated) or float64 (reference):
#: they may differ by one float16 ulp (2**-10 relative).
BACKEND = {
    np.dtype(np.float16): {"rtol": 2e-3, "atol": 2e-4},
    np.dtype(np.float32): {"rtol": 2e-5, "atol": 1e-6},
    np.dtype(np.float64): {"rtol": 1e-11, "atol": 1e-13},
}

#: Default of bugcases.json when a case gives no tolerance ("conventions.tolerance").
CASE_DEFAULT = {
    np.dtype(np.float16): {"rtol": 2e-3, "atol": 0.0},
    np.dtype(np.float32): {"rtol": 1e-5, "atol": 0.0},
    np.dtype(np.float64): {"rtol": 1e-12, "atol": 0.0},
}

#: The NumPy reference against torch in float64 (different summation orders only).
TORCH = {"rtol": 1e-10, "atol": 1e-12}

#: Identities that hold up to rounding (softmax sums to 1, shift invariance, ...),
#: checked in the input dtype.
IDENTITY = {
    np.dtype(np.float16): {"rtol": 4e-3, "atol": 4e-3},
    np.dtype(np.float32): {"rtol": 1e-5, "atol": 1e-6},
    np.dtype(np.float64): {"rtol": 1e-12, "atol": 1e-13},
}

#: Central finite differences in float64: step and the tolerance of the comparison.
#: Error ~ h**2 f''' + eps |f| / h: h = 1e-5 keeps both near 1e-10 for O(1) losses.
FD_STEP = 1e-5
FD = {"rtol": 1e-6, "atol": 1e-8}

#: Max error, in float32 ulps of the float64 truth, of the compiled core's float32
#: elementwise sigmoid losses over a sweep of logits (expf from libmvec, 1-2 ulp, and the
#: core's polynomial log1p on [0, 1], 2.8 ulp; measured 3.8 for the loss, 3.6 for the
#: gradient): tests/test_core_accuracy.py.
SIGMOID_F32_ULPS = 5.0

#: Max error, in ulps, of the float32 log1p on [0, 1] that the core and the Numba backend
#: share (2u (1 + z/3 + ... + z^6/13), u = e / (2 + e)): measured 2.8.
LOG1P_UNIT_F32_ULPS = 3.0

#: Gradients against an mpmath truth (extreme logits), float64.
MPMATH = {"rtol": 1e-9}  # atol: rtol x the batch's largest |value| (see test_gradients)
MPMATH_DPS = 60


def backend(dtype):
    """Tolerance of a backend-vs-reference comparison for results of `dtype`."""
    return BACKEND[np.dtype(dtype)]


def identity(dtype):
    """Tolerance of an identity checked in `dtype`."""
    return IDENTITY[np.dtype(dtype)]


def case(spec, dtype):
    """Tolerance of a bugcases.json case: its own rtol/atol, else the default for `dtype`."""
    tol = dict(CASE_DEFAULT[np.dtype(dtype)])
    if isinstance(spec, dict):
        tol.update({k: spec[k] for k in ("rtol", "atol") if k in spec})
    return tol


def assert_within_ulps(actual, expected, ulps, dtype, atol=0.0):
    """|actual - expected| <= ulps * spacing(expected in dtype) + atol, elementwise."""
    exp = np.asarray(expected, dtype=np.float64)
    spacing = np.abs(np.spacing(exp.astype(dtype))).astype(np.float64)
    err = np.abs(np.asarray(actual, dtype=np.float64) - exp)
    bad = ~(err <= ulps * spacing + atol)
    assert not bad.any(), (f"{ulps} ulp ({np.dtype(dtype)}) check failed: actual "
                           f"{np.asarray(actual)[bad]}, expected {exp[bad]}")
