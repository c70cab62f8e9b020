"""Indexing, joining, splitting and reshaping tensors, with gradients.

Each op computes its value with NumPy (NumPy's semantics and errors) and records, beside it,
the backward function from :mod:`clumsygrad.grad`:

=================================  =============================================
``getitem(t, key)`` / ``t[key]``   ``getitem_backward`` (scatter, repeats add up)
``concatenate(tensors, axis)``     ``concatenate_backward`` (grad split back)
``stack(tensors, axis)``           ``stack_backward``
``split(t, sections, axis)``       one ``getitem`` per piece
``expand_dims``, ``squeeze``,      ``reshape_backward`` (the values do not move)
``flatten``, ``reshape``
=================================  =============================================

Operands may be tensors or, where NumPy takes them, plain arrays and scalars, which become
INPUT tensors (see :func:`clumsygrad._operands.as_operands`).  Results follow the tensor-type
rule of every op: INTERMEDIATE when an operand needs a gradient, else INPUT.
"""
from __future__ import annotations

import copy
import operator
from typing import List, Sequence

import numpy as np

from ._operands import as_operands
from .grad import concatenate_backward, getitem_backward, reshape_backward, stack_backward
from .tensor import Tensor, _new_node

__all__ = ["getitem", "concatenate", "stack", "split", "expand_dims", "squeeze", "flatten", "reshape"]


def _tensor(value) -> Tensor:
    return value if isinstance(value, Tensor) else as_operands((value,))[0]


def getitem(tensor: Tensor, key) -> Tensor:
    """``tensor[key]`` for any NumPy index: ints, slices, None, ``...``, integer arrays, boolean masks.

    Basic indexing gives a view of ``tensor.data`` (as in NumPy), advanced indexing a copy.  The
    result records ``getitem_backward`` with ``_extra = {"key": key, "original_shape": shape}``;
    elements selected more than once receive the sum of their gradients.
    """
    tensor = _tensor(tensor)
    # The graph owns the key: index arrays and lists are copied, so that changing them after
    # the forward pass cannot move the gradient.
    parts = [p.copy() if isinstance(p, np.ndarray) else copy.deepcopy(p) if isinstance(p, list) else p
             for p in (key if type(key) is tuple else (key,))]
    key = tuple(parts) if type(key) is tuple else parts[0]
    data = tensor._data[key]
    return _new_node(data, getitem_backward, (tensor,), {"key": key, "original_shape": tensor._shape})


def _axis(axis, ndim: int, what: str) -> int:
    axis = operator.index(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"{what}: axis {axis} is out of bounds for {ndim} dimensions")
    return axis % ndim


def concatenate(tensors: Sequence, axis: int = 0) -> Tensor:
    """Join tensors (or arrays) along an existing ``axis``; each gets back its slice of the gradient."""
    tensors = as_operands(list(tensors))
    if not tensors:
        raise ValueError("concatenate needs at least one tensor")
    data = np.concatenate([t._data for t in tensors], axis=axis)
    ax = _axis(axis, tensors[0]._data.ndim, "concatenate")
    extra = {"axis": ax, "sizes": tuple(t._shape[ax] for t in tensors)}
    return _new_node(data, concatenate_backward, tensors, extra)


def stack(tensors: Sequence, axis: int = 0) -> Tensor:
    """Join tensors (or arrays) of one shape along a new ``axis``."""
    tensors = as_operands(list(tensors))
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    data = np.stack([t._data for t in tensors], axis=axis)
    return _new_node(data, stack_backward, tensors, {"axis": _axis(axis, data.ndim, "stack")})


def split(tensor: Tensor, indices_or_sections, axis: int = 0) -> List[Tensor]:
    """Split ``tensor`` along ``axis`` as ``np.split`` does; a list of tensors.

    Each piece is ``tensor[..., a:b, ...]``, recorded with ``getitem_backward``.
    """
    tensor = _tensor(tensor)
    pieces = np.split(tensor._data, indices_or_sections, axis=axis)  # NumPy checks the sections
    ax = _axis(axis, tensor._data.ndim, "split")
    try:  # NumPy's own bounds: piece k is [bounds[k]:bounds[k + 1]], slice rules and all
        bounds = [0] + list(indices_or_sections) + [tensor._shape[ax]]
    except TypeError:  # a number of equal sections
        size = tensor._shape[ax] // len(pieces)
        bounds = [k * size for k in range(len(pieces) + 1)]
    return [getitem(tensor, (slice(None),) * ax + (slice(bounds[k], bounds[k + 1]),))
            for k in range(len(pieces))]


def _reshaped(tensor: Tensor, data: np.ndarray) -> Tensor:
    return _new_node(data, reshape_backward, (tensor,), {"original_shape": tensor._shape})


def reshape(tensor: Tensor, shape) -> Tensor:
    """The same values in ``shape`` (one dimension may be -1); as ``Tensor.reshape``."""
    return _tensor(tensor).reshape(shape)


def expand_dims(tensor: Tensor, axis) -> Tensor:
    """A new axis of length 1 at ``axis`` (an int or a tuple, as ``np.expand_dims``)."""
    tensor = _tensor(tensor)
    return _reshaped(tensor, np.expand_dims(tensor._data, axis))


def squeeze(tensor: Tensor, axis=None) -> Tensor:
    """Drop axes of length 1 (all of them, or ``axis``; NumPy's error for an axis longer than 1)."""
    tensor = _tensor(tensor)
    return _reshaped(tensor, np.squeeze(tensor._data, axis=axis))


def flatten(tensor: Tensor) -> Tensor:
    """The values as one axis, in C order."""
    tensor = _tensor(tensor)
    return _reshaped(tensor, tensor._data.reshape(-1))
