"""The C API (include/fastce.h + libfastce.so) used from C and C++ programs.

The programs under tests/c/ contain no Python: they are compiled here with the
system `cc`/`c++` under strict warnings, run in an empty environment (as
`env -i`), and their outputs are checked against the Python API (backend
"cython") on the same inputs, bit for bit:

- capi_driver.c runs any C call described in a binary case file (see its
  header comment) and returns the status and the raw output buffers; the
  cases cover every function, both dtypes, every option, row strides
  (padded, 0), elementwise-weight strides (incl. 0), the three reductions and
  n_threads 1 and 2, plus every error status (nothing may be written then);
- capi_meta.c prints versions, status names, the default options and the
  thread setting; capi_cpp.cpp is a C++11 client;
- the README's C example is compiled and run verbatim;
- the driver runs under valgrind (the installed library) and built from the
  sources with AddressSanitizer + UBSan;
- the library exports only fastce_ symbols and does not link libpython.
"""
from __future__ import annotations

import dataclasses
import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastce

TESTS = Path(__file__).resolve().parent
C_DIR = TESTS / "c"
REPO = TESTS.parent
CC, CXX = shutil.which("cc"), shutil.which("c++")
C_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror"]
CXX_FLAGS = ["-std=c++11", "-Wall", "-Wextra", "-pedantic", "-Werror"]

pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler (cc) on PATH")

# Status codes of fastce.h (their values are part of the contract).
OK, NULL_POINTER, BAD_SIZE, TARGET_OUT_OF_RANGE, BAD_ARGUMENT, ALLOC = range(6)
STATUS_NAMES = ["FASTCE_OK", "FASTCE_ERR_NULL_POINTER", "FASTCE_ERR_BAD_SIZE",
                "FASTCE_ERR_TARGET_OUT_OF_RANGE", "FASTCE_ERR_BAD_ARGUMENT", "FASTCE_ERR_ALLOC"]
REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}


# --- where the header and the library are ----------------------------------------------

def include_dir() -> Path:
    """fastce.get_include(), or the repository's include/ for an editable install
    (the header is copied into the package folder only by `pip install .`)."""
    d = Path(fastce.get_include())
    return d if (d / "fastce.h").is_file() else REPO / "include"


def lib_dir() -> Path:
    """fastce.get_lib_dir(), or where the loaded extension module found libfastce.so.

    An editable install (`pip install -e . -Cbuild-dir=build/dev`) leaves
    get_lib_dir() at the source folder while meson builds libfastce.so into
    build/dev/fastce/; the Cython extension links it from there, so after
    importing the extension its path is in this process's memory map.
    """
    d = Path(fastce.get_lib_dir())
    if (d / "libfastce.so").is_file():
        return d
    importlib.import_module("fastce._cython._core")  # maps libfastce.so into this process
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if path.endswith("/libfastce.so"):
                return Path(path).parent
    pytest.skip("libfastce.so not found next to fastce nor in this process's memory map")


def link_flags() -> list[str]:
    """The flags `python -m fastce --cflags --libs` prints (see the README)."""
    lib = lib_dir()
    return [f"-I{include_dir()}", f"-L{lib}", f"-Wl,-rpath,{lib}", "-lfastce", "-lm"]


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """build(source) -> path of the executable compiled from tests/c/<source> (or a Path)."""
    out_dir = tmp_path_factory.mktemp("capi")
    cache = {}

    def _build(source, extra=()):
        src = source if isinstance(source, Path) else C_DIR / source
        key = (src, tuple(extra))
        if key not in cache:
            cxx = src.suffix == ".cpp"
            if cxx and CXX is None:
                pytest.skip("no C++ compiler (c++) on PATH")
            exe = out_dir / f"{src.stem}{len(cache)}"
            cmd = ([CXX, *CXX_FLAGS] if cxx else [CC, *C_FLAGS]) + [str(src), "-o", str(exe),
                                                                  *link_flags(), *extra]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
            cache[key] = exe
        return cache[key]

    return _build


def run_clean(cmd, **kw):
    """Run with an empty environment (as `env -i`): no PATH, LD_LIBRARY_PATH or OMP_*;
    the library must be found through the rpath."""
    proc = subprocess.run([str(c) for c in cmd], env={}, capture_output=True, text=True,
                          timeout=120, **kw)
    assert proc.returncode == 0, f"{cmd}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


# --- the case file of capi_driver.c ------------------------------------------------------

FNS = ("log_softmax", "softmax", "logsumexp", "cross_entropy", "cross_entropy_prob",
       "binary_cross_entropy", "focal_loss", "focal_loss_prob", "sigmoid_focal_loss")
SOFTMAX_FAMILY = FNS[:3]
LOSSES = FNS[3:]
INDEX_LOSSES = ("cross_entropy", "focal_loss")
DENSE_LOSSES = ("cross_entropy_prob", "binary_cross_entropy", "focal_loss_prob",
                "sigmoid_focal_loss")
