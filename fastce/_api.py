"""The public functions: validate -> choose the backend -> call its kernel -> shape the result.

The math and conventions of every function are those of include/fastce.h;
this module only moves arrays around (see ``fastce._validate`` for the checks
and ``fastce._backends`` for the kernel contract).
"""
from __future__ import annotations

import numpy as np

from fastce import _backends, _config
from fastce import _validate as v

__all__ = ["log_softmax", "softmax", "logsumexp", "cross_entropy", "binary_cross_entropy",
           "focal_loss", "sigmoid_focal_loss"]


def _moved_shape(shape, ax):
    return shape[:ax] + shape[ax + 1:] + (shape[ax],)


def _rows_to_array(rows, shape, ax, out, dtype):
    """(rows, classes) result -> the caller's layout (class axis back at ax), into out if given."""
    if ax == len(shape) - 1:
        res = rows.reshape(shape)
    else:
        res = np.moveaxis(rows.reshape(_moved_shape(shape, ax)), -1, ax)
    with np.errstate(over="ignore"):  # float16 results beyond 65504 are inf, as documented
        if out is not None:
            out[...] = res
            return out
        return res.astype(dtype, copy=False)


def _rows_buffer(out, shape, ax, cdtype, n, c):
    """A C-contiguous (n, c) buffer of the compute dtype: `out` itself when its layout allows."""
    if (out is not None and out.dtype == cdtype and ax == len(shape) - 1
            and out.flags.c_contiguous):
        return out.reshape(n, c), True
    return np.empty((n, c), dtype=cdtype), False


# --- softmax family ----------------------------------------------------------------

def _softmax_like(kind, x, axis, out, backend):
    b = v.backend(backend)
    a, ax, dt, x2 = v.logits(x, axis, "x")
    out = v.output(out, a.shape, a.dtype, "out", (a,))
    o2, direct = _rows_buffer(out, a.shape, ax, dt, *x2.shape)
    if x2.size:
        getattr(_backends.load(b), kind)(x2, o2, _config.get_num_threads())
    return out if direct else _rows_to_array(o2, a.shape, ax, out, a.dtype)


def log_softmax(x, axis=-1, *, out=None, backend=None):
    """log softmax(x) along `axis`: x - max - log(sum(exp(x - max))).

    Parameters
    ----------
    x : array_like, float16/float32/float64 (float16 is computed in float32).
    axis : int, the class axis (default -1).
    out : ndarray, optional, same shape and dtype as x; written and returned.
    backend : None | "cython" | "numba" | "numpy".

    A row that is entirely -inf gives NaN (as torch); +-inf and NaN follow IEEE.
    """
    return _softmax_like("log_softmax", x, axis, out, backend)


def softmax(x, axis=-1, *, out=None, backend=None):
    """softmax(x) = exp(x - max) / sum(exp(x - max)) along `axis` (see log_softmax)."""
    return _softmax_like("softmax", x, axis, out, backend)


def logsumexp(x, axis=-1, *, out=None, backend=None):
    """log(sum(exp(x))) along `axis`, computed as max + log(sum(exp(x - max))).

    The result has x's shape without `axis`. A row that is entirely -inf (or
    empty) gives -inf, not NaN; a row with +inf gives +inf.
    """
    b = v.backend(backend)
    a, ax, dt, x2 = v.logits(x, axis, "x")
    shape = a.shape[:ax] + a.shape[ax + 1:]
    out = v.output(out, shape, a.dtype, "out", (a,))
    n = x2.shape[0]
    direct = out is not None and out.dtype == dt and out.flags.c_contiguous
    o1 = out.reshape(n) if direct else np.empty(n, dtype=dt)
    if x2.shape[1] == 0:
        o1[...] = -np.inf
    elif n:
        _backends.load(b).logsumexp(x2, o1, _config.get_num_threads())
    if direct:
        return out
    res = o1.reshape(shape)
    if out is not None:
        out[...] = res
        return out
    return res.astype(a.dtype, copy=False)


# --- losses ----------------------------------------------------------------------------

