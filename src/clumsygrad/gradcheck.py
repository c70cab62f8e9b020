"""Gradient checkers: ``check_gradient`` (the clumsygrad 1.0.0 API) and ``gradcheck`` (this project's).

* :func:`check_gradient` ``(fn, tensor, eps=1e-3, tol=1e-2) -> (passed, max_abs_diff)``: the
  analytic gradient of ``fn(tensor)`` under an incoming gradient of ones, against central
  differences of the sum of the output, in the tensor's own dtype.
* :func:`gradcheck` ``(fn, inputs, ...)``: the strict float64 checker of this project (several
  inputs, a random cotangent, ``np.allclose``), raising :class:`GradcheckError`.

The module itself is callable and forwards to :func:`gradcheck`: before 1.0.0 made
``clumsygrad.gradcheck`` a module it was this project's function, and ``from clumsygrad
import gradcheck; gradcheck(fn, inputs)`` keeps working.
"""
from __future__ import annotations

import sys
import types
from typing import Callable, Tuple

import numpy as np

from . import _gradcheck
from ._gradcheck import GradcheckError, gradcheck
from .tensor import Tensor, enable_grad

__all__ = ["check_gradient", "gradcheck", "GradcheckError"]


def _sum_of(fn: Callable, tensor: Tensor) -> float:
    out = fn(tensor)
    data = out._data if isinstance(out, Tensor) else out
    return float(np.sum(np.asarray(data, dtype=np.float64)))


def check_gradient(fn: Callable[[Tensor], Tensor], tensor: Tensor, eps: float = 1e-3,
                   tol: float = 1e-2) -> Tuple[bool, float]:
    """Compare the gradient ``backward()`` gives for ``fn(tensor)`` with central differences.

    ``tensor`` must require gradients and ``fn(tensor)`` must return a Tensor computed from it.
    The output is backpropagated with a gradient of ones (so the analytic gradient is that of
    ``sum(fn(tensor))``) and each element ``i`` of ``tensor`` is checked against
    ``(S(x + eps e_i) - S(x - eps e_i)) / (2 eps)`` with ``S`` the sum of the output.

    Returns ``(passed, max_abs_diff)``: the largest absolute difference between the two
    gradients and whether it is at most ``tol``.  ``tensor.data`` and ``tensor.grad`` are left
    as they were (the data is perturbed in place and restored), and so are the ``.grad`` of
    any other tensors ``fn`` reads.  It records its own graph inside ``no_grad()`` too.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"check_gradient needs a Tensor, got {type(tensor).__name__}")
    if not tensor._requires_grad:
        raise ValueError(
            "tensor must require gradients (use TensorType.PARAMETER) to check its gradient "
            f"(got an {tensor._tensor_type.name} tensor; only one that requires gradients can be checked)"
        )
    saved_grad = tensor._grad
    tensor._grad = None
    restore = None
    try:
        with enable_grad():  # the check records its own graph, inside no_grad() too
            out = fn(tensor)
        if not isinstance(out, Tensor):
            raise TypeError(f"check_gradient needs fn to return a Tensor, got {type(out).__name__}")
        if not out._requires_grad:  # 1.0.0 called out.backward() here, which raised this
            raise RuntimeError(
                "Tensor does not require gradients: fn(tensor) returned a tensor that does not "
                "depend on tensor (check_gradient)"
            )
        if out._requires_grad:
            restore = _gradcheck.saved_grads(t for t in _gradcheck.leaves_needing_grad(out) if t is not tensor)
            out.backward(np.ones(out._shape, dtype=out._data.dtype))
        analytic = tensor._grad
        if analytic is None:  # fn's output depends on other tensors only (1.0.0's error)
            raise ValueError("backward() did not populate a gradient for tensor")
    finally:
        tensor._grad = saved_grad
        if restore is not None:  # other tensors fn reads keep the .grad they had
            restore()
    analytic = np.zeros(tensor._shape) if analytic is None else np.asarray(analytic, dtype=np.float64)

    data = tensor._data
    numeric = np.zeros(tensor._shape, dtype=np.float64)
    for index in np.ndindex(tensor._shape):
        original = data[index].copy()
        try:
            data[index] = original + eps
            upper = _sum_of(fn, tensor)
            data[index] = original - eps
            lower = _sum_of(fn, tensor)
        finally:
            data[index] = original
        numeric[index] = (upper - lower) / (2 * eps)
    max_abs_diff = float(np.max(np.abs(analytic - numeric))) if numeric.size else 0.0
    return bool(max_abs_diff <= tol), max_abs_diff


class _CallableModule(types.ModuleType):
    """``clumsygrad.gradcheck(...)`` calls :func:`gradcheck`, as it did when it was a function."""

    def __call__(self, *args, **kwargs):
        return gradcheck(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
