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

from ._adjoint import normalize_axes, owned_key, scatter, scatter_array
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
      module="shape", kernel=_getitem_kernel, public=False, typed="GETITEM")


def _getitem(tensor, key):
    (tensor,) = as_tensors((tensor,))
    key = owned_key(key)
    return _record("getitem", (tensor,), tensor._data[key], {"key": key, "original_shape": tensor._shape})


def _index_add(g, key, shape):
    """Zeros of ``shape`` with ``g`` added in at ``key`` (repeats add up): the adjoint of ``x[key]``."""
    return scatter_array(g, key, tuple(shape))


# Recorded only by getitem's formula on Tensors (a gradient of a gradient).
index_add = defop("index_add", _index_add, (lambda gg, out, g, key, shape: gg[key],),
                  module="internal").function


# ----------------------------------------------------------------------------- reshaping
def _axis(axis, ndim: int, what: str) -> int:
    return normalize_axes(operator.index(axis), ndim, f"{what}: axis")[0]


def _reshape_forward(x, shape):
    return np.reshape(x, shape)


defop("reshape", _reshape_forward, (lambda g, out, x, **_: np.reshape(g, np.shape(x)),),
      module="shape", public=False, typed="RESHAPE")


def _reshaped(x, data):
    return _record("reshape", (x,), data, {"original_shape": x._shape})


def reshape(tensor, shape, *more):
    """The same values in ``shape`` (one dimension may be -1); ``reshape(t, 2, -1)`` works too."""
    (tensor,) = as_tensors((tensor,))
    if more:
        shape = (shape,) + more
    try:
        data = tensor._data.reshape(shape)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"New shape must have the same number of elements as the original shape. "
            f"Here: cannot reshape {tensor._shape} into {shape} ({exc})"
        ) from None
    return _reshaped(tensor, data)


def expand_dims(tensor, axis):
    """A new axis of length 1 at ``axis`` (an int or a tuple, as ``np.expand_dims``)."""
    (tensor,) = as_tensors((tensor,))
    return _reshaped(tensor, np.expand_dims(tensor._data, axis))


def squeeze(tensor, axis=None):
    """Drop axes of length 1 (all of them, or ``axis``; NumPy's error for an axis longer than 1)."""
    (tensor,) = as_tensors((tensor,))
    return _reshaped(tensor, np.squeeze(tensor._data, axis=axis))


def flatten(tensor):
    """The values as one axis, in C order."""
    (tensor,) = as_tensors((tensor,))
    return _reshaped(tensor, tensor._data.reshape(-1))


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
      public=False, typed="PERMUTE")


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


defop("concatenate", None, _concatenate_vjp, module="shape", public=False, params=["axis"],
      typed="CONCATENATE")


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


defop("stack", None, _stack_vjp, module="shape", public=False, params=["axis"], typed="STACK")


def stack(tensors: Sequence, axis: int = 0):
    """Join tensors (or arrays) of one shape along a new ``axis``."""
    tensors = as_tensors(list(tensors))
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    data = np.stack([t._data for t in tensors], axis=axis)
    return _record("stack", tensors, data, {"axis": _axis(axis, data.ndim, "stack")})


def split(tensor, indices_or_sections, axis: int = 0) -> List:
    """Split ``tensor`` along ``axis`` exactly as ``np.split`` does; a list of tensors.

    Piece ``i`` is ``tensor[..., b[i]:b[i + 1], ...]`` with ``b = [0, *indices, n]`` (so indices that do
    not increase give the same pieces as NumPy's), each recorded as a ``getitem``.
    """
    (tensor,) = as_tensors((tensor,))
    ax = _axis(axis, tensor._data.ndim, "split")
    n = tensor._data.shape[ax]
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
    return [_getitem(tensor, lead + (slice(bounds[i], bounds[i + 1]),)) for i in range(len(bounds) - 1)]


__all__ = export(globals(), "shape") + [
    "getitem", "concatenate", "stack", "split", "expand_dims", "squeeze", "flatten", "reshape",
    "transpose", "swapaxes", "moveaxis",
]
getitem = _getitem

from ._backend import graph as _graph  # noqa: E402

