"""Without the compiled extension the package still imports, on the python backend, with one warning."""
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.both_backends

# Runs in a fresh interpreter where importing clumsygrad._kernels.native fails, as in a
# source tree that was never built.
PROBE = """
import json, sys, warnings
sys.modules["clumsygrad._kernels.native"] = None
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import clumsygrad
report = {"backend": clumsygrad.get_backend(),
          "warnings": [f"{w.category.__name__}: {w.message}" for w in caught]}
try:
    clumsygrad.set_backend("cython")
except Exception as exc:
    report["set_cython"] = f"{type(exc).__name__}: {exc}"
import numpy as np
from clumsygrad.tensor import Tensor, TensorType
from clumsygrad.math import sum
x = Tensor([1.0, 2.0], TensorType.PARAMETER)
sum(x * x).backward()
report["grad"] = x.grad.tolist()
print(json.dumps(report))
"""


def run_probe(env_backend=None):
    env = dict(os.environ)
    env.pop("CLUMSYGRAD_BACKEND", None)
    if env_backend is not None:
        env["CLUMSYGRAD_BACKEND"] = env_backend
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("env_backend", [None, "cython"])
def test_missing_extension_falls_back_to_python_with_one_warning(env_backend):
    report = run_probe(env_backend)
    assert report["backend"] == "python"
    assert len(report["warnings"]) == 1
    assert report["warnings"][0].startswith("RuntimeWarning")
    assert "Falling back to the 'python' backend" in report["warnings"][0]
    assert report["grad"] == [2.0, 4.0]


def test_asking_for_cython_without_the_extension_says_how_to_build_it():
    message = run_probe()["set_cython"]
    assert message.startswith("ImportError")
    assert "pip install ." in message and "C compiler" in message


def test_python_backend_requested_explicitly_does_not_warn():
    report = run_probe("python")
    assert report["warnings"] == []
    assert report["backend"] == "python"
