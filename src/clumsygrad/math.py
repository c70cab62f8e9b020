"""Arithmetic, elementwise mathematical functions and reductions of tensors.

Each op is one registry entry (:func:`clumsygrad._registry.defop`): its forward on arrays and,
beside it, the VJP formula of each input.  The functions of this module, the Tensor methods,
NumPy's names for them (``np.exp(t)``, ``np.sum(t, axis=0)``) and the backward functions of
:mod:`clumsygrad.grad` are all derived from these entries.
"""
from __future__ import annotations

import math as _m

import numpy as np

from . import _backend
from ._adjoint import expand, is_array, mul_unbroadcast, normalize_axes, unbroadcast
from ._registry import OPS, defop, evaluate, export, save_input_shape, variant

_LN2, _LN10 = _m.log(2.0), _m.log(10.0)


# ----------------------------------------------------------------------------- arithmetic
# The Tensor operators (``clumsygrad.tensor``) record these ops under the backward names of
# 0.2.x: same-shape operands, broadcast operands and a scalar constant are three variants of
# one formula (the constant is recorded in ``_extra["scalar_value"]`` and gets no gradient).
def _add(x, y):
    """x + y, broadcast."""
    return np.add(x, y)


def _reduce_kernel(sign_of_second: float):
    """The broadcast add/sub backward on arrays: each gradient summed to its operand's shape."""

    def kernel(tensor, grad, *, needs=None):
        x, y = tensor._parents
        extra = tensor._extra
        reduce = _backend.active.reduce_to_shape
        dx = reduce(grad, extra.get("left_shape", x._shape)) if needs is None or needs[0] else None
        dy = None
        if needs is None or needs[1]:
            dy = reduce(grad, extra.get("right_shape", y._shape))
            if sign_of_second < 0:
                dy = -dy
        return (dx, dy)

    return kernel


_add_op = defop(
    "add", _add,
    (lambda g, out, x, y: unbroadcast(g, x.shape), lambda g, out, x, y: unbroadcast(g, y.shape)),
    module="math", nin=2, public=False, backward_name="add_broadcast_backward",
    kernel=_reduce_kernel(1.0),
    typed="ADD_BROADCAST",
)
# The variants' array kernels are the formulas with the shapes known (same shape, or a constant).
def _pass_both(tensor, grad, *, needs=None):
    return (grad, grad)


def _pass_first(tensor, grad, *, needs=None):
    return (grad,)


add_backward = variant(_add_op, "add_backward", consts={}, typed="ADD", kernel=_pass_both)
add_scalar_backward = variant(_add_op, "add_scalar_backward", consts={1: "scalar_value"},
                              typed="ADD_SCALAR", kernel=_pass_first)


def _subtract(x, y):
    """x - y, broadcast."""
    return np.subtract(x, y)


_sub_op = defop(
    "subtract", _subtract,
    (lambda g, out, x, y: unbroadcast(g, x.shape), lambda g, out, x, y: -unbroadcast(g, y.shape)),
    module="math", nin=2, public=False, backward_name="sub_broadcast_backward",
    kernel=_reduce_kernel(-1.0),
    typed="SUB_BROADCAST",
)
def _pass_and_negate(tensor, grad, *, needs=None):
    return (grad, -grad if needs is None or needs[1] else None)


def _pass_first_of_sub(tensor, grad, *, needs=None):
    return (grad,)


sub_backward = variant(_sub_op, "sub_backward", consts={}, typed="SUB", kernel=_pass_and_negate)
sub_scalar_backward = variant(_sub_op, "sub_scalar_backward", consts={1: "scalar_value"},
                              typed="SUB_SCALAR", kernel=_pass_first_of_sub)


def _multiply(x, y):
    """x * y, broadcast."""
    return np.multiply(x, y)


