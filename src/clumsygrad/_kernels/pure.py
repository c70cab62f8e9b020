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

import math
import operator

import numpy as np

from .checks import (  # noqa: F401  (re-exported: callers import these from pure)
    REDUCTIONS,
    _float_array,
    _norm_arrays,
    _pair,
    check_conv2d_grad,
    check_max_pool_indices,
    check_out,
    check_norm_shapes,
    check_pool_grad,
    divisor_override,
    erf_values,
    normal_cdf_values,
    pool_output_size,
    conv2d_arrays,
    conv2d_geometry,
    pool_geometry,
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

_divisor_override = divisor_override  # the kernels below take a parameter of that name

__all__ = [
    "reduce_to_shape",
    "mul_reduce_to_shape",
    "expand_to_shape",
    "softmax_backward",
    "matmul_backward",
    "softmax_forward",
    "mse_forward",
    "mse_backward",
    "relu_forward",
    "relu_backward",
    "gelu_forward",
    "gelu_backward",
    "log_softmax_forward",
    "log_softmax_backward",
    "sgd_update",
    "scatter_add",
    "cross_entropy_backward",
    "cross_entropy_forward",
    "probs_minus_onehot",
    "adam_update",
    "conv2d_forward",
    "conv2d_backward_input",
    "conv2d_backward_weight",
    "conv2d_backward_bias",
    "max_pool2d_forward",
    "max_pool2d_backward",
    "avg_pool2d_forward",
    "avg_pool2d_backward",
    "layer_norm_backward",
    "batch_norm_backward",
]


# The hot kernels of a training step (reduce_to_shape, matmul_backward, softmax, mse, relu) first
# try a short path for what the ops pass them nearly always: ndarrays of one float dtype (float32
# or float64) with fitting shapes.  It computes exactly what the general path computes (same
# NumPy calls in the same dtype), without the validation the general path words errors with;
# anything else takes the general path.
_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
_ndarray = np.ndarray
_add_reduce, _max_reduce, _and_reduce = np.add.reduce, np.maximum.reduce, np.logical_and.reduce
_isfinite, _matmul, _exp, _multiply, _subtract = np.isfinite, np.matmul, np.exp, np.multiply, np.subtract
_maximum = np.maximum


def _into(name: str, out, result: np.ndarray, *inputs) -> np.ndarray:
    """``result``, or the ``out=`` buffer with ``result`` added into it (``checks.check_out``):
    the backward kernels' accumulation protocol, which the engine uses to add a gradient into
    a parent's pending one without a temporary."""
    if out is None:
        return result
    check_out(name, out, result.shape, result.dtype, *inputs)
    np.add(out, result, out=out)
    return out


# --------------------------------------------------------------------------- kernels
def reduce_to_shape(grad, shape) -> np.ndarray:
    """Sum ``grad`` over the axes broadcasting added or stretched so it has ``shape``.

    May return ``grad`` itself (or a view of it) when no reduction is needed.
    """
    if type(grad) is _ndarray and type(shape) is tuple:
        dtype = grad.dtype
        if (dtype is _F32 or dtype is _F64) and list(map(type, shape)).count(int) == len(shape):
            if grad.shape == shape:
                return grad
            if grad.shape[1:] == shape and grad.shape[0]:  # a bias row: the leading axis summed
                total = _add_reduce(grad, axis=0, dtype=dtype, keepdims=True)  # what np.sum calls
                if dtype is _F64 or _and_reduce(_isfinite(total), axis=None):
                    return total.reshape(shape)
                return sum_without_overflow(grad, (0,), dtype).reshape(shape)  # redone in float64
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


def expand_to_shape(grad, input_shape, axis, keepdims, scale, out=None) -> np.ndarray:
    """Gradient of ``sum``/``mean``: ``grad`` broadcast back over the reduced ``axis``, times ``scale``.

    ``grad`` has the shape of the reduction's result; the return value is a new
    C-contiguous array of ``input_shape``, or ``out`` with it added in (see ``_into``).
    """
    grad_in = grad
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
    result = np.empty(input_shape, dtype=dtype)
    np.multiply(grad.reshape(kept), dtype.type(scale), out=result, dtype=dtype)  # in dtype on NumPy 1.x too
    return _into("expand_to_shape", out, result, grad_in)


def softmax_backward(s, grad, axis, out=None) -> np.ndarray:
    """``s * (grad - sum(s * grad, axis, keepdims=True))`` for a softmax output ``s`` (added
    into ``out`` when given, see ``_into``)."""
    if out is not None:
        return _into("softmax_backward", out, softmax_backward(s, grad, axis), s, grad)
    if type(s) is _ndarray and type(grad) is _ndarray and type(axis) is int:
        dtype = s.dtype
        if (dtype is _F32 or dtype is _F64) and grad.dtype is dtype and s.shape == grad.shape:
            if -s.ndim <= axis < s.ndim:
                return s * (grad - _add_reduce(_multiply(s, grad), axis=axis, keepdims=True))
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
    if type(x) is _ndarray and type(y) is _ndarray and type(grad) is _ndarray:
        dtype = x.dtype
        if (dtype is _F32 or dtype is _F64) and y.dtype is dtype and grad.dtype is dtype:
            xs, ys = x.shape, y.shape
            if len(xs) == 2 and len(ys) == 2 and xs[1] == ys[0] and grad.shape == (xs[0], ys[1]):
                return (_matmul(grad, y.T) if need_x else None, _matmul(x.T, grad) if need_y else None)
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
    if type(x) is _ndarray and type(axis) is int:
        dtype = x.dtype
        if (dtype is _F32 or dtype is _F64) and -x.ndim <= axis < x.ndim and x.shape[axis]:
            e = _exp(x - _max_reduce(x, axis=axis, keepdims=True))
            e /= _add_reduce(e, axis=axis, keepdims=True)
            return e
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
    if type(pred) is _ndarray and type(target) is _ndarray:
        dtype = pred.dtype
        if (dtype is _F32 or dtype is _F64) and target.dtype is dtype and pred.shape == target.shape:
            diff = _subtract(pred, target)
            return np.asarray(mean_of_all(diff * diff), dtype=dtype)
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


_ZERO = {_F32: np.zeros((), np.float32), _F64: np.zeros((), np.float64)}


def relu_forward(x) -> np.ndarray:
    """``max(x, 0)`` elementwise, a new array of ``x``'s shape in its float dtype."""
    if type(x) is _ndarray:
        zero = _ZERO.get(x.dtype)  # a 0-d zero of x's dtype: NumPy casts a Python 0 per call
        if zero is not None and x.ndim:
            return _maximum(x, zero)
    x = np.asarray(x)
    dtype = result_dtype(x)
    return np.asarray(np.maximum(x, np.zeros((), dtype), dtype=dtype))  # 0-d: not a NumPy scalar


def relu_backward(y, grad, out=None) -> np.ndarray:
    """``grad * (y > 0)`` for a relu output ``y`` of ``grad``'s shape (added into ``out`` when
    given, see ``_into``)."""
    if out is not None:
        return _into("relu_backward", out, relu_backward(y, grad), y, grad)
    if type(y) is _ndarray and type(grad) is _ndarray:
        dtype = y.dtype
        if (dtype is _F32 or dtype is _F64) and grad.dtype is dtype and y.shape == grad.shape and y.ndim:
            return _multiply(grad, y > 0)
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
def scatter_add(grad, indices, shape, out=None) -> np.ndarray:
    """Zeros of ``shape`` with ``out[indices[i]] += grad[i]`` for every ``i``, in order.

    The backward pass of ``x[indices]`` along axis 0 (an embedding lookup): ``indices`` is a 1-D
    integer array (negatives count from the end, repeats add up), ``grad`` has shape
    ``(len(indices),) + shape[1:]``.  The result dtype is ``result_dtype(grad)``.  Given an
    ``out=`` buffer (``checks.check_out``), the rows are added into it instead of into zeros.
    """
    grad_in, indices_in = grad, indices
    grad = np.asarray(grad)
    indices = np.asarray(indices)
    shape = as_shape(shape)
    dtype = result_dtype(grad)
    check_scatter(grad.shape, indices, shape)
    if out is None:
        out = np.zeros(shape, dtype=dtype)
    else:
        check_out("scatter_add", out, shape, dtype, grad_in, indices_in)
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


def cross_entropy_forward(logits, labels, reduction):
    """Cross-entropy of (N, C) ``logits`` against class labels (N,), and what its backward needs.

    Returns ``(loss, probs, kept)``: ``loss`` reduced by ``reduction`` ("mean": a 0-d array,
    NaN for N = 0; "sum": 0-d; "none": (N,)), ``probs = softmax(z)`` per row (N, C), and
    ``kept``, the labels as a new read-only intp array.  Per row ``L_i = log(sum(exp(z_i -
    max z_i))) - (z_i[y_i] - max z_i)``.  Everything in ``result_dtype(logits)``.  Returns
    None for (N, C) targets (the caller computes those itself); the labels' errors are
    ``cross_entropy_targets``' (the compiled twin checks them in its pass over the rows).
    """
    check_reduction(reduction)
    logits = np.asarray(logits)
    kept, dense = cross_entropy_targets(logits, labels)
    if dense is not None:
        return None
    z = logits.astype(result_dtype(logits), copy=False)
    n = z.shape[0]
    shifted = z - np.max(z, axis=1, keepdims=True)
    e = np.exp(shifted)
    total = np.sum(e, axis=1)
    per_row = np.log(total) - shifted[np.arange(n), kept]
    probs = e / total[:, None]
    if reduction == "none":
        loss = per_row
    elif reduction == "sum":
        loss = np.asarray(np.sum(per_row))
    elif n:
        loss = np.asarray(np.sum(per_row) / n)
    else:
        loss = np.asarray(np.nan, dtype=z.dtype)
    kept = np.array(kept, dtype=np.intp)
    kept.flags.writeable = False
    return loss, probs, kept


def probs_minus_onehot(probs, labels, grad, reduction, out=None) -> np.ndarray:
    """``cross_entropy_backward`` from the forward's ``probs`` (N, C) and validated intp
    ``labels`` (N,): ``(probs - onehot(labels)) * s``, ``s`` as there.  A new array in
    ``result_dtype(probs, grad)``, or ``out`` with it added in (see ``_into``)."""
    if out is not None:
        return _into("probs_minus_onehot", out, probs_minus_onehot(probs, labels, grad, reduction),
                     probs, grad)
    probs = np.asarray(probs)
    grad = np.asarray(grad)
    n, c = probs.shape
    labels = np.asarray(labels)
    if n and (labels.min() < 0 or labels.max() >= c):
        raise ValueError(f"probs_minus_onehot needs labels in [0, {c}), got {labels.tolist()}")
    dtype = result_dtype(probs, grad)
    scale = cross_entropy_scale(grad, n, reduction, dtype)
    out = probs.astype(dtype, copy=False) * scale
    out[np.arange(n), labels] -= scale[:, 0]
    return out


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


# =========================================================================== convolution, pooling, normalisation
# Convolution, pooling and normalisation for ``clumsygrad.nn``; compiled twins in ``_conv.pyx``,
# ``_pool.pyx`` and ``_norm.pyx``.  Images are (N, C, H, W).  ``stride`` and ``dilation`` are
# ``(sh, sw)``, ``padding`` is ``(top, bottom, left, right)`` (uneven for "same" with an even
# kernel), all already normalised by ``clumsygrad.nn.functional``; the kernels check them again.
#
# Convolution is im2col + GEMM: ``cols[n, c*kh*kw + i*kw + j, oh*OW + ow] =
# x[n, c, oh*sh - top + i*dh, ow*sw - left + j*dw]`` (0 outside the image), then per group
# ``out = w @ cols`` through ``np.matmul``.  The input gradient is ``w^T @ grad`` scattered back
# (col2im), the weight gradient ``sum_n grad @ cols^T``.
# Their argument checks (``conv2d_geometry``, ``pool_geometry``, ``_float_array``, ``_norm_arrays``)
# are in ``checks``, shared with the compiled twins.


def _windows(xp: np.ndarray, kh, kw, oh, ow, sh, sw, dh, dw) -> np.ndarray:
    """A read-only (N, C, kh, kw, OH, OW) view of the padded images ``xp``."""
    s = xp.strides
    return np.lib.stride_tricks.as_strided(
        xp, (xp.shape[0], xp.shape[1], kh, kw, oh, ow),
        (s[0], s[1], s[2] * dh, s[3] * dw, s[2] * sh, s[3] * sw), writeable=False,
    )


def _pad(x: np.ndarray, pt, pb, pl, pr, value=0.0) -> np.ndarray:
    if pt or pb or pl or pr:
        return np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=value)
    return x


