"""The graph in pure Python: the node base of ``Tensor``, grad mode, and the backward engine.

Twin of ``native.pyx``: the same names and the same results.  The engine here keeps its
per-pass state (visited nodes, pending gradients) in a local ``set`` and ``dict``, so it works
over either twin's nodes; it is the reference the compiled engine is tested against.
"""
from __future__ import annotations

import sys
import threading
from collections import deque
from itertools import chain, starmap
from operator import iadd

import numpy as np

from .._types import TensorType
from . import ENGINE_LOCK, guard

_FLOAT64 = np.dtype(np.float64)
_INPUT, _PARAMETER, _INTERMEDIATE = TensorType.INPUT, TensorType.PARAMETER, TensorType.INTERMEDIATE

# ----------------------------------------------------------------------------- grad mode
_mode = threading.local()


def is_grad_enabled() -> bool:
    """Whether operations in this thread record a graph."""
    return getattr(_mode, "enabled", True)


def set_grad_enabled(enabled: bool) -> bool:
    """Turn graph recording in this thread on or off; returns the previous setting."""
    previous = getattr(_mode, "enabled", True)
    _mode.enabled = bool(enabled)
    return previous


# ----------------------------------------------------------------------------- ids
_next_id = [0]


def get_id_counter() -> int:
    return _next_id[0]


def set_id_counter(value: int) -> None:
    _next_id[0] = value


def take_id() -> int:
    """A new tensor id (ids are unique for the life of the process)."""
    i = _next_id[0]
    _next_id[0] = i + 1
    return i


# ----------------------------------------------------------------------------- the node
_tensor_class = None
_types = None  # (INPUT, PARAMETER, INTERMEDIATE) TensorType members


def install(tensor_class, tensor_types, generic_operators, typed_vjps) -> None:
    """Called once by ``clumsygrad.tensor``: the class ``new_node`` builds and the enum members.

    ``generic_operators`` and ``typed_vjps`` serve the compiled twin's fast paths; this twin has none.
    """
    global _tensor_class, _types
    _tensor_class = tensor_class
    _types = tuple(tensor_types)


class Node:
    """What the graph keeps of a tensor: data, gradient, parents, backward function, type, id, version."""

    __slots__ = (
        "_data",
        "_grad",
        "_parent_nodes",
        "_grad_fn",
        "_extra",
        "_tensor_type",
        "_requires_grad",
        "_id",
        "_version",
        "_saved_versions",
        "__weakref__",
    )

    @property
    def _shape(self) -> tuple:
        return self._data.shape

    @property
    def _dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def _parents(self) -> tuple:
        return self._parent_nodes

    @_parents.setter
    def _parents(self, value) -> None:
        # Assigning the parents records the graph by hand: their versions count from now on.
        parents = tuple(value)
        for parent in parents:
            if not isinstance(parent, Node):
                raise TypeError(f"a parent must be a Tensor, got {type(parent).__name__}")
        self._parent_nodes = parents
        self._saved_versions = tuple(p._version for p in parents)

    def _bump_version(self) -> None:
        """Record an in-place change of ``_data`` (optimizer steps call this)."""
        self._version += 1

    def _cleanup_references(self) -> None:
        """Drop the links to the parents, freeing the graph behind this node."""
        self._parent_nodes = ()
        guard.release(self)

    def _check_versions(self) -> None:
        """``RuntimeError`` if this node or a parent changed in place since the node was recorded."""
        saved = self._saved_versions
        if self._version:
            _raise_modified(self, self, 0)
        for parent, version in zip(self._parents, saved):
            if parent._version != version:
                _raise_modified(self, parent, version)


def _raise_modified(node, changed, saved_version) -> None:
    raise RuntimeError(
        f"tensor {changed._id} of shape {changed._shape}, needed to compute the gradient of "
        f"{node._grad_fn.__name__}, was modified in place after the forward pass "
        f"(version {changed._version}, recorded at version {saved_version}); "
        "recompute the forward pass after changing it"
    )


def new_node(data, grad_fn, parents: tuple, extra=None):
    """A result tensor of an operation on ``parents``, recording the graph when it needs one.

    The result is INTERMEDIATE (with ``grad_fn``, ``parents``, ``extra`` and the parents'
    versions) when grad mode is on and any parent is a PARAMETER or INTERMEDIATE; otherwise an
    INPUT with no graph.  Its dtype is float64 if any parent is float64, else float32.
    ``data`` is not copied when it already has that dtype.
    """
    if not parents:
        raise ValueError("an operation needs at least one parent tensor")
    dtype = None
    track = False
    requires_grad = False
    for parent in parents:
        if not isinstance(parent, Node):
            raise TypeError(f"the parents of a tensor must be tensors, got {type(parent).__name__}")
        if dtype is None:
            dtype = parent._data.dtype
        elif parent._data.dtype is not dtype and parent._data.dtype != dtype:
            dtype = _FLOAT64
        track = track or parent._tensor_type != _INPUT
        requires_grad = requires_grad or parent._requires_grad
    if type(data) is not np.ndarray or (data.dtype is not dtype and data.dtype != dtype):
        data = np.asarray(data, dtype=dtype)
    node = object.__new__(_tensor_class)
    node._data = data
    node._grad = None
    node._id = take_id()
    node._version = 0
    if track and is_grad_enabled():
        node._tensor_type = _types[_INTERMEDIATE]
        node._requires_grad = requires_grad
        node._grad_fn = grad_fn
        node._parent_nodes = tuple(parents)
        node._extra = dict(extra) if extra else {}
        node._saved_versions = tuple(p._version for p in parents)
        if guard.is_enabled():
            guard.protect(node, (data,) + tuple(p._data for p in parents))
    else:
        node._tensor_type = _types[_INPUT]
        node._requires_grad = False
        node._grad_fn = None
        node._parent_nodes = ()
        node._extra = {}
        node._saved_versions = ()
    return node


