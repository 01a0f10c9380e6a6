"""Accuracy of the compiled core's float32 transcendentals, in ulps, over sweeps.

The core evaluates exp with glibc's vectorised libmvec and, for the sigmoid losses,
log1p(exp(-|x|)) with its own polynomial on [0, 1] (fc_log1p_unit_f32 in
fastce/_core/internal.h). These tests sweep the logits and bound the error of the
results against float64 truths, in float32 ulps of the truth.
"""
import numpy as np
import pytest

import fastce
from tolerances import SIGMOID_F32_ULPS

#: logits from -87 to 87 (exp stays normal) plus tiny negative values down to -2^-59
SWEEP = np.concatenate([np.linspace(-87, 87, 200001, dtype=np.float32),
                        -np.float32(2.0) ** -np.arange(1, 60, dtype=np.float32)])


def _ulps(got, truth):
    """|got - truth| in float32 ulps of truth (0 where both are 0)."""
    truth = np.asarray(truth, dtype=np.float64)
    ulp = np.spacing(np.abs(truth).astype(np.float32)).astype(np.float64)
    return np.abs(np.asarray(got, dtype=np.float64) - truth) / np.where(ulp > 0, ulp, 1.0)


@pytest.mark.parametrize("t", [0.0, 1.0])
def test_binary_cross_entropy_float32_ulps(t):
    x = SWEEP[None, :]
    tt = np.full_like(x, t)
    loss, grad = fastce.binary_cross_entropy(x, tt, reduction="none", return_grad=True,
                                             backend="cython")
    x64 = SWEEP.astype(np.float64)
    # loss = softplus(x) for t = 0, softplus(-x) for t = 1; gradient sigmoid(x) for t = 0,
    # sigmoid(x) - 1 = -sigmoid(-x) for t = 1 (formed without cancellation)
    want = np.logaddexp(0.0, x64) if t == 0 else np.logaddexp(0.0, -x64)
    want_grad = 1.0 / (1.0 + np.exp(-x64)) if t == 0 else -1.0 / (1.0 + np.exp(x64))
    assert _ulps(loss[0], want).max() <= SIGMOID_F32_ULPS
    assert _ulps(grad[0], want_grad).max() <= SIGMOID_F32_ULPS


def test_sigmoid_focal_gamma0_is_bce_float32():
    """gamma = 0 and no alpha: the sigmoid focal loss is the BCE, to the same accuracy."""
    x = SWEEP[None, :]
    t = (np.arange(SWEEP.size) % 2).astype(np.float32)[None, :]
    got = fastce.sigmoid_focal_loss(x, t, gamma=0.0, alpha=-1.0, reduction="none",
                                    backend="cython")
    x64, t64 = SWEEP.astype(np.float64), t[0].astype(np.float64)
    want = t64 * np.logaddexp(0.0, -x64) + (1 - t64) * np.logaddexp(0.0, x64)
    assert _ulps(got[0], want).max() <= SIGMOID_F32_ULPS


def test_target_logit_difference_taken_in_float64(backend):
    """x_y - max for float32 logits 6e38 apart overflows in float32; the per-row scalars are
    float64, so a loss that fits in float32 (focal, alpha 0.25: 0.25 * 6e38) comes out."""
    x = np.array([[3e38, -3e38]], np.float32)
    got = fastce.focal_loss(x, np.array([1]), gamma=0.0, alpha=0.25, backend=backend)
    np.testing.assert_allclose(got, np.float32(1.5e38), rtol=1e-6)
    assert np.isinf(fastce.cross_entropy(x, np.array([1]), backend=backend))  # 6e38: inf