class _Loss:
    """The shared plumbing of a loss call: checked options, the (rows, classes)
    logits, the loss/gradient buffers and the shaping of the result."""

    def __init__(self, logits, axis, reduction, return_grad, grad_out, backend, min_ndim=1):
        self.backend = v.backend(backend)
        self.reduction = v.reduction(reduction)
        self.return_grad = v.flag(return_grad, "return_grad")
        self.a, self.ax, self.dt, self.x2 = v.logits(logits, axis, "logits", min_ndim)
        self.n, self.c = self.x2.shape
        self.grad_out = grad_out
        self.elementwise = False  # the gradient takes the shape of the per-element losses

    def buffers(self, loss_len, target):
        """Allocate (or adopt) the loss and gradient buffers."""
        if self.grad_out is not None and not self.return_grad:
            raise ValueError("grad_out is given but return_grad is False; pass return_grad=True")
        self.grad_out = v.output(self.grad_out, self.a.shape, self.a.dtype, "grad_out",
                                 (self.a, target))
        self.loss = np.zeros(loss_len if self.reduction == "none" else 1, dtype=np.float64)
        self.g2 = None
        if self.return_grad:
            self.g2, self.direct = _rows_buffer(self.grad_out, self.a.shape, self.ax, self.dt,
                                                self.n, self.c)

    def run(self, kernel, *args, range_error=None):
        """Call the backend kernel. range_error: what to call (it raises the
        ValueError naming the target) if the compiled core finds a target out
        of range, for targets whose range check was left to it."""
        if self.x2.size:
            try:
                getattr(_backends.load(self.backend), kernel)(
                    *args, self.reduction, self.loss, self.g2, _config.get_num_threads())
            except IndexError:
                if range_error is None:
                    raise
                range_error()
                raise
        else:  # nothing to compute: empty sums (a target can still be out of range: C = 0)
            if range_error is not None:
                range_error()
            self.loss[...] = np.nan if self.reduction == "mean" else 0.0
            if self.g2 is not None:
                self.g2[...] = 0

    def result(self, none_shape):
        dtype = self.a.dtype
        with np.errstate(over="ignore"):  # a loss beyond the dtype's range is inf, as documented
            loss = (self.loss.reshape(none_shape).astype(dtype) if self.reduction == "none"
                    else dtype.type(self.loss[0]))
        if not self.return_grad:
            return loss
        if self.direct:
            grad = self.grad_out
        else:
            grad = _rows_to_array(self.g2, self.a.shape, self.ax, self.grad_out, dtype)
        if self.elementwise and grad.shape != none_shape:  # 0-d logits: a 0-d gradient
            grad = grad.reshape(none_shape)
        return loss, grad


def cross_entropy(logits, target, *, axis=-1, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, return_grad=False, grad_out=None, backend=None):
    """Softmax cross-entropy, with the semantics of torch.nn.functional.cross_entropy
    and the class dimension at `axis`.

    target: integer class indices (any integer dtype) shaped like `logits`
    without `axis`, or floating class probabilities shaped like `logits`.

    Per sample, with logp = log_softmax(logits), w = weight (or 1), eps = label_smoothing:
      indices:        l = (1 - eps) w[y] (-logp[y]) + eps/C sum_c w[c] (-logp[c]);
                      targets equal to ignore_index give 0 and a zero gradient
      probabilities:  l = -sum_c w[c] ((1 - eps) t[c] + eps/C) logp[c]   (0 log 0 := 0)
    reduction "mean": indices: sum(l) / sum of w[y] over non-ignored targets (NaN, with an
    all-zero gradient, when every target is ignored); probabilities: sum(l) / number of
    samples. "sum": sum(l). "none": l, shaped like logits without `axis`.

    return_grad=True returns (loss, grad) with grad = d(loss)/d(logits) (for "none": of
    sum(l)), same shape and dtype as logits, written into grad_out if given.
    """
    L = _Loss(logits, axis, reduction, return_grad, grad_out, backend)
    eps = v.real(label_smoothing, "label_smoothing", 0.0, 1.0)
    ignore = v.integer(ignore_index, "ignore_index")
    core_checks = L.backend == "cython"  # the C core checks the target range itself
    y, t2 = v.split_target(target, L.a, L.ax, L.dt, L.c, ignore, not core_checks)
    w = v.class_vector(weight, "weight", L.c)
    L.buffers(L.n, target)
    if y is not None:
        L.run("cross_entropy", L.x2, y, w, ignore, eps,
              range_error=lambda: v.check_index_range(y, np.shape(target), L.c, ignore))
    else:
        L.run("cross_entropy_prob", L.x2, t2, w, eps)
    return L.result(L.a.shape[:L.ax] + L.a.shape[L.ax + 1:])


