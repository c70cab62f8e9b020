"""Tensors and the computational graph they record.

Each operation computes its forward value with NumPy and records, right beside it, the
backward function (from :mod:`clumsygrad.grad`) that maps the result's gradient to its
operands' gradients.  ``Tensor`` is a thin Python class on a graph node from
:mod:`clumsygrad._graph` (compiled, or its pure twin), which holds the fields and runs
``backward``'s engine; the compiled node also carries fast paths for the common operators.
"""
from __future__ import annotations

import functools
import inspect
import numbers
import threading
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Tuple, Union

import numpy as np

from . import _backend, _registry
from ._compat import TensorUtils, _broadcast_shapes, _Compat021, _TensorMeta
from ._graph import hooks as _hooks
from ._types import TensorType
from . import math as _math, selection as _selection, shape as _shape_ops
from .grad import (
    add_backward,
    add_broadcast_backward,
    add_scalar_backward,
    matmul_backward,
    mul_backward,
    mul_broadcast_backward,
    mul_scalar_backward,
    negate_backward,
    power_backward,
    power_tensor_backward,
    sub_backward,
    sub_broadcast_backward,
    sub_scalar_backward,
    transpose_backward,
)

__all__ = ["TensorType", "Tensor", "TensorUtils", "no_grad", "enable_grad"]

_graph = _backend.graph

# What the arithmetic operators take besides a Tensor, for type checkers: a real scalar (Python
# or NumPy), an array or a (nested) list or tuple of numbers.  Anything else returns NotImplemented.
_Scalar = Union[float, "np.number[Any]", "np.bool_"]
_Operand = Union["Tensor", _Scalar, "np.ndarray[Any, Any]", List[Any], Tuple[Any, ...]]
_FLOAT32 = np.dtype(np.float32)
_FLOAT64 = np.dtype(np.float64)


_PARAMETER = TensorType.PARAMETER


def _float_dtype(dtype) -> np.dtype:
    """``dtype`` as float32 or float64; anything else is a ``TypeError``."""
    dt = np.dtype(dtype)
    if dt != _FLOAT32 and dt != _FLOAT64:
        raise TypeError(f"Tensor dtype must be float32 or float64, got {dt}")
    return dt


def _real_array(value, what: str) -> np.ndarray:
    """``value`` as an array of real numbers (bools, ints, floats); ``TypeError`` naming anything else.

    Guards against what ``np.array(value, float32)`` would silently turn into a number:
    None (nan), strings ("3.5"), complex numbers (imaginary part dropped), datetimes, objects.
    """
    if isinstance(value, Tensor):
        return value._data
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged nesting
        raise TypeError(f"{what} must be real numbers, got {type(value).__name__}: {exc}") from None
    if array.dtype.kind not in "biuf":
        given = type(value).__name__  # and the dtype NumPy read it as, unless that says nothing
        if array.dtype.kind != "O" or isinstance(value, np.ndarray):
            given += f" of dtype {array.dtype}"
        raise TypeError(f"{what} must be real numbers (bool, int or float), got {given}")
    return array


