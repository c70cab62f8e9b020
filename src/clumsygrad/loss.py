"""Loss functions, each one registry entry: forward and the VJP formula side by side.

Regression losses take a prediction and a target of the same shape; classification losses take
logits and labels or targets.  Operands may be tensors or arrays (arrays become constants).
"""
from __future__ import annotations

import numpy as np

from . import _backend, profiler as _profiler
from ._adjoint import is_array, owned_array
from ._kernels.pure import check_reduction, cross_entropy_scale, cross_entropy_targets
from ._kernels.pure import mean_of_all as _mean_of_all
from ._registry import OPS, as_tensors, defop, export


def _values(x):
    return x if is_array(x) else x._data


def _same_shape(what: str, pred: np.ndarray, target: np.ndarray) -> None:
    if pred.shape != target.shape:
        raise ValueError(
            f"Predicted and target tensors must have the same shape for {what} loss. "
            f"Got {pred.shape} and {target.shape}."
        )


def mse_loss(pred, target):
    """mean((pred - target)^2)."""
    return _backend.active.mse_forward(pred, target)  # it checks the shapes, in mse_loss's words


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
      module="loss", nin=2, kernel=_mse_kernel, backward_name="mse_backward", typed="MSE",
      forward_kernel="mse_forward")


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
    d_logits = None
    if needs[0]:
        probs = tensor._extra.get("probs")
        if probs is not None:  # the forward kept the softmax and the checked labels
            d_logits = _backend.active.probs_minus_onehot(probs, target, grad, reduction)
        else:
            d_logits = _backend.active.cross_entropy_backward(logits, target, grad, reduction)
    if len(parents) == 1:
        return (d_logits,)
    d_target = None
    if needs[1]:
        grad = np.asarray(grad)
        scale = cross_entropy_scale(grad, logits.shape[0], reduction, np.result_type(logits.dtype, grad.dtype))
        d_target = -_log_softmax_any(logits) * scale
    return (d_logits, d_target)


defop("cross_entropy", None, _cross_entropy_vjp, module="loss", public=False,
      kernel=_cross_entropy_kernel, params=["reduction", "target"], typed="CROSS_ENTROPY")


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
    if isinstance(logits, _Node) and not isinstance(labels, _Node):  # class labels: one compiled pass
        fast = _backend.active.cross_entropy_forward(logits._data, labels, reduction)
        if fast is not None:
            data, probs, kept = fast
            return _new_node(data, _ce_backward, (logits,),
                             {"reduction": reduction, "target": kept, "probs": probs})
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

# ----------------------------------------------------------------------------- PyTorch's losses
# (issue 14's breadth: nll_loss, huber_loss, smooth_l1_loss, kl_div with torch.nn.functional's
# definitions; each a registry entry like the losses above)
def _reduction_factor(g, reduction: str, size: int, batch: int = 1):
    """The factor a reduction's adjoint multiplies each element's gradient by."""
    if reduction == "mean":
        return g * (1.0 / size if size else np.nan)
    if reduction == "batchmean":
        return g * (1.0 / batch if batch else np.nan)
    return g


def _nll_checked(x, target, weight, ignore_index):
    """The labels as an intp array of shape (N, d...) for log-probabilities (N, C, d...), checked,
    and the weight of each label (0 where ignored)."""
    target = np.asarray(getattr(target, "_data", target))
    if x.ndim < 1:
        raise ValueError(f"nll_loss needs log-probabilities of shape (N, C) or (C,), got shape {x.shape}")
    batched = x.ndim >= 2
    expected = (x.shape[0],) + x.shape[2:] if batched else ()
    if target.shape != expected:
        raise ValueError(
            f"nll_loss: target of shape {expected} expected for input of shape {x.shape}, got {target.shape}"
        )
    if target.dtype.kind not in "iu":
        if target.dtype.kind != "f" or not np.all(target == np.round(target)):
            raise TypeError(f"nll_loss: target must hold integer class labels, got dtype {target.dtype}")
    labels = target.astype(np.intp)
    n_classes = x.shape[1] if batched else x.shape[0]
    kept = labels != ignore_index
    bad = kept & ((labels < 0) | (labels >= n_classes))
    if bad.any():
        raise ValueError(f"nll_loss: label {labels[bad].flat[0]} is out of range for {n_classes} classes")
    safe = np.where(kept, labels, 0)
    if weight is None:
        w = kept.astype(x.dtype)
    else:
        weight = np.asarray(getattr(weight, "_data", weight), dtype=x.dtype)
        if weight.shape != (n_classes,):
            raise ValueError(f"nll_loss: weight of shape ({n_classes},) expected, got {weight.shape}")
        w = np.where(kept, weight[safe], 0).astype(x.dtype)
    return safe, w


