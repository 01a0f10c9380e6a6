"""fastce.Scorer: the streaming summary equals the one-shot loss, whatever the batching."""
from __future__ import annotations

import math

import numpy as np
import pytest

import fastce

N, C = 3000, 7


def ref_log_softmax(x):
    """log_softmax along the last axis, float64, written out."""
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _data(kind, seed=0):
    rng = np.random.default_rng(seed)
    x = (3 * rng.standard_normal((N, C))).astype(np.float32)
    if kind == "index":
        t = rng.integers(0, C, N)
        t[::11] = -100
    elif kind == "prob":
        t = rng.dirichlet(np.ones(C), N).astype(np.float32)
    else:
        t = (rng.random((N, C)) < 0.3).astype(np.float32)
    return x, t


# (loss, options, target kind, the fastce function giving the one-shot mean)
CASES = {
    "ce": ("cross_entropy", {}, "index", fastce.cross_entropy),
    "ce-weight-smooth": ("cross_entropy", {"weight": np.linspace(0.5, 2, C),
                                           "label_smoothing": 0.1}, "index",
                         fastce.cross_entropy),
    "ce-prob": ("cross_entropy", {}, "prob", fastce.cross_entropy),
    "focal-alpha": ("focal", {"gamma": 1.5, "alpha": np.linspace(0.1, 1, C)}, "index",
                    fastce.focal_loss),
    "binary-posw": ("binary", {"pos_weight": np.linspace(1, 3, C)}, "binary",
                    fastce.binary_cross_entropy),
    "sigmoid-focal": ("sigmoid_focal", {"gamma": 2.0, "alpha": 0.25}, "binary",
                      fastce.sigmoid_focal_loss),
}


def _score(loss, opts, x, t, cuts):
    s = fastce.Scorer(loss, **opts)
    per = [s.update(x[a:b], t[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
    return s.result(), np.concatenate(per)


@pytest.mark.parametrize("case", CASES)
def test_streaming_equals_one_shot_and_the_api(case):
    loss, opts, kind, fn = CASES[case]
    x, t = _data(kind)
    one, per_one = _score(loss, opts, x, t, [0, N])
    rng = np.random.default_rng(1)
    for cuts in ([0, 1, 2, 1024, 1025, N], list(range(0, N, 97)) + [N],
                 [0] + sorted(rng.choice(np.arange(1, N), 40, replace=False).tolist()) + [N]):
        res, per = _score(loss, opts, x, t, cuts)
        assert res == one  # bit-identical summary
        np.testing.assert_array_equal(per, per_one)
    x64 = x.astype(np.float64)
    t64 = t.astype(np.float64) if kind != "index" else t
    api_opts = {k: v for k, v in opts.items()}
    np.testing.assert_allclose(one["mean_loss"], fn(x64, t64, **api_opts), rtol=1e-6)
    np.testing.assert_allclose(one["total_loss"], fn(x64, t64, reduction="sum", **api_opts),
                               rtol=1e-6)
    assert one["rows"] == N and one["classes"] == C


def test_index_summary_against_hand_computed_truth():
    x, t = _data("index")
    res, per = _score("cross_entropy", {}, x, t, [0, 500, N])
    lp = ref_log_softmax(x.astype(np.float64))
    valid = t != -100
    truth = -lp[np.flatnonzero(valid), t[valid]]
    np.testing.assert_allclose(per[valid], truth, rtol=1e-6)
    assert np.all(per[~valid] == 0)
    assert res["ignored_rows"] == int((~valid).sum())
    assert res["mean_loss"] == pytest.approx(truth.mean(), rel=1e-6)
    assert res["perplexity"] == pytest.approx(math.exp(truth.mean()), rel=1e-6)
    assert res["accuracy"] == pytest.approx(np.mean(x[valid].argmax(1) == t[valid]))
    order = np.lexsort((np.arange(N), -np.where(valid, per, -np.inf)))[:10]
    assert [h["index"] for h in res["hardest"]] == order.tolist()
    cls_mean = np.array([truth[t[valid] == c].mean() for c in range(C)])
    worst = np.argsort(-cls_mean, kind="stable")[:5]
    assert [w["class"] for w in res["worst_classes"]] == worst.tolist()
    np.testing.assert_allclose([w["mean_loss"] for w in res["worst_classes"]],
                               cls_mean[worst], rtol=1e-6)


def test_uniform_logits_give_log_classes():
    s = fastce.Scorer("cross_entropy", top_k=2)
    s.update(np.zeros((4, 5), np.float32), np.array([0, 1, 2, 3]))
    res = s.result()
    assert res["mean_loss"] == pytest.approx(math.log(5), rel=1e-7)
    assert res["perplexity"] == pytest.approx(5.0, rel=1e-6)
    assert [h["index"] for h in res["hardest"]] == [0, 1]  # ties: lowest index first


def test_nd_logits_with_class_axis_1():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 4, 3))
    y = rng.integers(0, 4, (40, 3))
    one, per = _score("cross_entropy", {"axis": 1}, x, y, [0, 40])
    cut, per2 = _score("cross_entropy", {"axis": 1}, x, y, [0, 7, 19, 40])
    assert one == cut and per.shape == (40, 3)
    assert one["rows"] == 120
    assert one["mean_loss"] == pytest.approx(float(fastce.cross_entropy(x, y, axis=1)))


def test_target_logprobs_is_log_softmax_at_the_target():
    x, t = _data("index")
    lp = fastce.Scorer().target_logprobs(x, t)
    ref = ref_log_softmax(x.astype(np.float64))
    valid = t != -100
    np.testing.assert_allclose(lp[valid], ref[np.flatnonzero(valid), t[valid]], rtol=1e-5)
    assert np.isnan(lp[~valid]).all()


def test_label_out_of_range_names_the_global_row():
    s = fastce.Scorer()
    s.update(np.zeros((10, 3)), np.zeros(10, np.int64))
    with pytest.raises(ValueError, match=r"target 3 at row 14 is out of range.*\[0, 3\)"):
        s.update(np.zeros((10, 3)), np.array([0, 1, 2, 0, 3, 0, 0, 0, 0, 0]))


@pytest.mark.parametrize("kwargs, exc, msg", [
    ({"loss": "hinge"}, ValueError, "loss must be one of"),
    ({"loss": "cross_entropy", "gamma": 2.0}, TypeError, "unexpected.*gamma"),
])
def test_bad_scorer_arguments(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        fastce.Scorer(**kwargs)


def test_class_count_change_is_an_error():
    s = fastce.Scorer()
    s.update(np.zeros((2, 3)), np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="4 classes.*earlier batches had 3"):
        s.update(np.zeros((2, 4)), np.zeros(2, np.int64))
