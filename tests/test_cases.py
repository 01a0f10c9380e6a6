"""Every case of tests/cases/bugcases.json (inputs on which a well-known library once
failed, with the value computed from the definition) on every backend.

The JSON's ``conventions`` say how inputs are encoded; each case's ``notes`` ask
for extra runs, encoded here as *variants* (a variant rewrites the inputs, the
parameters and the expected values of its case) and *extra checks*.
"""
from __future__ import annotations

import copy
import json
import pathlib

import numpy as np
import pytest

import fastce
import tolerances as tol
from conftest import backend_params

CASES_FILE = pathlib.Path(__file__).parent / "cases" / "bugcases.json"
CASES = {c["id"]: c for c in json.loads(CASES_FILE.read_text())["cases"]}


def decode(spec):
    """An array from {dtype, data} (with 'inf'/'-inf'/'nan' strings) or {dtype, construct}."""
    if not isinstance(spec, dict) or "dtype" not in spec:
        return spec
    if "construct" in spec:
        a = eval(spec["construct"], {"__builtins__": {}, "np": np})  # noqa: S307 - test data
        assert a.dtype == np.dtype(spec["dtype"]), (spec["construct"], a.dtype)
        return a
    return np.array(_floats(spec["data"]), dtype=spec["dtype"])


def _floats(data):
    if isinstance(data, list):
        return [_floats(d) for d in data]
    return float(data) if isinstance(data, str) else data


# --- variants asked for by the cases' notes --------------------------------------------

def _with_params(**params):
    def apply(case):
        case["params"].update(params)
    return apply


def _scaled_loss(factor, **params):
    def apply(case):
        case["params"].update(params)
        case["expected_loss"] = factor * case["expected_loss"]
        if case["expected_grad"] is not None:
            case["expected_grad"] = (factor * np.asarray(case["expected_grad"])).tolist()
    return apply


def _as_dtype(dtype, rtol, atol):
    def apply(case):
        for spec in case["inputs"].values():
            spec["dtype"] = dtype
        case["tolerance"] = {"rtol": rtol, "atol": atol}
    return apply


def _target_dtype(dtype):
    def apply(case):
        case["inputs"]["target"]["dtype"] = dtype
    return apply


def _b04(reduction):
    def apply(case):
        case["params"]["reduction"] = reduction
        case["expected_loss"] = 0.0 if reduction == "sum" else [0.0, 0.0]
        case["tolerance"] = {"exact": True}
    return apply


def _b28_focal(case):
    """focal_loss with gamma=0 and no alpha is cross_entropy: same expected values."""
    case["function"] = "focal_loss"
    case["params"].update(gamma=0.0, alpha=None)
    case["inputs"]["target"]["dtype"] = "int32"


def _b29_square(case):
    case["inputs"]["logits"]["data"] = [[0.3, -0.2], [2.0, 0.1]]


VARIANTS = {
    "B02": {"sum": _scaled_loss(2.0, reduction="sum")},
    "B04": {"sum": _b04("sum"), "none": _b04("none")},
    "B17": {"pos_weight": _with_params(pos_weight={"dtype": "float64", "data": [1.0, 1.0, 1.0]}),
            "float32": _as_dtype("float32", 1e-6, 1e-6),
            "float32-pos_weight": lambda c: (_as_dtype("float32", 1e-6, 1e-6)(c), _with_params(
                pos_weight={"dtype": "float32", "data": [1.0, 1.0, 1.0]})(c))},
    "B28": dict({dt: _target_dtype(dt) for dt in
                 ("int8", "int16", "int64", "uint8", "uint16", "uint32", "uint64")},
                focal_int32=_b28_focal),
    "B29": {"square-2x2": _b29_square},
}


def _case_params():
    params = []
    for cid, case in CASES.items():
        for variant in ("base", *VARIANTS.get(cid, {})):
            for bp in backend_params():
                marks = list(bp.marks)
                if cid == "B25":
                    marks += _b25_marks(bp.values[0])
                params.append(pytest.param(cid, variant, bp.values[0], marks=marks,
                                           id=f"{cid}-{variant}-{bp.id}"))
    return params


def _b25_marks(backend):
    if backend == "numpy":
        return [pytest.mark.skip(reason="B25 on the NumPy reference materialises float64 "
                                        "temporaries of N*C = 2.1e9 elements (~17 GB)")]
    return []  # cython and numba keep the stride-0 view: ~1-2 s here (measured)


def materialise(cid, variant):
    """(function, inputs, params, case) of one case variant, arrays decoded."""
    case = copy.deepcopy(CASES[cid])
    if variant != "base":
        VARIANTS[cid][variant](case)
    inputs = {k: decode(v) for k, v in case["inputs"].items()}
    params = {k: decode(v) for k, v in case["params"].items()}
    return getattr(fastce, case["function"]), inputs, params, case