ELEMENTWISE = ("binary_cross_entropy", "sigmoid_focal_loss")
ROW_OUTPUTS = ("log_softmax", "softmax") + LOSSES  # out/grad rows `ors` apart
HEADER = ("fn dtype n c rs trs ors reduction n_threads ignore_index weight_rs weight_cs "
          "x_len y_len t_len cw_len ca_len pw_len w_len loss_len out_len nulls").split()
NULL_X, NULL_TARGET, NULL_LOSS, NULL_OUT, NULL_OPT = 1, 2, 4, 8, 16
SENTINEL = 0xA5  # every output byte before the call


@dataclasses.dataclass
class Call:
    """One C call as capi_driver.c runs it: scalars, then exactly-sized buffers."""
    fn: str
    dtype: np.dtype
    n: int
    c: int
    rs: int
    x: np.ndarray
    y: np.ndarray | None = None
    t: np.ndarray | None = None
    trs: int = 0
    ors: int = 0
    reduction: int = 1
    n_threads: int = 1
    ignore_index: int = -100
    label_smoothing: float = 0.0
    gamma: float = 2.0
    alpha: float = -1.0
    class_weight: np.ndarray | None = None
    class_alpha: np.ndarray | None = None
    pos_weight: np.ndarray | None = None
    weight: np.ndarray | None = None
    weight_rs: int = 0
    weight_cs: int = 0
    loss_len: int = 0
    out_len: int = 0
    nulls: int = 0

    def encode(self) -> bytes:
        arrays = [np.ascontiguousarray(a, dtype=dt) if a is not None else np.empty(0, dt)
                  for a, dt in ((self.x, self.dtype), (self.y, np.int64), (self.t, self.dtype),
                                (self.class_weight, np.float64), (self.class_alpha, np.float64),
                                (self.pos_weight, np.float64), (self.weight, np.float64))]
        fields = dict(fn=FNS.index(self.fn), dtype=self.dtype.itemsize, x_len=arrays[0].size,
                      y_len=arrays[1].size, t_len=arrays[2].size, cw_len=arrays[3].size,
                      ca_len=arrays[4].size, pw_len=arrays[5].size, w_len=arrays[6].size)
        head = np.array([fields[k] if k in fields else getattr(self, k) for k in HEADER],
                        dtype=np.int64)
        doubles = np.array([self.label_smoothing, self.gamma, self.alpha], dtype=np.float64)
        return b"".join(a.tobytes() for a in (head, doubles, *arrays))


@dataclasses.dataclass
class Result:
    status: int
    loss: np.ndarray
    out: np.ndarray


def run_driver(exe, calls, tmp_path, runner=()):
    """Run the calls in one driver process (under `runner`, e.g. valgrind)."""
    cases, results = tmp_path / "cases.bin", tmp_path / "results.bin"
    cases.write_bytes(b"".join(c.encode() for c in calls))
    stdout = run_clean([*runner, exe, cases, results])
    assert stdout.strip() == f"{len(calls)} cases"
    return run_driver_results(calls, results.read_bytes())


def run_driver_results(calls, raw):
    """Split the driver's result file into one Result per call."""
    pos, out = 0, []
    for c in calls:
        status = int(np.frombuffer(raw, np.int64, 1, pos)[0])
        pos += 8
        loss = np.frombuffer(raw, np.float64, c.loss_len, pos)
        pos += loss.nbytes
        res = np.frombuffer(raw, c.dtype, c.out_len, pos)
        pos += res.nbytes
        out.append(Result(status, loss, res))
    assert pos == len(raw)
    return out


def strided(rows, rs):
    """The exactly-sized buffer holding (n, c) `rows` `rs` elements apart; the gaps are
    NaN, so a kernel reading them would change its result."""
    n, c = rows.shape
    if n == 0 or c == 0:
        return np.empty(0, rows.dtype)
    buf = np.full((n - 1) * rs + c, np.nan, rows.dtype)
    for i in range(n):
        buf[i * rs:i * rs + c] = rows[i]
    return buf


def unstride(buf, n, c, rs):
    """The (n, c) rows of a buffer written `rs` elements apart, and the gap elements."""
    idx = (np.arange(n)[:, None] * rs + np.arange(c)[None, :]).reshape(n, c)
    gap = np.ones(buf.size, bool)
    gap[idx.ravel()] = False
    return buf[idx], buf[gap]


# --- valid calls and their Python expectations -------------------------------------------

