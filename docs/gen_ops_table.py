"""The table of operations of the API reference, rendered from the op registry.

As a Sphinx extension (``gen_ops_table`` in ``conf.py``) it adds the ``ops-table`` directive,
which the API page uses; ``python docs/gen_ops_table.py`` prints the same table as Markdown.

The rows come from ``clumsygrad._registry.OPS`` (name -> OpDef with ``name``, ``module``,
``numpy``, ``method``, ``compiled`` and ``doc``).  While that registry does not exist, a
stand-in is built from the public functions of the op modules and their docstrings' first
lines; its "compiled" column then says that it is not known.
"""
from __future__ import annotations

import importlib
import inspect
from types import SimpleNamespace
from typing import Any, List, Mapping, Tuple

OP_MODULES = ("math", "activation", "loss", "shape", "selection")  # without _public_ops()


def op_modules() -> Tuple[str, ...]:
    """The modules of the package's public ops (``clumsygrad._public_ops()``), else OP_MODULES."""
    import clumsygrad

    public_ops = getattr(clumsygrad, "_public_ops", None)
    if public_ops is None:
        return OP_MODULES
    modules: List[str] = []
    for fn in public_ops().values():
        name = fn.__module__.rsplit(".", 1)[-1]
        if name not in modules:
            modules.append(name)
    return tuple(modules)


def _first_line(doc: str | None) -> str:
    text = inspect.cleandoc(doc or "").strip()
    return text.split("\n\n", 1)[0].replace("\n", " ") if text else ""


def standin_ops() -> Mapping[str, Any]:
    """OpDef-like rows from the modules: the registry's fields, read off the functions."""
    import numpy as np

    from clumsygrad.tensor import Tensor

    ops = {}
    for module_name in op_modules():
        module = importlib.import_module(f"clumsygrad.{module_name}")
        for name in module.__all__:
            fn = getattr(module, name)
            numpy_fn = getattr(np, name, None)
            ops[name] = SimpleNamespace(
                name=name,
                module=module_name,
                numpy=(numpy_fn,) if callable(numpy_fn) else (),
                method=name if callable(getattr(Tensor, name, None)) else None,
                compiled=None,  # unknown without the registry
                doc=_first_line(fn.__doc__),
            )
    return ops


def load_ops() -> Tuple[Mapping[str, Any], bool]:
    """``(ops, from_registry)``: the registry when it exists, else the stand-in."""
    try:
        from clumsygrad._registry import OPS
    except ModuleNotFoundError as exc:
        if exc.name != "clumsygrad._registry":  # a registry that exists but fails is an error
            raise
        return standin_ops(), False
    return OPS, True


def _numpy_names(op: Any) -> str:
    names: List[str] = []
    for fn in op.numpy or ():
        name = "np." + (getattr(fn, "__name__", None) or repr(fn))
        if name not in names:  # one callable may be registered under two spellings
            names.append(name)
    return ", ".join(names)


def _methods(op: Any) -> Tuple[str, ...]:
    """The Tensor method names of an op: ``.methods`` (a tuple) or ``.method`` (a str or None)."""
    methods = getattr(op, "methods", None)
    if methods is None:
        method = getattr(op, "method", None)
        methods = (method,) if method else ()
    return tuple(methods)


def header(from_registry: bool) -> List[str]:
    """The columns; the stand-in cannot tell what is compiled, so it leaves that column out."""
    if from_registry:
        return ["operation", "NumPy", "method", "compiled", "what it computes"]
    return ["operation", "NumPy", "method", "what it computes"]


def _listed(op: Any) -> bool:
    """An op of a public module, not a named backward variant of another op."""
    if getattr(op, "variant_of", None) is not None:
        return False
    try:
        importlib.import_module(f"clumsygrad.{op.module}")
    except ImportError:  # e.g. the registry's "internal" helpers
        return False
    return True


def is_public_function(module: str, name: str) -> bool:
    """Whether ``clumsygrad.<module>.<name>`` is a public function (the API page documents it)."""
    try:
        return name in getattr(importlib.import_module(f"clumsygrad.{module}"), "__all__", ())
    except ImportError:
        return False


