"""Backward functions: one per recorded operation.

Each has the signature ``fn(tensor, grad) -> tuple`` where ``tensor`` is the result of
the forward operation (its ``_parents``, ``_data`` and ``_extra`` describe it) and
``grad`` is the gradient of the loss with respect to that result.  The returned tuple
holds one gradient per parent, shaped like that parent.  ``grad`` may be float32 or
float64; results follow NumPy's promotion.

Broadcast reduction, sum/mean expansion, softmax, matmul, relu and MSE go through the active
kernel backend (``clumsygrad.get_backend()``); everything else is plain NumPy.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Tuple

import numpy as np

from . import _backend

if TYPE_CHECKING:
    from .tensor import Tensor

GradientTuple = Tuple[np.ndarray, ...]
"""One gradient per parent tensor."""


def skips_unneeded(fn):
    """Mark a backward function that takes ``needs=(bool, ...)`` (one flag per parent).

    The engine passes ``needs`` when some parent is a constant; the function returns None in
    that parent's place instead of computing a gradient nobody will read.
    """
    fn.skips_unneeded = True
    return fn

__all__ = [
    "GradientTuple",
    "transpose_backward",
    "add_backward",
    "add_scalar_backward",
    "sub_backward",
    "sub_scalar_backward",
    "mul_backward",
    "mul_scalar_backward",
    "matmul_backward",
    "power_backward",
    "negate_backward",
    "abs_backward",
    "reshape_backward",
    "sum_backward",
    "mean_backward",
    "exp_backward",
    "log_backward",
    "sqrt_backward",
    "sin_backward",
    "cos_backward",
    "tan_backward",
    "relu_backward",
    "sigmoid_backward",
    "tanh_backward",
    "softmax_backward",
    "mse_backward",
    "mae_backward",
    "add_broadcast_backward",
    "sub_broadcast_backward",
    "mul_broadcast_backward",
]


# --------------------------------------------------------------------------- elementary
def transpose_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = x^T (all axes reversed): dx = grad^T."""
    return (np.asarray(grad).T,)


def add_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = x + y: dx = grad, dy = grad."""
    return (grad, grad)


def add_scalar_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = x + c: dx = grad."""
    return (grad,)


def sub_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = x - y: dx = grad, dy = -grad."""
    return (grad, -grad)


def sub_scalar_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = x - c: dx = grad."""
    return (grad,)


@skips_unneeded
def mul_backward(tensor: Tensor, grad: np.ndarray, *, needs=(True, True)) -> GradientTuple:
    r"""z = x * y (same shapes): dx = grad * y, dy = grad * x."""
    x, y = tensor._parents
    return (grad * y._data if needs[0] else None, grad * x._data if needs[1] else None)


def mul_scalar_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = c * x: dx = c * grad."""
    return (grad * tensor._extra.get("scalar_value", 1.0),)


@skips_unneeded
def matmul_backward(tensor: Tensor, grad: np.ndarray, *, needs=(True, True)) -> GradientTuple:
    r"""Z = X @ Y, 2-D or batched: dX = grad @ Y^T, dY = X^T @ grad.

    Batch axes that were broadcast are summed back to each operand's shape.
    """
    x, y = tensor._parents
    return _backend.active.matmul_backward(x._data, y._data, grad, *needs)


def power_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = x^p: dx = grad * p * x^(p-1)."""
    x = tensor._parents[0]
    power = tensor._extra.get("power", 1.0)
    return (grad * (power * x._data ** (power - 1)),)


def negate_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = -x: dx = -grad."""
    return (-grad,)


def abs_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = |x|: dx = grad * sign(x) (0 at x = 0)."""
    return (grad * np.sign(tensor._parents[0]._data),)


def reshape_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = reshape(x): dx = grad reshaped to x's shape."""
    return (np.reshape(grad, tensor._extra["original_shape"]),)


# --------------------------------------------------------------------------- reductions
def sum_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = sum(x, axis, keepdims): dx = grad repeated over the summed axes (any negative axes)."""
    extra = tensor._extra
    return (
        _backend.active.expand_to_shape(
            grad, extra["input_shape"], extra.get("axis"), extra.get("keepdims", False), 1.0
        ),
    )


def mean_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = mean(x, axis, keepdims): dx = grad / n repeated over the averaged axes.

    ``n`` is the number of elements averaged into each output: size(x) / size(z).
    """
    extra = tensor._extra
    input_shape = extra["input_shape"]
    input_size = int(np.prod(input_shape))
    scale = np.size(grad) / input_size if input_size else 0.0
    return (
        _backend.active.expand_to_shape(
            grad, input_shape, extra.get("axis"), extra.get("keepdims", False), scale
        ),
    )


