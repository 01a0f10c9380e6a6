"""Argument checks and normalisation, done once, before any backend runs.

Every public function passes its arguments through here. Bad input raises
``TypeError`` (wrong type or dtype) or ``ValueError`` (wrong value, shape or
range), naming the argument, the offending value and, for arrays, its
position. What comes out satisfies the backend contract of
``fastce._backends``: 2-D ``(rows, classes)`` arrays whose class axis has unit
stride (views where possible, copies only where the layout demands), float32
or float64 compute dtype (float16 is computed in float32), int64 targets,
float64 weights. Inputs are never modified.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from fastce import _backends

REDUCTIONS = ("none", "mean", "sum")
_FLOATS = (np.float16, np.float32, np.float64)


def backend(name):
    if name is None:
        return _backends.default()
    if not isinstance(name, str) or name not in _backends.BACKENDS:
        raise ValueError(f"backend must be None or one of {_backends.BACKENDS}, got {name!r}")
    return name


def reduction(value):
    if not isinstance(value, str) or value not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {value!r}")
    return value


def flag(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def real(value, name, lo=-math.inf, hi=math.inf, lo_open=False):
    """A finite real scalar in [lo, hi] (or (lo, hi] with lo_open)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if math.isnan(v) or not (lo < v if lo_open else lo <= v) or not v <= hi or math.isinf(v):
        lo_b = "(" if lo_open else "["
        raise ValueError(f"{name} must be finite and in {lo_b}{lo}, {hi}], got {value!r}")
    return v


