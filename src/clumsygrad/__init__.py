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
from typing import TYPE_CHECKING
from importlib import metadata as _metadata

from . import activation, grad, gradcheck, loss, math, optimizer, random, selection, shape, tensor, viz
from . import optim
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

if TYPE_CHECKING:  # pragma: no cover
    # The ops _public_ops() exports, spelled out as explicit re-exports for type checkers (which
    # cannot follow globals().update); tests/test_typing.py checks that this list is complete.
    from .math import (
        abs as abs, sqrt as sqrt, exp as exp, log as log, sin as sin, cos as cos, tan as tan,
        sign as sign, square as square, reciprocal as reciprocal, log1p as log1p, expm1 as expm1,
        log2 as log2, log10 as log10, sum as sum, mean as mean, var as var, std as std, prod as prod,
        cumsum as cumsum, cumprod as cumprod, logsumexp as logsumexp, norm as norm, add as add,
        subtract as subtract, multiply as multiply, divide as divide, negative as negative,
        power as power, matmul as matmul,
    )
    from .activation import (
        tanh as tanh, relu as relu, sigmoid as sigmoid, softmax as softmax, log_softmax as log_softmax,
        normal_cdf as normal_cdf, gelu as gelu, leaky_relu as leaky_relu, elu as elu, selu as selu,
        softplus as softplus, silu as silu, mish as mish, hardtanh as hardtanh,
        log_sigmoid as log_sigmoid,
    )
    from .loss import (
        mse_loss as mse_loss, mae_loss as mae_loss,
        binary_cross_entropy_with_logits as binary_cross_entropy_with_logits,
        cross_entropy as cross_entropy,
    )
    from .shape import (
        broadcast_to as broadcast_to, flip as flip, getitem as getitem, concatenate as concatenate,
        stack as stack, split as split, expand_dims as expand_dims, squeeze as squeeze,
        flatten as flatten, reshape as reshape, transpose as transpose, swapaxes as swapaxes,
        moveaxis as moveaxis,
    )
    from .selection import (
        max as max, min as min, maximum as maximum, minimum as minimum, where as where, clip as clip,
    )

_OP_NAMES = sorted(n for n in _public_ops() if not hasattr(_builtins, n))

__all__ = [
    # modules
    "tensor", "random", "activation", "grad", "loss", "math", "optimizer", "optim", "gradcheck",
    "viz", "shape", "selection",
    # tensors, backend, graph control, guarantees
    "Tensor", "TensorType", "get_backend", "set_backend", "no_grad", "enable_grad",
    "memory_guard", "set_memory_guard", "is_memory_guard_enabled",
    # optimizers
    "Optimizer", "SGD", "Adam", "AdamW", "clip_grad_norm",
    # checking
    "check_gradient", "GradcheckError",
    # checkpoints
    "save", "load",
]
__all__ += _OP_NAMES  # a separate statement: type checkers read the literal list above
