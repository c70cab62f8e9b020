"""The checks and small helpers the kernels share: dtype rule, shapes, axes, argument validation.

``pure`` (the reference kernels) is built on these, and the compiled kernels call the ones
whose messages they must repeat exactly (``check_scatter``, ``cross_entropy_targets``,
``check_adam_arrays``...), so both twins raise the same errors.  ``_shapes.pyx`` has compiled
twins of ``result_dtype``, ``as_shape``, ``normalize_axes`` and ``reduction_axes``; the tests
hold them against these.  The rules are in ``docs/kernels.md``.
"""
from __future__ import annotations

import math
import operator
import sys

import numpy as np

__all__ = [
    "result_dtype",
    "erf_values",
    "normal_cdf_values",
    "as_shape",
    "as_double",
    "sum_without_overflow",
    "normalize_axes",
    "reduction_axes",
    "reduced_shape",
    "matmul_shapes",
    "mean_of_all",
    "check_same_shape",
    "check_scatter",
    "check_out",
    "REDUCTIONS",
    "check_reduction",
    "cross_entropy_targets",
    "cross_entropy_scale",
    "adam_coefficients",
    "check_adam_arrays",
    "conv2d_arrays",
    "check_conv2d_grad",
    "conv2d_geometry",
    "pool_output_size",
    "pool_geometry",
    "check_pool_grad",
    "divisor_override",
    "check_max_pool_indices",
    "check_norm_shapes",
]