_new_node = _graph.new_node
# On the compiled node the common calls (a list of tensors of one dtype, an int axis) record in C.
concatenate = _graph.join_function(concatenate, OPS["concatenate"].backward, False)
stack = _graph.join_function(stack, OPS["stack"].backward, True)

from ._registry import FUNCTIONS as _FUNCTIONS  # noqa: E402

_FUNCTIONS.update({
    np.concatenate: concatenate, np.stack: stack, np.split: split, np.reshape: reshape,
    np.expand_dims: expand_dims, np.squeeze: squeeze, np.ravel: _ravel, np.transpose: transpose,
    np.swapaxes: swapaxes, np.moveaxis: moveaxis,
})


# ----------------------------------------------------------------------------- pad, repeat, tile, roll, take
# (issue 14's breadth; each a registry entry like the ops above)
def _pad_widths(pad_width, ndim: int) -> tuple:
    """``pad_width`` in any of NumPy's forms as ``((before, after),) * ndim`` of non-negative ints."""
    widths = np.asarray(pad_width)
    if widths.dtype.kind not in "iu":
        raise TypeError(f"pad: pad_width must be integers, got {pad_width!r}")
    try:
        widths = np.broadcast_to(widths, (ndim, 2))
    except ValueError:
        raise ValueError(f"pad: pad_width {pad_width!r} does not fit an array of {ndim} dimensions") from None
    if (widths < 0).any():
        raise ValueError(f"pad: pad_width cannot be negative, got {pad_width!r}")
    return tuple((int(a), int(b)) for a, b in widths)


def pad(x, pad_width, mode="constant", constant_values=0):
    """``x`` padded with ``constant_values`` (``mode="constant"`` only), ``pad_width`` in any of
    ``np.pad``'s forms; the gradient is the un-padded middle of the incoming one."""
    if mode != "constant":
        raise ValueError(f"pad of a Tensor supports mode='constant' only, got {mode!r}")
    widths = _pad_widths(pad_width, np.ndim(x))
    return np.pad(x, widths, mode="constant", constant_values=constant_values)


def _pad_vjp(g, out, x, pad_width, mode="constant", constant_values=0):
    widths = _pad_widths(pad_width, np.ndim(x))
    return g[tuple(slice(a, a + n) for (a, _), n in zip(widths, np.shape(x)))]