def _mul_broadcast_kernel(tensor, grad, *, needs=None):
    # reduce(grad * other) in one pass, no broadcast temporary
    x, y = tensor._parents
    extra = tensor._extra
    mul_reduce = _backend.active.mul_reduce_to_shape
    return (
        mul_reduce(grad, y._data, extra.get("left_shape", x._shape)) if needs is None or needs[0] else None,
        mul_reduce(grad, x._data, extra.get("right_shape", y._shape)) if needs is None or needs[1] else None,
    )


_mul_op = defop(
    "multiply", _multiply,
    (lambda g, out, x, y: mul_unbroadcast(g, y, np.shape(x)),
     lambda g, out, x, y: mul_unbroadcast(g, x, np.shape(y))),
    module="math", nin=2, public=False, backward_name="mul_broadcast_backward",
    kernel=_mul_broadcast_kernel,
    typed="MUL_BROADCAST",
)
def _mul_same_shape(tensor, grad, *, needs=None):
    x, y = tensor._parents
    return (grad * y._data if needs is None or needs[0] else None,
            grad * x._data if needs is None or needs[1] else None)


def _mul_by_constant(tensor, grad, *, needs=None):
    return (grad * tensor._extra.get("scalar_value", 1.0),)


mul_backward = variant(_mul_op, "mul_backward", consts={}, typed="MUL", kernel=_mul_same_shape)
mul_scalar_backward = variant(_mul_op, "mul_scalar_backward", consts={1: "scalar_value"},
                              typed="MUL_SCALAR", kernel=_mul_by_constant)


def _divide(x, y):
    """x / y, broadcast."""
    return np.divide(x, y)


def _divide_kernel(tensor, grad, *, needs=None):
    # the formulas on arrays, the broadcast sums by the reduction kernel
    x, y = tensor._parents
    reduce = _backend.active.reduce_to_shape
    return (
        reduce(grad / y._data, x._shape) if needs is None or needs[0] else None,
        reduce(-grad * tensor._data / y._data, y._shape) if needs is None or needs[1] else None,
    )


defop(
    "divide", _divide,
    (lambda g, out, x, y: unbroadcast(g / y, np.shape(x)),
     lambda g, out, x, y: unbroadcast(-g * out / y, np.shape(y))),
    module="math", nin=2, public=False, kernel=_divide_kernel, typed="DIVIDE",
)


def _negative(x):
    """-x."""
    return np.negative(x)


defop("negative", _negative, (lambda g, out, x: -g,), module="math", public=False,
      backward_name="negate_backward", typed="NEGATE")


def _power(x, y):
    """x ** y, broadcast; a tensor exponent gets ``out * log(x)`` (0 where x is 0)."""
    return np.power(x, y)


def _power_exponent_vjp(g, out, x, y):
    safe = np.where(_values(x) > 0, x, 1.0)  # log(x) only where x > 0 (the gradient is 0 at x = 0)
    return unbroadcast(g * out * np.log(safe), np.shape(y))


_power_op = defop(
    "power", _power,
    (lambda g, out, x, y: unbroadcast(g * (y * x ** (y - 1)), np.shape(x)), _power_exponent_vjp),
    module="math", nin=2, public=False, backward_name="power_tensor_backward",
)
def _power_by_constant(tensor, grad, *, needs=None):
    p = tensor._extra.get("power", 1.0)
    return (grad * (p * tensor._parents[0]._data ** (p - 1)),)


power_backward = variant(_power_op, "power_backward", consts={1: "power"}, typed="POWER",
                         kernel=_power_by_constant)


def _values(x):
    """The values of a tensor or array (constants inside formulas: masks, safe operands)."""
    return x if is_array(x) else x._data


