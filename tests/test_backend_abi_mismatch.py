"""Compiled modules that exist but fail to load (not only ImportError) give the one warning and the python backend.

An extension built against NumPy 1.x headers and imported under NumPy 2 raises
``ValueError: numpy.dtype size changed, may indicate binary incompatibility`` from its module
init; a damaged install can raise other errors. ``import clumsygrad`` must survive all of them.
"""
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.both_backends

# A meta-path finder that makes loading one compiled module raise what the test names.
PROBE = """
import importlib.abc, json, sys, warnings
MODULE, ERROR, MESSAGE = sys.argv[1], sys.argv[2], sys.argv[3]

class Broken(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name == MODULE:
            return importlib.util.spec_from_loader(name, self)
        return None
    def create_module(self, spec):
        raise getattr(__builtins__, ERROR)(MESSAGE)
    def exec_module(self, module):
        pass

import importlib.util
sys.meta_path.insert(0, Broken())
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import clumsygrad
report = {"backend": clumsygrad.get_backend(),
          "warnings": [f"{w.category.__name__}: {w.message}" for w in caught]}
try:
    clumsygrad.set_backend("cython")
except ImportError as exc:
    report["set_cython"] = str(exc)
from clumsygrad.tensor import Tensor, TensorType
from clumsygrad.math import sum
x = Tensor([1.0, 3.0], TensorType.PARAMETER)
sum(x * x).backward()
report["grad"] = x.grad.tolist()
print(json.dumps(report))
"""

ABI_MESSAGE = (
    "numpy.dtype size changed, may indicate binary incompatibility. "
    "Expected 96 from C header, got 88 from PyObject"
)


def run_probe(module, error, message):
    env = dict(os.environ)
    env.pop("CLUMSYGRAD_BACKEND", None)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, module, error, message], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "module, error, message",
    [
        ("clumsygrad._kernels._reduce", "ValueError", ABI_MESSAGE),
        ("clumsygrad._kernels._matmul", "RuntimeError", "module compiled against ABI version 0x2000000"),
        ("clumsygrad._graph.native", "OSError", "undefined symbol: PyUnicode_AsUTF8"),
        ("clumsygrad._kernels._loss", "ImportError", "DLL load failed"),
    ],
)
def test_a_compiled_module_that_fails_to_load_gives_one_warning_and_the_python_backend(module, error, message):
    report = run_probe(module, error, message)
    assert report["backend"] == "python"
    assert len(report["warnings"]) == 1, report["warnings"]
    warning = report["warnings"][0]
    assert warning.startswith("RuntimeWarning: the compiled kernels (clumsygrad._kernels.native) are not available")
    assert f"{error}: {message}" in warning  # the user sees why
    assert "Falling back to the 'python' backend" in warning
    assert f"{error}: {message}" in report["set_cython"]
    assert report["grad"] == [2.0, 6.0]
