"""The `fastce` command: formats, --json/--out, chunk-size independence, errors, memory."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

import fastce
from fastce import cli

N, C = 500, 6
TIMING = ("seconds", "rows_per_second")


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(0)
    x = (2 * rng.standard_normal((N, C))).astype(np.float32)
    y = rng.integers(0, C, N)
    y[::9] = -100
    return x, y


def _write(tmp_path, fmt, x, y):
    """The files of one format; returns the positional arguments of `fastce score`."""
    if fmt == "npy":
        np.save(tmp_path / "x.npy", x)
        np.save(tmp_path / "y.npy", y)
        return [str(tmp_path / "x.npy"), str(tmp_path / "y.npy")]
    if fmt in ("npz", "npz-compressed"):
        save = np.savez if fmt == "npz" else np.savez_compressed
        save(tmp_path / "d.npz", logits=x, targets=y)
        return [str(tmp_path / "d.npz")]
    np.savetxt(tmp_path / "x.csv", x, delimiter=",", fmt="%.9g",
               header=",".join(f"c{i}" for i in range(C)), comments="")
    np.savetxt(tmp_path / "y.csv", y, fmt="%d")
    return [str(tmp_path / "x.csv"), str(tmp_path / "y.csv")]


def _json(capsys, argv):
    assert cli.main(["score", *argv, "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    return res, {k: v for k, v in res.items() if k not in TIMING + ("logits", "targets")}


def _expected(x, y, loss="cross_entropy", **opts):
    s = fastce.Scorer(loss, **opts)
    s.update(x, y)
    return s.result()


@pytest.mark.parametrize("fmt", ["npy", "npz", "npz-compressed", "csv"])
def test_each_format_gives_the_scorer_summary(tmp_path, capsys, arrays, fmt):
    x, y = arrays
    files = _write(tmp_path, fmt, x, y)
    res, summary = _json(capsys, files)
    if fmt == "csv":  # what the text holds: the float32 values' 9-digit decimals
        x = np.loadtxt(files[0], delimiter=",", skiprows=1)
    want = _expected(x, y)
    assert summary == want
    assert res["rows_per_second"] > 0
    assert res["mean_loss"] == pytest.approx(float(fastce.cross_entropy(x.astype(np.float64),
                                                                        y)), rel=1e-6)


@pytest.mark.parametrize("fmt", ["npy", "npz", "csv"])
def test_summary_is_bit_identical_for_any_chunk_size_and_threads(tmp_path, capsys, arrays, fmt):
    files = _write(tmp_path, fmt, *arrays)
    got = [_json(capsys, files + ["--chunk-rows", str(k), "--loss", "focal", "--gamma", "1.5",
                                  "--threads", str(threads)])[1]
           for k, threads in ((1, 1), (7, 2), (128, 1), (499, 2), (10_000, 2))]
    assert all(g == got[0] for g in got[1:])


def test_out_files_hold_the_per_sample_losses_and_target_logprobs(tmp_path, capsys, arrays):
    x, y = arrays
    files = _write(tmp_path, "npy", x, y)
    out, lp = tmp_path / "loss.npy", tmp_path / "lp.npy"
    _json(capsys, files + ["--weight", ",".join(["1", "2"] * 3), "--label-smoothing", "0.1",
                           "--chunk-rows", "64", "--out", str(out), "--out-logprobs", str(lp)])
    w = np.array([1, 2] * 3, float)
    np.testing.assert_array_equal(
        np.load(out), fastce.cross_entropy(x, y, weight=w, label_smoothing=0.1,
                                           reduction="none").astype(np.float64))
    z = x.astype(np.float64) - x.max(1, keepdims=True)
    ref = z - np.log(np.exp(z).sum(1, keepdims=True))
    got = np.load(lp)
    valid = y != -100
    np.testing.assert_allclose(got[valid], ref[np.flatnonzero(valid), y[valid]], rtol=1e-5)
    assert np.isnan(got[~valid]).all()
    assert sorted(os.listdir(tmp_path)) == ["loss.npy", "lp.npy", "x.npy", "y.npy"]


@pytest.mark.parametrize("loss, extra", [("binary", ["--pos-weight", "2"]),
                                         ("sigmoid_focal", ["--alpha", "0.5"])])
def test_elementwise_losses(tmp_path, capsys, arrays, loss, extra):
    x = arrays[0]
    t = (np.random.default_rng(2).random(x.shape) < 0.4).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", t.astype(np.int8))  # integer 0/1 labels are accepted
    _, summary = _json(capsys, [str(tmp_path / "x.npy"), str(tmp_path / "t.npy"),
                                "--loss", loss, *extra, "--chunk-rows", "33"])
    opts = {"pos_weight": 2.0} if loss == "binary" else {"alpha": 0.5}
    assert summary == _expected(x, t, loss, **opts)
    fn = fastce.binary_cross_entropy if loss == "binary" else fastce.sigmoid_focal_loss
    assert summary["mean_loss"] == pytest.approx(float(fn(x.astype(np.float64), t, **opts)),
                                                 rel=1e-6)


def test_table_output(tmp_path, capsys, arrays):
    files = _write(tmp_path, "npz", *arrays)
    assert cli.main(["score", *files, "--top-k", "3"]) == 0
    out = capsys.readouterr().out
    want = _expected(*arrays, top_k=3)
    assert f"{want['mean_loss']:.6g}" in out and "rows/s" in out
    assert all(str(h["index"]) in out for h in want["hardest"])


def test_builtin_example_compares_cross_entropy_and_focal(capsys):
    assert cli.main(["score", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    with np.load(cli.EXAMPLE) as d:
        x, y = d["logits"], d["targets"]
    assert x.dtype == np.float32 and x.shape[1] == 10 and len(x) == res["cross_entropy"]["rows"]
    ce, fo = res["cross_entropy"], res["focal"]
    assert ce["mean_loss"] == pytest.approx(float(fastce.cross_entropy(x, y)), rel=1e-6)
    assert fo["mean_loss"] == pytest.approx(float(fastce.focal_loss(x, y, gamma=2.0)), rel=1e-6)
    assert ce["accuracy"] > 0.9  # a real classifier, held out
    per = fastce.focal_loss(x, y, reduction="none").astype(np.float64)
    k = round(0.1 * len(per))
    assert fo["hardest_10pct_share"] == pytest.approx(np.sort(per)[-k:].sum() / per.sum())
    assert fo["hardest_10pct_share"] > ce["hardest_10pct_share"]
    assert fo["easy_share"] < ce["easy_share"]
    assert cli.main(["score"]) == 0
    assert "focal (gamma=2)" in capsys.readouterr().out


def test_cflags_and_libs(capsys):
    assert cli.main(["--cflags", "--libs"]) == 0
    lib = fastce.get_lib_dir()
    assert capsys.readouterr().out.split() == [
        f"-I{fastce.get_include()}", f"-L{lib}", f"-Wl,-rpath,{lib}", "-lfastce", "-lm"]


def test_bench_dispatches_to_fastce_bench(monkeypatch):
    seen = []
    fake = types.SimpleNamespace(main=lambda argv: seen.append(argv) or 7)
    monkeypatch.setitem(sys.modules, "fastce._bench", fake)
    monkeypatch.setattr(fastce, "_bench", fake, raising=False)
    assert cli.main(["bench", "--quick", "x"]) == 7
    assert seen == [["--quick", "x"]]


def test_module_entry_point_in_a_subprocess(tmp_path, arrays):
    files = _write(tmp_path, "npy", *arrays)
    p = subprocess.run([sys.executable, "-m", "fastce", "score", *files, "--json"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert res["mean_loss"] == _expected(*arrays)["mean_loss"]


# --- errors: message, exit status, no output left behind ----------------------------------

def _bad_files(tmp_path, x, y):
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    bad_y = y.copy()
    bad_y[123] = C
    np.save(tmp_path / "bad_y.npy", bad_y)
    np.save(tmp_path / "short_y.npy", y[:-1])
    np.save(tmp_path / "int_x.npy", np.ones((N, C), np.int64))
    np.save(tmp_path / "flat_x.npy", x[:, 0])
    np.save(tmp_path / "y2d.npy", np.zeros((N, 2), np.int64))
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    (tmp_path / "x.csv").write_text("0.5,1\n0.1,oops\n")
    (tmp_path / "ragged.csv").write_text("0.5,1\n0.1\n")
    (tmp_path / "latin1.csv").write_bytes(b"\xff\xfe1,2\n")
    (tmp_path / "y.csv").write_text("0\n1\n")
    np.savez(tmp_path / "d.npz", logits=x)


ERRORS = {  # argv (file names relative to tmp_path), exit status, message
    "missing-file": (["nope.npy", "y.npy"], 1, r"nope\.npy: no such file"),
    "label-out-of-range": (["x.npy", "bad_y.npy"], 1,
                           r"bad_y\.npy: target 6 at row 123 is out of range"),
    "row-mismatch": (["x.npy", "short_y.npy"], 1, r"row counts differ.*500.*499"),
    "int-logits": (["int_x.npy", "y.npy"], 1, r"int_x\.npy: logits must be float.*int64"),
    "1d-logits": (["flat_x.npy", "y.npy"], 1, r"flat_x\.npy: logits must be 2-D"),
    "target-shape": (["x.npy", "y2d.npy"], 1, r"y2d\.npy: targets must have shape \(\d+,\)"),
    "not-npy": (["junk.npy", "y.npy"], 1, r"junk\.npy: not a valid \.npy"),
    "csv-parse": (["x.csv", "y.csv"], 1, r"x\.csv: row 1, column 1: 'oops' is not a number"),
    "csv-not-utf8": (["latin1.csv", "y.csv"], 1, r"latin1\.csv: not UTF-8 text"),
    "negative-threads": (["x.npy", "y.npy", "--threads", "-1"], 2, r"--threads must be >= 1"),
    "csv-ragged": (["ragged.csv", "y.csv"], 1, r"ragged\.csv: row 1 has 1 fields, the file has 2"),
    "npz-key": (["d.npz"], 1, r"d\.npz: no array named 'targets' \(it has: logits\)"),
    "unknown-format": (["x.h5", "y.npy"], 1, r"no such file|unknown format"),
    "no-targets": (["x.npy"], 2, r"TARGETS is required"),
    "foreign-option": (["x.npy", "y.npy", "--gamma", "2"], 2,
                       r"--gamma does not apply to --loss cross_entropy"),
    "bad-option-value": (["x.npy", "y.npy", "--label-smoothing", "2"], 2, r"label_smoothing"),
    "weight-length": (["x.npy", "y.npy", "--weight", "1,2"], 2, r"weight must have shape"),
    "bad-loss": (["x.npy", "y.npy", "--loss", "hinge"], 2, r"invalid choice: 'hinge'"),
    "bad-chunk": (["x.npy", "y.npy", "--chunk-rows", "0"], 2, r"--chunk-rows must be >= 1"),
    "out-not-npy": (["x.npy", "y.npy", "--out", "l.txt"], 2, r"--out must name a \.npy"),
}


def test_unavailable_backend_is_a_usage_error(tmp_path, capsys, arrays, monkeypatch):
    from fastce import _backends

    _bad_files(tmp_path, *arrays)
    monkeypatch.setitem(_backends._failed, "numba", ImportError("No module named 'numba'"))
    monkeypatch.delitem(_backends._loaded, "numba", raising=False)
    argv = ["score", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "--backend", "numba"]
    assert cli.main(argv) == 2
    assert "backend 'numba' is unavailable" in capsys.readouterr().err


@pytest.mark.parametrize("case", ERRORS)
def test_errors(tmp_path, capsys, arrays, case):
    argv, status, msg = ERRORS[case]
    _bad_files(tmp_path, *arrays)
    before = sorted(os.listdir(tmp_path))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        extra = [] if status == 2 else ["--out", "loss.npy", "--out-logprobs", "lp.npy"]
        assert cli.main(["score", *argv, *extra]) == status
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err
    assert re.search(msg, err), err
    assert sorted(os.listdir(tmp_path)) == before  # nothing half-written left


# --- memory: a file much larger than the resident memory it costs --------------------------

@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc (Linux)")
def test_large_npy_scores_in_bounded_memory(tmp_path):
    rows, classes = 150_000, 1000  # 600 MB of float32
    step = 10_000
    pattern = np.sin(np.arange(step * classes, dtype=np.float32)).reshape(step, classes)
    with open(tmp_path / "x.npy", "wb") as f:  # written, not mapped: keeps pytest's RSS low
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False,
                                                 "shape": (rows, classes)})
        for _ in range(rows // step):
            f.write(pattern.tobytes())
    y = np.arange(rows) % classes
    np.save(tmp_path / "y.npy", y)
    # VmHWM, not ru_maxrss: Linux carries the parent's peak RSS into a child's ru_maxrss
    # across fork/vfork + exec, so ru_maxrss would report pytest's own peak.
    code = textwrap.dedent(f"""
        import json
        from fastce import cli
        rc = cli.main(["score", {str(tmp_path / 'x.npy')!r}, {str(tmp_path / 'y.npy')!r},
                       "--json", "--out", {str(tmp_path / 'l.npy')!r}])
        hwm = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
        print(json.dumps({{"rc": rc, "maxrss_kb": int(hwm)}}))
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=300, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    info = json.loads(lines[-1])
    res = json.loads("\n".join(lines[:-1]))
    size_mb = rows * classes * 4 / 2**20
    assert info["rc"] == 0 and res["rows"] == rows
    assert info["maxrss_kb"] / 1024 < size_mb / 3, info  # well under the file size
    per = fastce.cross_entropy(pattern, y[:step], reduction="none").astype(np.float64)
    np.testing.assert_array_equal(np.load(tmp_path / "l.npy", mmap_mode="r")[:step], per)
    assert res["mean_loss"] == pytest.approx(per.mean(), rel=1e-9)
