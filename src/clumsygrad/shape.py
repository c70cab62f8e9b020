"""Indexing, joining, splitting and reshaping tensors, with gradients.

Each op is a registry entry (forward on arrays, VJP beside it); NumPy's semantics and errors.
Operands may be tensors or, where NumPy takes them, plain arrays and scalars, which become INPUT
tensors.  Results follow the tensor-type rule of every op: INTERMEDIATE when an operand needs a
gradient, else INPUT.  Index arrays, masks and other constants a backward pass needs are copied
(read-only) when recorded, so changing the caller's array afterwards cannot move a gradient.
"""
from __future__ import annotations

import operator
from typing import List, Sequence

import numpy as np

from ._adjoint import owned_key, scatter, scatter_array
from ._registry import OPS, as_tensors, defop, export

_new_node = None  # bound below (the graph's new_node)


def _record(name: str, tensors: tuple, data, extra: dict):
    return _new_node(data, OPS[name].backward, tensors, extra)


# ----------------------------------------------------------------------------- indexing
def getitem(x, key):
    """``x[key]`` for any NumPy index: ints, slices, None, ``...``, integer arrays, boolean masks.

    Basic indexing gives a view of ``x.data`` (as in NumPy), advanced indexing a copy.  The
    result records ``getitem_backward`` with ``_extra = {"key": key, "original_shape": shape}``
    (the key's arrays copied); elements selected more than once receive the sum of their gradients.
    """
    return x[key]


def _getitem_kernel(tensor, grad, *, needs=None):
    extra = tensor._extra
    return (scatter_array(grad, extra["key"], tuple(extra["original_shape"])),)


defop("getitem", getitem, (lambda g, out, x, key: scatter(g, key, np.shape(x)),),
      module="shape", kernel=_getitem_kernel, public=False)


def _getitem(x, key):
    (x,) = as_tensors((x,))
    key = owned_key(key)
    return _record("getitem", (x,), x._data[key], {"key": key, "original_shape": x._shape})


def _index_add(g, key, shape):
    """Zeros of ``shape`` with ``g`` added in at ``key`` (repeats add up): the adjoint of ``x[key]``."""
    return scatter_array(g, key, tuple(shape))


# Recorded only by getitem's formula on Tensors (a gradient of a gradient).
index_add = defop("index_add", _index_add, (lambda gg, out, g, key, shape: gg[key],),
                  module="internal").function


# ----------------------------------------------------------------------------- reshaping
def _axis(axis, ndim: int, what: str) -> int:
    axis = operator.index(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"{what}: axis {axis} is out of bounds for {ndim} dimensions")
    return axis % ndim


def _reshape_forward(x, shape):
    return np.reshape(x, shape)


defop("reshape", _reshape_forward, (lambda g, out, x, **_: np.reshape(g, np.shape(x)),),
      module="shape", public=False, typed="RESHAPE")


def _reshaped(x, data):
    return _record("reshape", (x,), data, {"original_shape": x._shape})


def reshape(x, shape, *more):
    """The same values in ``shape`` (one dimension may be -1); ``reshape(t, 2, -1)`` works too."""
    (x,) = as_tensors((x,))
    if more:
        shape = (shape,) + more
    try:
        data = x._data.reshape(shape)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"New shape must have the same number of elements as the original shape: "
            f"cannot reshape {x._shape} into {shape} ({exc})"
        ) from None
    return _reshaped(x, data)


def expand_dims(x, axis):
    """A new axis of length 1 at ``axis`` (an int or a tuple, as ``np.expand_dims``)."""
    (x,) = as_tensors((x,))
    return _reshaped(x, np.expand_dims(x._data, axis))


def squeeze(x, axis=None):
    """Drop axes of length 1 (all of them, or ``axis``; NumPy's error for an axis longer than 1)."""
    (x,) = as_tensors((x,))
    return _reshaped(x, np.squeeze(x._data, axis=axis))


def flatten(x):
    """The values as one axis, in C order."""
    (x,) = as_tensors((x,))
    return _reshaped(x, x._data.reshape(-1))


def _ravel(x, order="C"):
    if order != "C":
        raise TypeError("ravel of a Tensor supports order='C' only")
    return flatten(x)


def _transpose_forward(x):
    return np.transpose(x)


defop("transpose", _transpose_forward, (lambda g, out, x: np.transpose(g),), module="shape",
      public=False, typed="TRANSPOSE")


def _permute_forward(x, axes):
    return np.transpose(x, axes)


defop("permute", _permute_forward,
      (lambda g, out, x, axes: np.transpose(g, tuple(np.argsort(axes))),), module="shape",
      public=False)


def transpose(x, axes=None):
    """The axes reversed (``axes=None``) or permuted to ``axes``, as ``np.transpose``."""
    (x,) = as_tensors((x,))
    if axes is None:
        return _record("transpose", (x,), x._data.T, None)
    axes = tuple(operator.index(a) % max(x._data.ndim, 1) for a in axes)
    data = np.transpose(x._data, axes)  # NumPy checks the permutation
    return _record("permute", (x,), data, {"axes": axes})