def _nll_onehot(shape, labels, w, dtype):
    """An array of the input's shape with each label's weight at its class (the class axis is 1)."""
    batched = len(shape) >= 2
    n_classes = shape[1] if batched else shape[0]
    classes = np.arange(n_classes).reshape((1, -1) + (1,) * (len(shape) - 2) if batched else (-1,))
    picked = np.expand_dims(labels, 1) if batched else labels
    onehot = (classes == picked) * (np.expand_dims(w, 1) if batched else w)
    onehot = onehot.astype(dtype)
    onehot.flags.writeable = False
    return onehot


def nll_loss(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean"):
    """Negative log-likelihood of log-probabilities ``input`` (N, C) or (N, C, d1, ...) (or (C,))
    at integer class labels ``target`` (N,) or (N, d1, ...), as ``torch.nn.functional.nll_loss``.

    Per element ``-weight[y] * input[n, y]``, 0 where ``y == ignore_index``; ``reduction`` "mean"
    divides the sum by the sum of the labels' weights, "sum" or "none" (shape of ``target``).
    The labels and weights are constants (copied when recorded).
    """
    check_reduction(reduction)
    labels, w = _nll_checked(input, target, weight, ignore_index)
    if input.ndim >= 2:  # picked, not multiplied by a one-hot (0 * -inf is nan)
        picked = np.squeeze(np.take_along_axis(input, np.expand_dims(labels, 1), axis=1), 1)
    else:
        picked = input[labels]
    per_element = np.asarray(-(picked * w))
    if reduction == "none":
        return per_element
    total = np.sum(per_element)
    if reduction == "sum":
        return total
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(total / np.sum(w))


def _nll_vjp(g, out, x, target, weight=None, ignore_index=-100, reduction="mean"):
    xv = _values(x)
    labels, w = _nll_checked(xv, target, weight, ignore_index)
    onehot = _nll_onehot(xv.shape, labels, w, xv.dtype)
    if reduction == "none":
        return -(np.expand_dims(g, 1) if xv.ndim >= 2 else g) * onehot
    if reduction == "mean":
        total = float(np.sum(w))
        g = g * (1.0 / total if total else np.nan)
    return -g * onehot


def _nll_owned(out, x, target, weight=None, ignore_index=-100, reduction="mean"):
    target = owned_array(np.asarray(getattr(target, "_data", target)))
    if weight is not None:
        weight = owned_array(np.asarray(getattr(weight, "_data", weight)))
    return {"target": target, "weight": weight}


defop("nll_loss", nll_loss, (_nll_vjp,), module="loss", save=_nll_owned)


def _pair_checked(what, x, y, reduction):
    check_reduction(reduction)
    if np.shape(x) != np.shape(y):
        raise ValueError(f"{what} needs input and target of one shape, got {np.shape(x)} and {np.shape(y)}")


def _reduce_elements(per_element, reduction):
    if reduction == "none":
        return per_element
    total = np.sum(per_element)
    if reduction == "sum":
        return np.asarray(total)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(total / per_element.size if per_element.size else np.nan)


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0):
    """Huber loss of ``d = input - target`` (one shape), as ``torch.nn.functional.huber_loss``:
    ``0.5 d^2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``; "mean", "sum" or "none"."""
    _pair_checked("huber_loss", input, target, reduction)
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta!r}")
    d = input - target
    a = np.abs(d)
    return _reduce_elements(np.where(a < delta, 0.5 * d * d, delta * (a - 0.5 * delta)), reduction)


def _huber_input(g, out, x, y, reduction="mean", delta=1.0):
    return _reduction_factor(g, reduction, np.size(_values(x))) * np.clip(x - y, -delta, delta)


