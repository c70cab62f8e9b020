"""NumPy reference implementation of the kernel interface.

Every function here has a compiled twin of the same name and signature in
``clumsygrad._kernels.native``; the two must agree to float rounding on every
input.  This module imports nothing compiled, so it is always available.

Rules shared by all kernels (see KERNELS.md):

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
import sys

import numpy as np

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
    "adam_update",
]


# --------------------------------------------------------------------------- helpers
def result_dtype(*arrays: np.ndarray) -> np.dtype:
    """The kernels' output dtype for these inputs; ``TypeError`` for unsupported ones."""
    dtypes = [a.dtype for a in arrays]
    for dt in dtypes:
        if dt.kind not in "biuf":
            raise TypeError(f"clumsygrad kernels need real numeric arrays, got dtype {dt}")
    # Dtypes, not arrays: NumPy 1.x would treat a 0-d array like a Python scalar (value-based).
    return np.result_type(*dtypes, np.float32)


def as_shape(shape) -> tuple:
    """``shape`` as a tuple of non-negative ints (an int is a 1-d shape)."""
    try:
        dims = (operator.index(shape),)
    except TypeError:
        dims = tuple(operator.index(d) for d in shape)
    if any(d < 0 for d in dims):
        raise ValueError(f"shape {dims} has a negative dimension")
    if any(d >= sys.maxsize for d in dims):  # what the compiled kernels' C sizes can hold
        raise ValueError(f"shape {dims} has a dimension too large for an array")
    return dims


def as_double(value) -> float:
    """``value`` as a Python float the way a compiled kernel's C ``double`` argument takes it
    (``__float__``, else ``__index__``); ``TypeError`` "must be real number" otherwise."""
    if type(value) is float:
        return value
    kind = type(value)
    if hasattr(kind, "__float__"):
        return kind.__float__(value)
    if hasattr(kind, "__index__"):
        return float(kind.__index__(value))
    raise TypeError(f"must be real number, not {kind.__name__}")


def sum_without_overflow(values: np.ndarray, axes: tuple, dtype: np.dtype) -> np.ndarray:
    """``np.sum(values, axes, keepdims=True)`` in ``dtype``, redone with float64 accumulators
    when a float32 sum comes out non-finite.

    The compiled reductions add in double where it matters, so a float32 sum whose partial
    sums leave float32's range but whose total does not (``[3e38, 3e38, -3e38, -3e38]``) is
    right there; this gives the same answer without paying for a float64 pass on every call
    (NumPy's float32 -> float64 reduction over axis 0 is 12x slower at 256x256).
    """
    total = np.sum(values, axis=axes, dtype=dtype, keepdims=True)
    if dtype == np.float32 and not np.isfinite(total).all():
        with np.errstate(over="ignore"):  # a total beyond float32 becomes inf, quietly
            total = np.sum(values, axis=axes, dtype=np.float64, keepdims=True).astype(dtype)
    return total


def normalize_axes(axis, ndim: int) -> tuple:
    """``axis`` (None, int or sequence of ints, negatives allowed) as a sorted tuple.

    ``None`` means every axis.  Out-of-range or repeated axes raise ``ValueError``.
    """
    if axis is None:
        return tuple(range(ndim))
    try:
        axes = (operator.index(axis),)
    except TypeError:
        axes = tuple(operator.index(a) for a in axis)
    normalized = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of bounds for an array of dimension {ndim}")
        normalized.append(a % ndim)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"repeated axis in {axis!r}")
    return tuple(sorted(normalized))


def reduction_axes(grad_shape: tuple, shape: tuple) -> tuple:
    """Axes of ``grad_shape`` to sum so that the result fits ``shape``.

    ``shape`` must broadcast to exactly ``grad_shape``; otherwise ``ValueError``.
    """
    lead = len(grad_shape) - len(shape)
    if lead < 0 or any(
        s != g and s != 1 for s, g in zip(shape, grad_shape[lead:])
    ):
        raise ValueError(
            f"cannot reduce a gradient of shape {grad_shape} to shape {shape}: "
            f"{shape} does not broadcast to {grad_shape}"
        )
    stretched = tuple(
        lead + i for i, (s, g) in enumerate(zip(shape, grad_shape[lead:])) if s == 1 and g != 1
    )
    return tuple(range(lead)) + stretched


def reduced_shape(input_shape: tuple, axes: tuple, keepdims: bool) -> tuple:
    """Shape of a sum of ``input_shape`` over ``axes``."""
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(input_shape))
    return tuple(d for i, d in enumerate(input_shape) if i not in axes)


