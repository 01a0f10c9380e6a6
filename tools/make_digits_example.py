"""Build fastce/data/digits_logits.npz, the built-in example of ``fastce score``.

A multinomial logistic regression (standardised pixels, L-BFGS) is trained on
half of scikit-learn's bundled handwritten digits (``load_digits``: 1797 8x8
images, 10 classes, no download) and its ``decision_function`` on the other,
held-out half is stored as logits; ``log_softmax(logits)`` equals the model's
``predict_log_proba``. Everything is seeded, so running this again gives the
same file. Usage::

    python tools/make_digits_example.py [OUTPUT.npz]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

SEED = 0
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "fastce" / "data" / "digits_logits.npz"


def build():
    """Train the classifier and return (held-out logits float32, targets int64, description)."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.5, random_state=SEED, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=2000))
    model.fit(X_train, y_train)
    logits = model.decision_function(X_test).astype(np.float32)
    desc = (f"sklearn load_digits, held-out half ({len(y_test)} of {len(y)} images, "
            f"stratified, random_state={SEED}); StandardScaler + multinomial "
            f"LogisticRegression(C=0.05) decision_function as logits")
    return logits, y_test.astype(np.int64), desc


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else DEFAULT_OUT
    logits, targets, desc = build()
    # Uncompressed on purpose: `fastce score` memory-maps the members of such files.
    np.savez(out, logits=logits, targets=targets, description=np.array(desc))
    acc = float(np.mean(logits.argmax(1) == targets))
    print(f"wrote {out}: logits {logits.shape} float32, held-out accuracy {acc:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
