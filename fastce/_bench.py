"""`fastce bench`: fastce's backends side by side with the NumPy reference and the peers.

Design
------
One process, one machine state: every implementation of a case (fastce's
"cython", "numba" and "numpy" backends; PyTorch CPU, JAX and scikit-learn when
installed) is timed round-robin (the starting implementation rotates each
repeat), and the median of the repeats is reported. Ratios measured this way
are robust to a shared, noisy machine; absolute times are not.

A *case* is (function, rows, classes, dtype, mode); mode is "fwd" (the value)
or "fwd+grad" (the value and d(mean loss)/d(logits)). Peers compute the same
math: torch.nn.functional / jax.nn for the softmax family and cross-entropy,
the torchvision sigmoid focal loss and the RetinaNet softmax focal loss written
in torch and jax (gamma=2; alpha=0.25 for the sigmoid form, none for softmax),
scikit-learn's HalfMultinomialLoss / HalfBinomialLoss with sample weights 1/n
(so its loss sum and gradient are those of the mean). torch runs with autograd
for fwd+grad; JAX runs ``jax.jit(jax.value_and_grad(f))`` and blocks until ready.

Besides the table this module measures the copy bandwidth (``np.copyto``, one
thread and all threads) to place each compiled case against the memory-
bandwidth roofline (bytes = logits read once + output/gradient written once),
the thread scaling of the compiled backends, and the per-call latency of a
small batch; it then checks the speed targets of the project. The pytest-
benchmark suites in ``bench/`` reuse the cases and implementations defined here.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np

import fastce

__all__ = ["Case", "make_cases", "make_inputs", "implementation", "implementations", "main"]

SOFTMAX_FAMILY = ("log_softmax", "softmax", "logsumexp")
LOSSES = ("cross_entropy", "binary_cross_entropy", "focal_loss", "sigmoid_focal_loss")
FUNCTIONS = SOFTMAX_FAMILY + LOSSES
ELEMENTWISE = ("binary_cross_entropy", "sigmoid_focal_loss")
MODES = ("fwd", "fwd+grad")
FASTCE = ("cython", "numba", "numpy")
PEERS = ("torch", "jax", "sklearn")
# (rows, classes, dtype): the default shapes; --quick keeps the first two
SHAPES = ((32, 10, "float32"), (4096, 1000, "float32"), (65536, 128, "float32"),
          (2048, 32000, "float32"), (4096, 1000, "float64"))
QUICK_SHAPES = SHAPES[:2]
LARGE = 1_000_000  # elements from which a case counts as "large" (numba vs cython target)
GAMMA, SIGMOID_ALPHA = 2.0, 0.25


@dataclass(frozen=True)
class Case:
    """One benchmark case: `function` on (n, c) logits of `dtype`, forward or forward+gradient."""

    function: str
    n: int
    c: int
    dtype: str
    mode: str

    @property
    def grad(self) -> bool:
        return self.mode == "fwd+grad"

    @property
    def shape(self) -> str:
        return f"{self.n}x{self.c}"

    @property
    def label(self) -> str:
        return f"{self.function} {self.shape} {self.dtype} {self.mode}"

    def bytes_moved(self) -> int:
        """Minimal memory traffic: the logits read once + the output (or gradient) written once."""
        item = np.dtype(self.dtype).itemsize
        written = self.n * self.c if (self.grad or self.function in ("log_softmax", "softmax")) \
            else (self.n if self.function == "logsumexp" else 0)
        return (self.n * self.c + written) * item


def make_cases(functions=FUNCTIONS, shapes=SHAPES, modes=MODES):
    """All cases of `functions` x `shapes` x `modes` (the softmax family has no fwd+grad)."""
    return [Case(f, n, c, dt, m) for n, c, dt in shapes for f in functions for m in modes
            if not (m == "fwd+grad" and f in SOFTMAX_FAMILY)]


def parse_shape(text: str):
    """'4096x1000' or '4096x1000:float64' -> (4096, 1000, 'float32'|'float64')."""
    dims, _, dtype = text.partition(":")
    try:
        n, c = (int(s) for s in dims.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape must look like 4096x1000[:float64], got {text!r}")
    dtype = dtype or "float32"
    if dtype not in ("float32", "float64") or n < 1 or c < 1:
        raise argparse.ArgumentTypeError(f"bad shape {text!r} (dtype float32|float64, sizes >= 1)")
    return n, c, dtype


def make_inputs(case: Case, seed: int = 0):
    """Logits (standard normal x 2) and targets: class indices (int64) for the softmax
    losses, {0, 1} labels of the logits' dtype for the elementwise ones, None otherwise."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case.n, case.c), dtype=np.float64).astype(case.dtype) * 2
    if case.function in ELEMENTWISE:
        return x, (rng.random((case.n, case.c)) < 0.1).astype(case.dtype)
    if case.function in LOSSES:
        return x, rng.integers(0, case.c, size=case.n)
    return x, None