def matmul_shapes(x_shape: tuple, y_shape: tuple) -> tuple:
    """Shape of ``x @ y`` for operands of at least 2 dimensions; ``ValueError`` otherwise."""
    if len(x_shape) < 2 or len(y_shape) < 2:
        raise ValueError(
            f"matmul_backward needs operands of at least 2 dimensions, got {x_shape} and {y_shape}"
        )
    if x_shape[-1] != y_shape[-2]:
        raise ValueError(f"Matrix shapes not aligned: {x_shape} @ {y_shape}")
    try:
        batch = np.broadcast_shapes(x_shape[:-2], y_shape[:-2])
    except ValueError:
        raise ValueError(
            f"matmul batch dimensions do not broadcast: {x_shape} @ {y_shape}"
        ) from None
    return batch + (x_shape[-2], y_shape[-1])


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
    if s.shape != grad.shape:
        raise ValueError(
            f"softmax_backward needs the output and gradient in one shape, got {s.shape} and {grad.shape}"
        )
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
def mean_of_all(values: np.ndarray) -> np.ndarray:
    """Mean of every element; NaN (with NumPy's warnings) for an empty array."""
    # np.add.reduce is np.mean's own pairwise sum, without its Python-level dispatch.
    return np.add.reduce(values, axis=None) / values.size if values.size else np.mean(values)


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


def _same_shape(name: str, what: str, a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name} needs {what} in one shape, got {a.shape} and {b.shape}")


def mse_forward(pred, target) -> np.ndarray:
    """``mean((pred - target)^2)`` as a 0-d array (NaN when empty); shapes must match."""
    pred = np.asarray(pred)
    target = np.asarray(target)
    dtype = result_dtype(pred, target)
    _same_shape("mse_forward", "the prediction and target", pred, target)
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
    _same_shape("mse_backward", "the prediction and target", pred, target)
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
    _same_shape("relu_backward", "the output and gradient", y, grad)
    return np.asarray(np.multiply(grad, y > 0, dtype=dtype))


def sgd_update(data, grad, lr) -> None:
    """``data -= lr * grad`` in place (NumPy's promotion and casting); shapes must match."""
    if not isinstance(data, np.ndarray):
        raise TypeError(f"sgd_update updates an ndarray in place, got {type(data).__name__}")
    grad = np.asarray(grad)
    _same_shape("sgd_update", "the parameter and gradient", data, grad)
    data -= lr * grad


# --------------------------------------------------------------------------- scatter-add and cross-entropy (issue 9)
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


def check_scatter(grad_shape: tuple, indices: np.ndarray, shape: tuple) -> None:
    """Validate ``scatter_add``'s inputs (both twins): one message per mistake."""
    if not shape:
        raise ValueError("scatter_add needs a shape of at least one dimension, got ()")
    if indices.dtype.kind not in "iu":
        raise TypeError(f"scatter_add needs integer indices, got dtype {indices.dtype}")
    if indices.ndim != 1:
        raise ValueError(f"scatter_add needs 1-D indices, got shape {indices.shape}")
    expected = (indices.shape[0],) + tuple(shape[1:])
    if tuple(grad_shape) != expected:
        raise ValueError(
            f"scatter_add needs a gradient of shape {expected} for {indices.shape[0]} indices into "
            f"shape {shape}, got {tuple(grad_shape)}"
        )
    size = shape[0]
    bad = np.flatnonzero((indices >= size) | (indices < -size)) if indices.size else ()
    if len(bad):
        raise IndexError(
            f"index {int(indices[bad[0]])} is out of bounds for axis 0 with size {size}"
        )


REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction) -> str:
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


def cross_entropy_targets(logits: np.ndarray, target) -> tuple:
    """``(labels, None)`` for class labels or ``(None, target)`` for per-class targets, validated.

    ``logits`` has shape (N, C).  Labels have shape (N,), integer values in ``[0, C)`` (floats
    holding integers are accepted) and come back as an intp array; targets have shape (N, C).
    """
    target = np.asarray(target)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy needs logits of shape (N, C), got shape {logits.shape}")
    n, c = logits.shape
    if c == 0:
        raise ValueError(f"cross_entropy needs at least one class, got logits of shape {logits.shape}")
    if target.ndim == 2:
        if target.shape != logits.shape:
            raise ValueError(
                f"cross_entropy needs targets of the logits' shape {logits.shape}, got {target.shape}"
            )
        result_dtype(target)
        return None, target
    if target.shape != (n,):
        raise ValueError(
            f"cross_entropy needs class labels of shape ({n},) or targets of shape {logits.shape}, "
            f"got shape {target.shape}"
        )
    kind = target.dtype.kind
    if kind == "f":
        fractional = np.flatnonzero(~(np.floor(target) == target)) if n else ()
        if len(fractional):
            i = int(fractional[0])
            raise ValueError(
                f"cross_entropy labels must be integer class indices, got {target[i].item()!r} at position {i}"
            )
    elif kind not in "iu":
        raise ValueError(f"cross_entropy labels must be integer class indices, got dtype {target.dtype}")
    bad = np.flatnonzero((target < 0) | (target >= c)) if n else ()
    if len(bad):
        i = int(bad[0])
        label = target[i].item()
        raise ValueError(
            f"cross_entropy label {label!r} at position {i} is out of range for {c} classes"
        )
    return target.astype(np.intp), None


