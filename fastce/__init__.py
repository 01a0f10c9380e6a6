"""fastce: fast, numerically stable softmax-family losses and their gradients on CPUs.

Functions: log_softmax, softmax, logsumexp, cross_entropy, binary_cross_entropy,
focal_loss, sigmoid_focal_loss (each with backend=None|"cython"|"numba"|"numpy"),
set_num_threads/get_num_threads, Scorer (streaming scoring), get_include/get_lib_dir
(the C API). `import fastce` loads the compiled core but never Numba.
"""
from __future__ import annotations

import os as _os

# GNU OpenMP reads its wait policy once, when libgomp loads (next import).
# Its default busy-waiting lets idle workers spin on a vCPU that, on small
# shared machines, is often the sibling of the one doing the work, and a
# worker the OS has descheduled stalls a whole call for a time slice. PASSIVE
# workers sleep instead (wake-up ~tens of us, far below the work of a call
# that uses threads: see FC_PAR_MIN_ELEMS in fastce/_core/internal.h).
# A value the user set is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    from fastce._cython import _core as _ccore  # noqa: F401  (the compiled core)
except ImportError as _exc:  # pragma: no cover - only in an unbuilt source tree
    _here = _os.path.dirname(__file__)
    if _os.path.exists(_os.path.join(_here, "_core", "api.c")) and not _os.path.exists(
            _os.path.join(_here, "libfastce.so")):
        raise ImportError(
            f"fastce's compiled core is not built in {_here}: this is the fastce source tree. "
            "If you installed fastce, this folder shadows the installed package: run Python "
            "from another directory (or `python -P`, or pytest with --import-mode=importlib). "
            "Otherwise install it first: `pip install .` (for development: `pip install -e . "
            "--no-build-isolation -Cbuild-dir=build/dev`). "
            f"Original error: {_exc}") from _exc
    raise

from fastce._api import (binary_cross_entropy, cross_entropy, focal_loss, log_softmax,
                         logsumexp, sigmoid_focal_loss, softmax)
from fastce._backends import available as available_backends
from fastce._config import get_num_threads, set_num_threads
from fastce._score import Scorer

__version__ = "0.1.0"

__all__ = ["log_softmax", "softmax", "logsumexp", "cross_entropy", "binary_cross_entropy",
           "focal_loss", "sigmoid_focal_loss", "set_num_threads", "get_num_threads",
           "available_backends", "Scorer", "get_include", "get_lib_dir", "__version__"]


def get_include() -> str:
    """The folder holding fastce.h (like numpy.get_include())."""
    installed = _os.path.join(_os.path.dirname(__file__), "include")
    if _os.path.exists(_os.path.join(installed, "fastce.h")):
        return installed
    # an editable (development) install: the header of the source checkout
    return _os.path.join(_os.path.dirname(_os.path.dirname(__file__)), "include")


def get_lib_dir() -> str:
    """The folder holding libfastce.so and fastce.pc: the one the compiled
    extension loads it from (the package folder; the build folder of an
    editable install)."""
    here = _os.path.dirname(_os.path.abspath(_ccore.__file__))  # fastce/_cython in a wheel
    for d in (_os.path.dirname(here), here):
        if _os.path.exists(_os.path.join(d, "libfastce.so")):
            return d
    return _os.path.dirname(here)