N, C = 5, 7
RNG = np.random.default_rng(20261203)
# Option sets per function, in Python-API keyword terms (ids are test ids).
WEIGHT_C = np.array([1.0, 0.5, 2.0, 0.0, 3.0, 1.25, 0.75])
ALPHA_C = np.array([0.25, 0.5, 1.0, 0.75, 0.0, 2.0, 0.125])
OPTIONS = {
    "log_softmax": {"plain": {}}, "softmax": {"plain": {}}, "logsumexp": {"plain": {}},
    "cross_entropy": {
        "plain": {}, "weight": {"weight": WEIGHT_C}, "ignore": {"ignore_index": 3},
        "smoothing": {"label_smoothing": 0.2},
        "all": {"weight": WEIGHT_C, "label_smoothing": 0.35, "ignore_index": 1},
        "all_ignored": {"ignore_index": -7}},
    "cross_entropy_prob": {
        "plain": {}, "weight": {"weight": WEIGHT_C}, "smoothing": {"label_smoothing": 1.0},
        "all": {"weight": WEIGHT_C, "label_smoothing": 0.1}},
    "binary_cross_entropy": {
        "plain": {}, "pos_weight": {"pos_weight": WEIGHT_C + 0.5},
        "weight_full": {"weight": "full"}, "weight_row_stride0": {"weight": "per_class"},
        "weight_col_stride0": {"weight": "per_row"},
        "all": {"weight": "full", "pos_weight": WEIGHT_C}},
    "focal_loss": {
        "plain": {}, "gamma_half_alpha": {"gamma": 0.5, "alpha": 0.25},
        "gamma0_class_alpha": {"gamma": 0.0, "alpha": ALPHA_C},
        "gamma3_ignore": {"gamma": 3.0, "ignore_index": 2}},
    "focal_loss_prob": {
        "plain": {}, "gamma1.5_class_alpha": {"gamma": 1.5, "alpha": ALPHA_C},
        "gamma3_alpha": {"gamma": 3.0, "alpha": 0.5}},
    "sigmoid_focal_loss": {
        "plain": {}, "gamma_half_no_alpha": {"gamma": 0.5, "alpha": -1.0},
        "gamma3_alpha": {"gamma": 3.0, "alpha": 0.75}},
}
# Row layouts: (x/target row stride, out/grad row stride) as functions of C; 0 broadcasts.
LAYOUTS = {"contiguous": (lambda c: c, lambda c: c), "padded": (lambda c: c + 3, lambda c: c + 2),
           "broadcast": (lambda c: 0, lambda c: c)}


def make_inputs(fn, n, c, dtype, broadcast, options):
    """Logits (with -inf, 1e4 and a tie in row 0), targets and elementwise weight."""
    x = (RNG.standard_normal((n, c)) * 3).astype(dtype)
    x[0, :3] = [-np.inf, 1e4, 1e4]
    if broadcast:
        x = np.broadcast_to(x[:1], (n, c))
    y = t = None
    if fn in INDEX_LOSSES:
        y = RNG.integers(1, c, n)
        y[1] = options.get("ignore_index", 0)  # one ignored row when ignore_index is in range
        if options.get("ignore_index") == -7:
            y[:] = -7
    elif fn in DENSE_LOSSES:
        t = RNG.dirichlet(np.ones(c), n) if fn in ("cross_entropy_prob", "focal_loss_prob") \
            else RNG.uniform(0, 1, (n, c))
        t[1, :] = 0.0
        t[1, 2] = 1.0
        t = t.astype(dtype)
        if broadcast:
            t = np.broadcast_to(t[:1], (n, c))
    return x, y, t


def python_reference(fn, x, y, t, reduction, options):
    """(loss, out) from the Python API with backend="cython"; loss None for the softmax family."""
    if fn in SOFTMAX_FAMILY:
        return None, getattr(fastce, fn)(x, backend="cython")
    api = {"cross_entropy_prob": "cross_entropy", "focal_loss_prob": "focal_loss"}.get(fn, fn)
    return getattr(fastce, api)(x, y if y is not None else t, reduction=reduction,
                                return_grad=True, backend="cython", **options)


def weight_case(kind, n, c):
    """Elementwise weight: (Python array, exact C buffer, row stride, col stride)."""
    if kind == "full":
        w = RNG.uniform(0, 2, (n, c))
        return w, strided(w, c + 2), c + 2, 1
    if kind == "per_class":
        w = RNG.uniform(0, 2, c)
        return w, w, 0, 1
    w = RNG.uniform(0, 2, (n, 1))
    return w, w.ravel(), 1, 0


def c_call(fn, x, y, t, dtype, layout, reduction, options):
    """The Call equivalent to a Python API call (n_threads and NULL grad set by the caller)."""
    n, c = x.shape
    rs, ors = (f(c) for f in LAYOUTS[layout])
    call = Call(fn, np.dtype(dtype), n, c, rs, strided(x, rs) if rs else x[0].copy(), ors=ors,
                reduction=REDUCTIONS[reduction])
    call.out_len = n if fn == "logsumexp" else (n - 1) * ors + c
    call.loss_len = n * (c if fn in ELEMENTWISE else 1) if reduction == "none" else 1
    if y is not None:
        call.y = y.astype(np.int64)
    if t is not None:
        call.trs = rs
        call.t = strided(t, rs) if rs else t[0].copy()
    opts = dict(options)
    call.ignore_index = opts.pop("ignore_index", -100)
    call.label_smoothing = opts.pop("label_smoothing", 0.0)
    call.gamma = opts.pop("gamma", 2.0)
    alpha = opts.pop("alpha", 0.25 if fn == "sigmoid_focal_loss" else None)
    if isinstance(alpha, np.ndarray):
        call.class_alpha = alpha
    else:
        call.alpha = -1.0 if alpha is None else alpha
    if fn in ("cross_entropy", "cross_entropy_prob"):
        call.class_weight = opts.pop("weight", None)
    call.pos_weight = opts.pop("pos_weight", None)
    if "weight" in opts:
        _, call.weight, call.weight_rs, call.weight_cs = opts.pop("weight")
    assert not opts, opts
    return call


