"""The adjoints shared by many VJP formulas, for arrays and for Tensors alike.

On arrays (a first-order backward pass) each goes to the active kernel (compiled or pure); on
Tensors (a pass that records its own graph) it is written with registered ops, so it is itself
differentiable.  Every formula that un-broadcasts, expands a reduction or scatters calls these:
none writes its own loop over axes.
"""
from __future__ import annotations

import numpy as np

from . import _backend
from ._kernels import checks as _checks


def normalize_axes(axis, ndim: int, what: str = "axis") -> tuple:
    """``_kernels.checks.normalize_axes`` (the one Python copy of the rules), its errors naming
    the axis as ``what`` ("log_softmax: axis", "axis1")."""
    try:
        return _checks.normalize_axes(axis, ndim)
    except ValueError as exc:
        if what == "axis":
            raise
        raise ValueError(str(exc).replace("axis", what, 1)) from None


def is_array(x) -> bool:
    return isinstance(x, np.ndarray)


def unbroadcast(g, shape):
    """``g`` summed over the axes broadcasting added or stretched, so that it has ``shape``."""
    shape = tuple(shape)
    if g.shape == shape:
        return g
    if is_array(g):
        return _backend.active.reduce_to_shape(g, shape)
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and g.shape[lead + i] != 1
    )
    return np.reshape(np.sum(g, axis=axes), shape)


def mul_unbroadcast(g, other, shape):
    """``unbroadcast(g * other, shape)``; on arrays without the broadcast temporary."""
    if is_array(g) and is_array(other):
        if g.shape == tuple(shape) and other.shape == g.shape:
            return g * other
        return _backend.active.mul_reduce_to_shape(g, other, tuple(shape))
    return unbroadcast(g * other, shape)


def expand(g, input_shape, axis, keepdims: bool, scale: float = 1.0):
    """The adjoint of a reduction: ``g`` with the reduced ``axis`` re-inserted, broadcast to
    ``input_shape`` and multiplied by ``scale``."""
    input_shape = tuple(input_shape)
    if is_array(g):
        return _backend.active.expand_to_shape(g, input_shape, axis, keepdims, scale)
    if not keepdims:
        axes = normalize_axes(axis, len(input_shape))
        kept = [1 if i in axes else d for i, d in enumerate(input_shape)]
        g = np.reshape(g, tuple(kept))
    out = np.broadcast_to(g, input_shape)
    return out * scale if scale != 1.0 else out


def scatter(g, key, shape):
    """The adjoint of ``x[key]``: zeros of ``shape`` with ``g`` added in at ``key`` (repeats add up)."""
    if is_array(g):
        return scatter_array(g, key, tuple(shape))
    from . import shape as _shape_ops

    return _shape_ops.index_add(g, key, tuple(shape))


def _row_indices(key, ndim: int):
    """The key as a 1-D integer array when it selects rows along axis 0 (``x[[3, 1, 3]]``), else None."""
    if type(key) is tuple and len(key) == 1:
        key = key[0]
    if ndim == 0 or not isinstance(key, (np.ndarray, list)):
        return None
    rows = np.asarray(key)
    if rows.ndim != 1:
        return None
    if rows.size == 0 and isinstance(key, list):
        return np.zeros(0, dtype=np.intp)  # NumPy reads [] as an empty integer index
    return rows if rows.dtype.kind in "iu" else None


def _may_repeat(key) -> bool:
    """True when ``key`` holds an integer array (or list), which may name an element twice."""
    for part in key if type(key) is tuple else (key,):
        if isinstance(part, (list, np.ndarray)) and np.asarray(part).dtype.kind != "b":
            return True
    return False


def scatter_array(g: np.ndarray, key, shape: tuple) -> np.ndarray:
    """``scatter`` on arrays: a 1-D integer-array key (an embedding lookup's backward) goes
    through the ``scatter_add`` kernel, other keys with integer arrays through ``np.add.at``."""
    g = np.asarray(g)
    rows = _row_indices(key, len(shape))
    if rows is not None:
        return _backend.active.scatter_add(g, rows, shape)
    out = np.zeros(shape, dtype=np.result_type(g.dtype, np.float32))
    if _may_repeat(key):
        np.add.at(out, key, g)
    else:
        out[key] = g
    return out


def owned_key(key):
    """``key`` with every array in it copied and made read-only, so a later change by the caller
    cannot move the gradient (lists become arrays of the same meaning)."""
    kind = type(key)
    if kind is int or kind is slice or key is None or key is Ellipsis:
        return key
    if kind is tuple:
        return tuple(owned_key(k) for k in key)
    if isinstance(key, (np.ndarray, list)):
        arr = np.array(key)
        if isinstance(key, list) and arr.size == 0:
            arr = np.zeros(0, dtype=np.intp)
        elif arr.dtype.kind not in "biu":
            return key  # not an index array (NumPy raises its own error for it)
        arr.flags.writeable = False
        return arr
    return key


def owned_array(value) -> np.ndarray:
    """A read-only private copy of ``value``."""
    arr = np.array(value)
    arr.flags.writeable = False
    return arr
