"""The ``fastce`` command (also ``python -m fastce``).

``fastce score [LOGITS [TARGETS]]`` streams a file of logits and targets
through ``fastce.Scorer`` in row chunks and prints a summary (a rich table, or
``--json``); with no file it scores the built-in digits example under
cross-entropy and focal loss side by side. ``fastce bench ...`` runs the
benchmarks (``fastce._bench``); ``fastce --cflags`` / ``--libs`` print the
compiler and linker flags of the C API.

Memory stays bounded whatever the file size: ``.npy`` files and uncompressed
``.npz`` members are memory-mapped and the pages of each finished chunk are
handed back to the kernel (``madvise(MADV_DONTNEED)``: mapped file pages
otherwise count as resident memory); ``.csv`` files are parsed a chunk of
lines at a time; ``--out`` files are written sequentially under a temporary
name that is renamed only once complete. A *compressed* ``.npz`` member must
be decompressed whole (numpy cannot seek into a deflate stream), so it is
loaded into memory.

Exit status: 0 success, 1 data error (missing file, bad shape, dtype or
label; the message names the file and row), 2 usage error.
"""
from __future__ import annotations

import argparse
import json
import mmap
import os
import struct
import sys
import time
import zipfile
from contextlib import ExitStack
from pathlib import Path

import numpy as np

import fastce
from fastce._backends import BACKENDS  # not available_backends(): that imports Numba
from fastce._score import LOSSES, OPTIONS, Scorer

EXAMPLE = Path(__file__).with_name("data") / "digits_logits.npz"
CHUNK_ELEMENTS = 1 << 22  # default chunk: about 4M logits (16 MB of float32)
_PAGE = mmap.PAGESIZE


class DataError(Exception):
    """Bad input data: exit status 1."""


class UsageError(Exception):
    """Bad command line: exit status 2."""


# --- inputs ------------------------------------------------------------------------------

class ArraySource:
    """Rows of an array stored in .npy layout at `offset` of `path`, memory-mapped.

    Pages of rows already handed out are released (madvise) on the next call of
    `chunks`, so the resident memory is about one chunk, not the file.
    """

    def __init__(self, path, offset=0):
        self.path = path
        with open(path, "rb") as f:
            f.seek(offset)
            try:
                version = np.lib.format.read_magic(f)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                self.shape, fortran, self.dtype = read(f)
            except ValueError as exc:
                raise DataError(f"{path}: not a valid .npy array ({exc})") from None
            self.data_offset = f.tell()
            if self.dtype.hasobject:
                raise DataError(f"{path}: holds Python objects (dtype {self.dtype}); "
                                "need a numeric array")
            nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
            if os.fstat(f.fileno()).st_size < self.data_offset + nbytes:
                raise DataError(f"{path}: truncated: the header announces shape {self.shape} "
                                f"{self.dtype} but the file is too short")
            self._mm = (mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                        if nbytes else None)
        self.array = (np.ndarray(self.shape, self.dtype, buffer=self._mm,
                                 offset=self.data_offset, order="F" if fortran else "C")
                      if self._mm is not None else np.empty(self.shape, self.dtype))
        self._release = (not fortran and self._mm is not None
                         and hasattr(self._mm, "madvise") and hasattr(mmap, "MADV_DONTNEED"))
        self.rows = self.shape[0] if self.shape else None

    def _drop(self, r0, r1):
        """Hand back the whole pages of rows [r0, r1)."""
        if not self._release or r1 <= r0:
            return
        row = self.array[0].nbytes if self.rows else 0
        lo = -(-(self.data_offset + r0 * row) // _PAGE) * _PAGE
        hi = (self.data_offset + r1 * row) // _PAGE * _PAGE
        if hi > lo:
            self._mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)

    def chunks(self, rows):
        for r in range(0, self.rows, rows):
            yield self.array[r:r + rows]
            self._drop(r, min(r + rows, self.rows))


