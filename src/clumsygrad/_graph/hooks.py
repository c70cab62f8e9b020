"""Gradient hooks (``Tensor.register_hook``), shared by both engines and ``clumsygrad.func``.

A hook is called with the total gradient flowing into its tensor in a pass (a NumPy array in
``backward()``, a Tensor when ``func.gradients(..., create_graph=True)`` records one) and may
return a replacement.  The table is keyed by the tensor's identity and holds it weakly, so a
hook never keeps a tensor alive.  ``active`` (and the listeners, which the compiled engine uses
to keep a C flag) says whether any hook is registered at all: with none, an engine pays one
flag test per node.
"""
from __future__ import annotations

import itertools
import weakref

import numpy as np

_table: dict = {}  # id(node) -> (weakref to node, {key: fn})
_keys = itertools.count()
_listeners: list = []  # fn(bool): called when the table becomes empty or non-empty


def active() -> bool:
    """Whether any hook is registered on any live tensor."""
    return bool(_table)


def _notify(before: bool) -> None:
    now = bool(_table)
    if now != before:
        for listener in _listeners:
            listener(now)


def _forget(key: int, ref) -> None:
    # the tensor died: drop its hooks (unless the id already belongs to a newer entry)
    entry = _table.get(key)
    if entry is not None and entry[0] is ref:
        before = bool(_table)
        del _table[key]
        _notify(before)


class RemovableHandle:
    """What ``register_hook`` returns: ``handle.remove()`` unregisters the hook (twice is harmless).

    Also a context manager that removes the hook on exit.
    """

    __slots__ = ("_ref", "_key")

    def __init__(self, node, key: int):
        self._ref = weakref.ref(node)
        self._key = key

    def remove(self) -> None:
        node = self._ref()
        if node is None:
            return
        entry = _table.get(id(node))
        if entry is None or entry[0]() is not node:
            return
        entry[1].pop(self._key, None)
        if not entry[1]:
            before = bool(_table)
            del _table[id(node)]
            _notify(before)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.remove()


def register(node, fn) -> RemovableHandle:
    """Add ``fn`` to ``node``'s hooks (called in registration order)."""
    if not callable(fn):
        raise TypeError(f"a hook must be callable, got {type(fn).__name__}")
    key = id(node)
    entry = _table.get(key)
    before = bool(_table)
    if entry is None or entry[0]() is not node:
        entry = (weakref.ref(node, lambda ref, key=key: _forget(key, ref)), {})
        _table[key] = entry
    k = next(_keys)
    entry[1][k] = fn
    _notify(before)
    return RemovableHandle(node, k)


def hooks_of(node):
    """``node``'s hooks as a tuple, or None."""
    entry = _table.get(id(node))
    if entry is None or entry[0]() is not node:
        return None
    return tuple(entry[1].values())


def apply(node, fns, grad, tensor_mode: bool = False):
    """Call each hook in turn; a non-None result replaces the gradient (same shape; an array is
    converted to the tensor's dtype, a Tensor kept as it is in ``tensor_mode``)."""
    shape = node._shape
    for fn in fns:
        result = fn(grad)
        if result is None:
            continue
        if tensor_mode:
            from ..tensor import Tensor

            if not isinstance(result, Tensor):
                result = Tensor(np.asarray(result), dtype=node._dtype)
            new_shape = result._shape
        else:
            if hasattr(result, "_data") and not isinstance(result, np.ndarray):
                result = result._data  # a Tensor returned in a normal backward: its values
            result = np.asarray(result, dtype=node._dtype)
            new_shape = result.shape
        if new_shape != shape:
            raise ValueError(
                f"hook {getattr(fn, '__name__', fn)!r} on tensor {node._id} returned a gradient of "
                f"shape {new_shape}, expected {shape}"
            )
        grad = result
    return grad
