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
    grad = np.asarray(grad)
    # The dtype spelled out: NumPy 1.x would let a 0-d float64 grad take float32 from `sign`.
    dtype = np.result_type(sign.dtype, grad.dtype)
    d_pred = np.multiply(sign, np.multiply(1.0 / max(sign.size, 1), grad, dtype=dtype), dtype=dtype)
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


# --------------------------------------------------------------------------- indexing, joins, selection, classification
# The ops live in clumsygrad.shape, clumsygrad.selection, clumsygrad.activation and clumsygrad.loss.
def _row_indices(key, ndim: int):
    """The key as a 1-D integer array when it selects rows along axis 0 (``x[[3, 1, 3]]``), else None."""
    if type(key) is tuple and len(key) == 1:
        key = key[0]
    if ndim == 0 or not isinstance(key, (np.ndarray, list)):
        return None
    rows = np.asarray(key)
    if rows.ndim != 1:
        return None
    if rows.size == 0 and isinstance(key, list):
        return np.zeros(0, dtype=np.intp)  # NumPy reads [] as an empty integer index
    return rows if rows.dtype.kind in "iu" else None


def _may_repeat(key) -> bool:
    """True when ``key`` holds an integer array (or list), which may name an element twice."""
    for part in key if type(key) is tuple else (key,):
        if isinstance(part, (list, np.ndarray)) and np.asarray(part).dtype.kind != "b":
            return True
    return False


def getitem_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = x[key]: dx = zeros of x's shape with grad added in at ``key``.

    ``tensor._extra`` holds ``key`` and ``original_shape`` (as in clumsygrad 1.0.0).  An element
    selected several times receives the sum of its gradients: a 1-D integer-array key (the
    backward pass of an embedding lookup) goes through the ``scatter_add`` kernel, other keys
    with integer arrays through ``np.add.at``; keys without them select each element once.
    """
    extra = tensor._extra
    key = extra["key"]
    shape = tuple(extra["original_shape"])
    grad = np.asarray(grad)
    rows = _row_indices(key, len(shape))
    if rows is not None:
        return (_backend.active.scatter_add(grad, rows, shape),)
    out = np.zeros(shape, dtype=np.result_type(np.asarray(grad).dtype, np.float32))
    if _may_repeat(key):
        np.add.at(out, key, grad)
    else:
        out[key] = grad
    return (out,)


def concatenate_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = concatenate(x_1 .. x_n, axis): dx_i = the slice of grad that x_i filled."""
    extra = tensor._extra
    bounds = np.cumsum(extra["sizes"])[:-1]
    return tuple(np.split(np.asarray(grad), bounds, axis=extra["axis"]))


def stack_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = stack(x_1 .. x_n, axis): dx_i = grad[..., i, ...] (index i along ``axis``)."""
    return tuple(np.moveaxis(np.asarray(grad), tensor._extra["axis"], 0))


def _extreme_backward(tensor: Tensor, grad: np.ndarray, first_index) -> GradientTuple:
    """Route ``grad`` to the element ``first_index`` (np.argmax or np.argmin) picks in each reduced block."""
    from ._kernels.pure import normalize_axes

    x = tensor._parents[0]._data
    axes = normalize_axes(tensor._extra.get("axis"), x.ndim)
    grad = np.asarray(grad)
    kept = tuple(d for i, d in enumerate(x.shape) if i not in axes)
    reduced = tuple(x.shape[a] for a in axes)
    block = int(np.prod(reduced, dtype=np.int64))
    if grad.size != int(np.prod(kept, dtype=np.int64)):
        raise ValueError(
            f"gradient of shape {grad.shape} does not fit a reduction of {x.shape} over axes {axes}"
        )
    moved_axes = tuple(range(x.ndim - len(axes), x.ndim))
    blocks = np.moveaxis(x, axes, moved_axes).reshape(kept + (block,))
    winners = first_index(blocks, axis=-1)[..., None]
    out = np.zeros(kept + (block,), dtype=np.result_type(np.asarray(grad).dtype, np.float32))
    np.put_along_axis(out, winners, grad.reshape(kept + (1,)), axis=-1)
    return (np.moveaxis(out.reshape(kept + reduced), moved_axes, axes),)


def max_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = max(x, axis, keepdims): dx = grad at the first maximal element of each reduced block, else 0.

    "First" is in C order over the reduced axes (``np.argmax``); ties are not split.
    """
    return _extreme_backward(tensor, grad, np.argmax)


