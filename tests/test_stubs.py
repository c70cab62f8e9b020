"""The ``.pyi`` stubs of the compiled modules say what the compiled functions and their pure twins take.

Every stub found in the INSTALLED package is checked (a stub added for a new compiled module is
picked up by the glob): each function it declares exists in the compiled module, has the pure
twin's parameters (names, kinds, defaults) and the compiled function's own, and every public
function of the compiled module is declared.  The pure twin of ``<package>._name`` lives in
``<package>.pure``.
"""
import ast
import importlib
import inspect
from pathlib import Path

import pytest

import clumsygrad

pytestmark = pytest.mark.both_backends

PACKAGE_DIR = Path(clumsygrad.__file__).parent
# The compiled kernel modules whose stubs must exist (issue 8); any other stub is checked too.
REQUIRED = [
    "_kernels/_reduce", "_kernels/_softmax", "_kernels/_matmul", "_kernels/_loss", "_kernels/_elementwise",
    "_kernels/_scatter", "_kernels/_cross_entropy", "_kernels/_optim", "_graph/native",
]
STUBS = sorted(PACKAGE_DIR.rglob("*.pyi"))


def module_name(stub: Path) -> str:
    return ".".join(("clumsygrad", *stub.relative_to(PACKAGE_DIR).with_suffix("").parts))


def stub_functions(stub: Path) -> dict:
    """``{name: ast.FunctionDef}`` of the public top-level functions a stub declares."""
    tree = ast.parse(stub.read_text(), filename=str(stub))
    return {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")
    }


def stub_parameters(fn: ast.FunctionDef) -> list:
    """``[(name, kind, default)]`` as ``inspect`` names them; ``default`` is ``inspect.Parameter.empty`` when none."""
    P, a = inspect.Parameter, fn.args
    positional = [(p, P.POSITIONAL_ONLY) for p in a.posonlyargs] + [(p, P.POSITIONAL_OR_KEYWORD) for p in a.args]
    defaults = [P.empty] * (len(positional) - len(a.defaults)) + [ast.literal_eval(d) for d in a.defaults]
    params = [(p.arg, kind, d) for (p, kind), d in zip(positional, defaults)]
    if a.vararg:
        params.append((a.vararg.arg, P.VAR_POSITIONAL, P.empty))
    for p, d in zip(a.kwonlyargs, a.kw_defaults):
        params.append((p.arg, P.KEYWORD_ONLY, P.empty if d is None else ast.literal_eval(d)))
    if a.kwarg:
        params.append((a.kwarg.arg, P.VAR_KEYWORD, P.empty))
    return params


def runtime_parameters(fn) -> list:
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def public_functions(module) -> set:
    """Names of the functions defined in ``module`` itself (Cython ``def`` functions included)."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and callable(value) and not inspect.isclass(value)
        and getattr(value, "__module__", None) == module.__name__
    }


def test_the_compiled_kernel_modules_have_stubs_and_the_package_is_typed():
    assert (PACKAGE_DIR / "py.typed").is_file(), "py.typed is not installed"
    missing = [m for m in REQUIRED if not (PACKAGE_DIR / f"{m}.pyi").is_file()]
    assert not missing, f"no stub installed for {missing}"


@pytest.mark.parametrize("stub", STUBS, ids=[module_name(s) for s in STUBS])
def test_stub_matches_the_compiled_module_and_the_pure_twin(stub):
    name = module_name(stub)
    compiled = importlib.import_module(name)
    pure = importlib.import_module(name.rsplit(".", 1)[0] + ".pure")
    declared = stub_functions(stub)
    assert declared, f"{stub.name} declares no function"
    undeclared = public_functions(compiled) - set(declared)
    assert not undeclared, f"{name} defines {sorted(undeclared)}, which {stub.name} does not declare"
    for fn_name, node in declared.items():
        assert hasattr(compiled, fn_name), f"{stub.name} declares {fn_name}, which {name} does not define"
        expected = stub_parameters(node)
        assert runtime_parameters(getattr(pure, fn_name)) == expected, f"{stub.name}: {fn_name} differs from pure"
        assert runtime_parameters(getattr(compiled, fn_name)) == expected, f"{stub.name}: {fn_name} differs from {name}"


def test_the_signature_reader_sees_kinds_and_defaults():
    # The comparison above is only as good as this reader: a stub with every parameter kind.
    node = ast.parse("def f(a, /, b, c=1.5, *rest, d, e=None, **kw) -> None: ...").body[0]
    P = inspect.Parameter
    assert stub_parameters(node) == [
        ("a", P.POSITIONAL_ONLY, P.empty),
        ("b", P.POSITIONAL_OR_KEYWORD, P.empty),
        ("c", P.POSITIONAL_OR_KEYWORD, 1.5),
        ("rest", P.VAR_POSITIONAL, P.empty),
        ("d", P.KEYWORD_ONLY, P.empty),
        ("e", P.KEYWORD_ONLY, None),
        ("kw", P.VAR_KEYWORD, P.empty),
    ]

    def g(a, /, b, c=1.5, *rest, d, e=None, **kw):
        pass

    assert runtime_parameters(g) == stub_parameters(node)
