"""Types users can check: ``mypy --strict`` on the examples and on every Python snippet of the
README and the documentation, and the types it infers for tensor expressions.

mypy runs once, in a subprocess, against the INSTALLED package (its py.typed marker and stubs),
from a temporary folder holding copies of the snippets.
"""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.both_backends  # static analysis: the backend plays no part

pytest.importorskip("mypy", reason="mypy is in the test extra: pip install '.[test]'")

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^```python\n(.*?)^```", flags=re.S | re.M)

CONFIG = """\
[mypy]
strict = True
warn_unused_ignores = True
# scikit-learn (examples/digits.py loads its data set) ships no type information.
[mypy-sklearn.*]
ignore_missing_imports = True
"""

REVEAL = '''\
import numpy as np
import clumsygrad as cg
from clumsygrad.tensor import Tensor, TensorType

t = Tensor([[1.0, 2.0]], TensorType.PARAMETER)
w = Tensor(np.ones((2, 3)))
reveal_type(t + 1)
reveal_type(1 + t)
reveal_type(t - t)
reveal_type(2.0 - t)
reveal_type(t * np.float32(2))
reveal_type(t / 2)
reveal_type(1 / t)
reveal_type(-t)
reveal_type(t ** 2)
reveal_type(t @ w)
reveal_type(t[0])
reveal_type(t.T())
reveal_type(t.reshape((2, 1)))
reveal_type(cg.math.sum(t))
reveal_type(cg.cross_entropy(t @ w, [1]))
reveal_type(cg.max(t, axis=0))
reveal_type(cg.exp(t))
reveal_type(cg.relu(t))
reveal_type(cg.concatenate([t, t]))
reveal_type(cg.split(t, 2, axis=1))
reveal_type(t.grad)
model = cg.nn.Sequential(cg.nn.Linear(2, 3), cg.nn.ReLU())
reveal_type(model(t))
reveal_type(t.sum())
'''
EXPECTED_REVEALED = (["clumsygrad.tensor.Tensor"] * 19 + ["list[clumsygrad.tensor.Tensor]"]
                     + ["numpy.ndarray[...] | None"] + ["clumsygrad.tensor.Tensor"] * 2)

NOT_A_TENSOR_OPERAND = '''\
from clumsygrad.tensor import Tensor

t = Tensor([1.0])
t + "1"
t @ 2.0
'''


def _registry_methods():
    """The Tensor methods bound from the op registry at import (not written in the class)."""
    from clumsygrad._registry import OPS
    from clumsygrad.tensor import Tensor

    return sorted({name for op in OPS.values() for name in op.methods
                   if op.function is not None and Tensor.__dict__.get(name) is op.function})


def snippets():
    """(file name, source) of every snippet: the README's blocks one by one, a docs page's together."""
    out = [(f"readme_{i}.py", block) for i, block in enumerate(BLOCK.findall((ROOT / "README.md").read_text()))]
    for page in sorted((ROOT / "docs").glob("*.md")):
        blocks = BLOCK.findall(page.read_text())
        if blocks:
            out.append((f"docs_{page.stem.replace('-', '_')}.py", "\n".join(blocks)))
    return out


def _reveal_source():
    methods = _registry_methods()
    return REVEAL + "".join(f"reveal_type(t.{name}())\n" for name in methods), methods


@pytest.fixture(scope="module")
def mypy_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("typing")
    (folder / "mypy.ini").write_text(CONFIG)
    checked = []
    for name, source in snippets():
        (folder / name).write_text(source)
        checked.append(name)
    for example in sorted((ROOT / "examples").glob("*.py")):
        shutil.copy(example, folder / f"example_{example.name}")
        checked.append(f"example_{example.name}")
    reveal, methods = _reveal_source()
    (folder / "reveal.py").write_text(reveal)
    (folder / "bad_operands.py").write_text(NOT_A_TENSOR_OPERAND)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--cache-dir", str(folder / ".cache"),
         "--no-error-summary", "--show-error-codes", *checked, "reveal.py", "bad_operands.py"],
        cwd=folder, capture_output=True, text=True, timeout=600,
    )
    lines = (result.stdout + result.stderr).splitlines()
    return {"checked": checked, "lines": lines, "methods": methods}


def _messages(run, file_name):
    return [line for line in run["lines"] if line.startswith(f"{file_name}:")]


def test_there_are_snippets_and_examples_to_check(mypy_run):
    names = mypy_run["checked"]
    assert any(n.startswith("readme_") for n in names) and any(n.startswith("docs_") for n in names)
    assert any(n.startswith("example_") for n in names)


def test_mypy_strict_passes_on_the_examples_and_the_snippets(mypy_run):
    problems = [line for name in mypy_run["checked"] for line in _messages(mypy_run, name)]
    assert not problems, "\n".join(problems)


def test_tensor_expressions_are_typed_as_tensor(mypy_run):
    revealed = [re.search(r'Revealed type is "(.*)"', line).group(1)
                for line in _messages(mypy_run, "reveal.py") if "Revealed type is" in line]
    # How mypy spells an ndarray's parameters depends on the NumPy version.
    revealed = [re.sub(r"^numpy\.ndarray\[.*\] \| None$", "numpy.ndarray[...] | None", r) for r in revealed]
    expected = EXPECTED_REVEALED + ["clumsygrad.tensor.Tensor"] * len(mypy_run["methods"])
    assert revealed == expected, "\n".join(_messages(mypy_run, "reveal.py"))
    errors = [line for line in _messages(mypy_run, "reveal.py") if ": error:" in line]
    assert not errors, errors


def test_operands_that_are_not_numbers_are_type_errors(mypy_run):
    errors = [line for line in _messages(mypy_run, "bad_operands.py") if ": error:" in line]
    assert len(errors) == 2 and all("[operator]" in e or "[arg-type]" in e for e in errors), errors


def test_every_registry_method_is_declared_for_type_checkers():
    # tensor.py declares them under TYPE_CHECKING (written by scripts/gen_stubs.py).
    import ast

    import clumsygrad.tensor

    tree = ast.parse(Path(clumsygrad.tensor.__file__).read_text())
    (tensor_class,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Tensor"]
    declared = {
        f.name
        for block in tensor_class.body
        if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
        for f in block.body if isinstance(f, ast.FunctionDef)
    }
    assert declared == set(_registry_methods())


def test_every_op_of_the_package_is_re_exported_for_type_checkers():
    import ast

    import clumsygrad

    tree = ast.parse(Path(clumsygrad.__file__).read_text())
    declared = {
        alias.asname
        for block in tree.body
        if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
        for node in block.body if isinstance(node, ast.ImportFrom)
        for alias in node.names if alias.asname == alias.name
    }
    assert declared == set(clumsygrad._public_ops())


def test_the_op_modules_stubs_are_current():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_stubs", ROOT / "scripts" / "gen_stubs.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    import clumsygrad

    package = Path(clumsygrad.__file__).parent
    for module_name in generator.op_modules():
        stub = package / f"{module_name}.pyi"
        assert stub.is_file(), f"{stub} is not installed"
        assert stub.read_text() == generator.stub_text(module_name), (
            f"{stub.name} is out of date: python scripts/gen_stubs.py, then reinstall")
    assert generator.registry_methods() and set(generator.registry_methods()) == set(_registry_methods())