# --- implementations -------------------------------------------------------------------
# Every implementation is built by a factory (case, x, target, n_threads) -> a callable
# with no arguments that computes the case and returns its value (for fwd+grad: a
# (value, gradient) pair). Building does the conversions; calling is what is timed.

_KWARGS = {"focal_loss": {"gamma": GAMMA, "alpha": None},
           "sigmoid_focal_loss": {"gamma": GAMMA, "alpha": SIGMOID_ALPHA}}


def _fastce(backend):
    def build(case, x, t, n_threads):
        fastce._backends.load(backend)  # ImportError: the backend is absent
        fn = getattr(fastce, case.function)
        if case.function in SOFTMAX_FAMILY:
            return lambda: fn(x, backend=backend)
        kw = dict(_KWARGS.get(case.function, {}), return_grad=case.grad, backend=backend)
        return lambda: fn(x, t, **kw)
    return build


def _focal(o, x, y):
    lp = o.pick(o.log_softmax(x), y)
    return o.mean(-((-o.expm1(lp)) ** GAMMA) * lp)


def _sigmoid_focal(o, x, t):  # torchvision.ops.sigmoid_focal_loss
    p = o.sigmoid(x)
    p_t = p * t + (1 - p) * (1 - t)
    alpha_t = SIGMOID_ALPHA * t + (1 - SIGMOID_ALPHA) * (1 - t)
    return o.mean(alpha_t * o.bce(x, t) * (1 - p_t) ** GAMMA)


# the same math for torch and jax, written once against a small table of operations `o`
_PEER_MATH = {
    "log_softmax": lambda o, x, t: o.log_softmax(x),
    "softmax": lambda o, x, t: o.softmax(x),
    "logsumexp": lambda o, x, t: o.logsumexp(x),
    "cross_entropy": lambda o, x, t: o.cross_entropy(x, t),
    "binary_cross_entropy": lambda o, x, t: o.mean(o.bce(x, t)),
    "focal_loss": _focal,
    "sigmoid_focal_loss": _sigmoid_focal,
}


class _Ops:
    def __init__(self, **ops):
        self.__dict__.update(ops)


def _torch_ops():
    import torch
    import torch.nn.functional as F

    return torch, _Ops(
        log_softmax=lambda x: F.log_softmax(x, -1), softmax=lambda x: F.softmax(x, -1),
        logsumexp=lambda x: torch.logsumexp(x, -1), cross_entropy=F.cross_entropy,
        bce=lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction="none"),
        pick=lambda a, y: a.gather(1, y[:, None])[:, 0], expm1=torch.expm1,
        sigmoid=torch.sigmoid, mean=torch.mean)