def _scalar(value) -> Optional[float]:
    """``value`` as a Python float if it is a real scalar (Python, NumPy or 0-d array), else None."""
    if type(value) is float or type(value) is int:
        return float(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "biuf":
        return float(value)
    return None


_new_node = _graph.new_node  # (data, grad_fn, parents, extra=None) -> Tensor; see _graph


def _broadcasting(ufunc, left, right) -> np.ndarray:
    """``ufunc`` of two tensors' data; NumPy checks the broadcast, we word the error."""
    try:
        return ufunc(left._data, right._data)
    except ValueError:
        _broadcast_shapes(left._shape, right._shape)  # raises "Cannot broadcast shapes ..."
        raise


def _binary_node(left, right, data, same_shape_fn: Callable, broadcast_fn: Callable):
    """Record a two-operand elementwise result; broadcasting operands also record their shapes."""
    if left._shape == right._shape:
        return _new_node(data, same_shape_fn, (left, right))
    shapes = {"left_shape": left._shape, "right_shape": right._shape}
    return _new_node(data, broadcast_fn, (left, right), shapes)


def _constant_like(value, tensor) -> Optional["Tensor"]:
    """An array-like operand (ndarray, list) as an INPUT tensor beside ``tensor``, else None."""
    if isinstance(value, (np.ndarray, list, tuple)) or (
        hasattr(value, "__array__") and not isinstance(value, Tensor)
    ):
        return _registry.as_tensors((tensor, value))[1]
    return None


class _Operators:
    """The arithmetic operators, for every operand the API accepts.

    The compiled node answers the common cases itself and calls these for the rest; on the
    pure node these are the operators.  Arrays and lists on either side become INPUT tensors.
    """

    __slots__ = ()

    def _elementwise(self, other, ufunc, same_shape_fn, broadcast_fn, scalar_fn):
        """``ufunc(self, other)`` for a tensor, real scalar or array ``other``, with its backward function."""
        if isinstance(other, Tensor):
            return _binary_node(self, other, _broadcasting(ufunc, self, other), same_shape_fn, broadcast_fn)
        scalar = _scalar(other)
        if scalar is None:
            other = _constant_like(other, self)
            if other is None:
                return NotImplemented
            return _binary_node(self, other, _broadcasting(ufunc, self, other), same_shape_fn, broadcast_fn)
        return _new_node(ufunc(self._data, scalar), scalar_fn, (self,), {"scalar_value": scalar})

    def __getitem__(self, key: Any) -> "Tensor":
        """``self[key]`` for any NumPy index, with gradients (``clumsygrad.shape.getitem``).  The
        compiled node records an integer row array (an embedding lookup) itself."""
        return _getitem(self, key)

    def reshape(self, new_shape: Any, *more: int) -> "Tensor":
        """The same values in ``new_shape`` (one dimension may be -1): ``t.reshape((2, -1))`` or
        ``t.reshape(2, -1)``.  The compiled node records it itself."""
        return _shape_ops.reshape(self, new_shape, *more)

    def transpose(self, *axes) -> "Tensor":
        """The axes reversed (no arguments) or permuted: ``t.transpose(1, 0)`` or ``t.transpose((1, 0))``.
        The compiled node records a permutation of ints itself."""
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return _shape_ops.transpose(self, axes if axes else None)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """NumPy ufuncs on tensors: registered ops record (``np.exp(t)``, ``a * t``), comparisons
        and other gradient-free ufuncs give plain arrays, anything else is a ``TypeError``.  The compiled
        node answers the commonest calls first (``np.multiply(t, 2.0)``, ``np.exp(t)``)."""
        return _numpy_protocol.ufunc(ufunc, method, inputs, kwargs)

    def __add__(self, other: _Operand) -> Tensor:
        return self._elementwise(other, np.add, add_backward, add_broadcast_backward, add_scalar_backward)

    def __sub__(self, other: _Operand) -> Tensor:
        return self._elementwise(other, np.subtract, sub_backward, sub_broadcast_backward, sub_scalar_backward)

    def __mul__(self, other: _Operand) -> Tensor:
        return self._elementwise(other, np.multiply, mul_backward, mul_broadcast_backward, mul_scalar_backward)

    def __radd__(self, other: _Operand) -> Tensor:
        return self.__add__(other)

    def __rmul__(self, other: _Operand) -> Tensor:
        return self.__mul__(other)

    def __rsub__(self, other: _Operand) -> Tensor:
        # c - t is (-t) + c: exact in floating point, and no backward code of its own.
        if _scalar(other) is None:
            other = _constant_like(other, self)
            return NotImplemented if other is None else other.__sub__(self)
        return (-self).__add__(other)

    def __truediv__(self, other: _Operand) -> Tensor:
        # t / u records t * u**-1 and t / c records t * (1/c); the forward value is the exact quotient.
        if not isinstance(other, Tensor) and _scalar(other) is None:
            other = _constant_like(other, self)
            if other is None:
                return NotImplemented
        if isinstance(other, Tensor):
            quotient = _broadcasting(np.divide, self, other)
            return _binary_node(self, other ** -1, quotient, mul_backward, mul_broadcast_backward)
        scalar = _scalar(other)
        inverse = float(np.float64(1.0) / scalar)
        return _new_node(self._data / scalar, mul_scalar_backward, (self,), {"scalar_value": inverse})

    def __rtruediv__(self, other: _Operand) -> Tensor:
        # c / t records c * t**-1.
        scalar = _scalar(other)
        if scalar is None:
            other = _constant_like(other, self)
            return NotImplemented if other is None else other.__truediv__(self)
        reciprocal = self ** -1
        return _new_node(scalar / self._data, mul_scalar_backward, (reciprocal,), {"scalar_value": scalar})

    def __pow__(self, power: _Operand) -> Tensor:
        exponent = _scalar(power)
        if exponent is None:
            if not isinstance(power, Tensor):
                power = _constant_like(power, self)
                if power is None:
                    return NotImplemented
            return _power_of_tensors(self, power)
        return _new_node(self._data ** exponent, power_backward, (self,), {"power": exponent})

    def __rpow__(self, base: _Operand) -> Tensor:
        if isinstance(base, Tensor):
            return _power_of_tensors(base, self)
        base = _registry.as_tensors((self, base))[1] if (_scalar(base) is not None or _constant_like(base, self) is not None) else None
        return NotImplemented if base is None else _power_of_tensors(base, self)

    def __neg__(self) -> Tensor:
        return _new_node(-self._data, negate_backward, (self,))

    def __matmul__(self, other: Union[Tensor, "np.ndarray[Any, Any]"]) -> Tensor:
        if isinstance(other, Tensor) and len(self._shape) >= 2 and len(other._shape) >= 2:
            if self._shape[-1] == other._shape[-2]:  # the common case, without a helper frame
                try:
                    return _new_node(np.matmul(self._data, other._data), matmul_backward, (self, other))
                except ValueError:
                    pass  # batch axes that do not broadcast: _matmul words the error
            return _matmul(self, other)
        if not isinstance(other, Tensor):
            if not isinstance(other, np.ndarray):
                raise TypeError(
                    f"Right operand must be a Tensor, got {type(other).__name__} "
                    "(for matrix multiplication; wrap it with Tensor(...) or np.asarray(...))"
                )
            other = _registry.as_tensors((self, other))[1]
        return _matmul(self, other)

    def __rmatmul__(self, other: "np.ndarray[Any, Any]") -> Tensor:
        if not isinstance(other, np.ndarray):
            return NotImplemented
        return _matmul(_registry.as_tensors((self, other))[1], self)


def _power_of_tensors(base, exponent):
    """``base ** exponent`` with a tensor exponent (both may need gradients)."""
    data = _broadcasting(np.power, base, exponent)
    return _new_node(data, power_tensor_backward, (base, exponent))


def _matmul(left, right):
    """``left @ right`` under NumPy's rules (1-D operands, batches), with the 0.2.x messages."""
    if len(left._shape) == 0 or len(right._shape) == 0:
        raise ValueError(
            f"Matrix multiplication requires at least 1-D tensors (0-d given), got {left._shape} @ {right._shape}."
        )
    inner_left = left._shape[-1]
    inner_right = right._shape[-2] if len(right._shape) >= 2 else right._shape[0]
    if inner_left != inner_right:
        raise ValueError(f"Matrix shapes not aligned: {left._shape} @ {right._shape}")
    try:
        product = np.matmul(left._data, right._data)
    except ValueError:  # the batch dimensions (the inner ones were checked above)
        raise ValueError(
            f"Cannot broadcast the batch dimensions of {left._shape} @ {right._shape}"
        ) from None
    return _new_node(product, matmul_backward, (left, right))


def _plain(value):
    """``value`` with every Tensor (also inside lists and tuples) replaced by its array."""
    if isinstance(value, Tensor):
        return value._data
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


class _Rows:
    """Iterator over a tensor's first axis (``t[0]``, ``t[1]``, ...).  A plain object, not a
    generator: a half-consumed one runs no Python code when it is freed (a generator's close()
    would, and an interrupt handled inside it is lost as an ignored exception)."""

    __slots__ = ("_tensor", "_next", "_stop")

    def __init__(self, tensor: "Tensor") -> None:
        self._tensor, self._next, self._stop = tensor, 0, tensor._shape[0]

    def __iter__(self) -> "_Rows":
        return self

    def __next__(self) -> "Tensor":
        i = self._next
        if i >= self._stop:
            raise StopIteration
        self._next = i + 1
        return self._tensor[i]


class Tensor(_graph.Node, _Operators, _Compat021, metaclass=_TensorMeta):
    """An n-dimensional float32 (or float64) array that records the operations applied to it.

    It speaks NumPy: ``np.exp(t)``, ``np.sum(t, axis=0)``, ``a @ t`` with an ndarray ``a`` and
    the methods ``t.sum()``, ``t.mean(0)``, ``t.reshape(2, -1)``... record with gradients;
    comparisons (``t > 0``) and functions without a gradient (``np.argmax(t)``) give plain
    NumPy results; ``np.asarray(t)`` gives the values (leaving the graph); a NumPy function
    with no gradient rule is a ``TypeError`` naming it.

    ``==``, ``!=`` and ``hash()`` keep their 0.2.x meaning, identity: optimizers and user code
    keep tensors in sets, dicts and lists (``t in params``).  Elementwise equality is
    ``np.equal(a, b)`` (a boolean array, like ``<`` and ``>``).
    """

    __slots__ = ()

    if TYPE_CHECKING:
        # The methods _bind_methods() takes from the op registry, declared for type checkers.
        # Each is the op's function with the tensor first: ``t.sum(axis=0)`` is
        # ``clumsygrad.math.sum(t, axis=0)``.  Generated by scripts/gen_stubs.py: do not edit.
        def tanh(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def relu(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def sigmoid(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def softmax(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def log_softmax(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def gelu(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def leaky_relu(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def elu(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def selu(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def softplus(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def silu(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def mish(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def hardtanh(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def log_sigmoid(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def abs(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def sqrt(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def exp(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def log(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def sin(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def cos(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def tan(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def sign(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def square(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def reciprocal(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def log1p(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def expm1(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def log2(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def log10(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def sum(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def mean(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def var(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def std(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def prod(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def cumsum(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def cumprod(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def logsumexp(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def max(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def min(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def flip(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def repeat(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def take(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def dot(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def diagonal(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def trace(self, *args: Any, **kwargs: Any) -> Tensor: ...

    if TYPE_CHECKING:
        # The operators' types are _Operators': the graph nodes (both twins) answer the common
        # cases first with untyped fast paths, which would otherwise hide these signatures.
        __add__ = _Operators.__add__
        __radd__ = _Operators.__radd__
        __sub__ = _Operators.__sub__
        __mul__ = _Operators.__mul__
        __rmul__ = _Operators.__rmul__
        __truediv__ = _Operators.__truediv__
        __neg__ = _Operators.__neg__
        __pow__ = _Operators.__pow__
        transpose = _Operators.transpose
        reshape = _Operators.reshape

    def __init__(self, data: Any, tensor_type: TensorType = TensorType.INPUT, dtype: Any = np.float32) -> None:
        """Wrap ``data`` (scalar, nested list or array of real numbers; always copied) as a tensor.

        PARAMETER tensors require gradients; INPUT tensors do not.  ``dtype`` is float32
        (the default) or float64.  Non-numeric, complex or object data is a ``TypeError``.
        """
        tensor_type = TensorType(tensor_type)
        data = np.array(_real_array(data, "Tensor data"), dtype=_float_dtype(dtype))
        _set_leaf(self, data, tensor_type, tensor_type is _PARAMETER, None)

    def __repr__(self) -> str:
        grad_fn = self._grad_fn.__name__ if self._grad_fn is not None else None
        return (
            f"Tensor(id={self._id}, shape={self._shape}, tensor_type={self._tensor_type.name}, "
            f"grad_fn={grad_fn}, requires_grad={self._requires_grad})"
        )

    # ------------------------------------------------------------------ properties
    @property
    def data(self) -> np.ndarray:
        """The tensor's values (the array itself, not a copy)."""
        return self._data

    @property
    def shape(self) -> tuple:
        return self._shape

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @property
    def grad(self) -> Optional[np.ndarray]:
        """The accumulated gradient, or None before any backward pass reached this tensor."""
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        # Stored as given (a float32 or float64 array keeps its dtype, as in 0.2.x), in a private
        # copy: later backward passes accumulate into it in place.
        if value is None:
            self._grad = None
            return
        grad = _real_array(value, "a gradient")
        if grad.dtype != _FLOAT32 and grad.dtype != _FLOAT64:
            grad = grad.astype(self._data.dtype)
        else:
            grad = np.array(grad)
        if grad.shape != self._shape:
            raise ValueError(
                f"Gradient shape {grad.shape} does not match tensor shape {self._shape}"
            )
        self._grad = grad

    # ------------------------------------------------------------------ shape
    def T(self) -> "Tensor":
        """The transpose (all axes reversed).  The transpose of a transpose is the original tensor."""
        if self._grad_fn is transpose_backward and self._parents:
            return self._parents[0]
        return _new_node(self._data.T, transpose_backward, (self,))

    def detach(self) -> "Tensor":
        """The same data (no copy) as an INPUT tensor with no graph."""
        with no_grad():
            return _new_node(self._data, None, (self,))

    # ------------------------------------------------------------------ NumPy and Python protocols
    def __array_function__(self, func, types, args, kwargs):
        """NumPy functions on tensors: registered ops record (``np.sum(t, axis=0)``), gradient-free
        ones (``np.argmax``, ``np.shape``) give plain results, others are a ``TypeError``."""
        return _numpy_protocol.function(func, args, kwargs)

    def __array__(self, dtype=None, copy=None):
        """The values, for ``np.asarray(t)``: a plain array that leaves the graph."""
        data = self._data
        if dtype is not None and np.dtype(dtype) != data.dtype:
            return data.astype(dtype)
        return data.copy() if copy else data

    @property
    def ndim(self) -> int:
        return len(self._shape)

    @property
    def size(self) -> int:
        return int(self._data.size)

    def __len__(self) -> int:
        if not self._shape:
            raise TypeError("len() of a 0-d tensor")
        return self._shape[0]

    def __iter__(self):
        if not self._shape:
            raise TypeError("iteration over a 0-d tensor")
        return _Rows(self)

    def __float__(self) -> float:
        return float(self._one_value("float()"))

    def __int__(self) -> int:
        return int(self._one_value("int()"))

    def _one_value(self, what: str):
        if self._data.size != 1:
            raise TypeError(
                f"{what} needs a tensor of one element, got shape {self._shape} "
                f"({self._data.size} elements); reduce it first (t.sum(), t[0]) or use t.data"
            )
        return self._data.item()

    def item(self) -> float:
        """The value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise ValueError(
                f"item() needs a tensor of one element, got shape {self._shape} "
                f"({self._data.size} elements)"
            )
        return self._data.item()

    def tolist(self):
        return self._data.tolist()

    def numpy(self) -> np.ndarray:
        """The values (the array itself, not a copy: it leaves the graph)."""
        return self._data

    def astype(self, dtype) -> "Tensor":
        """This tensor in ``dtype`` (float32 or float64); the gradient flows back in the original dtype."""
        dt = _float_dtype(dtype)
        if dt == self._data.dtype:
            return self
        return _cast(self, dt)

    def __abs__(self):
        return _math.abs(self)

    def __pos__(self):
        return self

    def __lt__(self, other):
        return np.less(self._data, _plain(other))

    def __le__(self, other):
        return np.less_equal(self._data, _plain(other))

    def __gt__(self, other):
        return np.greater(self._data, _plain(other))

    def __ge__(self, other):
        return np.greater_equal(self._data, _plain(other))

    # ``==``, ``!=`` and hashing keep their 0.2.x identity meaning (optimizers and user code keep
    # tensors in sets and dicts); elementwise equality is ``np.equal(a, b)``.
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__

    def flatten(self) -> "Tensor":
        return _shape_ops.flatten(self)

    def squeeze(self, axis=None) -> "Tensor":
        return _shape_ops.squeeze(self, axis)

    def expand_dims(self, axis) -> "Tensor":
        return _shape_ops.expand_dims(self, axis)

    def clip(self, lo=None, hi=None) -> "Tensor":
        return _selection.clip(self, lo, hi)

    # ------------------------------------------------------------------ copies
    def __reduce_ex__(self, protocol):
        # Pickles and copies carry the values, the gradient, the type and the version, never the
        # graph (so deep graphs never recurse); every copy gets a new id.
        grad = None if self._grad is None else np.array(self._grad)
        return (_rebuild, (type(self), np.array(self._data), grad, int(self._tensor_type)))

    def __copy__(self) -> "Tensor":
        # A shallow copy shares the data array; its gradient is a copy, so backward never aliases.
        return _rebuild(type(self), self._data, None if self._grad is None else self._grad.copy(),
                        int(self._tensor_type))

    def __deepcopy__(self, memo) -> "Tensor":
        copied = self.__reduce_ex__(4)
        new = copied[0](*copied[1])
        memo[id(self)] = new
        return new

    # ------------------------------------------------------------------ backward
    def backward(self, gradient: Any = None, keep_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) * ``gradient`` into ``.grad`` of every tensor that requires it.

        ``gradient`` defaults to ones for a one-element tensor and must otherwise have this
        tensor's shape.  Unless ``keep_graph`` is true, the graph behind this tensor is freed.
        All or nothing: if it raises, no ``.grad`` has changed.
        """
        if gradient is None:  # the usual loss.backward(): checks and seed in the engine
            _backend.engine.backward_scalar(self, keep_graph)
            return
        if not self._requires_grad:
            raise RuntimeError("Tensor does not require gradients")
        if self._tensor_type == TensorType.INTERMEDIATE and not self._parents:
            raise RuntimeError("No backward graph exists for this tensor")
        given = _real_array(gradient, "the gradient passed to backward()")
        seed = np.asarray(given, dtype=self._data.dtype)
        if seed.shape != self._shape:
            raise ValueError(
                f"Gradient shape {seed.shape} does not match tensor shape {self._shape}"
            )
        owned = seed is not given  # converted into a new array that nobody else holds
        _backend.engine.backward_pass(self, seed, owned, keep_graph)

    def register_hook(self, hook: Callable) -> "_hooks.RemovableHandle":
        """Call ``hook(grad)`` with the gradient flowing into this tensor in every later pass.

        ``grad`` is the tensor's total gradient of the pass: a NumPy array in ``backward()`` and
        ``func.gradients``, a Tensor when ``func.gradients(..., create_graph=True)`` records one.
        A non-None return value replaces it (same shape) for the rest of the pass: it flows on
        to the parents, or into ``.grad`` of a leaf.  Hooks run before any ``.grad`` is
        written, so a hook that raises leaves every ``.grad`` unchanged.  Returns a handle whose
        ``remove()`` unregisters the hook.
        """
        if not self._requires_grad:
            raise RuntimeError(
                "cannot register a hook on a tensor that does not require gradients (an INPUT "
                "tensor, or a result computed without a graph)"
            )
        return _hooks.register(self, hook)

    def retain_grad(self) -> None:
        """Kept for code written for PyTorch: a no-op, since every tensor that requires
        gradients (intermediates too) keeps its ``.grad`` after ``backward()``, as in 0.2.x."""
        return None


def _rebuild(cls, data, grad, tensor_type):
    """A tensor of class ``cls`` with these values, gradient and type, and no graph (pickle, copy).

    A copied INTERMEDIATE stays INTERMEDIATE but has no graph, like one whose graph was freed.
    """
    tensor = cls.__new__(cls)
    tensor_type = TensorType(tensor_type)
    _set_leaf(tensor, data, tensor_type, tensor_type != TensorType.INPUT, grad)
    return tensor


def _set_leaf(tensor, data, tensor_type, requires_grad, grad) -> None:
    """Fill every field of a tensor with no graph, under a new id."""
    tensor._data = data
    tensor._tensor_type = tensor_type
    tensor._requires_grad = requires_grad
    tensor._grad_fn = None
    tensor._grad = grad
    tensor._parents = ()
    tensor._extra = {}
    tensor._version = 0
    tensor._id = _graph.take_id()


_graph.install(
    Tensor,
    tuple(TensorType),
    {name: getattr(_Operators, name) for name in (
        "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
        "__truediv__", "__rtruediv__", "__neg__", "__pow__", "__rpow__", "__array_ufunc__", "__matmul__", "__getitem__",
        "transpose", "reshape",
    )},
    _registry.typed_vjps(),
)


class _GradMode:
    """Base of ``no_grad``/``enable_grad``: a context manager and decorator for this thread's grad mode.

    One instance may be entered again before it exits (nested, or from several threads): each
    ``__exit__`` restores the mode its own ``__enter__`` found.  Decorating a generator function
    runs the generator's body under the mode at every resumption (``next``, ``send``, ``throw``,
    ``close``), and the caller's mode in between.
    """

    _enabled = True

    def __enter__(self):
        previous = _graph.set_grad_enabled(self._enabled)
        stacks = self.__dict__.setdefault("_previous_by_thread", {})
        stacks.setdefault(threading.get_ident(), []).append(previous)
        return self

    def __exit__(self, *exc_info) -> None:
        stacks = self.__dict__["_previous_by_thread"]
        key = threading.get_ident()
        stack = stacks[key]
        previous = stack.pop()
        if not stack:
            del stacks[key]
        _graph.set_grad_enabled(previous)

    def __call__(self, fn: Callable) -> Callable:
        mode = type(self)
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def generator_with_mode(*args, **kwargs):
                with mode():
                    gen = fn(*args, **kwargs)
                    step = functools.partial(gen.send, None)
                while True:
                    try:
                        with mode():
                            request = step()
                    except StopIteration as stop:
                        return stop.value
                    try:
                        response = yield request
                    except GeneratorExit:
                        with mode():
                            gen.close()
                        raise
                    except BaseException as exc:  # thrown in: the generator's body handles it
                        step = functools.partial(gen.throw, exc)
                    else:
                        step = functools.partial(gen.send, response)

            return generator_with_mode

        @functools.wraps(fn)
        def with_mode(*args, **kwargs):
            with mode():
                return fn(*args, **kwargs)

        return with_mode


class no_grad(_GradMode):
    """Inside ``with no_grad():`` (or a function decorated ``@no_grad()``), operations record no graph.

    Their results are INPUT tensors with ``requires_grad=False``.  The setting is per thread and
    the previous one comes back on exit, after an exception too, and when nested.
    """

    _enabled = False


class enable_grad(_GradMode):
    """Turn graph recording back on inside a ``no_grad`` block (per thread, restored on exit)."""

    _enabled = True


_registry.bind(Tensor)
_getitem = _shape_ops.getitem


def _cast(tensor: Tensor, dtype: np.dtype) -> Tensor:
    # new_node gives a result its parents' dtype; a cast is the one op whose result differs.
    node = _new_node(tensor._data, _registry.OPS["astype"].backward, (tensor,), {"dtype": dtype})
    node._data = tensor._data.astype(dtype)
    return node


def _bind_methods() -> None:
    """Tensor methods derived from the registry (``t.sum()``, ``t.exp()``...)."""
    for op in _registry.OPS.values():
        for name in op.methods:
            if op.function is not None and name not in Tensor.__dict__:
                setattr(Tensor, name, op.function)


_bind_methods()
from . import _numpy_protocol  # noqa: E402