# ----------------------------------------------------------------------------- the engine
# The adopt-or-copy rule (``clumsygrad._graph`` docstring): a gradient a backward function
# returns is adopted without a copy only when it owns its memory and nothing but the engine
# refers to it.  Interpreters without reference counts never adopt.
_refcount = getattr(sys, "getrefcount", lambda obj: sys.maxsize)


def _fresh_refcount() -> int:
    """getrefcount of an array held by one tuple and one local: the engine's loop in miniature."""
    parent_grads = (np.empty(0),)
    g = parent_grads[0]
    return _refcount(g)


_FRESH_REFCOUNT = _fresh_refcount()


def backward_pass(root, seed: np.ndarray, seed_owned: bool, keep_graph: bool) -> None:
    """Backpropagate ``seed`` from ``root`` into ``.grad`` of every tensor that requires it.

    All or nothing: gradients are collected first and written into ``.grad`` only once every
    backward function has succeeded.  ``seed_owned`` lets the engine adopt ``seed`` as the
    root's gradient.  Unless ``keep_graph``, INTERMEDIATE nodes drop their parents afterwards.
    """
    with ENGINE_LOCK:
        order = _reverse_topological_order(root)
        totals = _propagate(order, seed, seed_owned)
        _commit(order, totals)
        if not keep_graph:
            for node in order:
                if node._tensor_type == _INTERMEDIATE:
                    node._cleanup_references()


def _reverse_topological_order(root) -> list:
    """Nodes that require gradients reachable from ``root``, each before all of its parents.

    Iterative depth-first search, so graph depth is limited only by memory.  The path is kept
    as a list of nodes and a list of next-parent indices (no per-node tuples or iterators for
    the cyclic garbage collector to scan).
    """
    postorder: list = []
    visited = {root}
    path = [root]
    next_parent = [0]
    while path:
        node = path[-1]
        parents = node._parents
        i = next_parent[-1]
        while i < len(parents):
            parent = parents[i]
            i += 1
            if parent._requires_grad and parent not in visited:
                visited.add(parent)
                next_parent[-1] = i
                path.append(parent)
                next_parent.append(0)
                break
        else:
            path.pop()
            next_parent.pop()
            postorder.append(node)
    postorder.reverse()
    return postorder


def _propagate(order: list, seed: np.ndarray, seed_owned: bool) -> dict:
    """Each node's total gradient of this pass, as ``{node: (array, engine_owns_it)}``.

    Owned arrays are accumulated into in place; others are replaced by a new sum on their
    second contribution (and copied at commit), so no ``.grad`` ever aliases another array.
    """
    pending = {order[0]: (seed, seed_owned)}
    for node in order:
        entry = pending.get(node)
        if entry is None or node._grad_fn is None:
            continue
        try:
            _push_to_parents(node, entry[0], pending)
        except Exception as exc:
            raise RuntimeError(f"Error in backward pass at tensor {node._id}: {exc}") from exc
    return pending


def _push_to_parents(node, grad: np.ndarray, pending: dict) -> None:
    """Run ``node``'s backward function and add each parent's gradient into ``pending``."""
    parents = node._parents
    if not parents:
        raise RuntimeError(
            "No backward graph exists for this tensor (freed by an earlier backward(); "
            "pass keep_graph=True to keep it)"
        )
    node._check_versions()
    grad_fn = node._grad_fn
    if getattr(grad_fn, "skips_unneeded", False) and not all(p._requires_grad for p in parents):
        parent_grads = grad_fn(node, grad, needs=tuple(p._requires_grad for p in parents))
    else:
        parent_grads = grad_fn(node, grad)
    if len(parent_grads) != len(parents):
        raise ValueError(
            f"{grad_fn.__name__} returned {len(parent_grads)} gradients for {len(parents)} parents"
        )
    for i in range(len(parents)):
        parent = parents[i]
        g = parent_grads[i]
        if g is None or not parent._requires_grad:
            continue
        dtype = parent._dtype
        if type(g) is not np.ndarray or (g.dtype is not dtype and g.dtype != dtype):
            g, owned = np.array(g, dtype=dtype), True  # one conversion, into a fresh array
        else:
            owned = g.base is None and _refcount(g) <= _FRESH_REFCOUNT
        if g.shape != parent._shape:
            raise ValueError(
                f"gradient for tensor {parent._id} has shape {g.shape}, expected {parent._shape}"
            )
        entry = pending.get(parent)
        if entry is None:
            pending[parent] = (g, owned)
        elif entry[1]:
            entry[0].__iadd__(g)
        else:  # into a new array (a plain `+` of 0-d arrays gives a NumPy scalar)
            pending[parent] = (np.add(entry[0], g, out=np.empty_like(g)), True)


def _commit(order: list, totals: dict) -> None:
    """Add each node's total into its ``.grad``: copies first, so nothing is written if one fails.

    The writes themselves are one call into C (no line of Python runs between two of them), so
    an asynchronous exception such as a ``KeyboardInterrupt`` from a signal handler, which
    Python raises only between bytecodes, lands before all of them or after all of them.
    """
    fresh, added = [], []
    for node in order:
        entry = totals.get(node)
        if entry is not None:
            grad, owned = entry
            if node._grad is None:
                fresh.append((node, "_grad", grad if owned else grad.copy()))
            else:
                added.append((node._grad, grad))
    deque(chain(starmap(setattr, fresh), starmap(iadd, added)), maxlen=0)
