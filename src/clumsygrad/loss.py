"""Loss functions, each one registry entry: forward and the VJP formula side by side.

Regression losses take a prediction and a target of the same shape; classification losses take
logits and labels or targets.  Operands may be tensors or arrays (arrays become constants).
"""
from __future__ import annotations

import numpy as np

from . import _backend
from ._adjoint import is_array, owned_array
from ._kernels.pure import check_reduction, cross_entropy_scale, cross_entropy_targets
from ._kernels.pure import mean_of_all as _mean_of_all
from ._registry import OPS, as_tensors, defop, export


def _values(x):
    return x if is_array(x) else x._data


def _same_shape(what: str, pred: np.ndarray, target: np.ndarray) -> None:
    if pred.shape != target.shape:
        raise ValueError(
            f"Predicted and target tensors must have the same shape for {what} loss, "
            f"got {pred.shape} and {target.shape}."
        )


def mse_loss(pred, target):
    """mean((pred - target)^2)."""
    if pred.shape != target.shape:
        _same_shape("MSE", pred, target)
    return _backend.active.mse_forward(pred, target)


def _mse_kernel(tensor, grad, *, needs=None):
    pred, target = tensor._parents
    if needs is None:
        return _backend.active.mse_backward(pred._data, target._data, grad)
    return _backend.active.mse_backward(pred._data, target._data, grad, *needs)


def _mse_pred(g, out, pred, target):
    n = np.size(_values(pred))
    return (pred - target) * (g * (2.0 / n if n else 0.0))


defop("mse_loss", mse_loss,
      (_mse_pred, lambda g, out, pred, target: -_mse_pred(g, out, pred, target)),
      module="loss", nin=2, kernel=_mse_kernel, backward_name="mse_backward")


def mae_loss(pred, target):
    """``mean(|pred - target|)``."""
    _same_shape("MAE", pred, target)
    return _mean_of_all(np.abs(pred - target))


def _mae_pred(g, out, pred, target):
    n = max(np.size(_values(pred)), 1)
    return np.sign(_values(pred) - _values(target)) * (g * (1.0 / n))


defop("mae_loss", mae_loss,
      (_mae_pred, lambda g, out, pred, target: -_mae_pred(g, out, pred, target)),
      module="loss", nin=2, backward_name="mae_backward")


# ----------------------------------------------------------------------------- classification
def _reduce(per_element, reduction: str):
    if reduction == "none":
        return per_element
    total = np.sum(per_element)
    if reduction == "sum":
        return total
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / per_element.size if per_element.size else np.asarray(np.nan)


def _scale(g, n: int, reduction: str):
    """The per-row (or per-element) factor of a reduction's adjoint."""
    if reduction == "mean":
        return g * (1.0 / n if n else 0.0)
    if reduction == "sum":
        return g
    return g


def _cross_entropy_forward(z, reduction="mean", target=None):
    n = z.shape[0]
    shifted = z - np.max(z, axis=1, keepdims=True)
    log_sum = np.log(np.sum(np.exp(shifted), axis=1))
    if target.ndim == 1:
        per_row = log_sum - shifted[np.arange(n), target]
    else:
        per_row = np.sum(target * (log_sum[:, None] - shifted), axis=1)
    return _reduce(per_row, reduction)


def _log_softmax_any(z):
    if is_array(z):
        shifted = z - np.max(z, axis=1, keepdims=True)
        return shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    from .activation import log_softmax

    return log_softmax(z, axis=1)


def _row_scale(g, n, reduction):
    s = _scale(g, n, reduction)
    return s[:, None] if reduction == "none" else s


def _cross_entropy_vjp(g, out, z, *maybe_target, reduction="mean", target=None, needs):
    """d z = (softmax(z) * sum_c t - t) * s; d t = -log_softmax(z) * s (s: the reduction's factor)."""
    t = maybe_target[0] if maybe_target else target
    tv = _values(t)
    n = np.shape(z)[0]
    s = _row_scale(g, n, reduction)
    log_p = _log_softmax_any(z)
    d_z = d_t = None
    if needs[0]:
        if tv.ndim == 1:  # class labels stand for one-hot rows
            onehot = np.zeros(np.shape(z), dtype=_values(z).dtype)
            onehot[np.arange(n), tv] = 1
            d_z = (np.exp(log_p) - onehot) * s
        else:
            d_z = (np.exp(log_p) * np.sum(t, axis=1, keepdims=True) - t) * s
    if len(needs) > 1 and needs[1]:
        d_t = -log_p * s
    return (d_z, d_t) if len(needs) > 1 else (d_z,)


