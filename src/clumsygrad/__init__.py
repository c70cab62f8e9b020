"""clumsygrad: reverse-mode automatic differentiation on NumPy.

A drop-in replacement for the pure-Python clumsygrad 0.2.x and 1.0.0 with the same API, correct
gradients, a compiled (Cython) graph core and compiled kernels for the hot backward paths.
Choose the backend with :func:`set_backend` or the ``CLUMSYGRAD_BACKEND`` environment variable.

One import reaches everything: ``clumsygrad.Tensor``, every registered op (``clumsygrad.exp``,
``clumsygrad.cross_entropy``...), the optimizers (``clumsygrad.SGD`` or ``clumsygrad.optim.SGD``)
and ``no_grad``.  The ops named like Python builtins (``sum``, ``max``, ``min``, ``abs``) are
attributes but stay out of ``__all__`` (as NumPy's do), so ``from clumsygrad import *`` does not
shadow the builtins.
"""
import builtins as _builtins
from importlib import metadata as _metadata

from . import activation, grad, gradcheck, loss, math, optimizer, random, selection, shape, tensor, viz
from . import optim
from . import func
from ._backend import get_backend, set_backend
from ._graph.guard import is_enabled as is_memory_guard_enabled
from ._graph.guard import memory_guard
from ._graph.guard import set_enabled as set_memory_guard
from ._registry import OPS as _OPS
from .gradcheck import GradcheckError, check_gradient
from .optimizer import SGD, Adam, AdamW, Optimizer, clip_grad_norm
from .serialization import load, save
from .tensor import Tensor, TensorType, enable_grad, no_grad

try:  # the installed distribution's version, as 1.0.0 does; one number to keep (pyproject.toml)
    __version__ = _metadata.version("clumsygrad")
except _metadata.PackageNotFoundError:  # a source tree on sys.path, never installed
    __version__ = "0+unknown"


def _public_ops() -> dict:
    """Every registered op's public function by name, and the ops' module-level companions."""
    found = {}
    for module in (math, activation, loss, shape, selection):
        for name in module.__all__:
            found[name] = getattr(module, name)
    return found


globals().update(_public_ops())
_OP_NAMES = sorted(n for n in _public_ops() if not hasattr(_builtins, n))

__all__ = [
    # modules
    "tensor", "random", "activation", "grad", "loss", "math", "optimizer", "optim", "gradcheck",
    "viz", "shape", "selection", "func",
    # tensors, backend, graph control, guarantees
    "Tensor", "TensorType", "get_backend", "set_backend", "no_grad", "enable_grad",
    "memory_guard", "set_memory_guard", "is_memory_guard_enabled",
    # optimizers
    "Optimizer", "SGD", "Adam", "AdamW", "clip_grad_norm",
    # checking
    "check_gradient", "GradcheckError",
    # checkpoints
    "save", "load",
] + _OP_NAMES