def _matmul_vjp(g, out, x, y, needs):
    """The gradients of ``x @ y`` under NumPy's rules (1-D operands, batches, broadcasting)."""
    xd, yd = np.ndim(x), np.ndim(y)
    if xd == 1 and yd == 1:
        return (g * y if needs[0] else None, g * x if needs[1] else None)
    if xd == 1:  # (k,) @ (..., k, n) -> (..., n)
        gx = np.matmul(np.expand_dims(g, -2), np.swapaxes(y, -1, -2)) if needs[0] else None
        gx = unbroadcast(np.reshape(gx, np.shape(gx)[:-2] + (np.shape(x)[0],)), np.shape(x)) if needs[0] else None
        gy = unbroadcast(np.matmul(np.expand_dims(x, -1), np.expand_dims(g, -2)), np.shape(y)) if needs[1] else None
        return gx, gy
    if yd == 1:  # (..., m, k) @ (k,) -> (..., m)
        gx = unbroadcast(np.matmul(np.expand_dims(g, -1), np.expand_dims(y, 0)), np.shape(x)) if needs[0] else None
        gy = None
        if needs[1]:
            gy = np.matmul(np.swapaxes(x, -1, -2), np.expand_dims(g, -1))
            gy = unbroadcast(np.reshape(gy, np.shape(gy)[:-1]), np.shape(y))
        return gx, gy
    return (
        unbroadcast(np.matmul(g, np.swapaxes(y, -1, -2)), np.shape(x)) if needs[0] else None,
        unbroadcast(np.matmul(np.swapaxes(x, -1, -2), g), np.shape(y)) if needs[1] else None,
    )


def _matmul_kernel(tensor, grad, *, needs=None):
    x, y = tensor._parents
    if needs is None:
        needs = (True, True)
    if x._data.ndim >= 2 and y._data.ndim >= 2:
        return _backend.active.matmul_backward(x._data, y._data, grad, *needs)
    return evaluate(OPS["matmul"], grad, tensor._data, [x._data, y._data], {}, needs)


def _matmul(x, y):
    """Matrix product with NumPy's rules: 1-D operands, batches and broadcast batch axes."""
    return np.matmul(x, y)


defop("matmul", _matmul, _matmul_vjp, module="math", nin=2, public=False, kernel=_matmul_kernel,
      typed="MATMUL")


def _astype(x, dtype):
    """``x`` in another float dtype (``Tensor.astype``); the gradient goes back in ``x``'s dtype."""
    return x.astype(dtype)


defop("astype", _astype, (lambda g, out, x, dtype: g.astype(x.dtype),), module="math", public=False)


# ----------------------------------------------------------------------------- elementwise
# One row per op: name, the NumPy ufunc that is its forward (called directly, no wrapper frame),
# the VJP formula, the compiled engine's typed loop, the method name, the one-line doc.
for _name, _ufunc, _vjp, _typed, _doc in (
    ("abs", np.abs, lambda g, out, x: g * np.sign(_values(x)), None, "``|x|`` elementwise; the gradient at 0 is 0."),
    ("sqrt", np.sqrt, lambda g, out, x: g / (2 * out), "SQRT", "Square root elementwise."),
    ("exp", np.exp, lambda g, out, x: g * out, "EXP", "e**x elementwise."),
    ("log", np.log, lambda g, out, x: g / x, "LOG", "Natural logarithm elementwise."),
    ("sin", np.sin, lambda g, out, x: g * np.cos(x), "SIN", "Sine elementwise."),
    ("cos", np.cos, lambda g, out, x: g * -np.sin(x), "COS", "Cosine elementwise."),
    ("tan", np.tan, lambda g, out, x: g * (1 + out * out), None, "Tangent elementwise."),
    ("sign", np.sign, lambda g, out, x: g * 0, None, "-1, 0 or 1 elementwise; its gradient is 0 everywhere it exists."),
    ("square", np.square, lambda g, out, x: g * (2 * x), None, "x**2 elementwise."),
    ("reciprocal", np.reciprocal, lambda g, out, x: -g * (out * out), None, "1 / x elementwise."),
    ("log1p", np.log1p, lambda g, out, x: g / (1 + x), None, "log(1 + x), accurate for small x."),
    ("expm1", np.expm1, lambda g, out, x: g * (out + 1), None, "exp(x) - 1, accurate for small x."),
    ("log2", np.log2, lambda g, out, x: g / (x * _LN2), None, "Base-2 logarithm elementwise."),
    ("log10", np.log10, lambda g, out, x: g / (x * _LN10), None, "Base-10 logarithm elementwise."),
):
    defop(_name, _ufunc, (_vjp,), module="math", numpy=(_ufunc,) + ((np.absolute,) if _name == "abs" else ()),
          typed=_typed, method=_name, doc=_doc)


