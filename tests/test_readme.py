"""The README's Python examples run as written, on both backends."""
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples():
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_readme_example_runs(index, backend, capsys):
    exec(compile(EXAMPLES[index], f"README.md example {index}", "exec"), {})
    # The example may switch backends itself; the fixture restores the parametrised one.
