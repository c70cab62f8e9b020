"""Which implementation is active: the one dispatch point of the kernels and of the graph.

``active`` is the kernel module in use (``clumsygrad._kernels.native`` or ``.pure``); backward
functions call ``_backend.active.<kernel>(...)``.  ``graph`` is the graph twin whose ``Node`` is
``Tensor``'s base class, chosen once at import (``clumsygrad._graph.native`` unless
``CLUMSYGRAD_BACKEND=python`` or the extension is missing); ``engine`` is the twin whose
``backward_pass`` runs: the compiled engine needs the compiled nodes, the pure one runs on both.
"""
from __future__ import annotations

import os
import warnings

from ._graph import pure as pure_graph
from ._kernels import pure

BACKENDS = ("cython", "python")
ENV_VAR = "CLUMSYGRAD_BACKEND"

BUILD_HINT = (
    "the compiled kernels (clumsygrad._kernels.native) are not available: {error}. "
    "Install a clumsygrad wheel for this platform, or build from source with a C compiler: "
    "`pip install .` in the source tree (it compiles the Cython extensions)."
)

try:
    from ._graph import native as native_graph
    from ._kernels import native
except Exception as exc:  # never built, or built for another ABI (e.g. "numpy.dtype size changed")
    native = native_graph = None
    _native_error = f"{type(exc).__name__}: {exc}"
else:
    _native_error = None

active = pure
graph = pure_graph
engine = pure_graph


def get_backend() -> str:
    """The active backend: ``"cython"`` (compiled kernels) or ``"python"`` (NumPy reference)."""
    return "cython" if active is not pure else "python"


def set_backend(name: str) -> None:
    """Switch every hot backward path to ``"cython"`` or ``"python"``, effective immediately.

    Raises ``ValueError`` for an unknown name and ``ImportError`` (with build instructions)
    when ``"cython"`` is asked for but the compiled kernels cannot be imported.
    """
    global active, engine
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {BACKENDS}")
    if name == "python":
        active, engine = pure, pure_graph
    elif native is None:
        raise ImportError(BUILD_HINT.format(error=_native_error))
    else:
        active, engine = native, graph


def _select_at_import() -> None:
    """Honour ``CLUMSYGRAD_BACKEND``; default to the compiled twins, else fall back with one warning."""
    global graph
    requested = os.environ.get(ENV_VAR, "").strip().lower() or "cython"
    if requested not in BACKENDS:
        raise ValueError(
            f"{ENV_VAR}={os.environ[ENV_VAR]!r} is not a backend; choose one of {BACKENDS}"
        )
    if requested == "cython" and native is None:
        warnings.warn(
            BUILD_HINT.format(error=_native_error) + " Falling back to the 'python' backend.",
            RuntimeWarning,
            stacklevel=3,
        )
        requested = "python"
    if requested == "cython":
        graph = native_graph
    set_backend(requested)


_select_at_import()
