"""clumsygrad: reverse-mode automatic differentiation on NumPy.

A drop-in replacement for the pure-Python clumsygrad 0.2.x with the same API, correct
gradients, and compiled (Cython) kernels for the hot backward paths.  Choose the kernel
backend with :func:`set_backend` or the ``CLUMSYGRAD_BACKEND`` environment variable.
"""
from . import activation, grad, loss, math, optimizer, random, tensor
from ._backend import get_backend, set_backend
from ._gradcheck import GradcheckError, gradcheck

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
]