def integer(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    v = int(value)
    if not -(2**63) <= v < 2**63:
        raise ValueError(f"{name} must fit in int64, got {v}")
    return v


def _array(value, name):
    if isinstance(value, np.ndarray):
        return value
    try:
        return np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be an array, got {type(value).__name__}: {exc}") from None


def float_array(value, name):
    """An ndarray of float16/32/64 (a copy is never made here)."""
    a = _array(value, name)
    if a.dtype.type not in _FLOATS:
        raise TypeError(
            f"{name} must be a floating array (float16, float32 or float64), got dtype {a.dtype}")
    return a


def compute_dtype(a):
    return np.dtype(np.float32) if a.dtype == np.float16 else a.dtype


def axis(ax, ndim, name="axis"):
    ax = integer(ax, name)
    if not -ndim <= ax < ndim:
        raise ValueError(f"{name}={ax} is out of bounds for an array of dimension {ndim}")
    return ax % ndim


def as_rows(a, ax, dtype):
    """View/copy `a` as (rows, classes) with the class axis `ax` last and unit stride."""
    if ax != a.ndim - 1:
        a = np.moveaxis(a, ax, -1)
    c = a.shape[-1]
    a2 = a.reshape(-1, c) if a.ndim != 2 else a
    item = np.dtype(dtype).itemsize
    ok = (a2.dtype == dtype and a2.flags.aligned
          and (c <= 1 or a2.strides[1] == item)
          and a2.strides[0] >= 0 and a2.strides[0] % item == 0)
    if not ok:
        a2 = np.ascontiguousarray(a2, dtype=dtype)
    if c <= 1 and a2.strides[1] != item:  # any stride is fine for one class; keep the contract
        a2 = np.ascontiguousarray(a2)
    return a2


def logits(value, ax, name="logits", min_ndim=1):
    """(array, class axis, compute dtype, (rows, classes) view)."""
    a = float_array(value, name)
    if a.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {a.shape}")
    ax = axis(ax, a.ndim)
    dt = compute_dtype(a)
    return a, ax, dt, as_rows(a, ax, dt)


def _position(shape, flat):
    return tuple(int(i) for i in np.unravel_index(int(flat), shape)) if shape else ()


def check_finite(a, name):
    bad = ~np.isfinite(a)
    if bad.any():
        pos = _position(a.shape, np.flatnonzero(bad)[0])
        raise ValueError(f"{name} must be finite, got {a[pos]!r} at {name}[{', '.join(map(str, pos))}]")


def class_vector(value, name, c):
    """A per-class float64 vector of length c, finite."""
    if value is None:
        return None
    a = _array(value, name)
    if a.dtype.kind not in "fiu" or a.dtype.kind == "b":
        raise TypeError(f"{name} must be a real array, got dtype {a.dtype}")
    if a.shape != (c,):
        raise ValueError(f"{name} must have shape ({c},) (one value per class), got {a.shape}")
    a = np.ascontiguousarray(a, dtype=np.float64)
    check_finite(a, name)
    return a


def broadcast_real(value, name, shape, where):
    """A finite real array broadcast (a view, no copy) to `shape` as float64; `where`
    completes the error message ("cannot be broadcast <where>")."""
    a = _array(value, name)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a real array, got dtype {a.dtype}")
    try:
        b = np.broadcast_to(np.ascontiguousarray(a, dtype=np.float64), shape)
    except ValueError:
        raise ValueError(f"{name} of shape {a.shape} cannot be broadcast {where}") from None
    check_finite(a, name)
    return b


def index_target(value, logits_shape, ax, c, ignore_index, check_range=True):
    """Class-index targets -> int64 1-D in the rows order of as_rows.

    check_range=False leaves the range check to the compiled core, which
    checks while it reads the targets anyway and reports a failure by status;
    the caller then calls check_index_range for the message."""
    t = _array(value, "target")
    if t.dtype.kind == "b" or t.dtype.kind not in "iu":
        raise TypeError(f"target must be integer class indices, got dtype {t.dtype}")
    want = logits_shape[:ax] + logits_shape[ax + 1:]
    if t.shape != want:
        raise ValueError(
            f"class-index target must have the logits' shape without axis {ax}, "
            f"{want}, got {t.shape}")
    if t.dtype == np.uint64 and t.size and t.max() >= 2**63:
        flat = int(np.argmax(t >= 2**63))
        pos = _position(t.shape, flat)
        raise ValueError(f"target[{', '.join(map(str, pos))}] = {t[pos]} is out of range: "
                         f"class indices must be in [0, {c}) or equal ignore_index={ignore_index}")
    y = np.ascontiguousarray(t, dtype=np.int64).reshape(-1)
    if check_range:
        check_index_range(y, t.shape, c, ignore_index)
    return y


def check_index_range(y, shape, c, ignore_index):
    """Raise ValueError naming the first target not in [0, c) and not ignore_index."""
    bad = (y != ignore_index) & ((y < 0) | (y >= c))
    if bad.any():
        flat = int(np.flatnonzero(bad)[0])
        pos = _position(shape, flat)
        raise ValueError(f"target[{', '.join(map(str, pos))}] = {y[flat]} is out of range: "
                         f"class indices must be in [0, {c}) or equal ignore_index={ignore_index}")


def prob_target(value, logits_arr, ax, dtype, name="target"):
    """Floating targets shaped like the logits -> (rows, classes) of the compute dtype."""
    t = _array(value, name)
    if t.dtype.type not in _FLOATS:
        raise TypeError(f"{name} must be a floating array, got dtype {t.dtype}")
    if t.shape != logits_arr.shape:
        raise ValueError(f"floating {name} must have the logits' shape {logits_arr.shape} "
                         f"(probabilities), got {t.shape}")
    return as_rows(t, ax, dtype)


def split_target(value, logits_arr, ax, dtype, c, ignore_index, check_range=True):
    """Class indices (integer dtype) or probabilities (floating, logits' shape)."""
    t = _array(value, "target")
    if t.dtype.kind in "iu":
        return index_target(t, logits_arr.shape, ax, c, ignore_index, check_range), None
    if t.dtype.type in _FLOATS:
        if t.shape != logits_arr.shape:
            raise ValueError(
                f"floating target must have the logits' shape {logits_arr.shape} (class "
                f"probabilities); got {t.shape}. Class indices must have an integer dtype.")
        return None, as_rows(t, ax, dtype)
    raise TypeError(f"target must be integer class indices or floating probabilities, "
                    f"got dtype {t.dtype}")


def output(out, shape, dtype, name, inputs=()):
    """A caller-supplied output: ndarray of exactly `shape`/`dtype`, writable,
    not sharing memory with any input. None stays None."""
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape) or out.dtype != dtype:
        raise ValueError(f"{name} must have shape {tuple(shape)} and dtype {np.dtype(dtype)}, "
                         f"got shape {out.shape} and dtype {out.dtype}")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")
    for arr in inputs:
        if isinstance(arr, np.ndarray) and np.may_share_memory(out, arr):
            raise ValueError(f"{name} must not overlap an input array")
    return out