def _build_torch(case, x, t, n_threads):
    torch, o = _torch_ops()
    torch.set_num_threads(n_threads)
    f = _PEER_MATH[case.function]
    xt = torch.from_numpy(x)
    tt = None if t is None else torch.from_numpy(t)
    if not case.grad:
        def fwd():
            with torch.no_grad():
                return f(o, xt, tt)
        return fwd
    xg = xt.clone().requires_grad_(True)

    def fwd_grad():
        with torch.enable_grad():
            loss = f(o, xg, tt)
            return loss, torch.autograd.grad(loss, xg)[0]
    return fwd_grad


def _build_jax(case, x, t, n_threads):
    import jax

    jax.config.update("jax_enable_x64", True)  # float64 cases; inputs carry their dtype
    import jax.numpy as jnp

    o = _Ops(log_softmax=jax.nn.log_softmax, softmax=jax.nn.softmax,
             logsumexp=lambda x: jax.nn.logsumexp(x, axis=-1),
             cross_entropy=lambda x, y: -jnp.mean(o.pick(jax.nn.log_softmax(x), y)),
             bce=lambda x, t: jax.nn.softplus(x) - x * t,
             pick=lambda a, y: jnp.take_along_axis(a, y[:, None], axis=1)[:, 0],
             expm1=jnp.expm1, sigmoid=jax.nn.sigmoid, mean=jnp.mean)
    f = _PEER_MATH[case.function]
    g = jax.value_and_grad(lambda x, t: f(o, x, t)) if case.grad else (lambda x, t: f(o, x, t))
    fn = jax.jit(g)
    xj = jax.device_put(x)
    tj = None if t is None else jax.device_put(t)
    return lambda: jax.block_until_ready(fn(xj, tj))


def _build_sklearn(case, x, t, n_threads):
    from sklearn._loss.loss import HalfBinomialLoss, HalfMultinomialLoss

    if case.function == "cross_entropy":
        loss, y, raw = HalfMultinomialLoss(n_classes=case.c), t.astype(x.dtype), x
    elif case.function == "binary_cross_entropy":
        loss, y, raw = HalfBinomialLoss(), t.ravel(), x.ravel()
    else:
        raise NotImplementedError(f"scikit-learn has no {case.function}")
    # weights 1/n: the loss sum is the mean and the gradient that of the mean
    sw = np.full(y.shape[0], 1.0 / y.shape[0], dtype=x.dtype)
    loss_out = np.empty(y.shape[0], dtype=x.dtype)
    if not case.grad:
        return lambda: loss.loss(y, raw, sw, loss_out, n_threads=n_threads).sum()
    grad_out = np.empty_like(raw)

    def fwd_grad():
        lo, g = loss.loss_gradient(y, raw, sw, loss_out, grad_out, n_threads=n_threads)
        return lo.sum(), g.reshape(x.shape)
    return fwd_grad


_BUILDERS = {"cython": _fastce("cython"), "numba": _fastce("numba"), "numpy": _fastce("numpy"),
             "torch": _build_torch, "jax": _build_jax, "sklearn": _build_sklearn}
_PEER_FUNCTIONS = {"torch": FUNCTIONS, "jax": FUNCTIONS,
                   "sklearn": ("cross_entropy", "binary_cross_entropy")}


def applicable(name: str, case: Case) -> bool:
    """Whether implementation `name` has `case`'s function at all (absence is another matter)."""
    return name in FASTCE or case.function in _PEER_FUNCTIONS[name]


def implementation(name, case, x, t, n_threads=None):
    """The timed callable of implementation `name` for `case` (ImportError if not installed)."""
    return _BUILDERS[name](case, x, t, n_threads or os.cpu_count() or 1)


def implementations(case, x, t, names, n_threads=None):
    """{name: callable} for the implementations in `names` that exist and run `case`,
    {name: value of the warm-up call (JIT compilation)} and {name: reason} for those skipped."""
    impls, values, skipped = {}, {}, {}
    for name in names:
        if not applicable(name, case):
            continue
        try:
            fn = implementation(name, case, x, t, n_threads)
            values[name] = value_of(fn())
        except Exception as exc:  # a missing peer or a backend that cannot run this case
            skipped[name] = f"{type(exc).__name__}: {exc}".splitlines()[0][:160]
            continue
        impls[name] = fn
    return impls, values, skipped