# ----------------------------------------------------------------------------- reductions
def _axis_arg(axis):
    """NumPy takes a tuple of axes, not a list."""
    return tuple(axis) if isinstance(axis, list) else axis


# The forwards are kernels (``forward_kernel=``): the public function calls the active set's
# ``sum_forward`` / ``mean_forward`` (np.sum's / np.mean's values and errors) directly.
def sum(tensor, axis=None, keepdims: bool = False):
    """Sum over ``axis`` (None for all, an int, or a tuple; negatives allowed)."""
    return _backend.active.sum_forward(tensor, axis, keepdims)


def mean(tensor, axis=None, keepdims: bool = False):
    """Mean over ``axis`` (None for all, an int, or a tuple; negatives allowed)."""
    return _backend.active.mean_forward(tensor, axis, keepdims)


def _count(x, axis) -> int:
    shape = np.shape(x)
    return int(np.prod([shape[a] for a in normalize_axes(_axis_arg(axis), len(shape))], dtype=np.int64))


def _mean_vjp(g, out, x, axis=None, keepdims=False):
    n = _count(x, axis)
    return expand(g, np.shape(x), _axis_arg(axis), keepdims, 1.0 / n if n else 0.0)


defop("sum", sum, (lambda g, out, x, axis=None, keepdims=False:
                   expand(g, np.shape(x), _axis_arg(axis), keepdims, 1.0),),
      module="math", numpy=(np.sum,), method="sum", save=save_input_shape, typed="SUM",
      forward_kernel="sum_forward")
defop("mean", mean, (_mean_vjp,), module="math", numpy=(np.mean,), method="mean", save=save_input_shape,
      typed="MEAN", forward_kernel="mean_forward")


def var(x, axis=None, ddof: int = 0, keepdims: bool = False):
    """Variance over ``axis`` with ``ddof`` delta degrees of freedom (NumPy's definition)."""
    return np.var(x, axis=_axis_arg(axis), ddof=ddof, keepdims=keepdims)


def _var_vjp(g, out, x, axis=None, ddof=0, keepdims=False):
    n = _count(x, axis)
    centred = x - np.mean(x, axis=_axis_arg(axis), keepdims=True)
    scale = 2.0 / (n - ddof) if n - ddof > 0 else np.inf
    return expand(g, np.shape(x), _axis_arg(axis), keepdims, 1.0) * (centred * scale)


defop("var", var, (_var_vjp,), module="math", numpy=(np.var,), method="var")


def std(x, axis=None, ddof: int = 0, keepdims: bool = False):
    """Standard deviation over ``axis`` (``sqrt(var)``, NumPy's ``ddof``)."""
    return np.std(x, axis=_axis_arg(axis), ddof=ddof, keepdims=keepdims)


def _std_vjp(g, out, x, axis=None, ddof=0, keepdims=False):
    n = _count(x, axis)
    centred = x - np.mean(x, axis=_axis_arg(axis), keepdims=True)
    denom = expand(out, np.shape(x), _axis_arg(axis), keepdims, float(n - ddof))
    return expand(g, np.shape(x), _axis_arg(axis), keepdims, 1.0) * centred / denom


defop("std", std, (_std_vjp,), module="math", numpy=(np.std,), method="std")


