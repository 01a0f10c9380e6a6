"""Smoke test of `fastce bench` (fastce._bench) at tiny sizes, and the truth of what it
compares: every peer implementation computes the NumPy reference's loss and gradient."""
import json

import numpy as np
import pytest

from fastce import _bench

TINY = [_bench.Case(f, 8, 5, "float64", m) for f in _bench.FUNCTIONS for m in _bench.MODES
        if not (m == "fwd+grad" and f in _bench.SOFTMAX_FAMILY)]


def _pair(result):
    """(value, gradient or None) of a call as float64 NumPy arrays."""
    grad = result[1] if isinstance(result, tuple) else None
    if grad is not None:
        grad = np.asarray(grad.detach().numpy() if hasattr(grad, "detach") else grad, np.float64)
    return _bench.value_of(result), grad


@pytest.mark.parametrize("case, name", [
    pytest.param(c, k, id=f"{k}-{c.function}-{c.mode}") for k in ("cython",) + _bench.PEERS
    for c in TINY if _bench.applicable(k, c)])
def test_peer_computes_the_reference(case, name):
    if name in _bench.PEERS:
        pytest.importorskip(name)
    x, t = _bench.make_inputs(case)
    value, grad = _pair(_bench.implementation(name, case, x, t, 1)())
    ref_value, ref_grad = _pair(_bench.implementation("numpy", case, x, t, 1)())
    np.testing.assert_allclose(value, ref_value, rtol=1e-10, atol=1e-12)
    assert (grad is None) == (not case.grad)
    if case.grad:
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-12)


def test_bytes_moved_and_shapes():
    assert _bench.Case("cross_entropy", 10, 3, "float32", "fwd+grad").bytes_moved() == 2 * 30 * 4
    assert _bench.Case("cross_entropy", 10, 3, "float64", "fwd").bytes_moved() == 30 * 8
    assert _bench.Case("logsumexp", 10, 3, "float64", "fwd").bytes_moved() == (30 + 10) * 8
    assert _bench.parse_shape("4096x1000:float64") == (4096, 1000, "float64")
    assert _bench.parse_shape("32X10") == (32, 10, "float32")
    # 3 softmax functions (fwd) + 4 losses x 2 modes, per shape
    assert len(_bench.make_cases(shapes=_bench.SHAPES)) == 11 * len(_bench.SHAPES)


def test_targets_from_hand_made_rows():
    def row(impl, seconds, vs_peer=None, func="cross_entropy", n=4096, c=1000):
        return {"case": f"{func} {n}x{c}", "function": func, "n": n, "c": c, "dtype": "float32",
                "mode": "fwd+grad", "impl": impl, "seconds": seconds, "vs_peer": vs_peer}
    rows = [row("cython", 1.0, 3.0), row("numba", 2.0), row("torch", 3.0)]
    scaling = [{"ratio_all_vs_1": 0.6}, {"ratio_all_vs_1": 1.2}]
    latency = [{"impl": "cython", "seconds": 2e-5}, {"impl": "jax", "seconds": 3e-5},
               {"impl": "torch", "seconds": 5e-5}]
    got = {t["target"].split(":")[0]: (t["measured"], t["met"])
           for t in _bench.check_targets(rows, scaling, latency)}
    assert got["cross_entropy 4096x1000 fwd+grad"] == (3.0, True)
    assert got["cross_entropy 2048x32000 fwd+grad"] == (None, None)
    assert got["cross_entropy 32x10 fwd+grad per call"] == (pytest.approx(1.5), True)
    assert got["threads never hurt"] == (1.2, False)
    assert got["numba within 1.5x of cython at large shapes"] == (2.0, False)


def test_main_writes_json_and_table(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["--quick", "--shapes", "16x4", "--functions", "cross_entropy", "log_softmax",
            "--backends", "cython", "numpy", "--peers", "--repeats", "1", "--no-progress",
            "--json", str(out)]
    assert _bench.main(argv) == 0
    report = json.loads(out.read_text())
    rows = report["results"]
    assert {(r["case"], r["impl"]) for r in rows} == {
        (c, b) for c in ("log_softmax 16x4 float32 fwd", "cross_entropy 16x4 float32 fwd",
                         "cross_entropy 16x4 float32 fwd+grad") for b in ("cython", "numpy")}
    for r in rows:
        ref = next(q for q in rows if q["case"] == r["case"] and q["impl"] == "numpy")
        assert r["vs_numpy"] == pytest.approx(ref["seconds"] / r["seconds"])
        assert r["vs_peer"] is None and r["value_mismatch"] is False
    assert {s["impl"] for s in report["scaling"]} == {"cython"}
    assert {r["impl"] for r in report["latency"]} == {"cython", "numpy"}
    assert len(report["targets"]) == 12
    table = capsys.readouterr().out
    assert "| cross_entropy | 16x4 | float32 | fwd+grad |" in table and "## Targets" in table


def test_merge_reports_keeps_the_last_run_of_a_case(tmp_path):
    def report(case, seconds, shape=(4, 3)):
        n, c = shape
        func = case.split()[0]
        row = {"case": case, "function": func, "n": n, "c": c, "dtype": "float32",
               "mode": case.split()[-1], "impl": "cython", "seconds": seconds, "vs_peer": None}
        return {"results": [row], "scaling": [{"case": case, "ratio_all_vs_1": seconds}],
                "latency": [], "warnings": [], "config": [{"argv": [case]}], "machine": {},
                "bandwidth_bytes_per_s": {}}
    paths = []
    for i, (case, secs, shape) in enumerate([("focal_loss 8x2 float32 fwd", 1.0, (8, 2)),
                                             ("cross_entropy 4x3 float32 fwd", 2.0, (4, 3)),
                                             ("focal_loss 8x2 float32 fwd", 3.0, (8, 2))]):
        paths.append(tmp_path / f"{i}.json")
        paths[-1].write_text(json.dumps(report(case, secs, shape)))
    merged = _bench.merge_reports(paths)
    # the rerun of focal_loss replaced the first; shapes in order of appearance, then functions
    assert [(r["case"], r["seconds"]) for r in merged["results"]] == [
        ("cross_entropy 4x3 float32 fwd", 2.0), ("focal_loss 8x2 float32 fwd", 3.0)]
    assert sorted(s["ratio_all_vs_1"] for s in merged["scaling"]) == [2.0, 3.0]
    threads = next(t for t in merged["targets"] if t["target"].startswith("threads"))
    assert threads["measured"] == 3.0 and threads["met"] is False
