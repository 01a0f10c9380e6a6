"""Shared fixtures of the fastce test suite.

- ``backend``: every test that takes a ``backend`` argument runs on each backend
  that is ready (``fastce.available_backends()`` whose module implements the whole
  backend contract); a backend that does not load or is incomplete (e.g. Numba
  while it is being written) appears as SKIPPED with the reason.
- ``LOSS_CASES``: the loss x options matrix (readable ids) shared by the API
  comparison and the finite-difference tests; ``loss_case`` parametrizes over it.
- ``threads``: restores ``fastce.set_num_threads`` after a test that changes it.
"""
from __future__ import annotations

import dataclasses
import os
import sys

import numpy as np
import pytest

import fastce
from fastce import _backends

sys.path.insert(0, os.path.dirname(__file__))  # `import tolerances` under importlib mode

#: The functions a backend module must provide (the contract of fastce._backends).
KERNELS = ("log_softmax", "softmax", "logsumexp", "cross_entropy", "cross_entropy_prob",
           "focal_loss", "focal_loss_prob", "binary_cross_entropy", "sigmoid_focal_loss")
ACCELERATED = ("cython", "numba")


def backend_skip_reason(name):
    """None if backend `name` is usable, else why not."""
    if name not in fastce.available_backends():
        try:
            _backends.load(name)
        except ImportError as exc:
            return f"backend {name!r} does not load: {exc}"
        return f"backend {name!r} is not available"  # pragma: no cover
    missing = [k for k in KERNELS if not callable(getattr(_backends.load(name), k, None))]
    if missing:
        return f"backend {name!r} loads but is incomplete (missing {', '.join(missing)})"
    return None


def backend_params(names=_backends.BACKENDS):
    """pytest.param per backend, skipped with the reason when it is not ready."""
    params = []
    for name in names:
        reason = backend_skip_reason(name)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        params.append(pytest.param(name, id=name, marks=marks))
    return params


@dataclasses.dataclass(frozen=True)
class LossCase:
    """One loss function with one set of options, and how to draw its inputs.

    target: "index" (class indices), "prob" (class probabilities, logits' shape)
    or "binary" (elementwise targets in [0, 1]). ``ignored``: every third index
    target is set to ``opts['ignore_index']`` (or -100).
    """

    id: str
    func: str
    target: str
    opts: dict = dataclasses.field(default_factory=dict)
    shape: tuple = (5, 4)
    axis: int = -1
    ignored: bool = False

    def kwargs(self):
        """Keyword options of the call, arrays materialised."""
        kw = {k: (np.asarray(v) if isinstance(v, list) else v) for k, v in self.opts.items()}
        if self.func in ("cross_entropy", "focal_loss") and self.axis != -1:
            kw["axis"] = self.axis
        return kw

    def inputs(self, dtype, seed=0, scale=2.0):
        """(logits, target) of `dtype` drawn reproducibly."""
        rng = np.random.default_rng(seed)
        x = (scale * rng.standard_normal(self.shape)).astype(dtype)
        ax = self.axis % len(self.shape)
        c = self.shape[ax]
        if self.target == "index":
            t = rng.integers(0, c, size=self.shape[:ax] + self.shape[ax + 1:])
            if self.ignored:
                t.reshape(-1)[::3] = self.opts.get("ignore_index", -100)
        elif self.target == "prob":
            p = rng.random(self.shape) ** 2
            p.reshape(-1)[::5] = 0.0  # zero target entries (0 log 0 := 0)
            t = (p / p.sum(axis=ax, keepdims=True)).astype(dtype)
        else:
            t = rng.random(self.shape).astype(dtype)
            t.reshape(-1)[::4] = np.round(t.reshape(-1)[::4])  # some hard 0/1 labels
        return x, t

    def __call__(self, x, t, backend, **extra):
        return getattr(fastce, self.func)(x, t, backend=backend, **self.kwargs(), **extra)


