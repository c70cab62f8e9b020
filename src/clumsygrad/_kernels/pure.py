"""NumPy reference implementation of the kernel interface.

Every function here has a compiled twin of the same name and signature in
``clumsygrad._kernels.native``; the two must agree to float rounding on every
input.  This module imports nothing compiled, so it is always available.  It holds
the reference kernels only; the checks and helpers they share with the compiled
twins live in ``checks`` (and are importable from here under the same names).

Rules shared by all kernels (``docs/kernels.md``):

* inputs may have any memory layout (C, Fortran, sliced, negative strides,
  zero-size, 0-d);
* the result dtype is ``np.result_type(*array_inputs, np.float32)``: float32 stays
  float32, float64 stays float64, integers and float16 are promoted;
* shapes that do not fit raise ``ValueError`` naming them; non-numeric or complex
  dtypes raise ``TypeError`` naming the dtype.
"""
from __future__ import annotations

import operator

import numpy as np

from .checks import (  # noqa: F401  (re-exported: callers import these from pure)
    REDUCTIONS,
    adam_coefficients,
    as_double,
    as_shape,
    check_adam_arrays,
    check_reduction,
    check_same_shape,
    check_scatter,
    cross_entropy_scale,
    cross_entropy_targets,
    matmul_shapes,
    mean_of_all,
    normalize_axes,
    reduced_shape,
    reduction_axes,
    result_dtype,
    sum_without_overflow,
)

__all__ = [
    "reduce_to_shape",
    "mul_reduce_to_shape",
    "expand_to_shape",
    "softmax_backward",
    "matmul_backward",
    "softmax_forward",
    "mse_forward",
    "mse_backward",
    "relu_backward",
    "sgd_update",
    "scatter_add",
    "cross_entropy_backward",
    "adam_update",
]


# --------------------------------------------------------------------------- kernels
def reduce_to_shape(grad, shape) -> np.ndarray:
    """Sum ``grad`` over the axes broadcasting added or stretched so it has ``shape``.

    May return ``grad`` itself (or a view of it) when no reduction is needed.
    """
    grad = np.asarray(grad)
    shape = as_shape(shape)
    dtype = result_dtype(grad)
    axes = reduction_axes(grad.shape, shape)
    if not axes:
        return grad.astype(dtype, copy=False).reshape(shape)
    return sum_without_overflow(grad, axes, dtype).reshape(shape)


def mul_reduce_to_shape(grad, other, shape) -> np.ndarray:
    """``reduce_to_shape(grad * other, shape)``; ``other`` broadcasts to ``grad.shape``."""
    grad = np.asarray(grad)
    other = np.asarray(other)
    shape = as_shape(shape)
    dtype = result_dtype(grad, other)
    reduction_axes(grad.shape, other.shape)  # other must broadcast to grad, not widen it
    axes = reduction_axes(grad.shape, shape)
    product = np.multiply(grad, other, dtype=dtype)
    if not axes:
        return np.asarray(product).reshape(shape)  # a 0-d product is a NumPy scalar
    return sum_without_overflow(product, axes, dtype).reshape(shape)


def expand_to_shape(grad, input_shape, axis, keepdims, scale) -> np.ndarray:
    """Gradient of ``sum``/``mean``: ``grad`` broadcast back over the reduced ``axis``, times ``scale``.

    ``grad`` has the shape of the reduction's result; the return value is a new
    C-contiguous array of ``input_shape``.
    """
    grad = np.asarray(grad)
    input_shape = as_shape(input_shape)
    dtype = result_dtype(grad)
    axes = normalize_axes(axis, len(input_shape))
    expected = reduced_shape(input_shape, axes, bool(keepdims))
    if grad.shape != expected:
        raise ValueError(
            f"gradient of shape {grad.shape} does not fit a reduction of {input_shape} "
            f"over axis {axis} (keepdims={bool(keepdims)}), which has shape {expected}"
        )
    scale = as_double(scale)  # None or a string is a TypeError, as in the compiled twin
    kept = reduced_shape(input_shape, axes, True)
    out = np.empty(input_shape, dtype=dtype)
    np.multiply(grad.reshape(kept), dtype.type(scale), out=out, dtype=dtype)  # in dtype on NumPy 1.x too
    return out


