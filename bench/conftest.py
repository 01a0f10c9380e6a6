"""Options of the benchmark suite: which shapes to run (``--bench-shapes``)."""
import pytest


def pytest_addoption(parser):
    parser.addoption("--bench-shapes", choices=("quick", "default", "full"), default="default",
                     help="quick: 32x10 and 4096x1000 float32; default: all but 2048x32000 "
                          "(a few minutes on 2 cores); full: the five default shapes of fastce bench")


def pytest_collection_modifyitems(config, items):
    """Deselect the cases whose shape the chosen --bench-shapes leaves out."""
    from fastce import _bench

    keep = {"quick": _bench.QUICK_SHAPES, "full": _bench.SHAPES,
            "default": tuple(s for s in _bench.SHAPES if s[:2] != (2048, 32000))}
    keep = {f"{n}x{c} {dt}" for n, c, dt in keep[config.getoption("--bench-shapes")]}
    selected, deselected = [], []
    for item in items:
        case = getattr(item, "callspec", None) and item.callspec.params.get("case")
        shape = case and f"{case.shape} {case.dtype}"
        (selected if shape is None or shape in keep else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected
