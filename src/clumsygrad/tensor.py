"""Tensors and the computational graph they record.

Each operation below computes its forward value with NumPy and records, right beside
it, the backward function (from :mod:`clumsygrad.grad`) that maps the result's
gradient to its operands' gradients.  :meth:`Tensor.backward` checks its arguments and
hands the graph to the active backend's engine, ``backward_pass`` in
``clumsygrad._kernels.pure`` (the reference) or its compiled twin in ``_engine.pyx``.
"""
from __future__ import annotations

import gc
import numbers
import operator
from enum import IntEnum
from typing import Callable, Dict, List, Optional

import numpy as np

from . import _backend
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
    reshape_backward,
    sub_backward,
    sub_broadcast_backward,
    sub_scalar_backward,
    transpose_backward,
)

__all__ = ["TensorType", "Tensor", "TensorUtils"]

_FLOAT32 = np.dtype(np.float32)
_FLOAT64 = np.dtype(np.float64)
_allocate = object.__new__  # builds a node without running Tensor.__init__

# The next tensor id.  Kept out of the class: writing a class attribute on every new node
# would invalidate CPython's attribute cache for all tensors.
_id_counter = [0]


class TensorType(IntEnum):
    """The role of a tensor in the graph.

    INPUT tensors are constants (no gradient), PARAMETER tensors are trained and receive
    gradients, INTERMEDIATE tensors are results of operations on the other two.
    """

    INPUT = 0
    PARAMETER = 1
    INTERMEDIATE = 2


# Members as plain globals: identity tests on them are much cheaper than enum comparisons.
_INPUT = TensorType.INPUT
_PARAMETER = TensorType.PARAMETER
_INTERMEDIATE = TensorType.INTERMEDIATE


class _TensorMeta(type):
    """Gives ``Tensor._id_counter`` (read and assign, as in 0.2.x) over the module's counter."""

    @property
    def _id_counter(cls) -> int:
        return _id_counter[0]

    @_id_counter.setter
    def _id_counter(cls, value: int) -> None:
        _id_counter[0] = operator.index(value)


def _float_dtype(dtype) -> np.dtype:
    """``dtype`` as float32 or float64; anything else is a ``TypeError``."""
    dt = np.dtype(dtype)
    if dt != _FLOAT32 and dt != _FLOAT64:
        raise TypeError(f"Tensor dtype must be float32 or float64, got {dt}")
    return dt