def _npz_member(path, key):
    """An ArraySource for an uncompressed member, else the member loaded in memory."""
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise DataError(f"{path}: not a valid .npz file ({exc})") from None
    with zf:
        names = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
        if key not in names:
            raise DataError(f"{path}: no array named {key!r} (it has: {', '.join(names)})")
        info = zf.getinfo(key + ".npy")
    if info.compress_type == zipfile.ZIP_STORED:
        with open(path, "rb") as f:  # the local header: 30 bytes, then name and extra field
            f.seek(info.header_offset)
            head = f.read(30)
        n_name, n_extra = struct.unpack("<HH", head[26:30])
        return ArraySource(path, info.header_offset + 30 + n_name + n_extra)
    with np.load(path, allow_pickle=False) as npz:  # deflated: numpy decompresses it whole
        return MemorySource(path, npz[key])


class MemorySource:
    """Rows of an array already in memory."""

    def __init__(self, path, array):
        self.path, self.array = path, array
        self.shape, self.dtype, self.rows = array.shape, array.dtype, array.shape[0]

    def chunks(self, rows):
        for r in range(0, self.rows, rows):
            yield self.array[r:r + rows]


class _text:
    """open(path) for reading UTF-8 text; a decoding error is a DataError naming the file."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        self.f = open(self.path, encoding="utf-8")
        return self

    def __iter__(self):
        try:
            yield from self.f
        except UnicodeDecodeError as exc:
            raise DataError(f"{self.path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} "
                            f"at offset {exc.start} of a read block)") from None

    def __exit__(self, *exc):
        self.f.close()


class CsvSource:
    """Rows of a comma-separated text file, parsed a chunk of lines at a time.

    Blank lines are skipped; a first line that does not start with a number is
    a header. `integer=True` parses one integer per row (class indices).
    """

    def __init__(self, path, integer=False):
        self.path, self.integer = path, integer
        self.header = False
        self.rows = 0
        ncols = None
        with _text(path) as f:
            for line in f:
                if not line.strip():
                    continue
                if ncols is None:
                    ncols = line.count(",") + 1
                    try:
                        float(line.split(",")[0].strip().strip('"'))
                    except ValueError:
                        self.header = True
                        continue
                self.rows += 1
        self.columns = ncols or 0
        self.dtype = np.dtype(np.int64 if integer else np.float64)
        self.shape = (self.rows,) if integer or self.columns == 1 else (self.rows, self.columns)

    def _parse(self, lines, first_row):
        try:
            a = np.loadtxt(lines, delimiter=",", dtype=np.float64, ndmin=2)
        except ValueError:
            for i, line in enumerate(lines):  # find the row and the field to name them
                fields = line.strip().split(",")
                if len(fields) != self.columns:
                    raise DataError(f"{self.path}: row {first_row + i} has {len(fields)} "
                                    f"fields, the file has {self.columns} columns") from None
                for j, field in enumerate(fields):
                    try:
                        float(field)
                    except ValueError:
                        raise DataError(f"{self.path}: row {first_row + i}, column {j}: "
                                        f"{field.strip()!r} is not a number") from None
            raise
        if a.shape[1] != self.columns:
            raise DataError(f"{self.path}: rows have different numbers of columns "
                            f"({self.columns} and {a.shape[1]}) near row {first_row}")
        if self.integer:
            bad = np.flatnonzero(a[:, 0] != np.round(a[:, 0]))
            if bad.size:
                raise DataError(f"{self.path}: row {first_row + bad[0]}: {a[bad[0], 0]} is "
                                f"not an integer class index")
            return a[:, 0].astype(np.int64)
        return a[:, 0] if self.columns == 1 else a

    def chunks(self, rows):
        with _text(self.path) as f:
            lines, done, header = [], 0, self.header
            for line in f:
                if not line.strip():
                    continue
                if header:
                    header = False
                    continue
                lines.append(line)
                if len(lines) == rows:
                    yield self._parse(lines, done)
                    done, lines = done + len(lines), []
            if lines:
                yield self._parse(lines, done)


def open_source(path, key=None, integer=False):
    """The row source of `path` (.npy, .npz member `key`, or .csv)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{path}: no such file")
    ext = p.suffix.lower()
    if ext == ".npy":
        return ArraySource(str(p))
    if ext == ".npz":
        return _npz_member(str(p), key)
    if ext in (".csv", ".txt"):
        return CsvSource(str(p), integer=integer)
    raise DataError(f"{path}: unknown format {ext!r}; use .npy, .npz or .csv")


# --- outputs -----------------------------------------------------------------------------