def value_of(result):
    """The loss (or output) of a call as a float64 NumPy array, whatever produced it."""
    v = result[0] if isinstance(result, tuple) else result
    if hasattr(v, "detach"):
        v = v.detach().numpy()
    return np.asarray(v, dtype=np.float64)


# --- timing --------------------------------------------------------------------------

def _sample(fn, loops):
    t0 = time.perf_counter()
    for _ in range(loops):
        fn()
    return (time.perf_counter() - t0) / loops


def _loops(fn, min_sample):
    """Calls per sample so that a sample lasts about `min_sample` seconds."""
    t = _sample(fn, 1)
    return max(1, min(100_000, math.ceil(min_sample / max(t, 1e-9))))


def time_round_robin(fns: dict, repeats: int, min_sample: float, on_sample=None):
    """Median seconds per call of each callable, measured round-robin: each repeat times
    every callable once, starting one later each time, so that drift of the machine's
    load hits all alike. Returns {name: (median, [samples])}."""
    names = list(fns)
    loops = {k: _loops(fns[k], min_sample) for k in names}
    samples = {k: [] for k in names}
    for r in range(repeats):
        for i in range(len(names)):
            k = names[(i + r) % len(names)]
            samples[k].append(_sample(fns[k], loops[k]))
        if on_sample:
            on_sample()
    return {k: (statistics.median(s), s) for k, s in samples.items()}


# --- machine measurements ------------------------------------------------------------