def softmax_backward(s, grad, axis) -> np.ndarray:
    """``s * (grad - sum(s * grad, axis, keepdims=True))`` for a softmax output ``s``."""
    s = np.asarray(s)
    grad = np.asarray(grad)
    dtype = result_dtype(s, grad)
    check_same_shape("softmax_backward", "the output and gradient", s, grad)
    (ax,) = normalize_axes(operator.index(axis), max(s.ndim, 1))
    s = s.astype(dtype, copy=False)
    if s.ndim == 0:  # a softmax over a single element
        return np.asarray(s * (grad - s * grad))  # 0-d arithmetic gives a NumPy scalar
    sg = np.multiply(s, grad, dtype=dtype)
    return s * (grad - np.sum(sg, axis=ax, keepdims=True))


def matmul_backward(x, y, grad, need_x=True, need_y=True) -> tuple:
    """Gradients ``(gx, gy)`` of ``x @ y``, shaped like ``x`` and ``y``.

    Batch axes that broadcasting added or stretched are summed back.  A gradient whose
    ``need_*`` flag is false is not computed and returned as None.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    grad = np.asarray(grad)
    dtype = result_dtype(x, y, grad)
    expected = matmul_shapes(x.shape, y.shape)
    if grad.shape != expected:
        raise ValueError(
            f"gradient of shape {grad.shape} does not fit {x.shape} @ {y.shape}, "
            f"which has shape {expected}"
        )
    x = x.astype(dtype, copy=False)
    y = y.astype(dtype, copy=False)
    grad = grad.astype(dtype, copy=False)
    gx = reduce_to_shape(np.matmul(grad, np.swapaxes(y, -1, -2)), x.shape) if need_x else None
    gy = reduce_to_shape(np.matmul(np.swapaxes(x, -1, -2), grad), y.shape) if need_y else None
    return gx, gy


# --------------------------------------------------------------------------- fused forward/backward steps
def softmax_forward(x, axis) -> np.ndarray:
    """``exp(x - max(x, axis)) / sum(exp(x - max(x, axis)), axis)``, an array of ``x.shape``.

    ``axis`` is one int (negatives allowed); a 0-d ``x`` takes axis 0 or -1 and gives 1.0.
    """
    x = np.asarray(x)
    dtype = result_dtype(x)
    (ax,) = normalize_axes(operator.index(axis), max(x.ndim, 1))
    if x.ndim and x.shape[ax] == 0:  # NumPy: "zero-size array to reduction operation maximum"
        raise ValueError(f"softmax_forward over axis {ax} of shape {x.shape}, which has no elements")
    x = x.astype(dtype, copy=False)
    e = np.exp(x - np.maximum.reduce(x, axis=ax, keepdims=True))
    e /= np.add.reduce(e, axis=ax, keepdims=True)
    return np.asarray(e)  # 0-d arithmetic gives a NumPy scalar


def mse_forward(pred, target) -> np.ndarray:
    """``mean((pred - target)^2)`` as a 0-d array (NaN when empty); shapes must match."""
    pred = np.asarray(pred)
    target = np.asarray(target)
    dtype = result_dtype(pred, target)
    check_same_shape("mse_forward", "the prediction and target", pred, target)
    diff = np.subtract(pred, target, dtype=dtype)
    return np.asarray(mean_of_all(diff * diff), dtype=dtype)


def mse_backward(pred, target, grad, need_pred=True, need_target=True) -> tuple:
    """Gradients ``(d_pred, d_target)`` of ``mean((pred - target)^2)`` for a one-element ``grad``.

    ``d_pred = 2 (pred - target) grad / n`` and ``d_target = -d_pred``, both of ``pred.shape``;
    a gradient whose ``need_*`` flag is false is not computed and returned as None.
    """
    pred = np.asarray(pred)
    target = np.asarray(target)
    grad = np.asarray(grad)
    dtype = result_dtype(pred, target, grad)
    check_same_shape("mse_backward", "the prediction and target", pred, target)
    if grad.size != 1:
        raise ValueError(
            f"mse_backward needs a one-element gradient (the loss is a scalar), got shape {grad.shape}"
        )
    d_pred = np.asarray(np.subtract(pred, target, dtype=dtype))
    d_pred *= 2.0 / max(d_pred.size, 1)
    d_pred *= grad.reshape(())
    return (d_pred if need_pred else None, np.asarray(-d_pred) if need_target else None)


def relu_backward(y, grad) -> np.ndarray:
    """``grad * (y > 0)`` for a relu output ``y`` of ``grad``'s shape."""
    y = np.asarray(y)
    grad = np.asarray(grad)
    dtype = result_dtype(y, grad)
    check_same_shape("relu_backward", "the output and gradient", y, grad)
    return np.asarray(np.multiply(grad, y > 0, dtype=dtype))


