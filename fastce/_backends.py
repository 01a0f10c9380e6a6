"""Backend registry: which kernel modules exist and how to load them.

The backend contract
--------------------
A backend is a module exposing the functions below. Arguments arrive already
validated and normalised by ``fastce._validate`` (the backend never checks
user input and never allocates its outputs):

- ``x``: 2-D ``(n, C)`` float32 or float64 logits; the class axis has unit
  stride (``x.strides[1] == x.itemsize``); the row stride is any non-negative
  multiple of the itemsize (0 for a broadcast row). May be read-only.
- ``y``: 1-D int64 ``(n,)`` class indices, each ``ignore_index`` or in ``[0, C)``.
- ``t``: 2-D ``(n, C)`` targets of x's dtype, class axis unit stride.
- ``weight`` (cross-entropy): float64 ``(C,)`` or None. ``weight``
  (binary_cross_entropy): float64 2-D ``(n, C)`` view with non-negative
  strides (0 broadcasts) or None. ``pos_weight``/``class_alpha``: float64
  ``(C,)`` or None. ``alpha``: float, < 0 means no alpha factor.
- ``reduction``: "none" | "mean" | "sum".
- ``loss``: float64 C-contiguous output, length 1 for mean/sum, ``n`` for
  "none" (``n * C`` for the elementwise binary_cross_entropy and
  sigmoid_focal_loss). All accumulation is float64.
- ``grad``: C-contiguous ``(n, C)`` of x's dtype, or None (forward only);
  receives d(reduced loss)/d(x) (for "none": of the sum of the losses).
- ``out``: C-contiguous output of x's dtype: ``(n, C)`` (log_softmax,
  softmax) or ``(n,)`` (logsumexp).
- ``n_threads``: int >= 1.

Functions (all return None and write their outputs):
  log_softmax(x, out, n_threads); softmax(x, out, n_threads);
  logsumexp(x, out, n_threads);
  cross_entropy(x, y, weight, ignore_index, label_smoothing, reduction, loss, grad, n_threads);
  cross_entropy_prob(x, t, weight, label_smoothing, reduction, loss, grad, n_threads);
  focal_loss(x, y, gamma, alpha, class_alpha, ignore_index, reduction, loss, grad, n_threads);
  focal_loss_prob(x, t, gamma, alpha, class_alpha, reduction, loss, grad, n_threads);
  binary_cross_entropy(x, t, weight, pos_weight, reduction, loss, grad, n_threads);
  sigmoid_focal_loss(x, t, gamma, alpha, reduction, loss, grad, n_threads).
The math and its conventions are those documented in include/fastce.h.
"""
from __future__ import annotations

import importlib

BACKENDS = ("cython", "numba", "numpy")
_MODULES = {"cython": "fastce._cython._core", "numba": "fastce._numba", "numpy": "fastce._reference"}
_loaded: dict = {}
_failed: dict = {}


def load(name: str):
    """The kernel module of backend `name`; ImportError if it cannot be used."""
    mod = _loaded.get(name)
    if mod is not None:
        return mod
    if name in _failed:
        raise ImportError(f"fastce backend {name!r} is unavailable: {_failed[name]}")
    try:
        mod = importlib.import_module(_MODULES[name])
    except ImportError as exc:
        _failed[name] = exc
        raise ImportError(f"fastce backend {name!r} is unavailable: {exc}") from exc
    _loaded[name] = mod
    return mod


def available() -> list:
    """Names of the backends that load on this machine, fastest first."""
    out = []
    for name in BACKENDS:
        try:
            load(name)
        except ImportError:
            continue
        out.append(name)
    return out


def default() -> str:
    """The backend used for backend=None: the compiled core, else Numba, else NumPy."""
    for name in BACKENDS:
        try:
            load(name)
            return name
        except ImportError:
            continue
    return "numpy"  # pragma: no cover - the reference always imports