def _scalar(value) -> Optional[float]:
    """``value`` as a Python float if it is a real scalar (Python, NumPy or 0-d array), else None."""
    if type(value) is float or type(value) is int:
        return float(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "biuf":
        return float(value)
    return None


def _broadcast_shapes(shape1: tuple, shape2: tuple) -> tuple:
    """The broadcast of two shapes; ``ValueError("Cannot broadcast shapes ...")`` if there is none."""
    n = max(len(shape1), len(shape2))
    padded1 = (1,) * (n - len(shape1)) + tuple(shape1)
    padded2 = (1,) * (n - len(shape2)) + tuple(shape2)
    result = []
    for d1, d2 in zip(padded1, padded2):
        if d1 != d2 and d1 != 1 and d2 != 1:
            raise ValueError(f"Cannot broadcast shapes {tuple(shape1)} and {tuple(shape2)}")
        result.append(d2 if d1 == 1 else d1)
    return tuple(result)


def _new_node(data, grad_fn: Optional[Callable], parents: tuple, extra: Optional[dict] = None):
    """A result tensor of an operation on ``parents``, recording the graph when it needs one.

    The result is INTERMEDIATE (with ``grad_fn``, ``parents`` and ``extra``) when any
    parent is a PARAMETER or INTERMEDIATE, otherwise an INPUT with no graph.  Its dtype
    is float64 if any parent is float64, else float32.  ``data`` is not copied.
    """
    first = parents[0]
    dtype = first._data.dtype
    track = first._tensor_type is not _INPUT
    requires_grad = first._requires_grad
    for parent in parents[1:]:
        if parent._data.dtype is not dtype and parent._data.dtype != dtype:
            dtype = _FLOAT64
        track = track or parent._tensor_type is not _INPUT
        requires_grad = requires_grad or parent._requires_grad
    if type(data) is not np.ndarray or (data.dtype is not dtype and data.dtype != dtype):
        data = np.asarray(data, dtype=dtype)

    node = _allocate(Tensor)
    node._data = data
    node._shape = data.shape
    node._grad = None
    node._requires_grad = requires_grad
    node._id = _id_counter[0]
    _id_counter[0] += 1
    if track:
        node._tensor_type = _INTERMEDIATE
        node._grad_fn = grad_fn
        node._parents = parents
        node._extra = dict(extra) if extra else {}
    else:
        node._tensor_type = _INPUT
        node._grad_fn = None
        node._parents = ()
        node._extra = {}
    return node


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


class Tensor(metaclass=_TensorMeta):
    """An n-dimensional float32 (or float64) array that records the operations applied to it."""

    __slots__ = (
        "_data",
        "_shape",
        "_id",
        "_grad_fn",
        "_grad",
        "_parents",
        "_extra",
        "_tensor_type",
        "_requires_grad",
    )

    # NumPy scalars and arrays on the left of an operator defer to the Tensor's reflected method.
    __array_ufunc__ = None

    _create_node = staticmethod(_new_node)
    _broadcast_shapes = staticmethod(_broadcast_shapes)

    @staticmethod
    def _can_broadcast(shape1: tuple, shape2: tuple) -> bool:
        try:
            _broadcast_shapes(shape1, shape2)
        except ValueError:
            return False
        return True

    def __init__(self, data, tensor_type: TensorType = TensorType.INPUT, dtype=np.float32):
        """Wrap ``data`` (scalar, nested list or array; always copied) as a tensor.

        PARAMETER tensors require gradients; INPUT tensors do not.  ``dtype`` is float32
        (the default) or float64.
        """
        self._data = np.array(data, dtype=_float_dtype(dtype))
        self._shape = self._data.shape
        self._tensor_type = TensorType(tensor_type)
        self._requires_grad = self._tensor_type is _PARAMETER
        self._grad_fn = None
        self._grad = None
        self._parents = ()
        self._extra = {}
        self._id = _id_counter[0]
        _id_counter[0] += 1

    def _cleanup_references(self) -> None:
        """Drop the links to the parents, freeing the graph behind this node."""
        self._parents = ()

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
        # Stored as a private copy: later backward passes accumulate into it in place.
        if value is None:
            self._grad = None
            return
        grad = np.array(value, dtype=self._data.dtype)
        if grad.shape != self._shape:
            raise ValueError(
                f"Gradient shape {grad.shape} does not match tensor shape {self._shape}"
            )
        self._grad = grad

    # ------------------------------------------------------------------ elementwise operators
    def _elementwise(self, other, ufunc, same_shape_fn, broadcast_fn, scalar_fn):
        """``ufunc(self, other)`` for a tensor or real scalar ``other``, with its backward function."""
        if isinstance(other, Tensor):
            return _binary_node(self, other, _broadcasting(ufunc, self, other), same_shape_fn, broadcast_fn)
        scalar = _scalar(other)
        if scalar is None:
            return NotImplemented
        return _new_node(ufunc(self._data, scalar), scalar_fn, (self,), {"scalar_value": scalar})

    def __add__(self, other):
        return self._elementwise(other, np.add, add_backward, add_broadcast_backward, add_scalar_backward)

    def __sub__(self, other):
        return self._elementwise(other, np.subtract, sub_backward, sub_broadcast_backward, sub_scalar_backward)

    def __mul__(self, other):
        return self._elementwise(other, np.multiply, mul_backward, mul_broadcast_backward, mul_scalar_backward)

    def __radd__(self, other):
        return self.__add__(other)

    def __rmul__(self, other):
        return self.__mul__(other)

    def __rsub__(self, other):
        # c - t is (-t) + c: exact in floating point, and no backward code of its own.
        if _scalar(other) is None:
            return NotImplemented
        return (-self).__add__(other)

    def __truediv__(self, other):
        # t / u records t * u**-1 and t / c records t * (1/c); the forward value is the exact quotient.
        if isinstance(other, Tensor):
            quotient = _broadcasting(np.divide, self, other)
            return _binary_node(self, other ** -1, quotient, mul_backward, mul_broadcast_backward)
        scalar = _scalar(other)
        if scalar is None:
            return NotImplemented
        inverse = float(np.float64(1.0) / scalar)
        return _new_node(self._data / scalar, mul_scalar_backward, (self,), {"scalar_value": inverse})

    def __rtruediv__(self, other):
        # c / t records c * t**-1.
        scalar = _scalar(other)
        if scalar is None:
            return NotImplemented
        reciprocal = self ** -1
        return _new_node(scalar / self._data, mul_scalar_backward, (reciprocal,), {"scalar_value": scalar})

    def __pow__(self, power):
        exponent = _scalar(power)
        if exponent is None:
            return NotImplemented
        return _new_node(self._data ** exponent, power_backward, (self,), {"power": exponent})

    def __neg__(self):
        return _new_node(-self._data, negate_backward, (self,))

    # ------------------------------------------------------------------ linear algebra and shape
    def __matmul__(self, other):
        if not isinstance(other, Tensor):
            raise TypeError(
                f"Right operand must be a Tensor for matrix multiplication, got {type(other).__name__}."
            )
        if len(self._shape) < 2 or len(other._shape) < 2:
            raise ValueError(
                f"Matrix multiplication requires at least 2D tensors, got {self._shape} @ {other._shape}."
            )
        if self._shape[-1] != other._shape[-2]:
            raise ValueError(f"Matrix shapes not aligned: {self._shape} @ {other._shape}")
        try:
            product = np.matmul(self._data, other._data)
        except ValueError:  # the batch dimensions (the inner ones were checked above)
            raise ValueError(
                f"Cannot broadcast the batch dimensions of {self._shape} @ {other._shape}"
            ) from None
        return _new_node(product, matmul_backward, (self, other))

    def T(self) -> "Tensor":
        """The transpose (all axes reversed).  The transpose of a transpose is the original tensor."""
        if self._grad_fn is transpose_backward and self._parents:
            return self._parents[0]
        return _new_node(self._data.T, transpose_backward, (self,))

    def reshape(self, new_shape) -> "Tensor":
        """The same values in ``new_shape`` (one dimension may be -1)."""
        try:
            data = self._data.reshape(new_shape)
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"New shape must have the same number of elements as the original shape: "
                f"cannot reshape {self._shape} into {new_shape} ({exc})"
            ) from None
        return _new_node(data, reshape_backward, (self,), {"original_shape": self._shape})

    # ------------------------------------------------------------------ backward
    def backward(self, gradient=None, keep_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) * ``gradient`` into ``.grad`` of every tensor that requires it.

        ``gradient`` defaults to ones for a one-element tensor and must otherwise have this
        tensor's shape.  Unless ``keep_graph`` is true, the graph behind this tensor is freed.
        """
        if not self._requires_grad:
            raise RuntimeError("Tensor does not require gradients")
        if self._tensor_type is _INTERMEDIATE and not self._parents:
            raise RuntimeError("No backward graph exists for this tensor")
        dtype = self._data.dtype
        if gradient is None:
            if self._data.size != 1:
                raise RuntimeError("Gradient can only be implicitly created for scalar outputs")
            # np.array is several times faster than np.ones for the usual 0-d loss.
            seed = np.array(1, dtype=dtype) if not self._shape else np.ones(self._shape, dtype=dtype)
            owned = True
        else:
            if isinstance(gradient, Tensor):
                gradient = gradient._data
            seed = np.asarray(gradient, dtype=dtype)
            if seed.shape != self._shape:
                raise ValueError(
                    f"Gradient shape {seed.shape} does not match tensor shape {self._shape}"
                )
            owned = not (isinstance(gradient, np.ndarray) and np.may_share_memory(seed, gradient))
        # The graph holds no reference cycles, and cyclic GC passes over a large graph
        # would cost more than the backward pass itself.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            _backend.active.backward_pass(self, seed, owned, keep_graph)
        finally:
            if gc_was_enabled:
                gc.enable()


class TensorUtils:
    """Queries over the graph reachable from a tensor."""

    @staticmethod
    def _reachable(tensor: Tensor):
        """Every tensor reachable from ``tensor`` through parents, each once."""
        seen = {tensor}
        stack = [tensor]
        while stack:
            current = stack.pop()
            yield current
            for parent in current._parents:
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)

    @staticmethod
    def get_parameters(tensor: Tensor) -> List[Tensor]:
        """The PARAMETER tensors reachable from ``tensor``."""
        return [t for t in TensorUtils._reachable(tensor) if t._tensor_type is _PARAMETER]

    @staticmethod
    def count_by_type(tensor: Tensor) -> Dict[TensorType, int]:
        """How many reachable tensors there are of each type."""
        counts = {kind: 0 for kind in TensorType}
        for t in TensorUtils._reachable(tensor):
            counts[t._tensor_type] += 1
        return counts