def _cross_entropy_kernel(tensor, grad, *, needs=None):
    parents = tensor._parents
    if needs is None:
        needs = (True,) * len(parents)
    logits = parents[0]._data
    reduction = tensor._extra["reduction"]
    target = parents[1]._data if len(parents) == 2 else tensor._extra["target"]
    d_logits = _backend.active.cross_entropy_backward(logits, target, grad, reduction) if needs[0] else None
    if len(parents) == 1:
        return (d_logits,)
    d_target = None
    if needs[1]:
        grad = np.asarray(grad)
        scale = cross_entropy_scale(grad, logits.shape[0], reduction, np.result_type(logits.dtype, grad.dtype))
        d_target = -_log_softmax_any(logits) * scale
    return (d_logits, d_target)


defop("cross_entropy", None, _cross_entropy_vjp, module="loss", public=False,
      kernel=_cross_entropy_kernel, params=["reduction", "target"])


def cross_entropy(logits, labels, reduction: str = "mean"):
    """Cross-entropy of (N, C) ``logits`` against class labels or per-class targets.

    ``labels`` is an integer array (or tensor, or list) of shape (N,) with values in ``[0, C)``,
    or a one-hot / probability target of ``logits``' shape.  Per row,
    ``L_i = logsumexp(z_i) - z_i[y_i]`` (labels) or ``-sum_c t_ic log softmax(z_i)_c``
    (targets), computed from ``z - max(z)`` so that logits of 1e4 in float32 stay finite.
    ``reduction`` is "mean" (over N), "sum" or "none" (shape (N,)).  The backward pass is the
    fused ``cross_entropy_backward`` kernel: ``softmax(z) - onehot(y)``, scaled.  Labels out of
    range or not integers are a ``ValueError`` naming the first bad one.  A target *tensor*
    that requires gradients receives ``-log softmax(z)``, scaled.  The labels or targets are
    copied when recorded.
    """
    check_reduction(reduction)
    is_target_tensor = hasattr(labels, "_data")
    (logits,) = as_tensors((logits,))
    target = labels._data if is_target_tensor else labels
    z = logits._data
    label_index, dense = cross_entropy_targets(z, target)
    kept = owned_array(label_index if dense is None else dense)
    data = _cross_entropy_forward(z, reduction, kept)
    parents = (logits,)
    if dense is not None and is_target_tensor:
        parents = (logits, labels)
    return _new_node(data, OPS["cross_entropy"].backward, parents, {"reduction": reduction, "target": kept})


def _bce_forward(z, t, reduction="mean"):
    if np.shape(z) != np.shape(t):
        raise ValueError(
            "binary_cross_entropy_with_logits needs logits and targets of one shape, "
            f"got {np.shape(z)} and {np.shape(t)}"
        )
    check_reduction(reduction)
    per_element = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    return _reduce(per_element, reduction)


def _bce_vjp(g, out, z, t, reduction="mean", needs=(True, True)):
    s = _scale(g, np.size(_values(z)), reduction)
    d_z = d_t = None
    if needs[0]:
        if is_array(z):
            e = np.exp(-np.abs(z))
            sig = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
        else:
            from .activation import sigmoid

            sig = sigmoid(z)
        d_z = (sig - t) * s
    if needs[1]:
        d_t = -z * s
    return (d_z, d_t)


def binary_cross_entropy_with_logits(logits, targets, reduction: str = "mean"):
    """Binary cross-entropy of ``sigmoid(logits)`` against ``targets`` (same shape, values in [0, 1]).

    Per element ``max(z, 0) - z t + log(1 + exp(-|z|))``: never ``log(0)`` nor an overflowing
    ``exp``.  ``reduction`` is "mean", "sum" or "none".  Gradients: ``(sigmoid(z) - t)`` for the
    logits, ``-z`` for a target tensor that requires them, both scaled by the reduction.
    """
    return _bce_forward(logits, targets, reduction)


defop("binary_cross_entropy_with_logits", binary_cross_entropy_with_logits, _bce_vjp, module="loss",
      nin=2)

__all__ = export(globals(), "loss") + ["cross_entropy"]

from ._backend import graph as _graph  # noqa: E402

_new_node = _graph.new_node