def _loss_cases():
    ce, fl, bce, sfl = "cross_entropy", "focal_loss", "binary_cross_entropy", "sigmoid_focal_loss"
    w4 = [0.5, 1.0, 2.0, 0.25]
    cases = [
        LossCase("ce-plain", ce, "index"),
        LossCase("ce-weight", ce, "index", {"weight": w4}),
        LossCase("ce-ignore", ce, "index", {"ignore_index": -100}, ignored=True),
        LossCase("ce-ignore-neg1", ce, "index", {"ignore_index": -1}, ignored=True),
        LossCase("ce-ignore-in-range", ce, "index", {"ignore_index": 2}),
        LossCase("ce-smooth", ce, "index", {"label_smoothing": 0.1}),
        LossCase("ce-weight-smooth-ignore", ce, "index",
                 {"weight": w4, "label_smoothing": 0.2, "ignore_index": -100}, ignored=True),
        LossCase("ce-prob", ce, "prob"),
        LossCase("ce-prob-weight-smooth", ce, "prob", {"weight": w4, "label_smoothing": 0.3}),
        LossCase("ce-kdim-axis1", ce, "index", {"weight": w4}, shape=(2, 4, 3, 2), axis=1),
        LossCase("ce-kdim-prob-axis1", ce, "prob", {"label_smoothing": 0.1},
                 shape=(2, 4, 3, 2), axis=1),
        LossCase("ce-axis0", ce, "index", {"label_smoothing": 0.1}, shape=(4, 6), axis=0),
        LossCase("ce-1class", ce, "index", shape=(3, 1)),
    ]
    for gamma in (0.0, 0.5, 2.0):
        for aid, alpha in (("none", None), ("float", 0.25), ("array", w4)):
            cases.append(LossCase(f"focal-g{gamma}-a{aid}", fl, "index",
                                  {"gamma": gamma, "alpha": alpha}))
    cases += [
        LossCase("focal-ignore-neg1", fl, "index", {"gamma": 2.0, "ignore_index": -1},
                 ignored=True),
        LossCase("focal-prob-g0.5-aarray", fl, "prob", {"gamma": 0.5, "alpha": w4}),
        LossCase("focal-prob-g2", fl, "prob", {"gamma": 2.0}),
        LossCase("focal-kdim-axis1", fl, "index", {"gamma": 2.0, "alpha": w4},
                 shape=(2, 4, 3), axis=1),
        LossCase("focal-axis0", fl, "index", {"gamma": 0.5}, shape=(4, 5), axis=0),
        LossCase("bce-plain", bce, "binary"),
        LossCase("bce-weight", bce, "binary", {"weight": np.linspace(0.1, 2, 20).reshape(5, 4)}),
        LossCase("bce-weight-bcast-row", bce, "binary", {"weight": w4}),
        LossCase("bce-weight-bcast-col", bce, "binary", {"weight": np.arange(1.0, 6.0)[:, None]}),
        LossCase("bce-pos_weight", bce, "binary", {"pos_weight": [3.0, 1.0, 0.5, 0.0]}),
        LossCase("bce-weight-pos_weight", bce, "binary",
                 {"weight": w4, "pos_weight": [3.0, 1.0, 0.5, 2.0]}),
        LossCase("bce-3d", bce, "binary", shape=(2, 3, 4)),
        LossCase("bce-1d", bce, "binary", shape=(7,)),
    ]
    for gamma in (0.0, 0.5, 2.0):
        for alpha in (0.25, -1.0):
            cases.append(LossCase(f"sfocal-g{gamma}-a{alpha}", sfl, "binary",
                                  {"gamma": gamma, "alpha": alpha}))
    return cases


LOSS_CASES = _loss_cases()
REDUCTIONS = ("none", "mean", "sum")
DTYPES = (np.float16, np.float32, np.float64)


def pytest_generate_tests(metafunc):
    """Parametrize `backend` and `loss_case` arguments wherever a test takes them."""
    explicit = any(m.name == "parametrize" and "backend" in m.args[0]
                   for m in metafunc.definition.iter_markers())
    if "backend" in metafunc.fixturenames and not explicit:
        metafunc.parametrize("backend", backend_params())
    if "loss_case" in metafunc.fixturenames:
        metafunc.parametrize("loss_case", LOSS_CASES, ids=[c.id for c in LOSS_CASES])


@pytest.fixture
def threads():
    """Give the test fastce.set_num_threads; restore the default afterwards."""
    yield fastce.set_num_threads
    fastce.set_num_threads(0)