def valid_specs():
    for fn, sets in OPTIONS.items():
        for opt_id, options in sets.items():
            for dtype in ("float32", "float64"):
                for layout in LAYOUTS:
                    for reduction in (("mean",) if fn in SOFTMAX_FAMILY else REDUCTIONS):
                        yield pytest.param(fn, options, dtype, layout, reduction, N, C,
                                           id=f"{fn}-{opt_id}-{dtype}-{layout}-{reduction}")
    # Large enough for a team of threads (the core stays on one thread below 2^18
    # elements); the losses' inputs are one broadcast row, to keep the case file small.
    for fn in FNS:
        layout = "contiguous" if fn in SOFTMAX_FAMILY else "broadcast"
        for dtype in ("float32", "float64") if fn in ("softmax", "cross_entropy") else ("float32",):
            yield pytest.param(fn, next(iter(OPTIONS[fn].values())), dtype, layout, "mean",
                               LARGE_N, LARGE_C, id=f"{fn}-large-{dtype}")


LARGE_N, LARGE_C = 2080, 128  # 266240 elements
SPECS = list(valid_specs())


def build_spec(fn, options, dtype, layout, reduction, n, c):
    """The Python expectation and the C calls of one spec (n_threads 1 and 2; losses also
    without a gradient)."""
    x, y, t = make_inputs(fn, n, c, dtype, layout == "broadcast", options)
    py_opts, c_opts = dict(options), dict(options)
    if isinstance(options.get("weight"), str):
        py_w, *c_w = weight_case(options["weight"], n, c)
        py_opts["weight"], c_opts["weight"] = py_w, (py_w, *c_w)
    expected = python_reference(fn, x, y, t, reduction, py_opts)
    calls = []
    for n_threads in (1, 2):
        call = c_call(fn, x, y, t, dtype, layout, reduction, c_opts)
        call.n_threads = n_threads
        calls.append(call)
    if fn in LOSSES and n < LARGE_N:
        calls.append(dataclasses.replace(calls[0], nulls=NULL_OUT))
    return expected, calls


@pytest.fixture(scope="module")
def valid_cases():
    """{spec id: (Python expectation, C calls)}."""
    return {p.id: build_spec(*p.values) for p in SPECS}


@pytest.fixture(scope="module")
def driver_results(build, tmp_path_factory, valid_cases):
    """Every valid spec run in one driver process: {spec id: (expected, calls, results)}."""
    built = valid_cases
    calls = [c for _, cs in built.values() for c in cs]
    results = iter(run_driver(build("capi_driver.c"), calls, tmp_path_factory.mktemp("valid")))
    return {k: (exp, cs, [next(results) for _ in cs]) for k, (exp, cs) in built.items()}