def cross_entropy_scale(grad: np.ndarray, n: int, reduction: str, dtype) -> np.ndarray:
    """The (N, 1) factor each row's ``softmax - target`` is multiplied by, from the incoming gradient."""
    check_reduction(reduction)
    if reduction == "none":
        if grad.shape != (n,):
            raise ValueError(
                f"cross_entropy_backward needs a gradient of shape ({n},) for reduction='none', "
                f"got {grad.shape}"
            )
        return grad.astype(dtype, copy=False).reshape(n, 1)
    if grad.size != 1:
        raise ValueError(
            f"cross_entropy_backward needs a one-element gradient for reduction={reduction!r}, "
            f"got shape {grad.shape}"
        )
    g = grad.astype(dtype).reshape(())
    if reduction == "mean":
        g = g / dtype.type(max(n, 1))
    return np.full((n, 1), g, dtype=dtype)


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


__all__ += ["scatter_add", "cross_entropy_backward"]


# --------------------------------------------------------------------------- fused optimizer steps
def _overlap(a: np.ndarray, b: np.ndarray) -> bool:
    return np.may_share_memory(a, b)


def adam_coefficients(lr, beta1, beta2, eps, weight_decay, decoupled, step) -> tuple:
    """Validated scalars of one Adam step, as Python floats (double precision).

    Returns ``(decay, l2, beta1, 1 - beta1, beta2, 1 - beta2, step_size, inv_sqrt_bc2, eps)``
    where ``decay`` multiplies the parameter first (AdamW), ``l2`` times the parameter is
    added to the gradient (Adam), ``step_size = lr / (1 - beta1**step)`` and
    ``inv_sqrt_bc2 = 1 / sqrt(1 - beta2**step)``.  ``ValueError`` for ``step < 1`` or a beta
    outside ``[0, 1)``.
    """
    step = operator.index(step)
    if step < 1:
        raise ValueError(f"adam_update needs step >= 1 (the step count after this update), got {step}")
    # as_double: a C double's conversion, as in the compiled twin (a string is a TypeError)
    lr, beta1, beta2, eps, weight_decay = (as_double(x) for x in (lr, beta1, beta2, eps, weight_decay))
    if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):  # else a bias correction divides by <= 0
        raise ValueError(f"adam_update needs 0 <= beta1, beta2 < 1, got {beta1!r} and {beta2!r}")
    decay = 1.0 - lr * weight_decay if decoupled else 1.0
    l2 = 0.0 if decoupled else weight_decay
    step_size = lr / (1.0 - beta1 ** step)
    inv_sqrt_bc2 = 1.0 / math.sqrt(1.0 - beta2 ** step)
    return decay, l2, beta1, 1.0 - beta1, beta2, 1.0 - beta2, step_size, inv_sqrt_bc2, eps


def check_adam_arrays(param, grad, m, v) -> np.dtype:
    """Shared validation of ``adam_update``'s arrays; returns the parameter's dtype.

    ``param``, ``m`` and ``v`` are writeable float32/float64 ndarrays of one dtype and shape
    that do not overlap; ``grad`` is any real array of that shape.
    """
    for name, a in (("param", param), ("m", m), ("v", v)):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"adam_update updates ndarrays in place, got {type(a).__name__} for {name}")
    dtype = param.dtype
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"adam_update needs a float32 or float64 parameter, got dtype {dtype}")
    if m.dtype != dtype or v.dtype != dtype:
        raise TypeError(
            f"adam_update needs the moments in the parameter's dtype {dtype}, got {m.dtype} and {v.dtype}"
        )
    grad = np.asarray(grad)
    result_dtype(grad)
    if not (param.shape == grad.shape == m.shape == v.shape):
        raise ValueError(
            f"adam_update needs the parameter, gradient and moments in one shape, got "
            f"{param.shape}, {grad.shape}, {m.shape} and {v.shape}"
        )
    for name, a in (("param", param), ("m", m), ("v", v)):
        if not a.flags.writeable:
            raise ValueError(f"adam_update updates {name} in place, but it is read-only")
    if _overlap(param, m) or _overlap(param, v) or _overlap(m, v):
        raise ValueError("adam_update needs separate arrays for the parameter and its two moments")
    return dtype


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
