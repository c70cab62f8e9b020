"""Every ```python block of the documentation pages runs as written, on both backends.

A page's blocks run in order in one namespace, as a reader would paste them.  The README's
blocks are run by test_readme.py.  The generated table of operations is checked here too.
"""
import importlib.util
import re
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(DOCS.glob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", flags=re.S | re.M)


def python_blocks(path):
    return BLOCK.findall(path.read_text(encoding="utf-8"))


def test_the_docs_have_pages_with_examples():
    assert len(PAGES) >= 8
    assert sum(len(python_blocks(page)) for page in PAGES) >= 10


@pytest.mark.parametrize("page", [p.name for p in PAGES if python_blocks(p)])
def test_docs_page_examples_run(page, backend, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes a file writes it here
    namespace = {"__name__": f"docs_{page[:-3].replace('-', '_')}"}
    for index, block in enumerate(python_blocks(DOCS / page)):
        exec(compile(block, f"docs/{page} example {index}", "exec"), namespace)


def _generator():
    spec = importlib.util.spec_from_file_location("gen_ops_table", DOCS / "gen_ops_table.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_ops_table", module)
    spec.loader.exec_module(module)
    return module


def test_the_op_table_has_a_row_for_every_operation():
    generator = _generator()
    ops, from_registry = generator.load_ops()
    columns = generator.header(from_registry)
    table = generator.rows(ops, from_registry)
    assert all(len(row) == len(columns) for row in table)
    names = {row[0] for row in table}
    for module_name in generator.op_modules():
        module = importlib.import_module(f"clumsygrad.{module_name}")
        for name in module.__all__:
            assert f"clumsygrad.{module_name}.{name}" in names
    markdown = generator.markdown()
    assert markdown.count("\n") == len(table) + 2


def test_the_standin_op_table_reads_the_modules():
    generator = _generator()
    ops = generator.standin_ops()
    import numpy as np

    assert ops["sum"].module == "math" and ops["sum"].numpy == (np.sum,)
    assert ops["cross_entropy"].module == "loss" and ops["cross_entropy"].doc.startswith("Cross-entropy")
    assert ops["relu"].numpy == ()


def test_the_op_table_reads_the_registry_when_there_is_one(monkeypatch):
    import types

    import numpy as np

    generator = _generator()
    fake = types.ModuleType("clumsygrad._registry")
    fake.OPS = {
        "exp": types.SimpleNamespace(name="exp", module="math", numpy=(np.exp,), method="exp",
                                     compiled="typed loop", doc="e to the x | elementwise."),
        "relu": types.SimpleNamespace(name="relu", module="activation", numpy=(), method=None,
                                      compiled="", doc="max(0, x)."),
    }
    monkeypatch.setitem(sys.modules, "clumsygrad._registry", fake)
    ops, from_registry = generator.load_ops()
    assert from_registry and ops is fake.OPS
    assert generator.header(True) == ["operation", "NumPy", "method", "compiled", "what it computes"]
    table = {row[0]: row for row in generator.rows(ops, True)}
    assert table["clumsygrad.activation.relu"] == ["clumsygrad.activation.relu", "-", "-", "no", "max(0, x)."]
    assert table["clumsygrad.math.exp"] == [
        "clumsygrad.math.exp", "np.exp", "t.exp()", "typed loop", "e to the x | elementwise."]
    # The op modules' public functions that are not registry entries get a row of their own.
    assert table["clumsygrad.math.sum"][3] == "-"
    assert "| `clumsygrad.math.exp` | np.exp | t.exp() | typed loop | e to the x \\| elementwise. |" in generator.markdown()