# --------------------------------------------------------------------------- dtypes and shapes
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

    ``None`` means every axis.  Out-of-range or repeated axes raise ``ValueError`` (the one place
    in Python where axes are normalised; ``_shapes.pyx`` is Cython's twin).
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


def mean_of_all(values: np.ndarray) -> np.ndarray:
    """Mean of every element; NaN (with NumPy's warnings) for an empty array."""
    # np.add.reduce is np.mean's own pairwise sum, without its Python-level dispatch.
    return np.add.reduce(values, axis=None) / values.size if values.size else np.mean(values)


# --------------------------------------------------------------------------- argument checks
def check_same_shape(name: str, what: str, a: np.ndarray, b: np.ndarray) -> None:
    """``ValueError`` "``name`` needs ``what`` in one shape, got ..." unless ``a`` and ``b`` share one."""
    if a.shape != b.shape:
        raise ValueError(f"{name} needs {what} in one shape, got {a.shape} and {b.shape}")


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
    """``reduction`` itself when it is one of ``REDUCTIONS``, else ``ValueError``."""
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


def check_out(name: str, out, shape: tuple, dtype, *inputs) -> np.ndarray:
    """The ``out=`` buffer of a backward kernel, which adds its result into it (the engine
    hands a parent's pending gradient, so no temporary is made and added afterwards).

    ``out`` must be an ndarray of the result's ``dtype`` and ``shape``: writeable, aligned,
    C-contiguous, native byte order, sharing no memory with an input (bounds compared, as
    ``np.may_share_memory``).  ``TypeError`` for another type or dtype, ``ValueError`` else.
    """
    if type(out) is not np.ndarray:
        raise TypeError(f"{name}: out must be a numpy.ndarray, got {type(out).__name__}")
    dtype = np.dtype(dtype)
    if out.dtype != dtype:
        raise TypeError(f"{name}: out has dtype {out.dtype}, the result has dtype {dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name}: out has shape {out.shape}, the result has shape {tuple(shape)}")
    flags = out.flags
    if not (flags.writeable and flags.aligned and flags.c_contiguous):
        raise ValueError(f"{name}: out must be a writeable, aligned, C-contiguous array")
    for a in inputs:
        if isinstance(a, np.ndarray) and out.size and a.size and np.may_share_memory(out, a):
            raise ValueError(f"{name}: out shares memory with an input")
    return out


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


# --------------------------------------------------------------------------- convolution, pooling, normalisation
def _pair(name: str, value, size: int = 2) -> tuple:
    try:
        items = tuple(operator.index(v) for v in value)
    except TypeError:
        raise TypeError(f"{name} must be a tuple of {size} ints, got {value!r}") from None
    if len(items) != size:
        raise ValueError(f"{name} must have {size} entries, got {value!r}")
    return items


def _float_array(name: str, a, ndim: int, dtype=None) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    return a


def conv2d_arrays(a_name: str, a, b_name: str, b, bias=None) -> tuple:
    """``(a, b, bias, dtype)``: two 4-d real arrays (the input or gradient, and the weight or
    input) and an optional (F,) bias for a weight ``b``; the dtype of the result."""
    a = _float_array(a_name, a, 4)
    b = _float_array(b_name, b, 4)
    if bias is None:
        return a, b, None, result_dtype(a, b)
    bias = _float_array("conv2d bias", bias, 1)
    if bias.shape != b.shape[:1]:
        raise ValueError(f"conv2d bias of shape {bias.shape} for a weight of shape {b.shape}")
    return a, b, bias, result_dtype(a, b, bias)


def check_conv2d_grad(grad_shape: tuple, geo: tuple) -> None:
    """``ValueError`` unless ``grad_shape`` is the (N, F, OH, OW) output of the geometry ``geo``."""
    expected = (geo[0], geo[4], geo[7], geo[8])
    if tuple(grad_shape) != expected:
        raise ValueError(f"conv2d gradient of shape {tuple(grad_shape)}, expected {expected}")


def conv2d_geometry(x_shape, w_shape, stride, padding, dilation, groups) -> tuple:
    """``(N, C, H, W, F, kh, kw, OH, OW, sh, sw, pt, pl, dh, dw, G)`` for a convolution of an
    input of ``x_shape`` by a weight of ``w_shape``; ``ValueError`` naming what does not fit."""
    n, c, h, w = (operator.index(d) for d in x_shape)
    f, cg, kh, kw = (operator.index(d) for d in w_shape)
    sh, sw = _pair("stride", stride)
    pt, pb, pl, pr = _pair("padding", padding, 4)
    dh, dw = _pair("dilation", dilation)
    g = operator.index(groups)
    if sh < 1 or sw < 1 or dh < 1 or dw < 1:
        raise ValueError(f"stride {stride} and dilation {dilation} must be positive")
    if min(pt, pb, pl, pr) < 0:
        raise ValueError(f"padding {padding} must not be negative")
    if g < 1 or c % g or f % g:
        raise ValueError(
            f"groups={g} must divide the input channels ({c}) and the output channels ({f})"
        )
    if cg * g != c:
        raise ValueError(
            f"weight of shape {tuple(w_shape)} expects {cg * g} input channels "
            f"({cg} per group x {g} groups), got an input of shape {tuple(x_shape)}"
        )
    if kh < 1 or kw < 1:
        raise ValueError(f"kernel size must be positive, got weight of shape {tuple(w_shape)}")
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    if oh < 1 or ow < 1:
        raise ValueError(
            f"input of shape {tuple(x_shape)} (padded by {padding}) is smaller than the dilated "
            f"kernel {(dh * (kh - 1) + 1, dw * (kw - 1) + 1)}"
        )
    return n, c, h, w, f, kh, kw, oh, ow, sh, sw, pt, pl, dh, dw, g


def pool_output_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's pooled length: ``floor`` (or ``ceil``) of ``(size + 2p - d(k-1) - 1) / s`` plus
    one; in ceil mode a last window that would start in the right padding is dropped."""
    span = size + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def pool_geometry(x_shape, kernel_size, stride, padding, dilation, ceil_mode=False) -> tuple:
    """``(N, C, H, W, kh, kw, OH, OW, sh, sw, ph, pw, dh, dw)`` of a pooling (floor mode, or
    ``ceil_mode`` as PyTorch: windows may run past the bottom/right padding)."""
    n, c, h, w = (operator.index(d) for d in x_shape)
    kh, kw = _pair("kernel_size", kernel_size)
    sh, sw = _pair("stride", stride)
    ph, pw = _pair("padding", padding)
    dh, dw = _pair("dilation", dilation)
    if min(kh, kw, sh, sw, dh, dw) < 1:
        raise ValueError(
            f"kernel_size {kernel_size}, stride {stride} and dilation {dilation} must be positive"
        )
    if ph < 0 or pw < 0 or 2 * ph > kh or 2 * pw > kw:
        raise ValueError(f"padding {padding} must be at least 0 and at most half of kernel_size {kernel_size}")
    ceil_mode = bool(ceil_mode)
    oh = pool_output_size(h, kh, sh, ph, dh, ceil_mode)
    ow = pool_output_size(w, kw, sw, pw, dw, ceil_mode)
    if oh < 1 or ow < 1:
        raise ValueError(
            f"input of shape {tuple(x_shape)} (padded by {padding}) is smaller than the pooling "
            f"window {(dh * (kh - 1) + 1, dw * (kw - 1) + 1)}"
        )
    for size, out, k, s, p, d in ((h, oh, kh, sh, ph, dh), (w, ow, kw, sw, pw, dw)):
        if d > 1:  # a dilated window may fall entirely into the padding: no value to pool
            cells = (np.arange(out) * s - p)[:, None] + np.arange(k) * d
            if not ((cells >= 0) & (cells < size)).any(axis=1).all():
                raise ValueError(
                    f"a pooling window of {k} cells dilated by {d} with padding {p} falls "
                    f"entirely into the padding of an input of size {size}"
                )
    return n, c, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw


def divisor_override(value):
    """``avg_pool2d``'s ``divisor_override``: None, or a non-zero integer (PyTorch's rule)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"avg_pool2d: divisor_override must be an integer or None, got {type(value).__name__}")
    if value == 0:
        raise ValueError("avg_pool2d: divisor_override must not be zero")
    if abs(value) >= 2**53:
        raise ValueError(f"avg_pool2d: divisor_override {value} is too large")
    return int(value)