class NpyWriter:
    """Write a .npy file row chunk by row chunk, under a temporary name that
    `commit` renames to `path`; `abort` (or an exception in `with`) deletes it."""

    def __init__(self, path, shape, dtype=np.float64):
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.partial-{os.getpid()}")
        self.dtype = np.dtype(dtype)
        self._f = open(self.tmp, "wb")
        np.lib.format.write_array_header_2_0(self._f, {
            "descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
            "shape": tuple(shape)})

    def write(self, chunk):
        self._f.write(np.ascontiguousarray(chunk, dtype=self.dtype).tobytes())

    def commit(self):
        self._f.close()
        os.replace(self.tmp, self.path)

    def abort(self):
        self._f.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
        else:
            self.abort()


# --- options -----------------------------------------------------------------------------

def _vector_or_float(text, name, allow_float=True):
    """A float, a comma-separated list, or a file (.npy, or numbers in text)."""
    if allow_float:
        try:
            return float(text)
        except ValueError:
            pass
    if os.path.isfile(text):
        if text.endswith(".npy"):
            return np.load(text, allow_pickle=False).astype(np.float64)
        return np.array(Path(text).read_text().replace(",", " ").split(), dtype=np.float64)
    try:
        return np.array([float(x) for x in text.split(",")])
    except ValueError:
        raise UsageError(f"{name} {text!r}: not a number, a comma-separated list or a "
                         "file") from None


_OPTION_FLAGS = {"axis": "--axis", "weight": "--weight", "ignore_index": "--ignore-index",
                 "label_smoothing": "--label-smoothing", "gamma": "--gamma",
                 "alpha": "--alpha", "pos_weight": "--pos-weight"}


def loss_options(args, loss):
    """The Scorer keyword options given on the command line (usage error if foreign)."""
    opts = {}
    for name, flag in _OPTION_FLAGS.items():
        val = getattr(args, name)
        if val is None:
            continue
        if name not in OPTIONS[loss]:
            raise UsageError(f"{flag} does not apply to --loss {loss}")
        if name == "weight":
            val = _vector_or_float(val, flag, allow_float=False)
        elif name in ("alpha", "pos_weight"):
            val = _vector_or_float(val, flag)
        opts[name] = val
    return opts


# --- scoring -----------------------------------------------------------------------------

def _progress(total, label):
    """A rich progress bar on stderr when stderr is a terminal, else None."""
    if not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeRemainingColumn)
    prog = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True), transient=True)
    prog.task = prog.add_task(label, total=total)
    return prog


