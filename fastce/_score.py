"""Streaming scoring: the summary of a loss over data that arrives in batches.

``Scorer`` computes the per-sample losses of each batch with the public API
(``reduction="none"``) and folds them into a summary (rows, ignored rows, total
and mean loss, perplexity, top-1 accuracy, the classes with the highest mean
loss, the k hardest samples). The summary depends only on the data, never on
how it was cut into batches: float sums are taken over fixed blocks of
``BLOCK`` consecutive samples (global positions, whatever the batch
boundaries; samples of a block that straddles batches are carried over), each
block summed sequentially (``np.bincount``) and the block sums combined with
``math.fsum`` or, for per-class vectors, added in block order; counts are
integers. So feeding a file in chunks of any size gives a bit-identical
summary to one call on the whole array.
"""
from __future__ import annotations

import math

import numpy as np

from fastce import _api
from fastce import _validate as v

__all__ = ["Scorer", "LOSSES", "OPTIONS", "BLOCK"]

LOSSES = ("cross_entropy", "focal", "binary", "sigmoid_focal")
BLOCK = 1024  # samples per summation block (fixes the float summation order)

# The options each loss accepts (names of the fastce function's keyword arguments).
OPTIONS = {
    "cross_entropy": ("axis", "weight", "ignore_index", "label_smoothing"),
    "focal": ("axis", "gamma", "alpha", "ignore_index"),
    "binary": ("weight", "pos_weight"),
    "sigmoid_focal": ("gamma", "alpha"),
}
_FUNCS = {"cross_entropy": _api.cross_entropy, "focal": _api.focal_loss,
          "binary": _api.binary_cross_entropy, "sigmoid_focal": _api.sigmoid_focal_loss}


def _seq_block_sums(values, block_of, nbins):
    """Sequential (row-order) float64 sums of `values` per bin: a fixed summation order."""
    return np.bincount(block_of, weights=values, minlength=nbins)


def _exp(x):
    return math.inf if x > 709.0 else math.exp(x)  # math.exp raises on overflow


