"""The pure graph node in a default run.

``Tensor``'s node base is chosen once, at import (``CLUMSYGRAD_BACKEND``), so a default run
tests only the compiled node.  This test runs the node and version-check tests again in a child
process on the pure node (``CLUMSYGRAD_BACKEND=python``): breaking the pure node fails here.
The tests marked slow (million-node chains) are left out (minutes on the pure node; `.ci/run`'s second pass has them).
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
NODE_TESTS = [
    "test_graph_core.py",
    "test_pure_twin.py",
    "test_backward.py",
    "test_tensor.py",
    "reliability/test_reliability_defects.py",
    "reliability/test_defects_1_1.py",
]


@pytest.mark.both_backends
def test_node_and_version_tests_pass_on_the_pure_node():
    env = dict(os.environ, CLUMSYGRAD_BACKEND="python")
    which = subprocess.run(
        [sys.executable, "-c", "import clumsygrad._backend as b; print(b.graph.__name__)"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert which.returncode == 0, which.stderr
    assert which.stdout.strip() == "clumsygrad._graph.pure"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "-m", "not slow",
         *NODE_TESTS],
        cwd=TESTS, env=env, capture_output=True, text=True, timeout=900,
    )
    tail = "\n".join(done.stdout.splitlines()[-30:])
    assert done.returncode == 0, f"the pure-node run failed:\n{tail}\n{done.stderr[-2000:]}"
    assert " passed" in tail and "failed" not in tail