def check_pool_grad(name: str, grad_shape: tuple, expected: tuple) -> None:
    if tuple(grad_shape) != tuple(expected):
        raise ValueError(f"{name} gradient of shape {tuple(grad_shape)}, expected {tuple(expected)}")


def check_max_pool_indices(grad: np.ndarray, indices: np.ndarray, input_shape: tuple) -> None:
    """``ValueError`` unless ``indices`` fit ``grad`` and index (H, W) planes of ``input_shape``."""
    n, c, h, w = input_shape
    if indices.shape != grad.shape or indices.dtype.kind not in "iu":
        raise ValueError(
            f"max_pool2d indices of shape {indices.shape} and dtype {indices.dtype} do not match "
            f"the gradient of shape {grad.shape}"
        )
    if grad.shape[:2] != (n, c):
        raise ValueError(f"max_pool2d gradient of shape {grad.shape} for an input of shape {(n, c, h, w)}")
    if indices.size and (indices.min() < 0 or indices.max() >= h * w):
        raise ValueError(f"max_pool2d indices out of range for planes of {h}x{w}")


def check_norm_shapes(name: str, grad: np.ndarray, rstd: np.ndarray, weight) -> None:
    """``rstd`` (and ``weight``) of one value per row (layer norm, (M, D) arrays) or per channel
    (batch norm, (N, C, L) arrays)."""
    per = grad.shape[0] if grad.ndim == 2 else grad.shape[1]
    affine = grad.shape[1]
    if rstd.shape != (per,) or (weight is not None and weight.shape != (affine,)):
        what = f"rows of shape {grad.shape}" if grad.ndim == 2 else f"an input of shape {grad.shape}"
        raise ValueError(
            f"{name}: rstd of shape {rstd.shape} and weight of shape "
            f"{None if weight is None else weight.shape} for {what}"
        )


def _norm_arrays(name, grad, xhat, rstd, weight, ndim):
    grad = _float_array(f"{name} gradient", grad, ndim)
    xhat = _float_array(f"{name} normalised input", xhat, ndim)
    rstd = np.asarray(rstd)
    if grad.shape != xhat.shape:
        raise ValueError(f"{name}: gradient of shape {grad.shape} and input of shape {xhat.shape} differ")
    arrays = (grad, xhat, rstd) + (() if weight is None else (np.asarray(weight),))
    return grad, xhat, rstd, None if weight is None else np.asarray(weight), result_dtype(*arrays)


# --------------------------------------------------------------------------- special functions
def erf_values(x) -> np.ndarray:
    """The error function in float64 to its precision (NumPy has none): a Taylor series for
    |x| < 2, the continued fraction of erfc beyond."""
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    small = a < 2.0
    out = np.empty_like(a)
    s = a[small]
    if s.size:
        z2 = s * s
        term = s.copy()
        total = s.copy()
        for n in range(1, 60):
            term = term * (-z2) / n
            total += term / (2 * n + 1)
        out[small] = total * (2.0 / math.sqrt(math.pi))
    b = a[~small]
    if b.size:
        frac = np.zeros_like(b)
        for k in range(80, 0, -1):
            frac = (k / 2.0) / (b + frac)
        out[~small] = 1.0 - np.exp(-b * b) / (math.sqrt(math.pi) * (b + frac))
    return np.sign(x) * out


def normal_cdf_values(x) -> np.ndarray:
    """``Phi(x) = (1 + erf(x / sqrt 2)) / 2`` in float64."""
    return 0.5 * (1 + erf_values(np.asarray(x) / math.sqrt(2.0)))
