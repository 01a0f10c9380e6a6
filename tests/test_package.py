"""The package as a user meets it: import cost and side effects, the unbuilt-tree
message, version and the paths of the C API."""
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import fastce

SRC = Path(__file__).resolve().parents[1] / "fastce"


def _run(code, **kw):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120, **kw)


def test_import_does_not_load_numba():
    r = _run("""
        import sys, fastce
        assert 'numba' not in sys.modules, 'import fastce loaded numba'
        print(sorted(fastce.__all__)[:3])
        """, cwd="/")
    assert r.returncode == 0, r.stderr


def test_openmp_wait_policy_default_and_user_choice_kept():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    r = _run("import os, fastce; print(os.environ['OMP_WAIT_POLICY'])", env=env, cwd="/")
    assert r.stdout.strip() == "PASSIVE", r.stderr
    r = _run("import os, fastce; print(os.environ['OMP_WAIT_POLICY'])",
             env={**env, "OMP_WAIT_POLICY": "ACTIVE"}, cwd="/")
    assert r.stdout.strip() == "ACTIVE", r.stderr


def test_version_matches_the_c_library():
    from fastce._cython import _core

    major, minor, patch = (int(p) for p in fastce.__version__.split("."))
    assert _core.version_number() == major * 10000 + minor * 100 + patch


def test_c_api_paths():
    inc = Path(fastce.get_include())
    header = (inc / "fastce.h").read_text()
    assert "fastce_cross_entropy_f32" in header
    lib = Path(fastce.get_lib_dir())
    assert (lib / "libfastce.so").is_file() and (lib / "fastce.pc").is_file()


def test_unbuilt_source_tree_fails_with_instructions(tmp_path):
    """Importing the fastce source folder (no compiled core next to it) says what to do."""
    fake = tmp_path / "fastce"
    shutil.copytree(SRC, fake, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    r = subprocess.run([sys.executable, "-S", "-c", "import fastce"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120,
                       env={"PYTHONPATH": str(tmp_path)})
    assert r.returncode != 0
    assert "compiled core is not built" in r.stderr
    assert "pip install" in r.stderr


@pytest.mark.parametrize("backend", ["nope", 3, "CYTHON"])
def test_unknown_backend_is_rejected(backend):
    import numpy as np

    with pytest.raises(ValueError, match="backend"):
        fastce.softmax(np.zeros((2, 3)), backend=backend)


def test_available_backends_lists_the_compiled_core_first():
    names = fastce.available_backends()
    assert names[0] == "cython" and "numpy" in names