def prod(x, axis=None, keepdims: bool = False):
    """Product over ``axis``; the gradient is the product of the other elements (zeros included)."""
    return np.prod(x, axis=_axis_arg(axis), keepdims=keepdims)


def _prod_vjp(g, out, x, axis=None, keepdims=False):
    # d prod / d x_i = product of the others: exclusive cumulative products from both sides,
    # exact when some elements are 0 (no division).
    xv = _values(x)
    axes = normalize_axes(_axis_arg(axis), xv.ndim)
    kept = [i for i in range(xv.ndim) if i not in axes]
    moved = np.transpose(x, kept + list(axes))
    flat_shape = tuple(xv.shape[i] for i in kept) + (-1,)
    flat = np.reshape(moved, flat_shape)
    n = np.shape(flat)[-1]
    ones = np.ones(np.shape(flat)[:-1] + (1,), dtype=xv.dtype)
    left = np.concatenate([ones, np.cumprod(flat, axis=-1)[..., :-1]], axis=-1) if n else flat
    right = np.flip(np.concatenate([ones, np.cumprod(np.flip(flat, -1), axis=-1)[..., :-1]], axis=-1), -1) if n else flat
    others = np.reshape(left * right, np.shape(moved))
    back = np.transpose(others, list(np.argsort(kept + list(axes))))
    return expand(g, xv.shape, _axis_arg(axis), keepdims, 1.0) * back


defop("prod", prod, (_prod_vjp,), module="math", numpy=(np.prod,), method="prod")


def cumsum(x, axis=None):
    """Cumulative sum along ``axis`` (None: of the flattened values, as NumPy)."""
    return np.cumsum(x, axis=axis)


def _cumsum_vjp(g, out, x, axis=None):
    if axis is None:
        return np.reshape(np.flip(np.cumsum(np.flip(g, 0), axis=0), 0), np.shape(x))
    return np.flip(np.cumsum(np.flip(g, axis), axis=axis), axis)


defop("cumsum", cumsum, (_cumsum_vjp,), module="math", numpy=(np.cumsum,), method="cumsum")


def cumprod(x, axis=None):
    """Cumulative product along ``axis`` (None: of the flattened values)."""
    return np.cumprod(x, axis=axis)


def _cumprod_vjp(g, out, x, axis=None):
    # sum_{j >= i} g_j out_j / x_i, where x has no zeros (NumPy's own rule in autograd texts).
    if axis is None:
        flat = np.reshape(x, (-1,))
        return np.reshape(_cumprod_vjp(g, out, flat, 0), np.shape(x))
    rev = np.flip(np.cumsum(np.flip(g * out, axis), axis=axis), axis)
    return rev / x


defop("cumprod", cumprod, (_cumprod_vjp,), module="math", numpy=(np.cumprod,), method="cumprod",
      doc="Cumulative product along ``axis``; its gradient divides by x (inputs must be nonzero).")


