"""Fuzzing of the C API: tests/fuzz/fuzz_capi.c under libFuzzer + ASan + UBSan.

The target is compiled with clang together with the core's sources
(fastce/_core/*.c), so both the harness and the library are instrumented.
clang was installed here with `apt-get update && apt-get install -y clang`
(Debian clang 14); without it these tests skip.
test_regressions replays the inputs under tests/fuzz/corpus/ (each one a
finding, kept so that it stays fixed); test_fuzz runs the fuzzer for a bounded
time from those seeds. See tests/fuzz/README.md for longer runs.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parent
REPO = FUZZ.parent.parent
CORPUS = FUZZ / "corpus"
CLANG = shutil.which("clang")
FUZZ_SECONDS = 20
# The library returns FASTCE_ERR_ALLOC when malloc fails: let malloc fail instead of aborting.
ENV = {"ASAN_OPTIONS": "allocator_may_return_null=1", "UBSAN_OPTIONS": "print_stacktrace=1"}

pytestmark = pytest.mark.skipif(CLANG is None, reason="clang not on PATH (apt-get install clang)")


SANITIZE = ["-g", "-O1", "-fno-sanitize-recover=all", "-Wno-unknown-pragmas",
            f"-I{REPO / 'include'}"]


def compile_core(out_dir):
    """The core's object files, instrumented for coverage (fuzzer-no-link), ASan and UBSan."""
    objects = []
    for src in sorted((REPO / "fastce" / "_core").glob("*.c")):
        obj = out_dir / f"{src.stem}.o"
        cmd = [CLANG, *SANITIZE, "-fsanitize=fuzzer-no-link,address,undefined", "-c", str(src),
               "-o", str(obj)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode and "unsupported" in proc.stderr:
            pytest.skip(f"this clang cannot build libFuzzer targets: {proc.stderr[-300:]}")
        assert proc.returncode == 0, proc.stderr
        objects.append(str(obj))
    return objects


@pytest.fixture(scope="module")
def targets(tmp_path_factory):
    """The fuzz target, built once for the module."""
    if not (REPO / "fastce" / "_core" / "api.c").is_file():
        pytest.skip("not a source checkout (no fastce/_core)")
    out = tmp_path_factory.mktemp("fuzz")
    objects = compile_core(out)
    exe = out / "fuzz_capi"
    cmd = [CLANG, *SANITIZE, "-fsanitize=fuzzer,address,undefined",
           str(FUZZ / "fuzz_capi.c"), *objects, "-lm", "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return exe


@pytest.mark.parametrize("seed", sorted(p.name for p in CORPUS.iterdir()))
def test_regressions(targets, seed):
    """Each stored input runs clean (no sanitizer report, no contract violation)."""
    proc = subprocess.run([str(targets), str(CORPUS / seed)], env=ENV,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-4000:]


@pytest.mark.slow
def test_fuzz(targets, tmp_path):
    """A bounded fuzzing run from the stored inputs finds nothing new."""
    corpus = tmp_path / "corpus"  # new inputs go here, never into the repository
    corpus.mkdir()
    cmd = [str(targets), f"-max_total_time={FUZZ_SECONDS}", "-max_len=1024",
           "-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1",
           f"-artifact_prefix={tmp_path}/", str(corpus), str(CORPUS)]
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True,
                          timeout=FUZZ_SECONDS + 120)
    assert proc.returncode == 0, f"finding (its input in base64 at the end):\n{proc.stderr[-6000:]}"
    runs = int(re.search(r"stat::number_of_executed_units:\s*(\d+)", proc.stderr).group(1))
    assert runs > 1000, proc.stderr[-2000:]