def min_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = min(x, axis, keepdims): dx = grad at the first minimal element of each reduced block, else 0."""
    return _extreme_backward(tensor, grad, np.argmin)


def _pick_backward(tensor: Tensor, grad: np.ndarray, first: np.ndarray, needs) -> GradientTuple:
    """Gradients of an elementwise choice: ``grad`` to the first parent where ``first``, else to the second."""
    a, b = tensor._parents
    grad = np.asarray(grad)
    reduce = _backend.active.reduce_to_shape
    return (
        reduce(np.where(first, grad, 0), a._shape) if needs[0] else None,
        reduce(np.where(first, 0, grad), b._shape) if needs[1] else None,
    )


@skips_unneeded
def maximum_backward(tensor: Tensor, grad: np.ndarray, *, needs=(True, True)) -> GradientTuple:
    r"""z = maximum(a, b), broadcast: da = grad where a >= b or a is NaN, db = grad elsewhere (ties go to a)."""
    a, b = tensor._parents
    first = np.greater_equal(a._data, b._data) | np.isnan(a._data)  # NumPy's NaN comes from a
    return _pick_backward(tensor, grad, first, needs)


@skips_unneeded
def minimum_backward(tensor: Tensor, grad: np.ndarray, *, needs=(True, True)) -> GradientTuple:
    r"""z = minimum(a, b), broadcast: da = grad where a <= b or a is NaN, db = grad elsewhere (ties go to a)."""
    a, b = tensor._parents
    first = np.less_equal(a._data, b._data) | np.isnan(a._data)  # NumPy's NaN comes from a
    return _pick_backward(tensor, grad, first, needs)


@skips_unneeded
def where_backward(tensor: Tensor, grad: np.ndarray, *, needs=(True, True)) -> GradientTuple:
    r"""z = where(cond, a, b), broadcast: da = grad where cond, db = grad where not cond."""
    return _pick_backward(tensor, grad, tensor._extra["condition"], needs)


def log_softmax_backward(tensor: Tensor, grad: np.ndarray) -> GradientTuple:
    r"""z = x - logsumexp(x, axis): dx = grad - exp(z) * sum(grad, axis, keepdims=True)."""
    axis = tensor._extra.get("axis", -1)
    grad = np.asarray(grad)
    return (grad - np.exp(tensor._data) * np.sum(grad, axis=axis, keepdims=True),)


@skips_unneeded
def cross_entropy_backward(tensor: Tensor, grad: np.ndarray, *, needs=(True, True)) -> GradientTuple:
    r"""L_i = -sum_c t_ic log softmax(z_i)_c, reduced by mean/sum/none: dz_i = (softmax(z_i) sum_c t_ic - t_i) s_i.

    ``s_i`` is ``grad / N`` (mean), ``grad`` (sum) or ``grad[i]`` (none); class labels ``y`` stand
    for one-hot ``t``, giving ``softmax(z) - onehot(y)``.  A target tensor that requires
    gradients (the second parent, when there is one) gets ``dt_i = -log softmax(z_i) s_i``.
    """
    from ._kernels.pure import cross_entropy_scale

    parents = tensor._parents
    logits = parents[0]._data
    reduction = tensor._extra["reduction"]
    target = parents[1]._data if len(parents) == 2 else tensor._extra["target"]
    d_logits = _backend.active.cross_entropy_backward(logits, target, grad, reduction) if needs[0] else None
    if len(parents) == 1:
        return (d_logits,)
    d_target = None
    if needs[1]:
        scale = cross_entropy_scale(np.asarray(grad), logits.shape[0], reduction, np.result_type(logits.dtype, np.asarray(grad).dtype))
        shifted = logits - np.max(logits, axis=1, keepdims=True)
        log_p = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
        d_target = -log_p * scale
    return (d_logits, d_target)


@skips_unneeded
def binary_cross_entropy_with_logits_backward(tensor: Tensor, grad: np.ndarray, *,
                                               needs=(True, True)) -> GradientTuple:
    r"""L = max(z, 0) - z t + log(1 + e^-|z|), reduced: dz = (sigmoid(z) - t) s, dt = -z s.

    ``s`` is ``grad / n`` (mean over the n elements), ``grad`` (sum) or ``grad`` elementwise (none).
    """
    z_tensor, t_tensor = tensor._parents
    z, t = z_tensor._data, t_tensor._data
    grad = np.asarray(grad)
    reduction = tensor._extra["reduction"]
    scale = grad / max(z.size, 1) if reduction == "mean" else grad
    d_z = None
    if needs[0]:
        e = np.exp(-np.abs(z))
        sig = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
        d_z = (sig - t) * scale
    return (d_z, -z * scale if needs[1] else None)


__all__ += [
    "getitem_backward",
    "concatenate_backward",
    "stack_backward",
    "max_backward",
    "min_backward",
    "maximum_backward",
    "minimum_backward",
    "where_backward",
    "log_softmax_backward",
    "cross_entropy_backward",
    "binary_cross_entropy_with_logits_backward",
]
