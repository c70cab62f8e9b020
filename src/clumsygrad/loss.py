"""Loss functions: a scalar tensor from a prediction and a target of the same shape."""
from __future__ import annotations

import numpy as np

from . import _backend
from ._kernels.pure import mean_of_all as _mean_of_all
from .grad import mae_backward, mse_backward
from .tensor import Tensor, _new_node

__all__ = ["mse_loss", "mae_loss"]


def mse_loss(pred: Tensor, target: Tensor) -> Tensor:
    """mean((pred - target)^2)."""
    if pred._shape != target._shape:
        raise ValueError(
            "Predicted and target tensors must have the same shape for MSE loss, "
            f"got {pred._shape} and {target._shape}."
        )
    return _new_node(_backend.active.mse_forward(pred._data, target._data), mse_backward, (pred, target))


def mae_loss(pred: Tensor, target: Tensor) -> Tensor:
    """mean(|pred - target|)."""
    if pred._shape != target._shape:
        raise ValueError(
            "Predicted and target tensors must have the same shape for MAE loss, "
            f"got {pred._shape} and {target._shape}."
        )
    return _new_node(_mean_of_all(np.abs(pred._data - target._data)), mae_backward, (pred, target))
