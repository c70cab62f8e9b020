"""The kernel layer's layout: ``pure`` holds the reference kernels only, ``checks`` what they share,
``native`` lists every compiled kernel in its map, and the documentation the modules cite exists."""
import inspect
import re
from pathlib import Path

import pytest

from clumsygrad._kernels import checks, native, pure

pytestmark = pytest.mark.both_backends

REPO = Path(__file__).resolve().parents[1]


def defined_functions(module) -> set:
    return {
        name for name, value in vars(module).items()
        if inspect.isfunction(value) and value.__module__ == module.__name__ and not name.startswith("_")
    }


def test_pure_defines_exactly_the_kernels_it_exports():
    extra = defined_functions(pure) - set(pure.__all__)
    assert not extra, f"pure.py holds reference kernels only: move {sorted(extra)} to checks.py"
    assert defined_functions(pure) == set(pure.__all__)


def test_the_shared_checks_are_reexported_from_pure_as_the_same_objects():
    for name in checks.__all__:
        assert getattr(pure, name) is getattr(checks, name), name


def test_checks_exports_every_function_it_defines_and_no_kernel():
    assert defined_functions(checks) <= set(checks.__all__)
    assert not set(checks.__all__) & set(pure.__all__)


def test_native_map_lists_every_compiled_kernel_and_its_module():
    listed = dict(re.findall(r"^``(\w+)``\s+``(_\w+\.pyx)``", native.__doc__, re.M))
    assert set(listed) == set(native.__all__)
    for name, pyx in listed.items():
        assert getattr(native, name).__module__.endswith("." + pyx[:-4]), name


def test_the_kernel_documentation_the_modules_cite_exists_and_lists_every_kernel():
    doc = REPO / "docs" / "kernels.md"
    for module in (pure, checks, native):
        assert "docs/kernels.md" in Path(module.__file__).read_text(), module.__name__
    text = doc.read_text()
    for name in pure.__all__:
        assert f"`{name}(" in text, name