def rows(ops: Mapping[str, Any], from_registry: bool) -> List[List[str]]:
    """One row per op (the columns of :func:`header`), sorted by module then name.

    With the registry, the public functions of the op modules that are not registry entries
    (composed of other ops, e.g. ``split``) get a row too, read off the function, compiled "-".
    """
    entries = [op for op in ops.values() if _listed(op)]
    if from_registry:
        known = {(op.module, op.name) for op in entries}
        for extra in standin_ops().values():
            if (extra.module, extra.name) not in known:
                extra.compiled = "-"  # composed of other ops; see theirs
                entries.append(extra)
    out = []
    for op in sorted(entries, key=lambda op: (op.module, op.name)):
        methods = _methods(op)
        row = [
            f"clumsygrad.{op.module}.{op.name}",
            _numpy_names(op) or "-",
            ", ".join(f"t.{m}()" for m in methods) or "-",
        ]
        if from_registry:
            row.append(op.compiled or "no")
        row.append(op.doc or _function_doc(op.module, op.name))
        out.append(row)
    return out


def _function_doc(module: str, name: str) -> str:
    """The first paragraph of the public function's docstring, for an entry without ``doc``."""
    if not is_public_function(module, name):
        return ""
    return _first_line(getattr(importlib.import_module(f"clumsygrad.{module}"), name).__doc__)


def rst_text(text: str) -> str:
    """Docstring prose for a table cell: ``|`` and ``*`` outside ``literals`` escaped (RST would read
    ``|x|`` as a substitution and ``*x*`` as emphasis)."""
    parts = text.split("``")
    for i in range(0, len(parts), 2):  # the even parts are outside literals
        parts[i] = parts[i].replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*")
    return "``".join(parts)


def markdown() -> str:
    ops, from_registry = load_ops()
    columns = header(from_registry)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows(ops, from_registry):
        cells = [f"`{row[0]}`"] + [cell.replace("|", "\\|") for cell in row[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def setup(app):  # the Sphinx extension
    from docutils import nodes
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective

    class OpsTable(SphinxDirective):
        """``ops-table``: the operations, one row each, linked to their API entries."""

        has_content = False

        def run(self):
            ops, from_registry = load_ops()
            # Rebuild the page when the generator or any op's module changes.
            self.env.note_dependency(__file__)
            for module_name in sorted({op.module for op in ops.values() if _listed(op)}):
                module = importlib.import_module(f"clumsygrad.{module_name}")
                if getattr(module, "__file__", None):
                    self.env.note_dependency(module.__file__)
            columns = header(from_registry)
            widths = "24 13 13 11 39" if from_registry else "27 13 13 47"
            rst = [".. list-table::", "   :header-rows: 1", "   :class: ops-table", f"   :widths: {widths}", ""]
            rst.append("   * - " + "\n     - ".join(columns))
            for row in rows(ops, from_registry):
                full = row[0]
                short = full[len("clumsygrad."):]
                module, name = short.split(".", 1)
                # Ops recorded by an operator or a method (add, matmul, ...) have no function to link.
                cells = [f":func:`{short} <{full}>`" if is_public_function(module, name) else f"``{short}``"]
                for i, cell in enumerate(row[1:], 1):
                    if cell == "-" or not cell:
                        cells.append("\\-")
                    elif i < 3:  # NumPy names and the methods: code
                        cells.append(", ".join(f"``{part}``" for part in cell.split(", ")))
                    else:
                        cells.append(rst_text(cell))
                rst.append("   * - " + "\n     - ".join(cells))
            rst = "\n".join(rst).split("\n")  # one StringList entry per line
            source = "(op registry: clumsygrad._registry.OPS)" if from_registry else "(stand-in from the op modules)"
            container = nodes.container()
            self.state.nested_parse(StringList(rst, source=source), self.content_offset, container)
            note = ("Generated at build time from the op registry, ``clumsygrad._registry.OPS``." if from_registry else
                    "Generated at build time from the public functions of the op modules and their "
                    "docstrings (this build has no op registry); which backward functions run compiled "
                    "code is listed in :doc:`performance`.")
            para = nodes.container()
            self.state.nested_parse(StringList([note], source=source), self.content_offset, para)
            return container.children + para.children

    app.add_directive("ops-table", OpsTable)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    print(markdown(), end="")
