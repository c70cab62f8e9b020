"""clumsygrad: reverse-mode automatic differentiation on NumPy.

A drop-in replacement for the pure-Python clumsygrad 0.2.x with the same API, correct
gradients, and compiled (Cython) kernels for the hot backward paths.  Choose the kernel
backend with :func:`set_backend` or the ``CLUMSYGRAD_BACKEND`` environment variable.
"""
from . import activation, grad, loss, math, optimizer, random, tensor
from ._backend import get_backend, set_backend
from . import gradcheck
from .gradcheck import GradcheckError
from . import viz  # to_dot / draw; imports nothing optional until it draws

__version__ = "0.3.0"

__all__ = [
    "tensor",
    "random",
    "activation",
    "grad",
    "loss",
    "math",
    "optimizer",
    "get_backend",
    "set_backend",
    "gradcheck",
    "GradcheckError",
    "viz",
]

# Shape, selection and classification ops (issue 9), also reachable as clumsygrad.NAME.
# clumsygrad.max and clumsygrad.min stay out of __all__ (as np.max does): a star import must not
# shadow the builtins.
from . import selection, shape  # noqa: E402
from .activation import log_softmax  # noqa: E402
from .gradcheck import check_gradient  # noqa: E402
from .loss import binary_cross_entropy_with_logits, cross_entropy  # noqa: E402
from .selection import clip, max, maximum, min, minimum, where  # noqa: E402
from .shape import concatenate, expand_dims, flatten, getitem, reshape, split, squeeze, stack  # noqa: E402

__all__ += [
    "shape",
    "selection",
    "getitem",
    "concatenate",
    "stack",
    "split",
    "expand_dims",
    "squeeze",
    "flatten",
    "reshape",
    "maximum",
    "minimum",
    "where",
    "clip",
    "log_softmax",
    "cross_entropy",
    "binary_cross_entropy_with_logits",
    "check_gradient",
]