def assert_bits_equal(actual, expected, what):
    """Same bits, NaN payloads aside."""
    a, e = np.asarray(actual), np.asarray(expected)
    assert a.shape == e.shape and a.dtype == e.dtype, (what, a.shape, e.shape, a.dtype, e.dtype)
    nan = np.isnan(a) & np.isnan(e)
    uint = {4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
    diff = (a.view(uint) != e.view(uint)) & ~nan
    assert not diff.any(), f"{what}: C {a[diff][:5]} != Python {e[diff][:5]}"


def assert_untouched(result):
    for name in ("loss", "out"):
        buf = getattr(result, name)
        assert (buf.view(np.uint8) == SENTINEL).all(), f"{name} written on error"


@pytest.mark.parametrize("fn, options, dtype, layout, reduction, n, c", SPECS)
def test_c_matches_python(driver_results, request, fn, options, dtype, layout, reduction, n, c):
    """Loss, gradient (or out) of the C call bit-identical to the Python API's, for
    n_threads 1 and 2 and without a gradient; nothing written between output rows."""
    (loss, out), calls, results = driver_results[request.node.callspec.id]
    for call, res in zip(calls, results):
        what = f"n_threads={call.n_threads} grad={'no' if call.nulls else 'yes'}"
        assert res.status == OK, (what, STATUS_NAMES[res.status])
        if fn == "logsumexp":
            assert_bits_equal(res.out, out, what)
            continue
        if loss is not None:
            c_loss = res.loss.astype(dtype)
            assert_bits_equal(c_loss.reshape(np.shape(loss)), np.asarray(loss), f"loss {what}")
        if call.nulls & NULL_OUT:
            continue
        rows, gaps = unstride(res.out, n, c, call.ors)
        assert_bits_equal(rows, out, f"out/grad {what}")
        assert (gaps.view(np.uint8) == SENTINEL).all(), "wrote between the output rows"


# --- error statuses: nothing is written ----------------------------------------------------

def base_call(fn, dtype="float64"):
    """A valid 4 x 3 call of `fn` (mean, with gradient) to derive error calls from."""
    x, y, t = make_inputs(fn, 4, 3, dtype, False, {})
    call = c_call(fn, x, y, t, dtype, "contiguous", "mean", {})
    if fn == "binary_cross_entropy":
        call.weight, call.weight_rs, call.weight_cs = np.ones(3), 0, 1
    return call


def replace(**changes):
    return lambda call: dataclasses.replace(call, **changes)


def set_target(value):
    def change(call):
        y = call.y.copy()
        y[2] = value
        return dataclasses.replace(call, y=y)
    return change


def set_vector(name, value):
    return lambda call: dataclasses.replace(call, **{name: np.array([1.0, value, 1.0])})


def alloc_failure(call):
    """2^61 broadcast rows (x and target row stride 0) of one class: the 'mean' needs one
    float64 partial sum per block of rows, 2^47 of them (1 PiB), which malloc refuses
    (more than the 128 TiB address space, whatever the overcommit policy)."""
    return dataclasses.replace(call, n=2**61, c=1, rs=0, trs=0, x=call.x[:1], t=call.t[:1],
                               nulls=NULL_OUT)


# (id, functions, change, expected status): every status of fastce.h for every function
# whose documentation names it.
ERRORS = [
    ("null_x", FNS, replace(nulls=NULL_X), NULL_POINTER),
    ("null_out", SOFTMAX_FAMILY, replace(nulls=NULL_OUT), NULL_POINTER),
    ("null_loss", LOSSES, replace(nulls=NULL_LOSS), NULL_POINTER),
    ("null_target", LOSSES, replace(nulls=NULL_TARGET), NULL_POINTER),
    ("n_negative", FNS, replace(n=-1), BAD_SIZE),
    ("c_negative", FNS, replace(c=-1), BAD_SIZE),
    ("row_stride_negative", FNS, replace(rs=-1), BAD_SIZE),
    ("out_row_stride_negative", ROW_OUTPUTS, replace(ors=-1), BAD_SIZE),
    ("out_rows_overlap", ROW_OUTPUTS, replace(ors=2), BAD_SIZE),
    ("out_rows_stride0", ROW_OUTPUTS, replace(ors=0), BAD_SIZE),
    ("target_row_stride_negative", DENSE_LOSSES, replace(trs=-1), BAD_SIZE),
    ("size_overflow", FNS, replace(n=2**62, rs=0), BAD_SIZE),
    ("stride_overflow", FNS, replace(rs=2**62), BAD_SIZE),
    ("n_classes_zero", LOSSES, replace(c=0), BAD_SIZE),
    ("weight_row_stride_negative", ("binary_cross_entropy",), replace(weight_rs=-1), BAD_SIZE),
    ("weight_col_stride_negative", ("binary_cross_entropy",), replace(weight_cs=-1), BAD_SIZE),
    ("weight_stride_overflow", ("binary_cross_entropy",), replace(weight_cs=2**62), BAD_SIZE),
    ("target_too_large", INDEX_LOSSES, set_target(3), TARGET_OUT_OF_RANGE),
    ("target_negative", INDEX_LOSSES, set_target(-1), TARGET_OUT_OF_RANGE),
    ("target_int64_min", INDEX_LOSSES, set_target(-2**63), TARGET_OUT_OF_RANGE),
    ("target_default_ignore_not_ignored", INDEX_LOSSES,
     lambda call: replace(ignore_index=0)(set_target(-100)(call)), TARGET_OUT_OF_RANGE),
    ("reduction_3", LOSSES, replace(reduction=3), BAD_ARGUMENT),
    ("reduction_negative", LOSSES, replace(reduction=-1), BAD_ARGUMENT),
    ("n_threads_negative", FNS, replace(n_threads=-1), BAD_ARGUMENT),
    ("label_smoothing_nan", ("cross_entropy", "cross_entropy_prob"),
     replace(label_smoothing=np.nan), BAD_ARGUMENT),
    ("label_smoothing_negative", ("cross_entropy", "cross_entropy_prob"),
     replace(label_smoothing=-0.1), BAD_ARGUMENT),
    ("label_smoothing_above_1", ("cross_entropy", "cross_entropy_prob"),
     replace(label_smoothing=1.5), BAD_ARGUMENT),
    ("gamma_negative", ("focal_loss", "focal_loss_prob", "sigmoid_focal_loss"),
     replace(gamma=-0.5), BAD_ARGUMENT),
    ("gamma_nan", ("focal_loss", "focal_loss_prob", "sigmoid_focal_loss"),
     replace(gamma=np.nan), BAD_ARGUMENT),
    ("alpha_nan", ("focal_loss", "focal_loss_prob", "sigmoid_focal_loss"),
     replace(alpha=np.nan), BAD_ARGUMENT),
    ("class_weight_nan", ("cross_entropy", "cross_entropy_prob"),
     set_vector("class_weight", np.nan), BAD_ARGUMENT),
    ("class_weight_inf", ("cross_entropy", "cross_entropy_prob"),
     set_vector("class_weight", np.inf), BAD_ARGUMENT),
    ("class_alpha_nan", ("focal_loss", "focal_loss_prob"),
     set_vector("class_alpha", np.nan), BAD_ARGUMENT),
    ("pos_weight_inf", ("binary_cross_entropy",), set_vector("pos_weight", -np.inf), BAD_ARGUMENT),
    ("alloc", DENSE_LOSSES, alloc_failure, ALLOC),
]
ERROR_CASES = [pytest.param(fn, dtype, change, status, id=f"{name}-{fn}-{dtype}")
               for name, fns, change, status in ERRORS for fn in fns
               for dtype in ("float32", "float64")]


@pytest.fixture(scope="module")
def error_calls():
    """{case id: (C call, expected status)}."""
    return {p.id: (p.values[2](base_call(p.values[0], p.values[1])), p.values[3])
            for p in ERROR_CASES}


@pytest.fixture(scope="module")
def error_results(build, tmp_path_factory, error_calls):
    """Every error case run in one driver process: {case id: result}."""
    calls = {k: call for k, (call, _) in error_calls.items()}
    results = run_driver(build("capi_driver.c"), list(calls.values()),
                         tmp_path_factory.mktemp("errors"))
    return dict(zip(calls, results))


@pytest.mark.parametrize("fn, dtype, change, status", ERROR_CASES)
def test_error_status_and_nothing_written(error_results, request, fn, dtype, change, status):
    res = error_results[request.node.callspec.id]
    assert STATUS_NAMES[res.status] == STATUS_NAMES[status]
    assert_untouched(res)


def edge_calls():
    """(id, call, expected status, expected loss or None, expected out or None) of valid calls
    at the edges: empty inputs with NULL pointers, zero classes, the NULL options pointer."""
    for fn in FNS:
        empty = dataclasses.replace(base_call(fn), n=0, nulls=NULL_X | NULL_TARGET | NULL_OUT)
        for red, value in (("none", None), ("mean", np.nan), ("sum", 0.0)):
            loss = None if fn in SOFTMAX_FAMILY or value is None else np.array([value])
            yield f"empty-{fn}-{red}", replace(reduction=REDUCTIONS[red])(empty), loss, None
    x = np.array([[0.5, -1.0, 2.0], [-np.inf] * 3])
    for fn in SOFTMAX_FAMILY:
        zero_c = dataclasses.replace(base_call(fn), c=0, nulls=NULL_X)
        out = np.full(4, -np.inf) if fn == "logsumexp" else None  # empty rows: log(0)
        yield f"zero_classes-{fn}", zero_c, None, out
        ref = getattr(fastce, fn)(x, backend="cython")
        call = Call(fn, np.dtype(np.float64), 2, 3, 3, x.ravel(), ors=3, nulls=NULL_OPT,
                    out_len=ref.size)
        yield f"null_options-{fn}", call, None, ref.ravel()
    x, y = x[:1], np.array([2])
    call = Call("cross_entropy", np.dtype(np.float64), 1, 3, 3, x.ravel(), y=y, ors=3,
                loss_len=1, out_len=3, nulls=NULL_OPT)
    loss, grad = fastce.cross_entropy(x, y, return_grad=True, backend="cython")
    yield "null_options-cross_entropy", call, np.array([loss]), grad.ravel()


EDGES = {name: (call, loss, out) for name, call, loss, out in edge_calls()}


@pytest.mark.parametrize("name", list(EDGES))
def test_edge_calls(build, tmp_path, name):
    call, loss, out = EDGES[name]
    (res,) = run_driver(build("capi_driver.c"), [call], tmp_path)
    assert STATUS_NAMES[res.status] == "FASTCE_OK"
    for got, want in ((res.loss, loss), (res.out, out)):
        if want is None:
            assert (got.view(np.uint8) == SENTINEL).all()
        else:
            assert_bits_equal(got, want, name)


# --- the other programs: versions, status names, options, threads; C++; the README -------

def test_meta(build):
    lines = {}
    for line in run_clean([build("capi_meta.c")]).splitlines():
        key, _, value = line.partition(" ")
        lines.setdefault(key, []).append(value)
    major, minor, patch, number = map(int, lines["version_macros"][0].split())
    assert f"{major}.{minor}.{patch}" == fastce.__version__
    assert number == major * 10000 + minor * 100 + patch == int(lines["version_number"][0])
    names = dict(v.split() for v in lines["status_name"])
    assert [names[str(k)] for k in range(6)] == STATUS_NAMES
    assert {names[k] for k in ("-2", "-1", "6", "7")} == {"FASTCE_UNKNOWN_STATUS"}
    assert lines["status_values"] == ["0 1 2 3 4 5"]
    assert lines["reduction_values"] == ["0 1 2"]
    assert lines["options_default_equals_init"] == ["1"]
    # reduction mean, n_threads 0, ignore_index -100, smoothing 0, gamma 2, alpha -1, NULLs, 0, 0
    assert lines["options_init"] == ["1 0 -100 0x0p+0 0x1p+1 -0x1p+0 1 1 1 1 0 0"]
    initial = int(lines["num_threads_initial"][0])
    assert initial >= 1
    after = dict(tuple(map(int, v.split())) for v in lines["num_threads_after_set"])
    assert after[1] == 1
    assert all(1 <= after[k] <= k for k in (2, 3))
    assert after[0] == after[-5] == initial  # 0 (and below) restore the default


def parse_hex_lines(text):
    """{key: values} of `key v1 v2 ...` lines; hex floats become float64 arrays."""
    out = {}
    for line in text.splitlines():
        key, *vals = line.split()
        out[key] = vals[0] if key.endswith("status") else np.array([float.fromhex(v)
                                                                    for v in vals])
    return out


def test_cpp_client(build):
    got = parse_hex_lines(run_clean([build("capi_cpp.cpp")]))
    logits = np.array([0.5, -1.25, 3.0, 0.0, 2.0, 2.0, -7.5, 1.0, -0.5, 4.25, 0.125,
                       -3.0]).reshape(3, 4)
    loss, grad = fastce.cross_entropy(logits, np.array([2, -100, 1]), weight=[1.0, 0.5, 2.0, 0.25],
                                      label_smoothing=0.1, reduction="sum", return_grad=True,
                                      backend="cython")
    assert got["cross_entropy_status"] == got["softmax_status"] == "FASTCE_OK"
    assert_bits_equal(got["cross_entropy_loss"], np.array([loss]), "loss")
    assert_bits_equal(got["cross_entropy_grad"], grad.ravel(), "grad")
    p = fastce.softmax(logits.astype(np.float32), backend="cython")
    assert_bits_equal(got["softmax"].astype(np.float32), p.ravel(), "softmax")


def readme_example(tmp_path):
    """The C code block of the README's C section, verbatim, written to example.c."""
    text = (REPO / "README.md").read_text()
    section = text.split("<!-- section:c -->", 1)[1].split("<!-- /section:c -->", 1)[0]
    code = re.search(r"```c\n(.*?)```", section, re.S).group(1)
    src = tmp_path / "example.c"
    src.write_text(code)
    return src


def flags_from(how):
    """Compiler/linker flags obtained as the README says (`cli`, `pkg-config`) or located
    by this file (works for editable installs too)."""
    if how == "located":
        return link_flags()
    if how == "cli":
        cmd = [sys.executable, "-m", "fastce", "--cflags", "--libs"]
        env = None
    else:
        if shutil.which("pkg-config") is None:
            pytest.skip("pkg-config not on PATH")
        cmd = ["pkg-config", "--cflags", "--libs", "fastce"]
        env = {**os.environ, "PKG_CONFIG_PATH": fastce.get_lib_dir()}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO.parent, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


@pytest.mark.parametrize("how", ["located", "cli", "pkg-config"])
def test_readme_example(build, tmp_path, how):
    flags = flags_from(how)
    inc = [f[2:] for f in flags if f.startswith("-I")]
    lib = [f[2:] for f in flags if f.startswith("-L")]
    assert any((Path(d) / "fastce.h").is_file() for d in inc), f"no fastce.h in {inc}"
    assert any((Path(d) / "libfastce.so").is_file() for d in lib), f"no libfastce.so in {lib}"
    exe = tmp_path / "example"
    cmd = [CC, *C_FLAGS, str(readme_example(tmp_path)), *flags, "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
    lines = run_clean([exe]).splitlines()
    status, loss = re.fullmatch(r"(\w+) loss=(\S+)", lines[0]).groups()
    grad = np.array([[float(v) for v in line.split("=")[1].split()] for line in lines[1:]],
                    dtype=np.float32)
    logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0]], dtype=np.float32)
    ref_loss, ref_grad = fastce.cross_entropy(logits, np.array([0, 2]), label_smoothing=0.1,
                                              return_grad=True, backend="cython")
    assert status == "FASTCE_OK"
    assert np.float32(float(loss)) == ref_loss  # %.17g round-trips the double
    assert_bits_equal(grad, ref_grad, "grad")  # %.9g round-trips a float


