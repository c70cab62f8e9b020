"""Reductions and elementwise choices that pick values: ``max``, ``min``, ``maximum``, ``minimum``,
``where``, ``clip``, with gradients.

The gradient of a choice goes to the element chosen: for ``max``/``min`` to the *first*
maximal (minimal) element of each reduced block, in C order over the reduced axes (what
``np.argmax`` picks), never split between ties; for ``maximum``/``minimum`` ties go to the
first operand, and so does a NaN in it (the NaN came from there).  Operands may be tensors,
arrays or scalars (constants become INPUT tensors); broadcasting follows NumPy and the gradients
are summed back to each operand's shape.
"""
from __future__ import annotations

import numpy as np

from ._adjoint import expand, is_array, normalize_axes, owned_array, unbroadcast
from ._registry import FUNCTIONS, as_tensors, defop, export, save_input_shape


def _values(x):
    return x if is_array(x) else x._data


def _axis_arg(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def _first_winner_mask(x: np.ndarray, axis, pick) -> np.ndarray:
    """1 at the element ``pick`` (np.argmax/np.argmin) chooses in each reduced block, else 0."""
    axes = normalize_axes(axis, x.ndim)
    kept = tuple(d for i, d in enumerate(x.shape) if i not in axes)
    reduced = tuple(x.shape[a] for a in axes)
    block = int(np.prod(reduced, dtype=np.int64))
    moved_axes = tuple(range(x.ndim - len(axes), x.ndim))
    blocks = np.moveaxis(x, axes, moved_axes).reshape(kept + (block,))
    mask = np.zeros(kept + (block,), dtype=x.dtype)
    if block:
        np.put_along_axis(mask, pick(blocks, axis=-1)[..., None], 1, axis=-1)
    return np.moveaxis(mask.reshape(kept + reduced), moved_axes, axes)


def _extreme_vjp(pick):
    def vjp(g, out, x, axis=None, keepdims=False):
        xv = _values(x)
        axis = _axis_arg(axis)
        return expand(g, xv.shape, axis, keepdims, 1.0) * _first_winner_mask(xv, axis, pick)

    return vjp


def max(tensor, axis=None, keepdims: bool = False):
    """Largest value over ``axis`` (None, int or tuple); the gradient goes to the first maximal element."""
    return np.max(tensor, axis=_axis_arg(axis), keepdims=keepdims)


def min(tensor, axis=None, keepdims: bool = False):
    """Smallest value over ``axis`` (None, int or tuple); the gradient goes to the first minimal element."""
    return np.min(tensor, axis=_axis_arg(axis), keepdims=keepdims)


defop("max", max, (_extreme_vjp(np.argmax),), module="selection", numpy=(np.max, np.amax),
      method="max", save=save_input_shape)
defop("min", min, (_extreme_vjp(np.argmin),), module="selection", numpy=(np.min, np.amin),
      method="min", save=save_input_shape)


def _choice_forward(ufunc):
    def forward(a, b):
        try:
            return ufunc(a, b)
        except ValueError:
            raise ValueError(f"Cannot broadcast shapes {np.shape(a)} and {np.shape(b)}") from None

    return forward


def _to_first(a, b, prefer):
    """Where the gradient of a choice goes to ``a``: where ``prefer(a, b)`` holds or ``a`` is NaN."""
    av, bv = _values(a), _values(b)
    return prefer(av, bv) | np.isnan(av)


def _pick_vjps(prefer):
    def to_a(g, out, a, b):
        return unbroadcast(np.where(_to_first(a, b, prefer), g, 0), np.shape(a))

    def to_b(g, out, a, b):
        return unbroadcast(np.where(_to_first(a, b, prefer), 0, g), np.shape(b))

    return (to_a, to_b)


def maximum(a, b):
    """Elementwise larger of ``a`` and ``b`` (broadcast); where they are equal the gradient goes to ``a``."""
    return _choice_forward(np.maximum)(a, b)


def minimum(a, b):
    """Elementwise smaller of ``a`` and ``b`` (broadcast); where they are equal the gradient goes to ``a``."""
    return _choice_forward(np.minimum)(a, b)


defop("maximum", maximum, _pick_vjps(np.greater_equal), module="selection", nin=2,
      numpy=(np.maximum,))
defop("minimum", minimum, _pick_vjps(np.less_equal), module="selection", nin=2,
      numpy=(np.minimum,))


def _where_forward(a, b, condition):
    try:
        return np.where(condition, a, b)
    except ValueError:
        raise ValueError(
            f"Cannot broadcast shapes {np.shape(condition)}, {np.shape(a)} and {np.shape(b)}"
        ) from None


defop(
    "where", _where_forward,
    (lambda g, out, a, b, condition: unbroadcast(np.where(condition, g, 0), np.shape(a)),
     lambda g, out, a, b, condition: unbroadcast(np.where(condition, 0, g), np.shape(b))),
    module="selection", nin=2, public=False,
)


def where(condition, a, b):
    """``a`` where ``condition`` is true, else ``b`` (all three broadcast, as ``np.where``).

    ``condition`` is a boolean array (a tensor's values are compared with 0), copied when
    recorded; it receives no gradient.
    """
    from ._registry import OPS

    cond = condition._data if hasattr(condition, "_data") else condition
    cond = owned_array(np.asarray(cond).astype(bool, copy=False))
    a, b = as_tensors((a, b))
    data = _where_forward(a._data, b._data, cond)
    return _new_node(data, OPS["where"].backward, (a, b), {"condition": cond})


def clip(tensor, lo=None, hi=None):
    """``x`` limited to ``[lo, hi]`` (either bound may be None; scalars, arrays or tensors).

    Recorded as ``minimum(maximum(x, lo), hi)``: the gradient passes where ``lo <= x <= hi``
    (bounds included) and goes to a tensor bound where it is active.
    """
    if lo is None and hi is None:
        raise ValueError("clip needs at least one of lo and hi")
    (out,) = as_tensors((tensor,))
    if lo is not None:
        out = maximum(out, lo)
    if hi is not None:
        out = minimum(out, hi)
    return out


__all__ = export(globals(), "selection") + ["where", "clip"]

from ._backend import graph as _graph  # noqa: E402

_new_node = _graph.new_node
FUNCTIONS.update({np.where: where, np.clip: clip})
