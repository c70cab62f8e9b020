"""Loss functions: a scalar tensor from a prediction and a target of the same shape."""
from __future__ import annotations

import numpy as np

from .grad import mae_backward, mse_backward
from .tensor import Tensor, _new_node

__all__ = ["mse_loss", "mae_loss"]


def _mean_of_all(values: np.ndarray) -> np.ndarray:
    # np.add.reduce is np.mean's own pairwise sum, without its Python-level dispatch.
    return np.add.reduce(values, axis=None) / values.size if values.size else np.mean(values)


def mse_loss(pred: Tensor, target: Tensor) -> Tensor:
    """mean((pred - target)^2)."""
    if pred._shape != target._shape:
        raise ValueError(
            "Predicted and target tensors must have the same shape for MSE loss, "
            f"got {pred._shape} and {target._shape}."
        )
    diff = pred._data - target._data
    return _new_node(_mean_of_all(diff * diff), mse_backward, (pred, target))


def mae_loss(pred: Tensor, target: Tensor) -> Tensor:
    """mean(|pred - target|)."""
    if pred._shape != target._shape:
        raise ValueError(
            "Predicted and target tensors must have the same shape for MAE loss, "
            f"got {pred._shape} and {target._shape}."
        )
    return _new_node(_mean_of_all(np.abs(pred._data - target._data)), mae_backward, (pred, target))