def sgd_update(data, grad, lr) -> None:
    """``data -= lr * grad`` in place (NumPy's promotion and casting); shapes must match."""
    if not isinstance(data, np.ndarray):
        raise TypeError(f"sgd_update updates an ndarray in place, got {type(data).__name__}")
    grad = np.asarray(grad)
    check_same_shape("sgd_update", "the parameter and gradient", data, grad)
    data -= lr * grad


# --------------------------------------------------------------------------- scatter-add and cross-entropy
def scatter_add(grad, indices, shape) -> np.ndarray:
    """Zeros of ``shape`` with ``out[indices[i]] += grad[i]`` for every ``i``, in order.

    The backward pass of ``x[indices]`` along axis 0 (an embedding lookup): ``indices`` is a 1-D
    integer array (negatives count from the end, repeats add up), ``grad`` has shape
    ``(len(indices),) + shape[1:]``.  The result dtype is ``result_dtype(grad)``.
    """
    grad = np.asarray(grad)
    indices = np.asarray(indices)
    shape = as_shape(shape)
    dtype = result_dtype(grad)
    check_scatter(grad.shape, indices, shape)
    out = np.zeros(shape, dtype=dtype)
    np.add.at(out, indices, grad)
    return out


def cross_entropy_backward(logits, target, grad, reduction) -> np.ndarray:
    """Gradient of cross-entropy with respect to (N, C) ``logits``: ``(softmax(z) sum(t) - t) * s``.

    ``target`` is class labels (N,) (read as one-hot rows) or targets (N, C); ``s`` per row is
    ``grad / N`` (``reduction="mean"``), ``grad`` ("sum") or ``grad[i]`` ("none", ``grad`` of
    shape (N,)).  Returns a new (N, C) array in ``result_dtype(logits, grad[, targets])``.
    """
    logits = np.asarray(logits)
    grad = np.asarray(grad)
    labels, dense = cross_entropy_targets(logits, target)
    dtype = result_dtype(logits, grad) if dense is None else result_dtype(logits, grad, dense)
    n = logits.shape[0]
    scale = cross_entropy_scale(grad, n, reduction, dtype)
    z = logits.astype(dtype, copy=False)
    e = np.exp(z - np.max(z, axis=1, keepdims=True))
    p = e / np.sum(e, axis=1, keepdims=True)
    if labels is not None:
        out = p * scale
        out[np.arange(n), labels] -= scale[:, 0]
        return out
    t = dense.astype(dtype, copy=False)
    return (p * np.sum(t, axis=1, keepdims=True) - t) * scale



# --------------------------------------------------------------------------- fused optimizer steps
def adam_update(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, decoupled, step) -> None:
    """One Adam/AdamW step, in place on ``param``, ``m`` (first moment) and ``v`` (second).

    With ``T`` the parameter's dtype (float32 or float64), every product below is rounded
    to ``T``; the scalars are computed in double and then rounded to ``T``::

        if decoupled: p = p * (1 - lr * weight_decay)        # AdamW
        else:         g = g + weight_decay * p               # Adam: L2 added to the gradient
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * (g * g)
        p = p - (lr / (1 - beta1**step)) * (m / (sqrt(v) * (1 / sqrt(1 - beta2**step)) + eps))

    ``step`` (>= 1) counts this update.  ``grad`` may have any real dtype (cast to ``T``)
    and may alias the other arrays: every input is read before anything is written.
    """
    dtype = check_adam_arrays(param, grad, m, v)
    decay, l2, b1, c1, b2, c2, step_size, inv_sqrt_bc2, eps_ = (
        dtype.type(x) for x in adam_coefficients(lr, beta1, beta2, eps, weight_decay, decoupled, step)
    )
    g = np.asarray(grad).astype(dtype, copy=False)
    p = param
    if decoupled and decay != 1:
        p = p * decay
    elif not decoupled and l2 != 0:
        g = g + l2 * p
    new_m = m * b1 + c1 * g
    new_v = v * b2 + c2 * (g * g)
    with np.errstate(all="ignore"):  # silent like the compiled loop (0/0 when eps = 0 and v = 0)
        denom = np.sqrt(new_v) * inv_sqrt_bc2 + eps_
        new_p = p - step_size * (new_m / denom)
    m[...] = new_m
    v[...] = new_v
    param[...] = new_p