def score_files(logits_path, targets_path, *, loss, options, logits_key="logits",
                targets_key="targets", chunk_rows=None, out=None, out_logprobs=None,
                top_k=10, backend=None, keep_losses=False):
    """Stream the files through a Scorer; returns (summary dict, per-sample losses or None).

    The summary is ``Scorer.result()`` plus ``seconds``, ``rows_per_second`` and the
    input names. Raises DataError (bad data) or UsageError (bad options).
    """
    elementwise = loss in ("binary", "sigmoid_focal")
    x = open_source(logits_path, logits_key)
    if targets_path is None:
        if not str(logits_path).lower().endswith(".npz"):
            raise UsageError("TARGETS is required unless LOGITS is a .npz file holding "
                             f"them (key {targets_key!r})")
        t, tname = open_source(logits_path, targets_key), f"{logits_path}[{targets_key}]"
    else:
        t = open_source(targets_path, targets_key,
                        integer=not elementwise and _csv_one_column(targets_path))
        tname = targets_path
    xname = f"{logits_path}[{logits_key}]" if str(logits_path).endswith(".npz") else logits_path
    _check_sources(x, xname, t, tname)
    scorer = Scorer(loss, top_k=top_k, backend=backend, **options)
    axis = options.get("axis", -1) if not elementwise else -1
    _check_options(scorer, x, loss, options, backend, top_k)
    if chunk_rows is None:
        chunk_rows = max(1, CHUNK_ELEMENTS // max(1, int(np.prod(x.shape[1:]))))
    ax = axis % len(x.shape)
    sample_shape = (x.shape[:-1] if elementwise else x.shape[:ax] + x.shape[ax + 1:])
    kept = [] if keep_losses else None
    start = time.perf_counter()
    with ExitStack() as stack:
        w_loss = stack.enter_context(NpyWriter(out, sample_shape)) if out else None
        w_lp = (stack.enter_context(NpyWriter(
            out_logprobs, x.shape if elementwise else sample_shape)) if out_logprobs else None)
        prog = _progress(x.rows, f"scoring {Path(logits_path).name}")
        if prog is not None:
            stack.enter_context(prog)
        for xc, tc in zip(x.chunks(chunk_rows), t.chunks(chunk_rows)):
            try:
                per = scorer.update(xc, tc)
                if w_lp is not None:
                    w_lp.write(scorer.target_logprobs(xc, tc))
            except (ValueError, TypeError) as exc:
                raise DataError(f"{tname if 'target' in str(exc) else xname}: {exc}") from None
            if w_loss is not None:
                w_loss.write(per)
            if kept is not None:
                kept.append(per.reshape(-1))
            if prog is not None:
                prog.advance(prog.task, len(xc))
    seconds = time.perf_counter() - start
    res = scorer.result()
    res.update(logits=str(xname), targets=str(tname), seconds=seconds,
               rows_per_second=res["rows"] / seconds if seconds > 0 else None)
    return res, (np.concatenate(kept) if kept else None)


def _csv_one_column(path):
    return str(path).lower().endswith((".csv", ".txt")) and CsvSource(path).columns == 1


def _check_sources(x, xname, t, tname):
    if x.dtype.kind != "f" or x.dtype not in (np.float16, np.float32, np.float64):
        raise DataError(f"{xname}: logits must be float16, float32 or float64, "
                        f"got dtype {x.dtype}")
    if len(x.shape) < 2:
        raise DataError(f"{xname}: logits must be 2-D (rows, classes) or more, "
                        f"got shape {x.shape}")
    if t.dtype.kind not in "iuf":
        raise DataError(f"{tname}: targets must be integer class indices or floating "
                        f"probabilities/labels, got dtype {t.dtype}")
    if x.rows != t.rows:
        raise DataError(f"row counts differ: {xname} has {x.rows} rows, {tname} has {t.rows}")


def _check_options(scorer, x, loss, options, backend, top_k):
    """Try the options on one dummy sample so a bad value is a usage error, not a data one."""
    shape = (1,) + tuple(x.shape[1:])
    ax = options.get("axis", -1)
    try:
        probe = Scorer(loss, top_k=top_k, backend=backend, **options)
        dummy = np.zeros(shape)
        if loss in ("binary", "sigmoid_focal"):
            probe.update(dummy, dummy)
        else:
            ax = ax % len(shape)
            probe.update(dummy, np.zeros(shape[:ax] + shape[ax + 1:], np.int64))
    except (ValueError, TypeError, ImportError) as exc:  # ImportError: an unavailable backend
        raise UsageError(str(exc)) from None


# --- output ------------------------------------------------------------------------------

def _fmt(x, digits=6):
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def print_summary(res, console):
    """The summary as rich tables."""
    from rich.table import Table

    opts = ", ".join(f"{k}={v}" for k, v in res["options"].items())
    tab = Table(title=f"fastce score — {res['loss']}" + (f" ({opts})" if opts else ""),
                show_header=False, title_justify="left")
    tab.add_column("metric", style="bold")
    tab.add_column("value", justify="right")
    rows = [("logits", res["logits"]), ("targets", res["targets"]),
            ("rows", res["rows"]), ("classes", res["classes"]),
            ("ignored rows", res["ignored_rows"]), ("mean loss", res["mean_loss"]),
            ("total loss", res["total_loss"]), ("perplexity", res["perplexity"]),
            ("top-1 accuracy", res["accuracy"]),
            ("throughput", f"{res['rows_per_second']:,.0f} rows/s"
             if res["rows_per_second"] else "-")]
    for k, val in rows:
        tab.add_row(k, _fmt(val))
    console.print(tab)
    if res["worst_classes"]:
        wc = Table(title="classes with the highest mean loss", title_justify="left")
        for col in ("class", "mean loss", "rows"):
            wc.add_column(col, justify="right")
        for c in res["worst_classes"]:
            wc.add_row(str(c["class"]), _fmt(c["mean_loss"]), _fmt(c["count"]))
        console.print(wc)
    if res["hardest"]:
        hs = Table(title=f"the {len(res['hardest'])} hardest samples", title_justify="left")
        hs.add_column("index", justify="right")
        hs.add_column("loss", justify="right")
        for h in res["hardest"]:
            hs.add_row(str(h["index"]), _fmt(h["loss"]))
        console.print(hs)


def _share_of_hardest(losses, fraction=0.1):
    """Share of the total loss carried by the `fraction` of samples with the largest loss."""
    k = max(1, int(round(fraction * losses.size)))
    top = np.sort(losses)[::-1][:k]
    return float(np.sum(top) / np.sum(losses))


def compare_example(args, console):
    """No file given: cross-entropy vs focal loss on the built-in digits example."""
    gamma = 2.0 if args.gamma is None else args.gamma
    results, losses = {}, {}
    for name, opts in (("cross_entropy", {}), ("focal", {"gamma": gamma})):
        results[name], losses[name] = score_files(
            EXAMPLE, None, loss=name, options=opts, top_k=args.top_k, backend=args.backend,
            chunk_rows=args.chunk_rows, keep_losses=True)
    with np.load(EXAMPLE) as npz:
        x, y, desc = npz["logits"], npz["targets"], str(npz["description"])
    p_t = np.exp(Scorer().target_logprobs(x, y))
    easy = p_t >= 0.9
    extra = {name: {"hardest_10pct_share": _share_of_hardest(losses[name]),
                    "easy_share": float(losses[name][easy].sum() / losses[name].sum())}
             for name in losses}
    if args.json:
        print(json.dumps({"example": str(EXAMPLE), "description": desc, "gamma": gamma,
                          "easy_rows": int(easy.sum()), **{n: {**results[n], **extra[n]}
                                                            for n in results}}, indent=2))
        return 0
    from rich.table import Table

    tab = Table(title=f"fastce score — built-in example ({EXAMPLE.name}): held-out logits of "
                      "a classifier of scikit-learn's handwritten digits", title_justify="left",
                caption="p: the model's probability of the true class", caption_justify="left")
    tab.add_column("", no_wrap=True)
    tab.add_column("cross_entropy", justify="right")
    tab.add_column(f"focal (gamma={gamma:g})", justify="right")
    ce, fo = results["cross_entropy"], results["focal"]
    for label, key in (("rows", "rows"), ("classes", "classes"), ("mean loss", "mean_loss"),
                       ("total loss", "total_loss"), ("top-1 accuracy", "accuracy")):
        tab.add_row(label, _fmt(ce[key]), _fmt(fo[key]))
    tab.add_row("perplexity", _fmt(ce["perplexity"]), "-")
    tab.add_row("hardest 10%: share of loss",
                *(f"{extra[n]['hardest_10pct_share']:.1%}" for n in results))
    tab.add_row(f"{int(easy.sum())} easy rows (p>=0.9): share",
                *(f"{extra[n]['easy_share']:.1%}" for n in results))
    tab.add_row("hardest rows", *(", ".join(str(h["index"]) for h in r["hardest"][:3])
                                  for r in (ce, fo)))
    console.print(tab)
    console.print(f"Focal loss multiplies each row's cross-entropy by (1 - p_target)^{gamma:g}: "
                  f"the easy rows carry {extra['focal']['easy_share']:.1%} of its total "
                  f"instead of {extra['cross_entropy']['easy_share']:.1%}, and the hardest 10% "
                  f"carry {extra['focal']['hardest_10pct_share']:.1%} instead of "
                  f"{extra['cross_entropy']['hardest_10pct_share']:.1%}. Score your own "
                  "files with `fastce score LOGITS [TARGETS]` (see --help).")
    return 0


# --- command line ------------------------------------------------------------------------

def _parser():
    p = argparse.ArgumentParser(
        prog="fastce", description="fast, numerically stable softmax-family losses")
    p.add_argument("--version", action="version", version=f"fastce {fastce.__version__}")
    p.add_argument("--cflags", action="store_true", help="print the C compiler flags")
    p.add_argument("--libs", action="store_true", help="print the linker flags")
    sub = p.add_subparsers(dest="command", metavar="{score,bench}")
    sub.add_parser("bench", help="run the benchmarks (fastce bench --help)", add_help=False)
    s = sub.add_parser(
        "score", help="score a file of logits and targets",
        description="Score LOGITS (and TARGETS) with a fastce loss, streaming in row chunks. "
                    "Formats: .npy (memory-mapped), .npz (named arrays; uncompressed "
                    "members are memory-mapped, compressed ones loaded whole), .csv (one row "
                    "per sample; a header line is skipped). Without files: the built-in "
                    "digits example, cross-entropy vs focal loss.")
    s.add_argument("logits", nargs="?", help=".npy, .npz or .csv file of logits")
    s.add_argument("targets", nargs="?", help="targets file (optional for .npz)")
    s.add_argument("--loss", choices=LOSSES, default=None,
                   help="the loss (default cross_entropy)")
    s.add_argument("--logits-key", default="logits", help=".npz member of the logits")
    s.add_argument("--targets-key", default="targets", help=".npz member of the targets")
    s.add_argument("--gamma", type=float, help="focal exponent (focal, sigmoid_focal)")
    s.add_argument("--alpha", help="focal alpha: a float, or per-class: a comma list or file")
    s.add_argument("--weight", help="per-class weights: a .npy/text file or a comma list")
    s.add_argument("--ignore-index", type=int, help="target value to ignore (default -100)")
    s.add_argument("--label-smoothing", type=float, help="cross-entropy label smoothing")
    s.add_argument("--pos-weight", help="binary: positive-class weight (float, list or file)")
    s.add_argument("--axis", type=int, help="class axis (softmax losses; default -1)")
    s.add_argument("--backend", choices=BACKENDS, default=None,
                   help="default: the compiled core")
    s.add_argument("--threads", type=int, help="threads of the compiled backends")
    s.add_argument("--chunk-rows", type=int, help="rows per chunk (default: ~4M logits)")
    s.add_argument("--top-k", type=int, default=10, help="hardest samples to list")
    s.add_argument("--out", help="write the per-sample losses to this .npy")
    s.add_argument("--out-logprobs", help="write the target log-probabilities to this .npy")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p, s


def _score_command(args, console):
    for name in ("out", "out_logprobs"):
        path = getattr(args, name)
        if path is not None and not path.endswith(".npy"):
            raise UsageError(f"--{name.replace('_', '-')} must name a .npy file, got {path!r}")
    if args.chunk_rows is not None and args.chunk_rows < 1:
        raise UsageError(f"--chunk-rows must be >= 1, got {args.chunk_rows}")
    if args.top_k < 0:
        raise UsageError(f"--top-k must be >= 0, got {args.top_k}")
    if args.targets is not None and args.logits is None:
        raise UsageError("TARGETS given without LOGITS")
    if args.logits is None and args.loss is None:
        if args.out or args.out_logprobs:
            raise UsageError("--out/--out-logprobs need a LOGITS file (or --loss)")
        return compare_example(args, console)
    loss = args.loss or "cross_entropy"
    res, _ = score_files(args.logits or EXAMPLE, args.targets, loss=loss,
                         options=loss_options(args, loss), logits_key=args.logits_key,
                         targets_key=args.targets_key, chunk_rows=args.chunk_rows,
                         out=args.out, out_logprobs=args.out_logprobs, top_k=args.top_k,
                         backend=args.backend)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print_summary(res, console)
    return 0


def main(argv=None) -> int:
    """Run the ``fastce`` command with `argv` (default ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        from fastce import _bench
        return _bench.main(argv[1:])
    parser, score_parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help/--version (0) or a usage error (2)
        return int(exc.code or 0)
    if args.cflags or args.libs:
        flags = []
        if args.cflags:
            flags.append(f"-I{fastce.get_include()}")
        if args.libs:
            lib = fastce.get_lib_dir()
            flags.append(f"-L{lib} -Wl,-rpath,{lib} -lfastce -lm")
        print(" ".join(flags))
        return 0
    if args.command != "score":
        parser.print_help(sys.stderr)
        return 2
    try:
        return _run_score(args, score_parser)
    except BrokenPipeError:  # e.g. `fastce score --json | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _run_score(args, score_parser):
    from rich.console import Console

    console = Console(file=sys.stdout)
    try:
        if args.threads is not None:
            if args.threads < 1:
                raise UsageError(f"--threads must be >= 1, got {args.threads}")
            fastce.set_num_threads(args.threads)
        return _score_command(args, console)
    except UsageError as exc:
        score_parser.print_usage(sys.stderr)
        print(f"fastce score: error: {exc}", file=sys.stderr)
        return 2
    except DataError as exc:
        print(f"fastce score: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.threads is not None:
            fastce.set_num_threads(0)
