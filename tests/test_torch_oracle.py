"""The NumPy reference (backend="numpy") against torch in float64: an independent
implementation of the same definitions, values and autograd gradients.

torch.nn.functional gives cross_entropy (all options, K-dim, probability
targets), binary_cross_entropy_with_logits, log_softmax, softmax and logsumexp;
the focal losses are written here in torch from their formulas (torchvision's
sigmoid_focal_loss; the softmax focal loss of Lin et al.), and differentiated
by autograd.
"""
from __future__ import annotations

import numpy as np
import pytest

import fastce
import tolerances as tol
from conftest import LOSS_CASES, REDUCTIONS

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def torch_cross_entropy(x, t, reduction, weight=None, ignore_index=-100, label_smoothing=0.0,
                        axis=-1):
    x = torch.movedim(x, axis, 1) if x.ndim > 1 else x
    if t.is_floating_point():
        t = torch.movedim(t, axis, 1) if t.ndim > 1 else t
    return F.cross_entropy(x, t, weight=weight, ignore_index=ignore_index, reduction=reduction,
                           label_smoothing=label_smoothing)


def torch_focal(x, t, reduction, gamma=2.0, alpha=None, ignore_index=-100, axis=-1):
    """-alpha_t (1 - p_t)^gamma log p_t, mean over non-ignored samples; probability
    targets: -sum_c alpha_c t_c (1 - p_c)^gamma log p_c, mean over samples."""
    lp = torch.log_softmax(x, dim=axis)
    c = x.shape[axis]
    a = torch.ones(c, dtype=x.dtype)
    if alpha is not None:
        a = a * torch.as_tensor(alpha, dtype=x.dtype)
    shape = [1] * x.ndim
    shape[axis] = c
    if t.is_floating_point():
        terms = a.reshape(shape) * t * (-torch.expm1(lp)) ** gamma * lp
        loss = -terms.sum(dim=axis)
        count = loss.numel()
    else:
        keep = t != ignore_index
        y = torch.where(keep, t, torch.zeros_like(t))
        lpt = torch.gather(lp, axis, y.unsqueeze(axis)).squeeze(axis)
        loss = torch.where(keep, -a[y] * (-torch.expm1(lpt)) ** gamma * lpt, 0.0)
        count = keep.sum()
    return {"none": loss, "sum": loss.sum(), "mean": loss.sum() / count}[reduction]


def torch_sigmoid_focal(x, t, reduction, gamma=2.0, alpha=0.25):
    """torchvision.ops.sigmoid_focal_loss, written out."""
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]


def torch_bce(x, t, reduction, weight=None, pos_weight=None):
    return F.binary_cross_entropy_with_logits(x, t, weight=weight, pos_weight=pos_weight,
                                              reduction=reduction)


TORCH = {"cross_entropy": torch_cross_entropy, "focal_loss": torch_focal,
         "binary_cross_entropy": torch_bce, "sigmoid_focal_loss": torch_sigmoid_focal}


def torch_loss_and_grad(case, x, t, reduction):
    xt = _t(x).requires_grad_(True)
    kw = case.kwargs()
    kw = {k: (_t(v.astype(np.float64)) if isinstance(v, np.ndarray) else v)
          for k, v in kw.items()}
    loss = TORCH[case.func](xt, _t(t), reduction, **kw)
    loss.sum().backward()
    return loss.detach().numpy(), xt.grad.numpy()


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_loss_against_torch(loss_case, reduction):
    x, t = loss_case.inputs(np.float64, seed=11)
    loss, grad = loss_case(x, t, "numpy", reduction=reduction, return_grad=True)
    want_loss, want_grad = torch_loss_and_grad(loss_case, x, t, reduction)
    np.testing.assert_allclose(loss, want_loss, **tol.TORCH)
    np.testing.assert_allclose(grad, want_grad, **tol.TORCH)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_all_ignored_matches_torch(reduction):
    """torch's convention: mean over no target is NaN, the gradient all zeros."""
    x = np.random.default_rng(12).standard_normal((3, 4))
    t = np.full(3, -100)
    loss, grad = fastce.cross_entropy(x, t, reduction=reduction, return_grad=True,
                                      backend="numpy")
    xt = _t(x).requires_grad_(True)
    want = F.cross_entropy(xt, _t(t), reduction=reduction)
    want.sum().backward()
    np.testing.assert_array_equal(loss, want.detach().numpy())
    np.testing.assert_array_equal(grad, xt.grad.numpy())


@pytest.mark.parametrize("func", ["log_softmax", "softmax", "logsumexp"])
@pytest.mark.parametrize("shape, axis", [((6, 5), -1), ((6, 5), 0), ((2, 3, 4), 1), ((7,), 0)],
                         ids=["2d", "2d-axis0", "3d-axis1", "1d"])
def test_softmax_family_against_torch(func, shape, axis):
    x = 5 * np.random.default_rng(13).standard_normal(shape)
    x.reshape(-1)[::7] = -np.inf
    got = getattr(fastce, func)(x, axis=axis, backend="numpy")
    want = getattr(torch, func)(_t(x), dim=axis).numpy()
    np.testing.assert_allclose(got, want, **tol.TORCH)