# --- the shared library itself ---------------------------------------------------------------

def test_exports_only_fastce_symbols():
    if shutil.which("nm") is None:
        pytest.skip("nm not on PATH")
    out = subprocess.run(["nm", "-D", "--defined-only", str(lib_dir() / "libfastce.so")],
                         capture_output=True, text=True, check=True).stdout
    names = {line.split()[-1] for line in out.splitlines() if line.strip()}
    header = (include_dir() / "fastce.h").read_text()
    declared = set(re.findall(r"FASTCE_API [^;]*?\b(fastce_\w+)\(", header))
    assert names == declared


def test_no_libpython():
    if shutil.which("ldd") is None:
        pytest.skip("ldd not on PATH")
    out = subprocess.run(["ldd", str(lib_dir() / "libfastce.so")], capture_output=True,
                         text=True, check=True).stdout
    assert "libpython" not in out and "libm" in out


# --- memory checking ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def all_calls(valid_cases, error_calls):
    """Every valid and error call with its expected status."""
    return ([(c, OK) for _, cs in valid_cases.values() for c in cs]
            + list(error_calls.values()))


def check_statuses(calls, results):
    """Statuses as expected; nothing written on error."""
    for (call, status), res in zip(calls, results):
        assert STATUS_NAMES[res.status] == STATUS_NAMES[status], call.fn
        if status != OK:
            assert_untouched(res)