def swapaxes(x, axis1: int, axis2: int):
    """``x`` with ``axis1`` and ``axis2`` exchanged."""
    (x,) = as_tensors((x,))
    n = x._data.ndim
    axes = list(range(n))
    a, b = _axis(axis1, n, "swapaxes"), _axis(axis2, n, "swapaxes")
    axes[a], axes[b] = axes[b], axes[a]
    return transpose(x, axes)


def moveaxis(x, source, destination):
    """``x`` with the axes at ``source`` moved to ``destination`` (ints or sequences)."""
    (x,) = as_tensors((x,))
    n = x._data.ndim
    src = [_axis(a, n, "moveaxis") for a in np.atleast_1d(source)]
    dst = [_axis(a, n, "moveaxis") for a in np.atleast_1d(destination)]
    if len(src) != len(dst):
        raise ValueError("moveaxis: source and destination must have the same number of elements")
    order = [a for a in range(n) if a not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(x, order)


def broadcast_to(x, shape):
    """``x`` broadcast to ``shape`` (a read-only view, as NumPy's)."""
    return np.broadcast_to(x, shape)


defop("broadcast_to", broadcast_to, (lambda g, out, x, shape: _unbroadcast(g, np.shape(x)),),
      module="shape", numpy=(np.broadcast_to,))


def _unbroadcast(g, shape):
    from ._adjoint import unbroadcast

    return unbroadcast(g, shape)


def flip(x, axis=None):
    """The order of the elements along ``axis`` (None: every axis) reversed."""
    return np.flip(x, axis=axis)


defop("flip", flip, (lambda g, out, x, axis=None: np.flip(g, axis=axis),), module="shape",
      numpy=(np.flip,), method="flip")


# ----------------------------------------------------------------------------- joining
def _concatenate_vjp(g, out, *inputs, axis=0, needs):
    bounds = np.cumsum([np.shape(x)[axis] for x in inputs])[:-1]
    pieces = split(g, [int(b) for b in bounds], axis=axis) if not isinstance(g, np.ndarray) \
        else np.split(g, bounds, axis=axis)
    return tuple(p if need else None for p, need in zip(pieces, needs))


defop("concatenate", None, _concatenate_vjp, module="shape", public=False, params=["axis"])


def concatenate(tensors: Sequence, axis: int = 0):
    """Join tensors (or arrays) along an existing ``axis``; each gets back its slice of the gradient."""
    tensors = as_tensors(list(tensors))
    if not tensors:
        raise ValueError("concatenate needs at least one tensor")
    data = np.concatenate([t._data for t in tensors], axis=axis)
    ax = _axis(axis, tensors[0]._data.ndim, "concatenate")
    return _record("concatenate", tensors, data, {"axis": ax, "sizes": tuple(t._shape[ax] for t in tensors)})


def _stack_vjp(g, out, *inputs, axis=0, needs):
    lead = (slice(None),) * axis
    return tuple(g[lead + (i,)] if need else None for i, need in enumerate(needs))


defop("stack", None, _stack_vjp, module="shape", public=False, params=["axis"])


def stack(tensors: Sequence, axis: int = 0):
    """Join tensors (or arrays) of one shape along a new ``axis``."""
    tensors = as_tensors(list(tensors))
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    data = np.stack([t._data for t in tensors], axis=axis)
    return _record("stack", tensors, data, {"axis": _axis(axis, data.ndim, "stack")})


def split(x, indices_or_sections, axis: int = 0) -> List:
    """Split ``x`` along ``axis`` exactly as ``np.split`` does; a list of tensors.

    Piece ``i`` is ``x[..., b[i]:b[i + 1], ...]`` with ``b = [0, *indices, n]`` (so indices that do
    not increase give the same pieces as NumPy's), each recorded as a ``getitem``.
    """
    (x,) = as_tensors((x,))
    ax = _axis(axis, x._data.ndim, "split")
    n = x._data.shape[ax]
    try:
        sections = operator.index(indices_or_sections)
    except TypeError:
        bounds = [0] + [operator.index(i) for i in indices_or_sections] + [n]
    else:
        if sections <= 0 or n % sections:
            raise ValueError("array split does not result in an equal division")
        step = n // sections
        bounds = [i * step for i in range(sections + 1)]
    lead = (slice(None),) * ax
    return [_getitem(x, lead + (slice(bounds[i], bounds[i + 1]),)) for i in range(len(bounds) - 1)]


__all__ = export(globals(), "shape") + [
    "getitem", "concatenate", "stack", "split", "expand_dims", "squeeze", "flatten", "reshape",
    "transpose", "swapaxes", "moveaxis",
]
getitem = _getitem

from ._backend import graph as _graph  # noqa: E402

_new_node = _graph.new_node

from ._registry import FUNCTIONS as _FUNCTIONS  # noqa: E402

_FUNCTIONS.update({
    np.concatenate: concatenate, np.stack: stack, np.split: split, np.reshape: reshape,
    np.expand_dims: expand_dims, np.squeeze: squeeze, np.ravel: _ravel, np.transpose: transpose,
    np.swapaxes: swapaxes, np.moveaxis: moveaxis,
})
