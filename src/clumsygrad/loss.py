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


# --------------------------------------------------------------------------- classification
def cross_entropy(logits: Tensor, labels, reduction: str = "mean") -> Tensor:
    """Cross-entropy of (N, C) ``logits`` against class labels or per-class targets.

    ``labels`` is an integer array (or tensor, or list) of shape (N,) with values in ``[0, C)``,
    or a one-hot / probability target of ``logits``' shape.  Per row,
    ``L_i = logsumexp(z_i) - z_i[y_i]`` (labels) or ``-sum_c t_ic log softmax(z_i)_c``
    (targets), computed from ``z - max(z)`` so that logits of 1e4 in float32 stay finite.
    ``reduction`` is "mean" (over N), "sum" or "none" (shape (N,)).  The backward pass is the
    fused ``cross_entropy_backward`` kernel: ``softmax(z) - onehot(y)``, scaled.  Labels out of
    range or not integers are a ``ValueError`` naming the first bad one.  A target *tensor*
    that requires gradients receives ``-log softmax(z)``, scaled.
    """
    from ._kernels.pure import check_reduction, cross_entropy_targets
    from .grad import cross_entropy_backward

    from ._operands import as_operands

    check_reduction(reduction)
    target = labels._data if isinstance(labels, Tensor) else labels
    (logits,) = as_operands((logits,))  # arrays and lists too, as binary_cross_entropy_with_logits
    z = logits._data
    label_index, dense = cross_entropy_targets(z, target)
    n = z.shape[0]
    shifted = z - np.max(z, axis=1, keepdims=True)
    log_sum = np.log(np.sum(np.exp(shifted), axis=1))
    if label_index is not None:
        per_row = log_sum - shifted[np.arange(n), label_index]
    else:
        per_row = np.sum(dense * (log_sum[:, None] - shifted), axis=1)
    parents = (logits,)
    # The graph owns its copy of the target: changing the caller's array later moves nothing.
    extra = {"reduction": reduction, "target": np.array(label_index if dense is None else dense)}
    if dense is not None and isinstance(labels, Tensor):
        parents = (logits, labels)
    return _new_node(_reduce(per_row, reduction), cross_entropy_backward, parents, extra)


def _reduce(per_element: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "none":
        return per_element
    total = np.sum(per_element)
    if reduction == "sum":
        return total
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / per_element.size if per_element.size else np.asarray(np.nan)


def binary_cross_entropy_with_logits(logits: Tensor, targets, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of ``sigmoid(logits)`` against ``targets`` (same shape, values in [0, 1]).

    Per element ``max(z, 0) - z t + log(1 + exp(-|z|))``: never ``log(0)`` nor an overflowing
    ``exp``.  ``reduction`` is "mean", "sum" or "none".  Gradients: ``(sigmoid(z) - t)`` for the
    logits, ``-z`` for a target tensor that requires them, both scaled by the reduction.
    """
    from ._kernels.pure import check_reduction
    from ._operands import as_operands
    from .grad import binary_cross_entropy_with_logits_backward

    check_reduction(reduction)
    logits, targets = as_operands((logits, targets))
    if logits._shape != targets._shape:
        raise ValueError(
            "binary_cross_entropy_with_logits needs logits and targets of one shape, "
            f"got {logits._shape} and {targets._shape}"
        )
    z, t = logits._data, targets._data
    per_element = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    return _new_node(
        _reduce(per_element, reduction), binary_cross_entropy_with_logits_backward, (logits, targets),
        {"reduction": reduction},
    )


__all__ += ["cross_entropy", "binary_cross_entropy_with_logits"]