def focal_loss(logits, target, *, axis=-1, gamma=2.0, alpha=None, ignore_index=-100,
               reduction="mean", return_grad=False, grad_out=None, backend=None):
    """Softmax (multi-class) focal loss of Lin et al. (RetinaNet).

    Per sample: l = -alpha_t (1 - p_t)^gamma log p_t, p_t = softmax(logits)[target],
    1 - p_t computed as -expm1(log p_t). alpha: None (no factor), a float >= 0 (every
    class) or a per-class array (alpha_t = alpha[target]). Probability targets t:
    l = -sum_c alpha_c t_c (1 - p_c)^gamma log p_c (the Keras categorical focal form).
    "mean" divides by the number of non-ignored samples (NaN if none). gamma=0 and
    alpha=None give cross_entropy. Gradients stay finite for 0 < gamma < 1.
    """
    L = _Loss(logits, axis, reduction, return_grad, grad_out, backend)
    g = v.real(gamma, "gamma", 0.0)
    ignore = v.integer(ignore_index, "ignore_index")
    a_scalar, a_vec = -1.0, None
    if alpha is not None:
        if np.ndim(alpha) == 0 and not isinstance(alpha, np.ndarray):
            a_scalar = v.real(alpha, "alpha", 0.0)
        else:
            a_vec = v.class_vector(alpha, "alpha", L.c)
    core_checks = L.backend == "cython"  # the C core checks the target range itself
    y, t2 = v.split_target(target, L.a, L.ax, L.dt, L.c, ignore, not core_checks)
    L.buffers(L.n, target)
    if y is not None:
        L.run("focal_loss", L.x2, y, g, a_scalar, a_vec, ignore,
              range_error=lambda: v.check_index_range(y, np.shape(target), L.c, ignore))
    else:
        L.run("focal_loss_prob", L.x2, t2, g, a_scalar, a_vec)
    return L.result(L.a.shape[:L.ax] + L.a.shape[L.ax + 1:])


def _elementwise(logits, target, reduction, return_grad, grad_out, backend):
    """Loss plumbing for elementwise losses: classes = the last axis (0-d -> one element).
    Returns the loss call, the caller's shape and the (rows, classes) targets."""
    a0 = v.float_array(logits, "logits")
    a = a0.reshape(1) if a0.ndim == 0 else a0
    if a0.ndim == 0 and grad_out is not None:
        grad_out = v.output(grad_out, (), a0.dtype, "grad_out", (a0, target)).reshape(1)
    L = _Loss(a, -1, reduction, return_grad, grad_out, backend)
    L.elementwise = True
    t = v._array(target, "target")
    if t.shape != a0.shape:
        raise ValueError(f"target must have the logits' shape {a0.shape}, got {t.shape}")
    t2 = v.prob_target(t.reshape(a.shape), L.a, L.ax, L.dt)
    L.buffers(L.n * L.c, target)
    return L, a0.shape, t2


def binary_cross_entropy(logits, target, *, weight=None, pos_weight=None, reduction="mean",
                         return_grad=False, grad_out=None, backend=None):
    """Binary cross-entropy with logits (torch BCEWithLogitsLoss semantics), elementwise:

      l = weight * (pos_weight * t * softplus(-x) + (1 - t) * softplus(x))

    `weight` broadcasts to the logits' shape; `pos_weight` scales only the positive
    term and broadcasts along the last axis. "mean" averages over all elements.
    """
    L, shape0, t2 = _elementwise(logits, target, reduction, return_grad, grad_out, backend)
    w = pw = None
    if weight is not None:
        w = v.broadcast_real(weight, "weight", L.a.shape,
                             f"to the logits' shape {shape0}").reshape(L.n, L.c)
    if pos_weight is not None:
        pw = np.ascontiguousarray(v.broadcast_real(pos_weight, "pos_weight", (L.c,),
                                                   f"along the last axis of length {L.c}"))
    L.run("binary_cross_entropy", L.x2, t2, w, pw)
    return L.result(shape0)


def sigmoid_focal_loss(logits, target, *, gamma=2.0, alpha=0.25, reduction="mean",
                       return_grad=False, grad_out=None, backend=None):
    """Sigmoid focal loss, torchvision.ops.sigmoid_focal_loss semantics, elementwise:

      p = sigmoid(x), ce = BCE-with-logits(x, t), p_t = p t + (1 - p)(1 - t),
      l = alpha_t ce (1 - p_t)^gamma, alpha_t = alpha t + (1 - alpha)(1 - t);
      alpha < 0 disables the alpha factor. "mean" averages over all elements.
    """
    L, shape0, t2 = _elementwise(logits, target, reduction, return_grad, grad_out, backend)
    g = v.real(gamma, "gamma", 0.0)
    a = v.real(alpha, "alpha")
    L.run("sigmoid_focal_loss", L.x2, t2, g, a)
    return L.result(shape0)