def check_value(actual, expected, tolerance, dtype, what):
    """Compare one output with the case's expected value under the case's tolerance."""
    exp = np.asarray(_floats(expected), dtype=np.float64)
    act = np.asarray(actual)
    assert act.shape == exp.shape, f"{what}: shape {act.shape}, expected {exp.shape}"
    tolerance = tolerance or {}
    if tolerance.get("exact"):
        np.testing.assert_array_equal(act.astype(np.float64), exp, err_msg=what)
    elif "float16_ulps" in tolerance:
        tol.assert_within_ulps(act, exp, tolerance["float16_ulps"], np.float16,
                               tolerance.get("atol", 0.0))
    else:
        assert np.array_equal(np.isnan(act), np.isnan(exp)), f"{what}: NaN pattern {act}"
        np.testing.assert_allclose(act.astype(np.float64), exp, err_msg=what,
                                   **tol.case(tolerance, dtype))


@pytest.mark.parametrize("cid, variant, backend", _case_params())
def test_case(cid, variant, backend):
    func, inputs, params, case = materialise(cid, variant)
    dtype = next(iter(inputs.values())).dtype
    if case["expected_error"] is not None:
        with pytest.raises((TypeError, ValueError, IndexError)) as info:
            func(**inputs, **params, backend=backend)
        EXTRA_ERROR_CHECKS.get(cid, lambda *a: None)(str(info.value), inputs)
        return
    try:
        result = func(**inputs, **params, backend=backend)
    except MemoryError as exc:  # the case asks for SKIPPED, not failed
        pytest.skip(f"{cid}: MemoryError ({exc})")
    loss, grad = result if params.get("return_grad") else (result, None)
    assert np.asarray(loss).dtype == dtype, f"result dtype {np.asarray(loss).dtype} != {dtype}"
    if case["tolerance"] == {"loss": "must be NaN", "grad": "exact zeros, no NaN"}:
        assert np.isnan(loss), f"{cid}: loss {loss}, expected NaN"
        np.testing.assert_array_equal(grad, np.zeros_like(grad))
    else:
        check_value(loss, case["expected_loss"], case["tolerance"], dtype, f"{cid} loss")
        if case["expected_grad"] is not None:
            assert grad.shape == inputs["logits"].shape and grad.dtype == dtype
            assert np.isfinite(grad).all(), f"{cid}: non-finite gradient {grad}"
            check_value(grad, case["expected_grad"], case["tolerance"], dtype, f"{cid} grad")
    if grad is not None and "ignore_index" in params:  # ignored rows: exactly zero gradient
        ignored = np.asarray(inputs["target"]) == params["ignore_index"]
        assert (grad[ignored] == 0).all(), f"{cid}: ignored rows' gradient {grad[ignored]}"
    EXTRA_CHECKS.get(cid, lambda *a: None)(func, inputs, params, backend)


# --- extra checks from the notes -----------------------------------------------------------

def _b06_message(msg, inputs):
    assert "target" in msg and "4" in msg and "[0, 4)" in msg, msg


def _b29_message(msg, inputs):
    assert "target" in msg and "shape" in msg and "integer" in msg, msg


EXTRA_ERROR_CHECKS = {"B06": _b06_message, "B29": _b29_message}


def _b14(func, inputs, params, backend):
    x = inputs["x"]
    p = func(x, backend=backend)
    assert ((p >= 0) & (p <= 1)).all() and p.sum() == 1.0
    np.testing.assert_array_equal(fastce.log_softmax(x, backend=backend), [[0.0, -1000.0, -2000.0]])


def _b23(func, inputs, params, backend):
    """fastce's choice: a float16 'sum' beyond 65504 is inf (as torch); the mean is finite."""
    total = func(**inputs, reduction="sum", backend=backend)
    assert total.dtype == np.float16 and total == np.inf


def _b27(func, inputs, params, backend):
    """Five repeats with 1, 2 and all (0: the default) threads: bit-identical."""
    results = []
    for n in (1, 2, 0):
        fastce.set_num_threads(n)
        try:
            results += [func(**inputs, **params, backend=backend) for _ in range(5)]
        finally:
            fastce.set_num_threads(0)
    assert len({float(r).hex() for r in results}) == 1, [float(r).hex() for r in results]


def _b28(func, inputs, params, backend):
    ref = func(inputs["logits"], inputs["target"].astype(np.int64), **params, backend=backend)
    got = func(**inputs, **params, backend=backend)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])


EXTRA_CHECKS = {"B14": _b14, "B23": _b23, "B27": _b27, "B28": _b28}


def test_every_case_is_run():
    """Guard: the file is the shared one and no case id is silently dropped."""
    assert len(CASES) == 19
    assert all(c["expected_error"] is not None or c["expected_loss"] is not None
               for c in CASES.values())