defop("huber_loss", huber_loss,
      (_huber_input,
       lambda g, out, x, y, reduction="mean", delta=1.0: -_huber_input(g, out, x, y, reduction, delta)),
      module="loss", nin=2)


def smooth_l1_loss(input, target, reduction: str = "mean", beta: float = 1.0):
    """Smooth L1 loss of ``d = input - target`` (one shape), as ``torch.nn.functional.smooth_l1_loss``:
    ``0.5 d^2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (``beta=0``: ``|d|``)."""
    _pair_checked("smooth_l1_loss", input, target, reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta cannot be negative, got {beta!r}")
    d = input - target
    a = np.abs(d)
    if beta == 0:
        return _reduce_elements(a, reduction)
    return _reduce_elements(np.where(a < beta, 0.5 * d * d / beta, a - 0.5 * beta), reduction)


def _smooth_l1_input(g, out, x, y, reduction="mean", beta=1.0):
    s = _reduction_factor(g, reduction, np.size(_values(x)))
    if beta == 0:
        return s * np.sign(_values(x) - _values(y))
    return s * np.clip((x - y) * (1.0 / beta), -1.0, 1.0)


defop("smooth_l1_loss", smooth_l1_loss,
      (_smooth_l1_input,
       lambda g, out, x, y, reduction="mean", beta=1.0: -_smooth_l1_input(g, out, x, y, reduction, beta)),
      module="loss", nin=2)


def kl_div(input, target, reduction: str = "mean", log_target: bool = False):
    """Kullback-Leibler divergence as ``torch.nn.functional.kl_div``: ``input`` holds
    log-probabilities, ``target`` probabilities (log-probabilities with ``log_target=True``), one
    shape; per element ``target (log target - input)`` (0 where ``target`` is 0).  ``reduction``
    is "mean" (over every element), "batchmean" (the sum over ``input.shape[0]``: the true KL
    divergence per sample), "sum" or "none"."""
    if reduction not in ("mean", "batchmean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'batchmean', 'sum' or 'none', got {reduction!r}")
    if np.shape(input) != np.shape(target):
        raise ValueError(
            f"kl_div needs input and target of one shape, got {np.shape(input)} and {np.shape(target)}"
        )
    if log_target:
        per_element = np.exp(target) * (target - input)
    else:
        positive = target > 0  # xlogy(t, t) - t * input: 0 where t is 0, NaN where t < 0 (as PyTorch)
        xlogx = np.where(positive, target * np.log(np.where(positive, target, 1)),
                         np.where(target == 0, 0.0, np.nan))
        per_element = xlogx - target * input
    if reduction == "batchmean":
        n = np.shape(input)[0] if np.ndim(input) else 1
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(np.sum(per_element) / n if n else np.nan)
    return _reduce_elements(per_element, reduction)


def _kl_scale(g, x, reduction):
    xv = _values(x)
    return _reduction_factor(g, reduction, xv.size, xv.shape[0] if xv.ndim else 1)


def _kl_input(g, out, x, t, reduction="mean", log_target=False):
    return -_kl_scale(g, x, reduction) * (np.exp(t) if log_target else t)


def _kl_target(g, out, x, t, reduction="mean", log_target=False):
    s = _kl_scale(g, x, reduction)
    if log_target:
        return s * (np.exp(t) * (t - x + 1))
    positive = _values(t) > 0  # t log t has no finite slope at 0: 0 there, as where t > 0 is used
    return s * np.where(positive, np.log(np.where(positive, t, 1.0)) + 1 - x, 0.0)


defop("kl_div", kl_div, (_kl_input, _kl_target), module="loss", nin=2)


__all__ = export(globals(), "loss") + ["cross_entropy"]

from ._backend import graph as _graph  # noqa: E402

_new_node = _graph.new_node
_Node = _graph.Node
_ce_backward = OPS["cross_entropy"].backward
# The compiled node runs the common call (logits tensor, class labels, reduction) in C; every
# other call, and every call under clumsygrad.profile(), runs the Python function above.
cross_entropy = _graph.cross_entropy_function(cross_entropy, _ce_backward, _backend, _profiler)
