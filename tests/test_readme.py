"""The README's Python examples run as written, on both backends."""
import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples():
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_readme_example_runs(index, backend, capsys):
    # The README's own asserts are the checks: each example has some, and they run (not -O).
    assert re.search(r"^assert ", EXAMPLES[index], flags=re.M), f"README example {index} checks nothing"
    assert __debug__, "assert statements are disabled (python -O): the examples would check nothing"
    namespace = {}
    exec(compile(EXAMPLES[index], f"README.md example {index}", "exec"), namespace)
    # The example may switch backends itself; the fixture restores the parametrised one.
    from clumsygrad.tensor import Tensor

    tensors = [v for v in namespace.values() if isinstance(v, Tensor)]
    assert tensors, "the example made no tensor"
    assert all(np.all(np.isfinite(t.grad)) for t in tensors if t.grad is not None)
