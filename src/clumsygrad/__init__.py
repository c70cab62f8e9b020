"""clumsygrad: reverse-mode automatic differentiation on NumPy.

A drop-in replacement for the pure-Python clumsygrad 0.2.x and 1.0.0 with the same API, correct
gradients, a compiled (Cython) graph core and compiled kernels for the hot backward paths.
Choose the backend with :func:`set_backend` or the ``CLUMSYGRAD_BACKEND`` environment variable.

Every op is also reachable here (``clumsygrad.concatenate``, ``clumsygrad.cross_entropy``...).
``clumsygrad.max`` and ``clumsygrad.min`` stay out of ``__all__`` (as NumPy's do), so a star
import does not shadow the builtins.
"""
from importlib import metadata as _metadata

from . import activation, grad, gradcheck, loss, math, optimizer, random, selection, shape, tensor, viz
from ._backend import get_backend, set_backend
from ._graph.guard import is_enabled as is_memory_guard_enabled
from ._graph.guard import memory_guard
from ._graph.guard import set_enabled as set_memory_guard
from .activation import log_softmax
from .gradcheck import GradcheckError, check_gradient
from .loss import binary_cross_entropy_with_logits, cross_entropy
from .selection import clip, maximum, minimum, where
from .selection import max as max, min as min  # exported (type checkers too), though not in __all__
from .serialization import load, save
from .shape import concatenate, expand_dims, flatten, getitem, reshape, split, squeeze, stack
from .tensor import enable_grad, no_grad

try:  # the installed distribution's version, as 1.0.0 does; one number to keep (pyproject.toml)
    __version__ = _metadata.version("clumsygrad")
except _metadata.PackageNotFoundError:  # a source tree on sys.path, never installed
    __version__ = "0+unknown"

__all__ = [
    # modules
    "tensor", "random", "activation", "grad", "loss", "math", "optimizer", "gradcheck", "viz",
    "shape", "selection",
    # backend, graph control, guarantees
    "get_backend", "set_backend", "no_grad", "enable_grad",
    "memory_guard", "set_memory_guard", "is_memory_guard_enabled",
    # ops
    "getitem", "concatenate", "stack", "split", "expand_dims", "squeeze", "flatten", "reshape",
    "maximum", "minimum", "where", "clip", "log_softmax", "cross_entropy",
    "binary_cross_entropy_with_logits",
    # checking
    "check_gradient", "GradcheckError",
    # checkpoints
    "save", "load",
]