def _conv_im2col(x: np.ndarray, geo: tuple) -> np.ndarray:
    """The (N, C*kh*kw, OH*OW) column matrix of ``x`` (see the section comment)."""
    n, c, h, w, f, kh, kw, oh, ow, sh, sw, pt, pl, dh, dw, g = geo
    pb = max(0, (oh - 1) * sh + dh * (kh - 1) + 1 - h - pt)
    pr = max(0, (ow - 1) * sw + dw * (kw - 1) + 1 - w - pl)
    xp = _pad(x, pt, pb, pl, pr)
    return _windows(xp, kh, kw, oh, ow, sh, sw, dh, dw).reshape(n, c * kh * kw, oh * ow)


def conv2d_forward(x, weight, stride, padding, dilation, groups, bias=None) -> np.ndarray:
    """``y[n, f, oh, ow] = sum_{c, i, j} w[f, c, i, j] x[n, g(f)*Cg + c, oh*sh - top + i*dh,
    ow*sw - left + j*dw] + bias[f]`` (``bias`` an (F,) array or None): shape (N, F, OH, OW)."""
    x, weight, bias, dtype = conv2d_arrays("conv2d input", x, "conv2d weight", weight, bias)
    geo = conv2d_geometry(x.shape, weight.shape, stride, padding, dilation, groups)
    n, c, h, w, f, kh, kw, oh, ow, sh, sw, pt, pl, dh, dw, g = geo
    cols = _conv_im2col(x.astype(dtype, copy=False), geo).reshape(n, g, (c // g) * kh * kw, oh * ow)
    wm = weight.astype(dtype, copy=False).reshape(g, f // g, (c // g) * kh * kw)
    out = np.matmul(wm, cols).reshape(n, f, oh, ow)
    if bias is not None:
        out += bias.astype(dtype, copy=False).reshape(f, 1, 1)
    return out


def conv2d_backward_input(grad, weight, input_shape, stride, padding, dilation, groups) -> np.ndarray:
    """The gradient of :func:`conv2d_forward` with respect to its input, of ``input_shape``."""
    grad, weight, _, dtype = conv2d_arrays("conv2d gradient", grad, "conv2d weight", weight)
    geo = conv2d_geometry(as_shape(input_shape), weight.shape, stride, padding, dilation, groups)
    n, c, h, w, f, kh, kw, oh, ow, sh, sw, pt, pl, dh, dw, g = geo
    check_conv2d_grad(grad.shape, geo)
    wm = weight.astype(dtype, copy=False).reshape(g, f // g, (c // g) * kh * kw)
    gm = grad.astype(dtype, copy=False).reshape(n, g, f // g, oh * ow)
    cols = np.matmul(wm.transpose(0, 2, 1), gm).reshape(n, c, kh, kw, oh, ow)
    hp = max(h + pt, (oh - 1) * sh + dh * (kh - 1) + 1)
    wp = max(w + pl, (ow - 1) * sw + dw * (kw - 1) + 1)
    dxp = np.zeros((n, c, hp, wp), dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i * dh:i * dh + (oh - 1) * sh + 1:sh, j * dw:j * dw + (ow - 1) * sw + 1:sw] += cols[:, :, i, j]
    return np.ascontiguousarray(dxp[:, :, pt:pt + h, pl:pl + w])


def conv2d_backward_weight(grad, x, weight_shape, stride, padding, dilation, groups) -> np.ndarray:
    """The gradient of :func:`conv2d_forward` with respect to its weight, of ``weight_shape``."""
    grad, x, _, dtype = conv2d_arrays("conv2d gradient", grad, "conv2d input", x)
    geo = conv2d_geometry(x.shape, as_shape(weight_shape), stride, padding, dilation, groups)
    n, c, h, w, f, kh, kw, oh, ow, sh, sw, pt, pl, dh, dw, g = geo
    check_conv2d_grad(grad.shape, geo)
    k = (c // g) * kh * kw
    cols = _conv_im2col(x.astype(dtype, copy=False), geo).reshape(n, g, k, oh * ow)
    gm = grad.astype(dtype, copy=False).reshape(n, g, f // g, oh * ow)
    # one small GEMM per image and group, then the sum over the images: measured 3-10x faster
    # than folding the batch into one GEMM, whose transposed copies of grad and cols dominate
    return np.matmul(gm, cols.transpose(0, 1, 3, 2)).sum(axis=0).reshape(f, c // g, kh, kw)


def conv2d_backward_bias(grad) -> np.ndarray:
    """The gradient of :func:`conv2d_forward`'s ``bias``: ``grad`` (N, F, OH, OW) summed per channel."""
    grad = _float_array("conv2d gradient", grad, 4)
    return grad.astype(result_dtype(grad), copy=False).sum(axis=(0, 2, 3))


def _pool_windows(x, geo, value):
    n, c, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw = geo
    pb = max(0, (oh - 1) * sh + dh * (kh - 1) + 1 - h - ph)
    pr = max(0, (ow - 1) * sw + dw * (kw - 1) + 1 - w - pw)
    xp = _pad(x, ph, pb, pw, pr, value)
    return _windows(xp, kh, kw, oh, ow, sh, sw, dh, dw)


def max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode=False) -> tuple:
    """``(out, indices)``: the max of each window (padding is -inf; NaN wins; ties go to the
    first in row-major window order) and its flat index ``h*W + w`` in its (H, W) plane (int64).
    ``ceil_mode`` as PyTorch (:func:`checks.pool_output_size`)."""
    x = _float_array("max_pool2d input", x, 4)
    dtype = result_dtype(x)
    geo = pool_geometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    n, c, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw = geo
    win = _pool_windows(x.astype(dtype, copy=False), geo, -np.inf)
    flat = win.transpose(0, 1, 4, 5, 2, 3).reshape(n, c, oh, ow, kh * kw)
    arg = np.argmax(flat, axis=-1)
    out = np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]
    if out.size and (out == -np.inf).any():
        # a window whose values are all -inf: its first cell inside the image (not the padding)
        k = np.arange(kh * kw)
        r = (np.arange(oh) * sh - ph)[:, None, None] + (k // kw) * dh
        q = (np.arange(ow) * sw - pw)[None, :, None] + (k % kw) * dw
        first_inside = np.argmax((r >= 0) & (r < h) & (q >= 0) & (q < w), axis=-1)
        arg = np.where(out == -np.inf, first_inside, arg)
    rows = (np.arange(oh) * sh - ph)[:, None] + (arg // kw) * dh
    cols = (np.arange(ow) * sw - pw)[None, :] + (arg % kw) * dw
    return np.ascontiguousarray(out), (rows * w + cols).astype(np.int64)


def max_pool2d_backward(grad, indices, input_shape) -> np.ndarray:
    """Each window's gradient added at its max (``indices`` from :func:`max_pool2d_forward`)."""
    grad = _float_array("max_pool2d gradient", grad, 4)
    indices = np.asarray(indices)
    n, c, h, w = shape = as_shape(input_shape)
    check_max_pool_indices(grad, indices, shape)
    dtype = result_dtype(grad)
    planes = np.arange(n * c).reshape(n, c, 1, 1) * (h * w)
    out = np.zeros(n * c * h * w, dtype)
    np.add.at(out, (indices + planes).ravel(), grad.astype(dtype, copy=False).ravel())
    return out.reshape(n, c, h, w)


def _avg_divisor(geo, count_include_pad, dtype, divisor_override=None) -> np.ndarray:
    """The (OH, OW) divisors, PyTorch's: ``divisor_override`` for every window when given, else
    the window's cells inside the padded input (the window clipped at the far padding edge,
    which only ``ceil_mode`` windows cross), or inside the image alone without
    ``count_include_pad``."""
    n, c, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw = geo
    if divisor_override is not None:
        return np.full((oh, ow), divisor_override, dtype)
    counts = []
    for size, out, k, s, p in ((h, oh, kh, sh, ph), (w, ow, kw, sw, pw)):
        start = np.arange(out) * s - p
        end = np.minimum(start + k, size + p)
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, size)
        counts.append(end - start)
    return np.multiply.outer(*counts).astype(dtype)


def avg_pool2d_forward(x, kernel_size, stride, padding, count_include_pad, ceil_mode=False,
                       divisor_override=None) -> np.ndarray:
    """The mean of each window (padding counts as zeros when ``count_include_pad``; divisors as
    :func:`_avg_divisor`)."""
    x = _float_array("avg_pool2d input", x, 4)
    dtype = result_dtype(x)
    geo = pool_geometry(x.shape, kernel_size, stride, padding, (1, 1), ceil_mode)
    divisor = _divisor_override(divisor_override)
    total = _pool_windows(x.astype(dtype, copy=False), geo, 0.0).sum(axis=(2, 3))
    return total / _avg_divisor(geo, bool(count_include_pad), dtype, divisor)


def avg_pool2d_backward(grad, input_shape, kernel_size, stride, padding, count_include_pad,
                        ceil_mode=False, divisor_override=None) -> np.ndarray:
    """The gradient of :func:`avg_pool2d_forward`: each window's share spread over its cells."""
    grad = _float_array("avg_pool2d gradient", grad, 4)
    dtype = result_dtype(grad)
    geo = pool_geometry(as_shape(input_shape), kernel_size, stride, padding, (1, 1), ceil_mode)
    n, c, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw = geo
    check_pool_grad("avg_pool2d", grad.shape, (n, c, oh, ow))
    divisor = _divisor_override(divisor_override)
    share = grad.astype(dtype, copy=False) / _avg_divisor(geo, bool(count_include_pad), dtype, divisor)
    hp = max(h + ph, (oh - 1) * sh + kh)
    wp = max(w + pw, (ow - 1) * sw + kw)
    dxp = np.zeros((n, c, hp, wp), dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw] += share
    return np.ascontiguousarray(dxp[:, :, ph:ph + h, pw:pw + w])


def layer_norm_backward(grad, xhat, rstd, weight) -> tuple:
    """``(dx, dweight, dbias)`` of ``y = xhat * weight + bias``, ``xhat = (x - mean) * rstd``
    over the last axis of (M, D) arrays; ``rstd`` has shape (M,), ``weight`` (D,) or None
    (then ``dweight`` and ``dbias`` are None).  ``dx = rstd * (g - mean(g) - xhat *
    mean(g * xhat))`` per row with ``g = grad * weight``."""
    grad, xhat, rstd, weight, dtype = _norm_arrays("layer_norm_backward", grad, xhat, rstd, weight, 2)
    check_norm_shapes("layer_norm_backward", grad, rstd, weight)
    grad, xhat, rstd = (a.astype(dtype, copy=False) for a in (grad, xhat, rstd))
    g = grad if weight is None else grad * weight.astype(dtype, copy=False)
    dx = rstd[:, None] * (g - g.mean(axis=1, keepdims=True) - xhat * (g * xhat).mean(axis=1, keepdims=True))
    if weight is None:
        return dx.astype(dtype, copy=False), None, None
    return dx.astype(dtype, copy=False), (grad * xhat).sum(axis=0), grad.sum(axis=0)


def batch_norm_backward(grad, xhat, rstd, weight) -> tuple:
    """``(dx, dweight, dbias)`` of a training-mode batch norm over (N, C, L) arrays: statistics
    per channel over N and L, ``rstd`` of shape (C,), ``weight`` (C,) or None."""
    grad, xhat, rstd, weight, dtype = _norm_arrays("batch_norm_backward", grad, xhat, rstd, weight, 3)
    check_norm_shapes("batch_norm_backward", grad, rstd, weight)
    n, c, l = grad.shape
    grad, xhat, rstd = (a.astype(dtype, copy=False) for a in (grad, xhat, rstd))
    dbias = grad.sum(axis=(0, 2))
    dweight = (grad * xhat).sum(axis=(0, 2))
    scale = rstd if weight is None else rstd * weight.astype(dtype, copy=False)
    m = max(n * l, 1)  # an empty batch has an empty dx
    dx = scale[None, :, None] * (grad - (dbias / m)[None, :, None] - xhat * (dweight / m)[None, :, None])
    if weight is None:
        return dx.astype(dtype, copy=False), None, None
    return dx.astype(dtype, copy=False), dweight, dbias


# --------------------------------------------------------------------------- activations
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_FORMS = ("none", "tanh")


def _gelu_form(approximate) -> str:
    if approximate not in _GELU_FORMS:
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return approximate


def gelu_forward(x, approximate="none") -> np.ndarray:
    """``x * Phi(x)``, or its tanh form, elementwise: a new array of ``x``'s float dtype."""
    form = _gelu_form(approximate)
    x = np.asarray(x)
    x = x.astype(result_dtype(x), copy=False)
    if form == "tanh":
        return np.asarray(0.5 * x * (1 + np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x ** 3))))
    return np.asarray((x * normal_cdf_values(x)).astype(x.dtype, copy=False))


def gelu_backward(x, grad, approximate="none", out=None) -> np.ndarray:
    """The gradient of :func:`gelu_forward` at ``x`` times ``grad`` (one shape), added into
    ``out`` when given (see ``_into``)."""
    if out is not None:
        return _into("gelu_backward", out, gelu_backward(x, grad, approximate), x, grad)
    form = _gelu_form(approximate)
    x = np.asarray(x)
    grad = np.asarray(grad)
    dtype = result_dtype(x, grad)
    check_same_shape("gelu_backward", "the input and gradient", x, grad)
    x = x.astype(dtype, copy=False)
    grad = grad.astype(dtype, copy=False)
    if form == "tanh":
        t = np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x ** 3))
        d_inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
        return np.asarray(grad * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner), dtype=dtype)
    cdf = normal_cdf_values(x).astype(dtype)
    return np.asarray(grad * (cdf + x * (_INV_SQRT_2PI * np.exp(-0.5 * x * x))), dtype=dtype)


def _log_softmax_axis(x: np.ndarray, axis, name: str) -> int:
    (ax,) = normalize_axes(operator.index(axis), max(x.ndim, 1))
    if x.ndim and x.shape[ax] == 0:
        raise ValueError(f"{name} over axis {ax} of shape {x.shape}, which has no elements")
    return ax


def log_softmax_forward(x, axis) -> np.ndarray:
    """``(x - max) - log(sum(exp(x - max)))`` along one int ``axis``: no overflow, no ``log(0)``."""
    x = np.asarray(x)
    dtype = result_dtype(x)
    ax = _log_softmax_axis(x, axis, "log_softmax_forward")
    x = x.astype(dtype, copy=False)
    shifted = x - np.maximum.reduce(x, axis=ax, keepdims=True)
    return np.asarray(shifted - np.log(np.add.reduce(np.exp(shifted), axis=ax, keepdims=True)))


def log_softmax_backward(y, grad, axis, out=None) -> np.ndarray:
    """``grad - exp(y) * sum(grad, axis)`` for a log-softmax output ``y`` (one shape), added
    into ``out`` when given (see ``_into``)."""
    if out is not None:
        return _into("log_softmax_backward", out, log_softmax_backward(y, grad, axis), y, grad)
    y = np.asarray(y)
    grad = np.asarray(grad)
    dtype = result_dtype(y, grad)
    check_same_shape("log_softmax_backward", "the output and gradient", y, grad)
    (ax,) = normalize_axes(operator.index(axis), max(y.ndim, 1))
    y = y.astype(dtype, copy=False)
    grad = grad.astype(dtype, copy=False)
    return np.asarray(grad - np.exp(y) * np.add.reduce(grad, axis=ax, keepdims=True), dtype=dtype)
