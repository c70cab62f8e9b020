"""Reductions and elementwise choices that pick values: ``max``, ``min``, ``maximum``, ``minimum``,
``where``, ``clip``, with gradients.

The gradient of a choice goes to the element chosen: for ``max``/``min`` to the *first*
maximal (minimal) element of each reduced block, in C order over the reduced axes (what
``np.argmax`` picks), never split between ties; for ``maximum``/``minimum`` ties go to the
first operand.  Operands may be tensors, arrays or scalars (constants become INPUT tensors);
broadcasting follows NumPy and the gradients are summed back to each operand's shape.
"""
from __future__ import annotations

import numpy as np

from ._operands import as_operands
from .grad import max_backward, maximum_backward, min_backward, minimum_backward, where_backward
from .tensor import Tensor, _new_node

__all__ = ["max", "min", "maximum", "minimum", "where", "clip"]


def _reduction(tensor, axis, keepdims, reduce, backward) -> Tensor:
    (tensor,) = as_operands((tensor,))
    axis = tuple(axis) if isinstance(axis, list) else axis
    data = reduce(tensor._data, axis=axis, keepdims=keepdims)
    extra = {"axis": axis, "keepdims": keepdims, "input_shape": tensor._shape}
    return _new_node(data, backward, (tensor,), extra)


def max(tensor: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """Largest value over ``axis`` (None, int or tuple); the gradient goes to the first maximal element."""
    return _reduction(tensor, axis, keepdims, np.max, max_backward)


def min(tensor: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """Smallest value over ``axis`` (None, int or tuple); the gradient goes to the first minimal element."""
    return _reduction(tensor, axis, keepdims, np.min, min_backward)


def _choice(a, b, ufunc, backward) -> Tensor:
    a, b = as_operands((a, b))
    try:
        data = ufunc(a._data, b._data)
    except ValueError:
        raise ValueError(f"Cannot broadcast shapes {a._shape} and {b._shape}") from None
    return _new_node(data, backward, (a, b))


def maximum(a, b) -> Tensor:
    """Elementwise larger of ``a`` and ``b`` (broadcast); where they are equal the gradient goes to ``a``."""
    return _choice(a, b, np.maximum, maximum_backward)


def minimum(a, b) -> Tensor:
    """Elementwise smaller of ``a`` and ``b`` (broadcast); where they are equal the gradient goes to ``a``."""
    return _choice(a, b, np.minimum, minimum_backward)


def where(condition, a, b) -> Tensor:
    """``a`` where ``condition`` is true, else ``b`` (all three broadcast, as ``np.where``).

    ``condition`` is a boolean array (a tensor's values are compared with 0); it receives no
    gradient.
    """
    cond = condition._data if isinstance(condition, Tensor) else condition
    cond = np.array(cond, dtype=bool)  # a copy the graph owns: changing `condition` later moves nothing
    a, b = as_operands((a, b))
    try:
        data = np.where(cond, a._data, b._data)
    except ValueError:
        raise ValueError(
            f"Cannot broadcast shapes {cond.shape}, {a._shape} and {b._shape}"
        ) from None
    return _new_node(data, where_backward, (a, b), {"condition": cond})


def clip(tensor, lo, hi) -> Tensor:
    """``tensor`` limited to ``[lo, hi]`` (either bound may be None; scalars, arrays or tensors).

    Recorded as ``minimum(maximum(tensor, lo), hi)``: the gradient passes where
    ``lo <= tensor <= hi`` (bounds included) and goes to a tensor bound where it is active.
    """
    if lo is None and hi is None:
        raise ValueError("clip needs at least one of lo and hi")
    out = tensor if isinstance(tensor, Tensor) else as_operands((tensor,))[0]
    if lo is not None:
        out = maximum(out, lo)
    if hi is not None:
        out = minimum(out, hi)
    return out