def logsumexp(x, axis=None, keepdims: bool = False):
    """``log(sum(exp(x), axis))`` computed after subtracting the maximum (no overflow)."""
    axis = _axis_arg(axis)
    m = np.max(x, axis=axis, keepdims=True) if np.size(x) else np.zeros((1,) * np.ndim(x))
    m = np.where(np.isfinite(m), m, 0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    if keepdims:
        return out
    return np.reshape(out, ()) if axis is None else np.squeeze(out, axis=axis)


def _logsumexp_vjp(g, out, x, axis=None, keepdims=False):
    axis = _axis_arg(axis)
    shape = np.shape(x)
    return expand(g, shape, axis, keepdims, 1.0) * np.exp(x - expand(out, shape, axis, keepdims, 1.0))


defop("logsumexp", logsumexp, (_logsumexp_vjp,), module="math", method="logsumexp")


def norm(x, ord=None, axis=None, keepdims: bool = False):
    """Vector (``ord`` 1, 2, inf) or Frobenius norm, as ``np.linalg.norm`` for those orders.

    The gradient at a zero vector is 0 (a subgradient) rather than NaN.
    """
    _check_norm(ord, axis, np.ndim(x))
    return np.linalg.norm(x, ord=ord, axis=_axis_arg(axis), keepdims=keepdims)


def _check_norm(ord, axis, ndim):
    if ord not in (None, 1, 2, np.inf, "fro"):
        raise ValueError(f"norm: ord={ord!r} is not supported (use None, 1, 2, np.inf or 'fro')")
    axes = normalize_axes(_axis_arg(axis), ndim) if axis is not None else tuple(range(ndim))
    if ord in (1, 2, np.inf) and axis is None and ndim > 1:
        raise ValueError(f"norm: ord={ord!r} of a {ndim}-D tensor needs axis= (a vector norm)")
    if ord in (1, 2, np.inf) and len(axes) != 1:
        raise ValueError(f"norm: ord={ord!r} is a vector norm; give one axis, got {axis!r}")
    if ord == "fro" and len(axes) != 2:
        raise ValueError(f"norm: 'fro' needs two axes, got {axis!r}")


def _norm_vjp(g, out, x, ord=None, axis=None, keepdims=False):
    shape = np.shape(x)
    axis = _axis_arg(axis)
    ge = expand(g, shape, axis, keepdims, 1.0)
    xv = _values(x)
    if ord in (None, 2, "fro"):
        oe = expand(out, shape, axis, keepdims, 1.0)
        safe = np.where(_values(oe) == 0, 1.0, oe)
        return ge * x / safe
    if ord == 1:
        return ge * np.sign(xv)
    # inf: the gradient goes to the first element of largest magnitude in each vector
    ax = normalize_axes(axis, xv.ndim)[0]
    winners = np.argmax(np.abs(xv), axis=ax)
    mask = np.zeros(xv.shape, dtype=xv.dtype)
    np.put_along_axis(mask, np.expand_dims(winners, ax), 1.0, axis=ax)
    return ge * (mask * np.sign(xv))


defop("norm", norm, (_norm_vjp,), module="math", numpy=(np.linalg.norm,))




# ----------------------------------------------------------------------------- public arithmetic
# NumPy's names for the operators (``np.add(a, t)`` reaches the Tensor operators, which record
# the variants above); ``divide`` and ``matmul`` record their own entries.
def add(x, y):
    """``x + y``, broadcast (the ``+`` operator)."""
    x, y = as_tensors((x, y))
    return x + y


def subtract(x, y):
    """``x - y``, broadcast (the ``-`` operator)."""
    x, y = as_tensors((x, y))
    return x - y


def multiply(x, y):
    """``x * y``, broadcast (the ``*`` operator)."""
    x, y = as_tensors((x, y))
    return x * y


def divide(x, y):
    """``x / y``, broadcast."""
    x, y = as_tensors((x, y))
    try:
        data = np.divide(x._data, y._data)
    except ValueError:
        raise ValueError(f"Cannot broadcast shapes {x._shape} and {y._shape}") from None
    return _graph.new_node(data, OPS["divide"].backward, (x, y))


def negative(x):
    """``-x``."""
    (x,) = as_tensors((x,))
    return -x


def power(x, y):
    """``x ** y``, broadcast; either may be a tensor."""
    x, y = as_tensors((x, y))
    return x ** y


def matmul(x, y):
    """``x @ y`` with NumPy's rules (1-D operands, batches, broadcast batch axes)."""
    x, y = as_tensors((x, y))
    return x @ y


from ._backend import graph as _graph  # noqa: E402
from ._registry import UFUNCS as _UFUNCS, as_tensors  # noqa: E402

_UFUNCS[np.true_divide] = divide
__all__ = export(globals(), "math") + ["add", "subtract", "multiply", "divide", "negative", "power", "matmul"]