def _frozen(value):
    """``value`` (an int, or a nested sequence or array of them) as nested tuples: a parameter the
    caller cannot change after recording."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(_frozen(v) for v in value)
    return operator.index(value) if isinstance(value, (int, np.integer)) else value


defop("pad", pad, (_pad_vjp,), module="shape", numpy=(np.pad,),
      save=lambda out, x, pad_width, **_: {"pad_width": _frozen(pad_width)})


def _repeat_index(n: int, repeats) -> np.ndarray:
    index = np.repeat(np.arange(n), repeats)
    index.flags.writeable = False
    return index


def repeat(x, repeats, axis=None):
    """Each element repeated ``repeats`` times (an int or one count per element) along ``axis``
    (None: of the flattened values), as ``np.repeat``."""
    return np.repeat(x, repeats, axis=axis)


def _repeat_vjp(g, out, x, repeats, axis=None):
    shape = np.shape(x)
    if axis is None:
        size = int(np.prod(shape, dtype=np.int64))
        return np.reshape(scatter(g, (_repeat_index(size, repeats),), (size,)), shape)
    ax = _axis(axis, len(shape), "repeat")
    key = (slice(None),) * ax + (_repeat_index(shape[ax], repeats),)
    return scatter(g, key, shape)


def _owned_repeats(out, x, repeats, axis=None):
    return {"repeats": repeats if np.ndim(repeats) == 0 else owned_key(np.asarray(repeats))}


defop("repeat", repeat, (_repeat_vjp,), module="shape", numpy=(np.repeat,), method="repeat",
      save=_owned_repeats)


def tile(x, reps):
    """``x`` repeated ``reps`` times along each axis, as ``np.tile``."""
    return np.tile(x, reps)


def _tile_vjp(g, out, x, reps):
    reps = (int(reps),) if np.ndim(reps) == 0 else tuple(int(r) for r in reps)
    shape = np.shape(x)
    n = max(len(shape), len(reps))
    shape_p = (1,) * (n - len(shape)) + tuple(shape)
    reps_p = (1,) * (n - len(reps)) + reps
    split_shape = tuple(d for pair in zip(reps_p, shape_p) for d in pair)
    summed = np.sum(np.reshape(g, split_shape), axis=tuple(range(0, 2 * n, 2)))
    return np.reshape(summed, shape)


defop("tile", tile, (_tile_vjp,), module="shape", numpy=(np.tile,),
      save=lambda out, x, reps: {"reps": _frozen(reps)})


def roll(x, shift, axis=None):
    """The elements shifted by ``shift`` along ``axis`` (None: of the flattened values), wrapping
    around, as ``np.roll``."""
    return np.roll(x, shift, axis=axis)


def _roll_vjp(g, out, x, shift, axis=None):
    back = -shift if np.ndim(shift) == 0 else tuple(-int(s) for s in shift)
    return np.roll(g, back, axis=axis)


defop("roll", roll, (_roll_vjp,), module="shape", numpy=(np.roll,),
      save=lambda out, x, shift, axis=None: {"shift": _frozen(shift), "axis": _frozen(axis)})


def _take_index(indices, n: int, mode: str) -> np.ndarray:
    index = np.asarray(indices)
    if index.dtype.kind not in "iu":
        raise TypeError(f"take: indices must be integers, got dtype {index.dtype}")
    if mode == "wrap":
        index = index % n if n else index
    elif mode == "clip":
        index = np.clip(index, 0, max(n - 1, 0))
    elif mode != "raise":
        raise ValueError(f"take: mode must be 'raise', 'wrap' or 'clip', got {mode!r}")
    return owned_key(index)


def take(x, indices, axis=None, mode="raise"):
    """The elements at ``indices`` along ``axis`` (None: of the flattened values), as ``np.take``;
    elements taken more than once receive the sum of their gradients."""
    n = np.size(x) if axis is None else np.shape(x)[_axis(axis, np.ndim(x), "take")]
    return np.take(x, _take_index(indices, n, mode), axis=axis)


def _take_key(shape, indices, axis, mode):
    if axis is None:
        size = int(np.prod(shape, dtype=np.int64))
        return (_take_index(indices, size, mode),), (size,)
    ax = _axis(axis, len(shape), "take")
    return (slice(None),) * ax + (_take_index(indices, shape[ax], mode),), tuple(shape)


def _take_vjp(g, out, x, indices, axis=None, mode="raise"):
    key, shape = _take_key(np.shape(x), indices, axis, mode)
    return np.reshape(scatter(g, key, shape), np.shape(x))


def _owned_indices(out, x, indices, axis=None, mode="raise"):
    return {"indices": owned_key(np.asarray(indices))}


defop("take", take, (_take_vjp,), module="shape", numpy=(np.take,), method="take", save=_owned_indices)


def take_along_axis(x, indices, axis):
    """``x``'s elements at ``indices`` along ``axis`` (indices of ``x``'s number of dimensions,
    broadcast against it elsewhere), as ``np.take_along_axis``; ``axis=None`` takes from the
    flattened values."""
    return np.take_along_axis(x, np.asarray(indices), axis)


def _along_axis_key(shape, indices, axis):
    """The fancy-index key with ``x[key] == np.take_along_axis(x, indices, axis)``."""
    index = np.asarray(indices)
    if axis is None:
        return (index,), (int(np.prod(shape, dtype=np.int64)),)
    nd = len(shape)
    ax = _axis(axis, nd, "take_along_axis")
    key = []
    for d in range(nd):
        if d == ax:
            key.append(index)
        else:
            key.append(np.arange(shape[d]).reshape((1,) * d + (-1,) + (1,) * (nd - d - 1)))
    return tuple(key), tuple(shape)


def _take_along_axis_vjp(g, out, x, indices, axis):
    key, shape = _along_axis_key(np.shape(x), indices, axis)
    return np.reshape(scatter(g, key, shape), np.shape(x))


defop("take_along_axis", take_along_axis, (_take_along_axis_vjp,), module="shape",
      numpy=(np.take_along_axis,), save=_owned_indices)

__all__ += ["pad", "repeat", "tile", "roll", "take", "take_along_axis"]
for _name in ("pad", "repeat", "tile", "roll", "take", "take_along_axis"):
    globals()[_name] = OPS[_name].function