def copy_bandwidth(nbytes: int = 256 << 20, threads: int = 1, repeats: int = 5) -> float:
    """Copy bandwidth in bytes/s (read + write counted) of np.copyto over `nbytes`,
    split in `threads` slices copied concurrently (NumPy releases the GIL)."""
    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    bounds = [i * src.size // threads for i in range(threads + 1)]
    parts = [(dst[a:b], src[a:b]) for a, b in zip(bounds, bounds[1:])]
    with ThreadPoolExecutor(threads) as pool:
        def once():
            list(pool.map(lambda p: np.copyto(*p), parts))
        once()
        best = min(_sample(once, 1) for _ in range(repeats))
    return 2 * src.nbytes / best


def machine_info() -> dict:
    """CPU model, core count and versions."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            model = next(line.split(":", 1)[1].strip() for line in fh
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {"python": platform.python_version(), "numpy": np.__version__,
                "fastce": fastce.__version__}
    for mod in ("numba", "torch", "jax", "sklearn"):
        m = sys.modules.get(mod)
        if m is not None:
            versions[mod] = getattr(m, "__version__", "?")
    return {"cpu": model, "cores": os.cpu_count(), "node": platform.node(), "versions": versions}


def _thread_counts():
    n = os.cpu_count() or 1
    counts = [1]
    while counts[-1] * 2 < n:
        counts.append(counts[-1] * 2)
    return counts + [n] if n > 1 else counts


# --- targets -------------------------------------------------------------------------

def _speedup(rows, func, n, c, mode, key="vs_peer"):
    r = next((r for r in rows if (r["function"], r["n"], r["c"], r["dtype"], r["mode"], r["impl"])
              == (func, n, c, "float32", mode, "cython")), None)
    return None if r is None else r.get(key)


def check_targets(rows, scaling, latency):
    """The project's speed targets: [{target, measured, goal, met}] (met None: not measured)."""
    out = []

    def add(name, measured, goal, higher=True, unit="x"):
        met = None if measured is None else (measured >= goal if higher else measured <= goal)
        out.append({"target": name, "measured": measured, "goal": goal, "unit": unit,
                    "higher_is_better": higher, "met": met})

    big = ((4096, 1000), (2048, 32000))
    for func, mode, goal in (("cross_entropy", "fwd+grad", 2.0), ("focal_loss", "fwd+grad", 2.0),
                             ("sigmoid_focal_loss", "fwd+grad", 10.0), ("log_softmax", "fwd", 1.5)):
        for n, c in big:
            add(f"{func} {n}x{c} {mode}: cython vs fastest peer >= {goal}x",
                _speedup(rows, func, n, c, mode), goal)
    add("cross_entropy 2048x32000 fwd+grad: cython >= 50% of roofline",
        _speedup(rows, "cross_entropy", 2048, 32000, "fwd+grad", "roofline_pct"), 50.0, unit="%")
    lat = {r["impl"]: r["seconds"] for r in latency}
    peers = [lat[p] for p in PEERS if p in lat]
    add("cross_entropy 32x10 fwd+grad per call: fastest peer / cython > 1",
        (min(peers) / lat["cython"]) if peers and "cython" in lat else None, 1.0 + 1e-12)
    worst = max((s["ratio_all_vs_1"] for s in scaling), default=None)
    add("threads never hurt: max over cases of t(all cores) / t(1 thread) <= 1.1", worst, 1.1,
        higher=False)
    ratios = []
    for r in rows:
        if r["impl"] == "numba" and r["n"] * r["c"] >= LARGE:
            cy = next((q for q in rows if q["impl"] == "cython" and q["case"] == r["case"]), None)
            if cy is not None:
                ratios.append(r["seconds"] / cy["seconds"])
    add("numba within 1.5x of cython at large shapes: max t(numba) / t(cython) <= 1.5",
        max(ratios) if ratios else None, 1.5, higher=False)
    return out


# --- report --------------------------------------------------------------------------

def _ms(s):
    return "" if s is None else (f"{s * 1e3:.3f}" if s < 1e-2 else f"{s * 1e3:.1f}")


def _x(v):
    return "" if v is None else f"{v:.2f}x"


def markdown_table(rows, impl_order):
    """One line per case: median ms per implementation and the speed-ups of the compiled
    backends over NumPy and over the fastest peer, and cython's % of the roofline."""
    cases = list(dict.fromkeys(r["case"] for r in rows))
    by = {(r["case"], r["impl"]): r for r in rows}
    compiled = [b for b in ("cython", "numba") if b in impl_order]
    head = (["function", "shape", "dtype", "mode"] + [f"{k} ms" for k in impl_order]
            + [f"{b} vs {w}" for b in compiled for w in ("numpy", "peer")] + ["cython % roof"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for case in cases:
        any_row = next(r for r in rows if r["case"] == case)
        cells = [any_row["function"], f"{any_row['n']}x{any_row['c']}", any_row["dtype"],
                 any_row["mode"]]
        cells += [_ms(by[(case, k)]["seconds"]) if (case, k) in by else "" for k in impl_order]
        for b in compiled:
            r = by.get((case, b), {})
            cells += [_x(r.get("vs_numpy")), _x(r.get("vs_peer"))]
        pct = by.get((case, "cython"), {}).get("roofline_pct")
        cells.append("" if pct is None else f"{pct:.0f}%")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_targets(targets):
    lines = ["| target | measured | status |", "|---|---|---|"]
    for t in targets:
        m = "" if t["measured"] is None else (f"{t['measured']:.1f}%" if t["unit"] == "%"
                                               else f"{t['measured']:.2f}x")
        status = {True: "met", False: "NOT met", None: "not measured"}[t["met"]]
        lines.append(f"| {t['target']} | {m} | {status} |")
    return "\n".join(lines)


def markdown_scaling(scaling):
    if not scaling:
        return ""
    counts = sorted({int(k) for s in scaling for k in s["seconds"]})
    lines = ["| case | backend | " + " | ".join(f"{k} thr ms" for k in counts)
             + " | all/1 |", "|---|---|" + "---|" * (len(counts) + 1)]
    for s in scaling:
        lines.append(f"| {s['case']} | {s['impl']} | "
                     + " | ".join(_ms(s["seconds"].get(str(k))) for k in counts)
                     + f" | {s['ratio_all_vs_1']:.2f} |")
    return "\n".join(lines)


def save_plot(rows, impl_order, path) -> str:
    """Speed-up over NumPy per case (log scale), one panel per function; returns a message."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plot written"
    funcs = [f for f in FUNCTIONS if any(r["function"] == f for r in rows)]
    impls = [k for k in impl_order if k != "numpy"]
    fig, axes = plt.subplots(len(funcs), 1, figsize=(9, 2.2 * len(funcs) + 0.6), squeeze=False)
    for ax, func in zip(axes[:, 0], funcs):
        cases = list(dict.fromkeys(r["case"] for r in rows if r["function"] == func))
        by = {(r["case"], r["impl"]): r.get("vs_numpy") for r in rows}
        w = 0.8 / max(1, len(impls))
        for j, k in enumerate(impls):
            xs = [i + (j - (len(impls) - 1) / 2) * w for i in range(len(cases))]
            ax.bar(xs, [by.get((c, k)) or 0 for c in cases], width=w, label=k)
        ax.set_yscale("log")
        ax.axhline(1, color="k", lw=0.6)
        ax.set_xticks(range(len(cases)))
        ax.set_xticklabels([c.split(" ", 1)[1].replace(" ", "\n") for c in cases], fontsize=6)
        ax.set_title(func, fontsize=9)
        ax.set_ylabel("x numpy", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    axes[0, 0].legend(fontsize=7, ncol=len(impls), loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return f"plot written to {path}"


# --- driver ----------------------------------------------------------------------------

def _progress(enabled):
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                    "{task.total}"), TimeElapsedColumn(), console=Console(stderr=True),
                    disable=not enabled, transient=False)


def _check(values, case):
    """Names of implementations whose value differs from the NumPy reference's (or cython's)."""
    ref_name = "numpy" if "numpy" in values else next(iter(values), None)
    if ref_name is None:
        return []
    ref = values[ref_name]
    tol = 1e-3 if case.dtype == "float32" else 1e-8
    return [k for k, v in values.items()
            if v.shape != ref.shape or not np.allclose(v, ref, rtol=tol, atol=tol, equal_nan=True)]


def run(cases, names, repeats, min_sample, scaling=True, latency=True, bw_bytes=256 << 20,
        progress=True, log=print):
    """Run the whole comparison; returns the JSON-able report."""
    cores = os.cpu_count() or 1
    _default_threads()
    bw = {"copy_1_thread": copy_bandwidth(bw_bytes, 1), f"copy_{cores}_threads":
          copy_bandwidth(bw_bytes, cores)}
    roof_bw = max(bw.values())
    rows, scale_rows, lat_rows, warnings = [], [], [], []
    compiled = [b for b in ("cython", "numba") if b in names]
    n_steps = len(cases) * (1 + (len(compiled) > 0 and scaling)) + latency
    with _progress(progress) as bar:
        task = bar.add_task("fastce bench", total=n_steps)
        for case in cases:
            bar.update(task, description=case.label)
            x, t = make_inputs(case)
            impls, values, skipped = implementations(case, x, t, names)
            for k, why in skipped.items():
                warnings.append(f"{case.label}: {k} skipped ({why})")
            bad = _check(values, case)
            for k in bad:
                warnings.append(f"{case.label}: {k} disagrees with the reference value")
            res = time_round_robin(impls, repeats, min_sample)
            peer_best = min((res[k][0] for k in PEERS if k in res), default=None)
            for k, (med, samples) in res.items():
                row = {"case": case.label, **asdict(case), "impl": k, "seconds": med,
                       "samples": samples, "value_mismatch": k in bad,
                       "vs_numpy": res["numpy"][0] / med if "numpy" in res else None,
                       "vs_peer": peer_best / med if peer_best else None}
                if k in compiled:
                    row["roofline_pct"] = 100 * case.bytes_moved() / roof_bw / med
                rows.append(row)
            bar.advance(task)
            if scaling and compiled:
                scale_rows += _scaling(case, {k: impls[k] for k in compiled if k in impls},
                                       max(repeats, 7), min_sample, warnings)
                bar.advance(task)
            del impls, values, x, t
        if latency:
            bar.update(task, description="latency cross_entropy 32x10 fwd+grad")
            case = Case("cross_entropy", 32, 10, "float32", "fwd+grad")
            x, t = make_inputs(case)
            impls = implementations(case, x, t, names)[0]
            res = time_round_robin(impls, max(repeats, 7), min_sample)
            lat_rows = [{"impl": k, "seconds": v[0]} for k, v in res.items()]
            bar.advance(task)
    return {"machine": machine_info(), "bandwidth_bytes_per_s": bw, "results": rows,
            "scaling": scale_rows, "latency": lat_rows, "warnings": warnings,
            "targets": check_targets(rows, scale_rows, lat_rows)}


def _scaling(case, impls, repeats, min_sample, warnings):
    """Seconds per call of each compiled backend at 1, 2, 4, ... all threads (round-robin)."""
    out = []
    counts = _thread_counts()
    for k, fn in impls.items():
        def at(n, fn=fn):
            def call():
                fastce.set_num_threads(n)
                return fn()
            return call
        try:
            res = time_round_robin({n: at(n) for n in counts}, repeats, min_sample)
        except Exception as exc:  # e.g. a backend whose thread control is missing
            warnings.append(f"{case.label}: no thread scaling for {k} ({type(exc).__name__}: "
                            f"{exc})")
            continue
        finally:
            _default_threads()
        secs = {str(n): v[0] for n, v in res.items()}
        out.append({"case": case.label, "impl": k, "seconds": secs,
                    "ratio_all_vs_1": secs[str(counts[-1])] / secs["1"]})
    return out


def _default_threads():
    """Back to all cores; tolerant of a backend without thread control (reported elsewhere)."""
    try:
        fastce.set_num_threads(0)
    except Exception:
        pass


def _parser():
    p = argparse.ArgumentParser(
        prog="fastce bench", description="Time fastce's backends against the NumPy reference, "
        "PyTorch, JAX and scikit-learn side by side; report roofline, thread scaling, latency "
        "and the speed targets.")
    p.add_argument("--quick", action="store_true",
                   help="small shapes (32x10, 4096x1000 float32), fewer repeats (< 1 minute)")
    p.add_argument("--functions", nargs="+", choices=FUNCTIONS, default=list(FUNCTIONS))
    p.add_argument("--shapes", nargs="+", type=parse_shape, metavar="NxC[:DTYPE]",
                   help="shapes to run (default: 32x10 4096x1000 65536x128 2048x32000 float32 and "
                        "4096x1000:float64; --quick: the first two)")
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--backends", nargs="+", choices=FASTCE, default=list(FASTCE),
                   help="fastce backends (numpy is the baseline of the speed-ups)")
    p.add_argument("--peers", nargs="*", choices=PEERS, default=list(PEERS),
                   help="peer libraries to compare with (when installed); none: --peers")
    p.add_argument("--repeats", type=int, help="round-robin repeats (default 5; --quick 3)")
    p.add_argument("--no-scaling", action="store_true", help="skip the thread scaling")
    p.add_argument("--no-latency", action="store_true", help="skip the small-batch latency")
    p.add_argument("--json", metavar="FILE", help="write the full report as JSON")
    p.add_argument("--plot", metavar="FILE", help="write a PNG of the speed-ups (matplotlib)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--from-json", nargs="+", metavar="FILE",
                   help="run nothing: merge these saved reports (e.g. runs of different shapes) "
                        "and report them (table, targets, --json, --plot)")
    return p


def main(argv=None) -> int:
    """Entry point of ``fastce bench``.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``); see ``fastce bench --help``.

    Returns
    -------
    int
        The exit status: 0 (targets missed do not fail the command; they are reported).
    """
    args = _parser().parse_args(argv)
    if args.from_json:
        return _report(merge_reports(args.from_json), args)
    shapes = args.shapes or (QUICK_SHAPES if args.quick else SHAPES)
    repeats = args.repeats or (3 if args.quick else 5)
    names = list(args.backends) + list(args.peers)
    cases = make_cases(args.functions, shapes, args.modes)
    if not cases:
        print("fastce bench: nothing to run (the softmax family has only 'fwd')", file=sys.stderr)
        return 2
    report = run(cases, names, repeats, 0.003 if args.quick else 0.01,
                 scaling=not args.no_scaling, latency=not args.no_latency,
                 bw_bytes=(64 << 20) if args.quick else (256 << 20),
                 progress=not args.no_progress)
    report["config"] = [{"argv": list(sys.argv[1:] if argv is None else argv),
                         "repeats": repeats, "names": names}]
    return _report(report, args)


def merge_reports(paths):
    """One report from saved ones (their results, scaling and latency rows concatenated;
    a case measured twice keeps its last run); the targets are checked again."""
    merged = {"results": [], "scaling": [], "latency": [], "warnings": [], "config": []}
    for path in paths:
        with open(path) as fh:
            rep = json.load(fh)
        cases = {r["case"] for r in rep["results"]}
        merged["results"] = [r for r in merged["results"] if r["case"] not in cases]
        merged["scaling"] = [r for r in merged["scaling"] if r["case"] not in cases]
        for key in ("results", "scaling", "warnings", "config"):
            merged[key] += rep[key]
        merged["latency"] = rep["latency"] or merged["latency"]
        merged["machine"] = rep["machine"]
        merged["bandwidth_bytes_per_s"] = rep["bandwidth_bytes_per_s"]
    shapes = list(dict.fromkeys((r["n"], r["c"], r["dtype"]) for r in merged["results"]))
    merged["results"].sort(key=lambda r: (shapes.index((r["n"], r["c"], r["dtype"])),
                                          FUNCTIONS.index(r["function"]), MODES.index(r["mode"])))
    merged["targets"] = check_targets(merged["results"], merged["scaling"], merged["latency"])
    return merged


def _report(report, args):
    """Print the report (markdown) and write the --json / --plot files."""
    names = list(dict.fromkeys(r["impl"] for r in report["results"]))
    order = [k for k in ("numpy", "cython", "numba") + PEERS if k in names]
    m = report["machine"]
    bw = report["bandwidth_bytes_per_s"]
    print(f"# fastce bench — {m['cpu']}, {m['cores']} cores\n")
    print("Copy bandwidth (np.copyto): " + ", ".join(f"{k} {v / 1e9:.1f} GB/s"
                                                     for k, v in bw.items()))
    print("Median ms per call, round-robin in one process; speed-ups are ratios of medians.\n")
    print(markdown_table(report["results"], order))
    if report["scaling"]:
        print("\n## Thread scaling (fastce.set_num_threads)\n")
        print(markdown_scaling(report["scaling"]))
    if report["latency"]:
        print("\n## Small-batch latency: cross_entropy 32x10 float32 fwd+grad, µs per call\n")
        print(" | ".join(f"{r['impl']} {r['seconds'] * 1e6:.1f}" for r in report["latency"]))
    print("\n## Targets\n")
    print(markdown_targets(report["targets"]))
    for w in report["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    if args.plot:
        print(save_plot(report["results"], order, args.plot), file=sys.stderr)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)
    return 0
