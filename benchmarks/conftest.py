"""pytest-benchmark suites: ``pytest benchmarks/ --benchmark-only``.

BLAS is pinned to one thread here, at import time: pytest imports this conftest before any
benchmark module, and before anything imports NumPy (whose BLAS reads these variables only
when it loads), so the variables take effect.  The report header says whether they did.
Files named ``bench_*.py`` are collected as test modules (pytest only looks for ``test_*.py``).
"""
import fnmatch
import os
import sys

BLAS_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# Too late to pin if a plugin imported NumPy already, unless the caller had set the variables.
_PINNED = "numpy" not in sys.modules or all(os.environ.get(v) == "1" for v in BLAS_VARS)
os.environ.update({v: "1" for v in BLAS_VARS})

import pytest  # noqa: E402

import clumsygrad  # noqa: E402  (imports NumPy: after the variables are set)
from clumsygrad.bench.suite import native_kernels  # noqa: E402


def pytest_report_header(config):
    if not _PINNED:
        return (
            "WARNING: NumPy was imported before benchmarks/conftest.py, so BLAS threads are NOT "
            "pinned; run with " + " ".join(f"{v}=1" for v in BLAS_VARS) + " pytest ..."
        )
    return "BLAS threads pinned to 1 (" + ", ".join(f"{v}=1" for v in BLAS_VARS) + ")"


def pytest_collect_file(file_path, parent):
    # pytest itself collects a file named on the command line or matching python_files.
    already = parent.session.isinitpath(file_path) or any(
        fnmatch.fnmatch(file_path.name, p) for p in parent.config.getini("python_files")
    )
    if file_path.suffix == ".py" and fnmatch.fnmatch(file_path.name, "bench_*.py") and not already:
        return pytest.Module.from_parent(parent, path=file_path)
    return None


@pytest.fixture
def use_backend():
    """``use_backend(name)`` activates a kernel backend for this benchmark; restored afterwards."""
    previous = clumsygrad.get_backend()

    def use(name):
        if name == "cython" and native_kernels()[0] is None:
            pytest.skip(f"compiled backend unavailable: {native_kernels()[1]}")
        clumsygrad.set_backend(name)

    yield use
    clumsygrad.set_backend(previous)