# --------------------------------------------------------------------------- elementwise math
def exp_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = e^x: dx = grad * z."""
    return (grad * tensor._data,)


def log_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = ln(x): dx = grad / x."""
    return (grad / tensor._parents[0]._data,)


def sqrt_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = sqrt(x): dx = grad / (2 z)."""
    return (grad / (2 * tensor._data),)


def sin_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = sin(x): dx = grad * cos(x)."""
    return (grad * np.cos(tensor._parents[0]._data),)


def cos_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = cos(x): dx = -grad * sin(x)."""
    return (grad * -np.sin(tensor._parents[0]._data),)


def tan_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = tan(x): dx = grad * (1 + z^2) = grad * sec^2(x)."""
    z = tensor._data
    return (grad * (1 + z * z),)


# --------------------------------------------------------------------------- activations
def relu_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = max(0, x): dx = grad where z > 0, else 0."""
    return (_backend.active.relu_backward(tensor._data, grad),)


def sigmoid_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = 1 / (1 + e^-x): dx = grad * z * (1 - z), with z the stored output."""
    s = tensor._data
    return (grad * (s * (1 - s)),)


def tanh_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = tanh(x): dx = grad * (1 - z^2)."""
    z = tensor._data
    return (grad * (1 - z * z),)


def softmax_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = softmax(x, axis): dx = z * (grad - sum(z * grad, axis, keepdims=True))."""
    return (_backend.active.softmax_backward(tensor._data, grad, tensor._extra.get("axis", -1)),)


# --------------------------------------------------------------------------- losses
@skips_unneeded
def mse_backward(tensor: Tensor, grad: np.ndarray, *, needs=(True, True)) -> GradientTuple:
    r"""L = mean((p - t)^2): dp = 2 (p - t) grad / n, dt = -dp, n = number of elements."""
    pred, target = tensor._parents
    return _backend.active.mse_backward(pred._data, target._data, grad, *needs)


@skips_unneeded
def mae_backward(tensor: Tensor, grad: np.ndarray, *, needs=(True, True)) -> GradientTuple:
    r"""L = mean(|p - t|): dp = sign(p - t) grad / n, dt = -dp, n = number of elements."""
    pred, target = tensor._parents
    sign = np.sign(pred._data - target._data)
    d_pred = sign * (1.0 / max(sign.size, 1) * np.asarray(grad))
    return (d_pred if needs[0] else None, -d_pred if needs[1] else None)


# --------------------------------------------------------------------------- broadcasting
@skips_unneeded
def add_broadcast_backward(tensor: Tensor, grad: np.ndarray, *, needs=(True, True)) -> GradientTuple:
    r"""z = x + y, broadcast: dx, dy = grad summed over the axes each operand was broadcast along."""
    extra = tensor._extra
    reduce = _backend.active.reduce_to_shape
    return (
        reduce(grad, extra["left_shape"]) if needs[0] else None,
        reduce(grad, extra["right_shape"]) if needs[1] else None,
    )


@skips_unneeded
def sub_broadcast_backward(tensor: Tensor, grad: np.ndarray, *, needs=(True, True)) -> GradientTuple:
    r"""z = x - y, broadcast: dx = reduce(grad), dy = -reduce(grad)."""
    extra = tensor._extra
    reduce = _backend.active.reduce_to_shape
    return (
        reduce(grad, extra["left_shape"]) if needs[0] else None,
        -reduce(grad, extra["right_shape"]) if needs[1] else None,
    )


@skips_unneeded
def mul_broadcast_backward(tensor: Tensor, grad: np.ndarray, *, needs=(True, True)) -> GradientTuple:
    r"""z = x * y, broadcast: dx = reduce(grad * y), dy = reduce(grad * x), no broadcast temporaries."""
    extra = tensor._extra
    x, y = tensor._parents
    mul_reduce = _backend.active.mul_reduce_to_shape
    return (
        mul_reduce(grad, y._data, extra["left_shape"]) if needs[0] else None,
        mul_reduce(grad, x._data, extra["right_shape"]) if needs[1] else None,
    )


def _reduce_gradient_to_shape(grad: np.ndarray, target_shape: tuple) -> np.ndarray:
    """Sum ``grad`` over the axes broadcasting added or stretched so that it has ``target_shape``."""
    return _backend.active.reduce_to_shape(grad, target_shape)