class Scorer:
    """Accumulate a loss summary over batches of logits and targets.

    Parameters
    ----------
    loss : {"cross_entropy", "focal", "binary", "sigmoid_focal"}
        ``fastce.cross_entropy``, ``focal_loss``, ``binary_cross_entropy`` or
        ``sigmoid_focal_loss``.
    top_k : int, default 10
        How many hardest samples (largest per-sample loss) to report.
    worst_classes : int, default 5
        How many classes with the highest mean loss to report.
    backend : None or str
        Passed to the fastce function.
    **options
        The loss's keyword arguments: ``axis``, ``weight``, ``ignore_index``,
        ``label_smoothing`` (cross_entropy); ``axis``, ``gamma``, ``alpha``,
        ``ignore_index`` (focal); ``weight`` (per-class, broadcast along the
        last axis), ``pos_weight`` (binary); ``gamma``, ``alpha``
        (sigmoid_focal).

    Notes
    -----
    Batches are cut along the first axis; for the softmax losses the class axis
    (``axis``) must not be the first axis of a batch with two or more
    dimensions. A *sample* is one position of the logits without the class
    axis (a row of 2-D logits); samples are numbered in C order. For the
    elementwise losses (binary, sigmoid_focal) the classes are the last axis,
    the per-sample loss is the mean over the row's elements, so ``mean_loss``
    equals the fastce function's ``reduction="mean"``, and accuracy counts
    elements with ``(logit > 0) == (target >= 0.5)``.

    ``mean_loss`` follows the fastce function's ``reduction="mean"``:
    cross-entropy with index targets divides by the sum of ``weight[target]``
    over non-ignored samples, focal loss by their number.

    Examples
    --------
    >>> import numpy as np, fastce
    >>> s = fastce.Scorer("cross_entropy")
    >>> _ = s.update(np.zeros((3, 4), np.float32), np.array([0, 1, 2]))
    >>> round(s.result()["mean_loss"], 6) == round(float(np.log(4)), 6)
    True
    """

    def __init__(self, loss="cross_entropy", *, top_k=10, worst_classes=5, backend=None,
                 **options):
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        unknown = sorted(set(options) - set(OPTIONS[loss]))
        if unknown:
            raise TypeError(f"loss {loss!r} takes the options {OPTIONS[loss]}, "
                            f"got unexpected {unknown}")
        self.loss = loss
        self.top_k = max(0, v.integer(top_k, "top_k"))
        self.worst_classes = max(0, v.integer(worst_classes, "worst_classes"))
        self.backend = backend
        self.options = dict(options)
        self._elementwise = loss in ("binary", "sigmoid_focal")
        self.ignore_index = v.integer(options.get("ignore_index", -100), "ignore_index")
        self._weight = options.get("weight") if loss == "cross_entropy" else None
        if self._weight is not None:
            self._weight = np.asarray(self._weight, dtype=np.float64)
        self.classes = None
        self.samples = 0       # samples seen (numbering of the per-sample losses)
        self.rows = 0          # first-axis rows seen (for messages)
        self._valid = 0        # non-ignored samples
        self._correct = 0      # correct top-1 (elements for the elementwise losses)
        self._judged = 0       # samples (elements) accuracy is judged on
        self._prob_targets = None
        self._block_loss, self._block_den = [], []
        self._class_sum = None
        self._class_count = None
        self._carry = None     # samples of the current, incomplete block
        self._top = (np.empty(0), np.empty(0, np.int64))

    # -- per batch ---------------------------------------------------------------------

    def _axis(self, ndim):
        if self._elementwise:
            return ndim - 1
        ax = v.axis(self.options.get("axis", -1), ndim)
        if ax == 0 and ndim > 1:
            raise ValueError("the class axis must not be the first axis: batches are cut "
                             "along it (move the class axis, e.g. axis=1)")
        return ax

    def _check_batch(self, logits, target):
        a = v.float_array(logits, "logits")
        if a.ndim < 2:
            raise ValueError(f"logits must have at least two dimensions (rows, classes), "
                             f"got shape {a.shape}")
        ax = self._axis(a.ndim)
        c = a.shape[ax]
        if self.classes is None:
            self.classes = c
            self._class_sum = np.zeros(c)
            self._class_count = np.zeros(c, np.int64)
        elif c != self.classes:
            raise ValueError(f"logits have {c} classes (axis {ax}) but earlier batches had "
                             f"{self.classes}")
        t = v._array(target, "target")
        if self._elementwise and t.dtype.kind in "biu":  # 0/1 labels stored as integers
            t = t.astype(v.compute_dtype(a))
        prob = self._elementwise or t.dtype.kind == "f"
        if self._prob_targets is None:
            self._prob_targets = prob
        elif prob != self._prob_targets:
            raise TypeError("targets switched between class indices and probabilities")
        if not self._elementwise and t.dtype.kind in "iu":
            want = a.shape[:ax] + a.shape[ax + 1:]
            if t.shape != want:
                raise ValueError(f"targets must have shape {want} (the logits' shape without "
                                 f"the class axis), got {t.shape}")
            y = np.asarray(t, dtype=np.int64)
            bad = (y != self.ignore_index) & ((y < 0) | (y >= c))
            if bad.any():
                pos = np.unravel_index(int(np.flatnonzero(bad)[0]), y.shape)
                row = self.rows + int(pos[0]) if pos else self.rows
                where = f"row {row}" + (f" (position {(row,) + tuple(map(int, pos[1:]))})"
                                        if len(pos) > 1 else "")
                raise ValueError(f"target {int(y[pos])} at {where} is out of range: class "
                                 f"indices must be in [0, {c}) or equal ignore_index="
                                 f"{self.ignore_index}")
        elif t.shape != a.shape:
            raise ValueError(f"targets must have shape {a.shape} (probabilities/labels like "
                             f"the logits), got {t.shape}")
        return a, ax, t

    def _per_sample(self, a, ax, t):
        """Per-sample losses, shaped like the logits without the class axis (elementwise
        losses: the mean over the last axis)."""
        loss = np.asarray(_FUNCS[self.loss](a, t, reduction="none", backend=self.backend,
                                            **self.options), np.float64)
        if self._elementwise:
            return loss, loss.sum(axis=-1) / a.shape[-1]
        return None, loss

    def update(self, logits, target):
        """Add a batch; return its per-sample losses (float64).

        Parameters
        ----------
        logits : ndarray, float16/32/64, the batch (cut along the first axis).
        target : ndarray, class indices (integer, logits' shape without the class
            axis) or probabilities / binary labels (floating, logits' shape).

        Returns
        -------
        ndarray of float64, the batch's per-sample losses, shaped like the logits
        without the class axis (elementwise losses: without the last axis).

        Raises
        ------
        ValueError, TypeError
            Bad shapes or dtypes; a class index out of range names its row
            (counted from the first row ever passed to this Scorer).
        """
        a, ax, t = self._check_batch(logits, target)
        elem, per = self._per_sample(a, ax, t)
        flat = per.reshape(-1)
        n = flat.size
        if self._elementwise:
            c = a.shape[-1]
            pred = a.reshape(-1, c) > 0
            self._correct += int(np.count_nonzero(pred == (t.reshape(-1, c) >= 0.5)))
            self._judged += pred.size
            valid = np.ones(n, bool)
            cls = np.full(n, -1, np.int64)
            den = np.full(n, float(c))
            cols = elem.reshape(-1, c)
            loss_for_sum = cols.sum(axis=1)
        else:
            am = np.moveaxis(a, ax, -1).reshape(-1, self.classes)
            if self._prob_targets:
                cls = np.moveaxis(t, ax, -1).reshape(-1, self.classes).argmax(axis=1)
                valid = np.ones(n, bool)
            else:
                cls = np.asarray(t, np.int64).reshape(-1)
                valid = cls != self.ignore_index
            cls = np.where(valid, cls, -1)
            self._correct += int(np.count_nonzero(am.argmax(axis=1)[valid] == cls[valid]))
            self._judged += int(np.count_nonzero(valid))
            if self._weight is not None and not self._prob_targets:
                den = np.where(valid, self._weight[np.maximum(cls, 0)], 0.0)
            else:
                den = valid.astype(np.float64)
            cols = None
            loss_for_sum = flat
        self._valid += int(np.count_nonzero(valid))
        if cols is None:
            self._class_count += np.bincount(cls[valid], minlength=self.classes)
        else:
            self._class_count += len(cols)
        self._fold(loss_for_sum, den, cls, cols)
        self._update_top(np.where(valid, flat, -np.inf))
        self.samples += n
        self.rows += a.shape[0]
        return per

    def _fold(self, loss, den, cls, cols):
        """Append samples; sum every completed block in a fixed order."""
        new = {"loss": loss, "den": den, "cls": cls, "cols": cols}
        if self._carry is not None:
            new = {k: (None if new[k] is None else np.concatenate([self._carry[k], new[k]]))
                   for k in new}
        nfull = len(new["loss"]) // BLOCK * BLOCK
        if nfull:
            self._sum_blocks({k: (None if a is None else a[:nfull]) for k, a in new.items()},
                             self._class_sum, self._block_loss, self._block_den)
        self._carry = {k: (None if a is None else a[nfull:].copy()) for k, a in new.items()}

    def _sum_blocks(self, d, class_sum, block_loss, block_den):
        """Sums of consecutive blocks of BLOCK samples (the last one may be shorter)."""
        n = len(d["loss"])
        nb = -(-n // BLOCK)
        blk = np.arange(n) // BLOCK
        block_loss.extend(_seq_block_sums(d["loss"], blk, nb).tolist())
        block_den.extend(_seq_block_sums(d["den"], blk, nb).tolist())
        c = self.classes
        if d["cols"] is not None:
            for b in range(nb):
                class_sum += np.ascontiguousarray(d["cols"][b * BLOCK:(b + 1) * BLOCK]).sum(0)
        else:
            ok = d["cls"] >= 0
            per = _seq_block_sums(d["loss"][ok], blk[ok] * c + d["cls"][ok], nb * c)
            for row in per.reshape(nb, c):
                class_sum += row

    def _update_top(self, flat):
        k = self.top_k
        if not k:
            return
        idx = np.arange(self.samples, self.samples + flat.size)
        if flat.size > k:
            part = np.argpartition(-flat, k - 1)[:k]
            kth = flat[part].min()
            keep = flat >= kth  # keep ties so the lowest indices can win
            flat, idx = flat[keep], idx[keep]
        vals = np.concatenate([self._top[0], flat])
        ids = np.concatenate([self._top[1], idx])
        order = np.lexsort((ids, -vals))[:k]
        self._top = (vals[order], ids[order])

    # -- the summary ---------------------------------------------------------------------

    def result(self):
        """The summary so far, a JSON-ready dict.

        Returns
        -------
        dict with keys ``loss``, ``options``, ``rows`` (samples), ``classes``,
        ``ignored_rows``, ``total_loss``, ``mean_loss``, ``perplexity`` (cross-entropy
        only, else None), ``accuracy`` (top-1; None without judged samples),
        ``worst_classes`` (list of ``{"class", "mean_loss", "count"}``, highest mean
        loss first) and ``hardest`` (list of ``{"index", "loss"}``, the ``top_k``
        largest per-sample losses, ties by lowest index). Calling it does not
        change the state; more batches may follow.
        """
        block_loss, block_den = list(self._block_loss), list(self._block_den)
        class_sum = None if self._class_sum is None else self._class_sum.copy()
        if self._carry is not None and len(self._carry["loss"]):
            self._sum_blocks(self._carry, class_sum, block_loss, block_den)
        total = math.fsum(block_loss)
        den = math.fsum(block_den)
        mean = total / den if den > 0 else math.nan
        worst = []
        if class_sum is not None:
            cnt = self._class_count
            seen = np.flatnonzero(cnt > 0)
            means = class_sum[seen] / cnt[seen]
            order = np.lexsort((seen, -means))[:self.worst_classes]
            worst = [{"class": int(seen[i]), "mean_loss": float(means[i]),
                      "count": int(cnt[seen[i]])} for i in order]
        keep = self._top[0] > -np.inf  # ignored samples never count as hard
        hardest = [{"index": int(i), "loss": float(x)}
                   for x, i in zip(self._top[0][keep], self._top[1][keep])]
        opts = {k: (val.tolist() if isinstance(val, np.ndarray) else val)
                for k, val in self.options.items()}
        return {
            "loss": self.loss,
            "options": opts,
            "rows": self.samples,
            "classes": self.classes,
            "ignored_rows": self.samples - self._valid,
            "total_loss": total,
            "mean_loss": mean,
            "perplexity": _exp(mean) if self.loss == "cross_entropy" else None,
            "accuracy": self._correct / self._judged if self._judged else None,
            "worst_classes": worst,
            "hardest": hardest,
        }

    def target_logprobs(self, logits, target):
        """log-probability of the target under the model, per sample.

        Softmax losses: ``log_softmax(logits)[target]`` (NaN for ignored samples;
        probability targets: ``sum_c t_c log_softmax_c``), computed as minus the
        unweighted, unsmoothed cross-entropy. Elementwise losses: the Bernoulli
        log-likelihood ``t log sigmoid(x) + (1 - t) log sigmoid(-x)`` per element,
        minus ``binary_cross_entropy``. float64.
        """
        if self._elementwise:
            return -np.asarray(_api.binary_cross_entropy(logits, target, reduction="none",
                                                         backend=self.backend), np.float64)
        ax = self.options.get("axis", -1)
        ign = self.ignore_index
        lp = -np.asarray(_api.cross_entropy(logits, target, axis=ax, ignore_index=ign,
                                            reduction="none", backend=self.backend), np.float64)
        t = np.asarray(target)
        if t.dtype.kind in "iu":
            lp[t == ign] = np.nan
        return lp
