"""Reductions and elementwise mathematical functions of tensors."""
from __future__ import annotations


import numpy as np

from .grad import (
    abs_backward,
    cos_backward,
    exp_backward,
    log_backward,
    mean_backward,
    sin_backward,
    sqrt_backward,
    sum_backward,
    tan_backward,
)
from .tensor import Tensor, _new_node

__all__ = ["sum", "mean", "abs", "sqrt", "exp", "log", "sin", "cos", "tan"]


def _axis_arg(axis):
    """NumPy takes a tuple of axes, not a list."""
    return tuple(axis) if isinstance(axis, list) else axis


def sum(tensor: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """Sum over ``axis`` (None for all, an int, or a tuple; negatives allowed)."""
    axis = _axis_arg(axis)
    data = np.sum(tensor._data, axis=axis, keepdims=keepdims)
    extra = {"axis": axis, "keepdims": keepdims, "input_shape": tensor._shape}
    return _new_node(data, sum_backward, (tensor,), extra)


def mean(tensor: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis`` (None for all, an int, or a tuple; negatives allowed)."""
    axis = _axis_arg(axis)
    data = np.mean(tensor._data, axis=axis, keepdims=keepdims)
    extra = {"axis": axis, "keepdims": keepdims, "input_shape": tensor._shape}
    return _new_node(data, mean_backward, (tensor,), extra)


def abs(tensor: Tensor) -> Tensor:
    return _new_node(np.abs(tensor._data), abs_backward, (tensor,))


def sqrt(tensor: Tensor) -> Tensor:
    return _new_node(np.sqrt(tensor._data), sqrt_backward, (tensor,))


def exp(tensor: Tensor) -> Tensor:
    return _new_node(np.exp(tensor._data), exp_backward, (tensor,))


def log(tensor: Tensor) -> Tensor:
    """Natural logarithm."""
    return _new_node(np.log(tensor._data), log_backward, (tensor,))


def sin(tensor: Tensor) -> Tensor:
    return _new_node(np.sin(tensor._data), sin_backward, (tensor,))


def cos(tensor: Tensor) -> Tensor:
    return _new_node(np.cos(tensor._data), cos_backward, (tensor,))


def tan(tensor: Tensor) -> Tensor:
    return _new_node(np.tan(tensor._data), tan_backward, (tensor,))
