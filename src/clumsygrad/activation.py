"""Activation functions."""
from __future__ import annotations

import numpy as np

from . import _backend
from .grad import relu_backward, sigmoid_backward, softmax_backward, tanh_backward
from .tensor import Tensor, _new_node

__all__ = ["tanh", "relu", "sigmoid", "softmax"]


def tanh(tensor: Tensor) -> Tensor:
    return _new_node(np.tanh(tensor._data), tanh_backward, (tensor,))


def relu(tensor: Tensor) -> Tensor:
    """max(0, x) elementwise."""
    return _new_node(np.maximum(tensor._data, 0), relu_backward, (tensor,))


def sigmoid(tensor: Tensor) -> Tensor:
    """1 / (1 + e^-x) elementwise; saturates to 0 without overflow warnings for very negative x."""
    with np.errstate(over="ignore"):
        data = 1 / (1 + np.exp(-tensor._data))
    return _new_node(data, sigmoid_backward, (tensor,))


def softmax(tensor: Tensor, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x), axis), computed after subtracting the max along ``axis`` (no overflow)."""
    data = _backend.active.softmax_forward(tensor._data, axis)
    return _new_node(data, softmax_backward, (tensor,), {"axis": axis})


def log_softmax(tensor: Tensor, axis: int = -1) -> Tensor:
    """``x - logsumexp(x, axis)``, computed as ``(x - max) - log(sum(exp(x - max)))``: no overflow,
    and no ``log(0)`` where the softmax underflows."""
    from ._operands import as_operands
    from .grad import log_softmax_backward

    (tensor,) = as_operands((tensor,))  # arrays and lists too, as the losses take them
    x = tensor._data
    if x.ndim and not -x.ndim <= axis < x.ndim:
        raise ValueError(f"log_softmax: axis {axis} is out of bounds for an array of shape {x.shape}")
    if x.ndim and x.shape[axis] == 0:
        raise ValueError(f"log_softmax over axis {axis} of shape {x.shape}, which has no elements")
    shifted = x - np.max(x, axis=axis, keepdims=True)
    data = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return _new_node(data, log_softmax_backward, (tensor,), {"axis": axis})


__all__ += ["log_softmax"]