# Exit 1 on any memory error or definite leak. GNU OpenMP keeps its thread pool (and the
# threads' TLS blocks) alive until exit: valgrind can count those "possibly lost"; they
# are not errors under --errors-for-leak-kinds=definite, so no suppression file is needed.
VALGRIND = ["--error-exitcode=1", "--leak-check=full", "--errors-for-leak-kinds=definite",
            "--quiet"]


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not on PATH")
@pytest.mark.parametrize("program", ["capi_driver.c", "capi_meta.c", "capi_cpp.cpp"])
def test_valgrind(build, tmp_path, all_calls, program):
    runner = [shutil.which("valgrind"), *VALGRIND]
    if program == "capi_driver.c":
        results = run_driver(build(program), [c for c, _ in all_calls], tmp_path, runner)
        check_statuses(all_calls, results)
    else:
        run_clean([*runner, build(program)])


def test_sanitizers(tmp_path, all_calls):
    """The driver linked with a copy of the core built from fastce/_core/*.c under
    AddressSanitizer (+ LeakSanitizer) and UBSan, every finding fatal."""
    sources = sorted((REPO / "fastce" / "_core").glob("*.c"))
    if not sources:
        pytest.skip("not a source checkout (no fastce/_core/*.c)")
    exe = tmp_path / "driver_asan"
    cmd = [CC, "-std=c99", "-O1", "-g", "-fno-omit-frame-pointer", "-fopenmp",
           "-fno-math-errno", "-fno-trapping-math", "-fsanitize=address,undefined",
           "-fno-sanitize-recover=all", f"-I{REPO / 'include'}", *map(str, sources),
           str(C_DIR / "capi_driver.c"), "-lm", "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode and re.search(r"asan|ubsan|sanitize", proc.stderr, re.I):
        pytest.skip(f"this compiler cannot build with sanitizers: {proc.stderr[-300:]}")
    assert proc.returncode == 0, proc.stderr
    calls = [c for c, _ in all_calls]
    cases, res_file = tmp_path / "cases.bin", tmp_path / "results.bin"
    cases.write_bytes(b"".join(c.encode() for c in calls))
    # the FASTCE_ERR_ALLOC cases ask for 1 PiB: malloc must return NULL, not abort
    env = {"ASAN_OPTIONS": "allocator_may_return_null=1:detect_leaks=1",
           "UBSAN_OPTIONS": "print_stacktrace=1"}
    proc = subprocess.run([str(exe), str(cases), str(res_file)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "runtime error" not in proc.stderr, proc.stderr[-3000:]
    results = run_driver_results(calls, res_file.read_bytes())
    check_statuses(all_calls, results)


# --- open findings (see the fuzzing notes in tests/fuzz/README.md) -------------------------
# Each runs in its own driver process: until fixed, the library misbehaves there.

@pytest.mark.parametrize("fn", ELEMENTWISE)
def test_empty_call_with_many_classes_succeeds(build, tmp_path, fn):
    """n_rows = 0 needs no work, whatever n_classes (the core allocated n_classes doubles
    of scratch first and returned FASTCE_ERR_ALLOC for 2^40 classes)."""
    call = dataclasses.replace(base_call(fn), n=0, c=2**40, rs=2**40, trs=2**40, weight=None,
                               nulls=NULL_OUT)
    (res,) = run_driver(build("capi_driver.c"), [call], tmp_path)
    assert STATUS_NAMES[res.status] == "FASTCE_OK"
    assert np.isnan(res.loss[0])  # the mean of nothing


@pytest.mark.parametrize("fn", ["log_softmax", "cross_entropy"])
def test_row_stride_beyond_the_address_space_is_bad_size(build, tmp_path, fn):
    """2 rows of 1 class, 2^63 - 2 elements apart: the element offset fits int64 but the
    byte offset does not (it wraps to -16 bytes: the core read x[-2]); no buffer can be
    that large, so this is a size overflow."""
    call = dataclasses.replace(base_call(fn), n=2, c=1, rs=2**63 - 2)
    if fn == "cross_entropy":
        call.y = np.zeros(2, np.int64)
    (res,) = run_driver(build("capi_driver.c"), [call], tmp_path)
    assert STATUS_NAMES[res.status] == "FASTCE_ERR_BAD_SIZE"
