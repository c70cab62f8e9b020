"""The graph in pure Python: the node base of ``Tensor``, grad mode, and the backward engine.

Twin of ``native.pyx``: the same names and the same results.  The engine here keeps its
per-pass state (visited nodes, pending gradients) in a local ``set`` and ``dict``, so it works
over either twin's nodes; it is the reference the compiled engine is tested against.
"""
from __future__ import annotations

import sys
import threading
from collections import deque
from itertools import chain, repeat
from operator import attrgetter, iadd, is_not
from time import perf_counter_ns

import numpy as np

from .._types import TensorType
from . import ENGINE_LOCK, guard, hooks

_hook_table = hooks._table  # non-empty when any tensor has a hook

_FLOAT64 = np.dtype(np.float64)
_INPUT, _PARAMETER, _INTERMEDIATE = TensorType.INPUT, TensorType.PARAMETER, TensorType.INTERMEDIATE

# ----------------------------------------------------------------------------- grad mode
class _Mode(threading.local):
    enabled = True  # every thread starts recording


_mode = _Mode()


def is_grad_enabled() -> bool:
    """Whether operations in this thread record a graph."""
    return _mode.enabled


def set_grad_enabled(enabled: bool) -> bool:
    """Turn graph recording in this thread on or off; returns the previous setting."""
    previous = _mode.enabled
    _mode.enabled = bool(enabled)
    return previous


# ----------------------------------------------------------------------------- ids
_next_id = 0


def get_id_counter() -> int:
    return _next_id


def set_id_counter(value: int) -> None:
    global _next_id
    _next_id = value


def take_id() -> int:
    """A new tensor id (ids are unique for the life of the process)."""
    global _next_id
    i = _next_id
    _next_id = i + 1
    return i


# ----------------------------------------------------------------------------- profiling
_node_sink = None  # clumsygrad.profiler: called with grad_fn per result recorded, or None
_backward_sink = None  # called with (grad_fn, nanoseconds) per node's backward, or None


def set_profile_sinks(node_sink, backward_sink) -> None:
    """Where ``new_node`` and the engine report to ``clumsygrad.profile()`` (None: nowhere)."""
    global _node_sink, _backward_sink
    _node_sink = node_sink
    _backward_sink = backward_sink


# ----------------------------------------------------------------------------- the node and its creation, versions
_tensor_class = None
_types = None  # (INPUT, PARAMETER, INTERMEDIATE) TensorType members
_T_INPUT = _T_INTERMEDIATE = None  # two of them, as globals (identity tests are the cheapest)


def install(tensor_class, tensor_types, generic_operators, typed_vjps) -> None:
    """Called once by ``clumsygrad.tensor``: the class ``new_node`` builds, the enum members, the
    generic operators the node's fast paths fall back to (``tensor._Operators``), and the op
    registry's backward functions by the name of their typed loop, which the fast paths record.
    """
    global _tensor_class, _types, _T_INPUT, _T_INTERMEDIATE
    global _generic_add, _generic_radd, _generic_sub, _generic_mul, _generic_rmul
    global _generic_truediv, _generic_neg
    global _ADD, _ADD_SCALAR, _SUB, _SUB_SCALAR, _MUL, _MUL_SCALAR, _NEGATE
    _tensor_class = tensor_class
    _types = tuple(tensor_types)
    _T_INPUT, _T_INTERMEDIATE = _types[_INPUT], _types[_INTERMEDIATE]
    _generic_add = generic_operators["__add__"]
    _generic_radd = generic_operators["__radd__"]
    _generic_sub = generic_operators["__sub__"]
    _generic_mul = generic_operators["__mul__"]
    _generic_rmul = generic_operators["__rmul__"]
    _generic_truediv = generic_operators["__truediv__"]
    _generic_neg = generic_operators["__neg__"]
    fn = {name: f for f, name in typed_vjps.items()}
    _ADD, _ADD_SCALAR, _SUB, _SUB_SCALAR = fn["ADD"], fn["ADD_SCALAR"], fn["SUB"], fn["SUB_SCALAR"]
    _MUL, _MUL_SCALAR, _NEGATE = fn["MUL"], fn["MUL_SCALAR"], fn["NEGATE"]
    _set_inline(typed_vjps)


_generic_add = _generic_radd = _generic_sub = _generic_mul = _generic_rmul = None
_generic_truediv = _generic_neg = None
_ADD = _ADD_SCALAR = _SUB = _SUB_SCALAR = _MUL = _MUL_SCALAR = _NEGATE = None
# The engine's inline formulas (``_propagate_pure``): the backward functions of the scalar
# operators, whose registry kernels are one line (``math._pass_first``, ``math._mul_by_constant``),
# are computed in the engine's loop instead of called (the compiled engine's typed loops in Python).
_PASS, _SCALE = "pass", "scale"
_inline: dict = {}  # backward function -> _PASS or _SCALE
_inline_get = _inline.get


def _set_inline(typed_vjps) -> None:
    """Fill ``_inline`` from the registry's backward functions by typed-loop name."""
    fn = {name: f for f, name in typed_vjps.items()}
    _inline.clear()
    _inline.update({fn["ADD_SCALAR"]: _PASS, fn["SUB_SCALAR"]: _PASS, fn["MUL_SCALAR"]: _SCALE})
_ndarray = np.ndarray
_asarray = np.asarray
_array = np.array
_F32 = np.dtype(np.float32)
_add, _subtract, _multiply, _divide, _negative = np.add, np.subtract, np.multiply, np.divide, np.negative


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

    # The getters are C callables (attrgetter): reading them runs no Python frame.
    _shape = property(attrgetter("_data.shape"), doc="The shape of ``_data``.")
    _dtype = property(attrgetter("_data.dtype"), doc="The dtype of ``_data``.")

    def _set_parents(self, value) -> None:
        # Assigning the parents records the graph by hand: their versions count from now on.
        parents = tuple(value)
        for parent in parents:
            if not isinstance(parent, Node):
                raise TypeError(f"a parent must be a Tensor, got {type(parent).__name__}")
        self._parent_nodes = parents
        self._saved_versions = tuple(p._version for p in parents)

    _parents = property(attrgetter("_parent_nodes"), _set_parents, doc="The parent tensors (a tuple).")

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

    # The common operators, as the compiled node has them: a Python float or int constant, or a
    # tensor of the same shape and dtype, is computed by NumPy and recorded here directly;
    # anything else is the generic operator (``tensor._Operators``).  Same values, backward
    # functions and ``_extra`` as the generic operators (tests/test_graph_core.py holds them equal).
    def __add__(self, other):
        if type(other) is float or type(other) is int:
            c, data = float(other), self._data
            value = _add_0d(data, c) if data.ndim == 0 else _add(data, c)
            return _record_one(value, _ADD_SCALAR, self, {"scalar_value": c})
        if type(other) is _tensor_class:
            return _same_shape(self, other, _add, _ADD, _generic_add)
        return _generic_add(self, other)

    def __radd__(self, other):
        if type(other) is float or type(other) is int:
            c, data = float(other), self._data
            value = _add_0d(data, c) if data.ndim == 0 else _add(data, c)
            return _record_one(value, _ADD_SCALAR, self, {"scalar_value": c})
        return _generic_radd(self, other)

    def __sub__(self, other):
        if type(other) is float or type(other) is int:
            c, data = float(other), self._data
            value = _sub_0d(data, c) if data.ndim == 0 else _subtract(data, c)
            return _record_one(value, _SUB_SCALAR, self, {"scalar_value": c})
        if type(other) is _tensor_class:
            return _same_shape(self, other, _subtract, _SUB, _generic_sub)
        return _generic_sub(self, other)

    def __mul__(self, other):
        if type(other) is float or type(other) is int:
            c, data = float(other), self._data
            value = _mul_0d(data, c) if data.ndim == 0 else _multiply(data, c)
            return _record_one(value, _MUL_SCALAR, self, {"scalar_value": c})
        if type(other) is _tensor_class:
            return _same_shape(self, other, _multiply, _MUL, _generic_mul)
        return _generic_mul(self, other)

    def __rmul__(self, other):
        if type(other) is float or type(other) is int:
            c, data = float(other), self._data
            value = _mul_0d(data, c) if data.ndim == 0 else _multiply(data, c)
            return _record_one(value, _MUL_SCALAR, self, {"scalar_value": c})
        return _generic_rmul(self, other)

    def __truediv__(self, other):
        if type(other) is float or type(other) is int:
            c = float(other)
            if c != 0.0 and c == c:  # x / c records x * (1 / c); the forward value is the quotient
                data = self._data
                value = _div_0d(data, c) if data.ndim == 0 else _divide(data, c)
                return _record_one(value, _MUL_SCALAR, self, {"scalar_value": 1.0 / c})
        return _generic_truediv(self, other)

    def __neg__(self):
        data = self._data
        value = _array(-data[()]) if data.ndim == 0 else _negative(data)  # a sign flip raises nothing
        return _record_one(value, _NEGATE, self, {})


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
    global _next_id
    if not parents:
        raise ValueError("an operation needs at least one parent tensor")
    if _node_sink is not None:
        _node_sink(grad_fn)
    if type(parents) is not tuple:
        parents = tuple(parents)
    # One and two parents (nearly every op) are written out; no loop, no comprehension.
    first = parents[0]
    if not isinstance(first, Node):
        raise TypeError(f"the parents of a tensor must be tensors, got {type(first).__name__}")
    dtype = first._data.dtype
    track = first._tensor_type is not _T_INPUT
    requires_grad = first._requires_grad
    n = len(parents)
    for parent in parents[1:] if n > 1 else ():
        if not isinstance(parent, Node):
            raise TypeError(f"the parents of a tensor must be tensors, got {type(parent).__name__}")
        other = parent._data.dtype
        if other is not dtype and other != dtype:
            dtype = _FLOAT64
        if parent._tensor_type is not _T_INPUT:
            track = True
        if parent._requires_grad:
            requires_grad = True
    if type(data) is not np.ndarray or (data.dtype is not dtype and data.dtype != dtype):
        data = np.asarray(data, dtype=dtype)
    node = _allocate(_tensor_class)
    node._data = data
    node._grad = None
    node._id = _next_id
    _next_id += 1
    node._version = 0
    if track and _mode.enabled:
        node._tensor_type = _T_INTERMEDIATE
        node._requires_grad = requires_grad
        node._grad_fn = grad_fn
        node._parent_nodes = parents
        node._extra = dict(extra) if extra else {}
        if n == 1:
            version = first._version
            node._saved_versions = _SAVED_0 if version == 0 else (version,)
        elif n == 2:
            version, other = first._version, parents[1]._version
            node._saved_versions = _SAVED_00 if version == 0 == other else (version, other)
        else:
            node._saved_versions = tuple(map(_version_of, parents))
        if guard._enabled:
            guard.protect(node, (data,) + tuple(map(_data_of, parents)))
    else:
        node._tensor_type = _T_INPUT
        node._requires_grad = False
        node._grad_fn = None
        node._parent_nodes = ()
        node._extra = {}
        node._saved_versions = ()
    return node


# ``new_node`` for the registry's public functions, whose ``extra`` is a dict made for the node
# (the compiled twin keeps it without a copy); here the same function, no extra frame.
record = new_node


def op_function(python_function, forward, backward, nin, params, defaults, kernel_name, save, backend, profiler):
    """The public function of a registry op: on this twin the registry's Python function itself
    (the compiled twin wraps it in a C callable for the common calls)."""
    return python_function


def cross_entropy_function(python_function, backward, backend, profiler):
    """``clumsygrad.cross_entropy``: on this twin the Python function itself (the compiled twin
    runs its common call in C)."""
    return python_function


def join_function(python_function, backward, stack):
    """``clumsygrad.concatenate`` / ``stack``: on this twin the Python function itself (the
    compiled twin records the common call in C)."""
    return python_function


_allocate = object.__new__
_version_of = attrgetter("_version")
_data_of = attrgetter("_data")
_SAVED_0 = (0,)  # the saved versions of one or two parents at version 0, shared (no tuple per node)
_SAVED_00 = (0, 0)


def _record_one(data, grad_fn, parent, extra):
    """``new_node(data, grad_fn, (parent,), extra)`` for the node's fast operators: ``parent``
    is a node and ``data`` its operator's NumPy result; ``extra`` is the node's own dict."""
    global _next_id
    if _node_sink is not None:
        _node_sink(grad_fn)
    dtype = parent._data.dtype
    if type(data) is not _ndarray or data.dtype is not dtype:
        data = _asarray(data, dtype=dtype)  # 0-d NumPy arithmetic gives a NumPy scalar
    node = _allocate(_tensor_class)
    node._data = data
    node._grad = None
    node._id = _next_id
    _next_id += 1
    node._version = 0
    if parent._tensor_type is not _T_INPUT and _mode.enabled:
        node._tensor_type = _T_INTERMEDIATE
        node._requires_grad = parent._requires_grad
        node._grad_fn = grad_fn
        node._parent_nodes = (parent,)
        node._extra = extra
        version = parent._version
        node._saved_versions = _SAVED_0 if version == 0 else (version,)
        if guard._enabled:
            guard.protect(node, (data, parent._data))
    else:
        node._tensor_type = _T_INPUT
        node._requires_grad = False
        node._grad_fn = None
        node._parent_nodes = ()
        node._extra = {}
        node._saved_versions = ()
    return node


# ----------------------------------------------------------------------------- optimizer steps
def sgd_step(params, lr, update, update_guarded) -> None:
    """Plain SGD over ``params``: ``update(data, grad, lr)`` in place, then the version bump.

    A parameter without a gradient is skipped; one whose data the memory guard holds read-only
    goes to ``update_guarded(tensor, grad, lr)``.
    """
    for param in params:
        grad = param._grad
        if grad is None:
            continue
        data = param._data
        if data.flags.writeable:
            update(data, grad, lr)
        else:
            update_guarded(param, grad, lr)
        param._version += 1


def clear_grads(params) -> None:
    """``tensor.grad = None`` for every tensor of ``params`` (``Optimizer.zero_grad``)."""
    for param in params:
        param._grad = None


# 0-d arithmetic.  NumPy's arithmetic on 0-d arrays costs ~1 us a call (the scalar chain is nothing
# but that); on NumPy scalars it is ~0.1 us and gives the same value (the same IEEE operation in
# the same precision, a Python float constant taken in the array's dtype), but words its
# floating-point warnings differently ("overflow encountered in scalar multiply").  So these take
# the scalar path only where no floating-point exception can occur: the constant and the result
# (computed in double first, with room to spare for float32's rounding) normal and finite in the
# array's dtype.  Anywhere else, and for other dtypes, it is NumPy's array arithmetic with its
# own warnings, as before.
def _mul_0d(data, c: float):
    """``np.multiply(data, c)`` for a 0-d ``data`` and a Python float ``c`` (a 0-d array, or a
    NumPy scalar from the array path)."""
    v = data[()]
    dtype = data.dtype
    if dtype is _F32:
        if 1.2e-38 <= abs(c) < 3.4e38 and 1.2e-38 <= abs(float(v) * c) < 3.4e38:
            return _array(v * c)
    elif dtype is _FLOAT64 and 2.3e-308 <= abs(float(v) * c) < 1.7e308:
        return _array(v * c)
    return _multiply(data, c)


def _div_0d(data, c: float):
    """``np.divide(data, c)`` for a 0-d ``data`` and a Python float ``c`` other than 0 or NaN."""
    v = data[()]
    dtype = data.dtype
    if dtype is _F32:
        if 1.2e-38 <= abs(c) < 3.4e38 and 1.2e-38 <= abs(float(v) / c) < 3.4e38:
            return _array(v / c)
    elif dtype is _FLOAT64 and 2.3e-308 <= abs(float(v) / c) < 1.7e308:
        return _array(v / c)
    return _divide(data, c)


def _add_0d(data, c: float):
    """``np.add(data, c)`` for a 0-d ``data`` and a Python float ``c`` (a sum never underflows)."""
    v = data[()]
    dtype = data.dtype
    if dtype is _F32:
        if 1.2e-38 <= abs(c) < 3.4e38 and abs(float(v) + c) < 3.4e38:
            return _array(v + c)
    elif dtype is _FLOAT64 and abs(float(v) + c) < 1.7e308:
        return _array(v + c)
    return _add(data, c)


def _sub_0d(data, c: float):
    """``np.subtract(data, c)`` for a 0-d ``data`` and a Python float ``c``."""
    v = data[()]
    dtype = data.dtype
    if dtype is _F32:
        if 1.2e-38 <= abs(c) < 3.4e38 and abs(float(v) - c) < 3.4e38:
            return _array(v - c)
    elif dtype is _FLOAT64 and abs(float(v) - c) < 1.7e308:
        return _array(v - c)
    return _subtract(data, c)


def _same_shape(left, right, ufunc, grad_fn, generic):
    """``ufunc`` of two tensors of one shape and dtype, recorded with ``grad_fn``; other pairs
    go to ``generic`` (which broadcasts, promotes and words the errors)."""
    a, b = left._data, right._data
    if a.shape != b.shape or a.dtype is not b.dtype:
        return generic(left, right)
    return new_node(ufunc(a, b), grad_fn, (left, right))


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

    The engine runs over either twin's nodes.  On this twin's nodes (``CLUMSYGRAD_BACKEND=python``)
    it reads their slots directly (parents, saved versions, data) instead of going through the
    properties and methods both twins have (``_propagate_pure``); on the compiled twin's it goes
    through those (``_propagate_nodes``, the same loop).  While ``clumsygrad.profile()`` records,
    the generic pair ``_propagate``/``_push_to_parents`` calls and times every backward function.
    """
    pure_nodes = isinstance(root, Node)
    with ENGINE_LOCK:
        order = _reverse_topological_order(root, pure_nodes)
        if _backward_sink is None:
            if pure_nodes:
                nodes, grads, shared = _propagate_pure(order, seed, seed_owned)
            else:  # the compiled twin's nodes (``set_backend("python")`` at run time)
                if not _inline:  # this twin's install() was not called: ask the registry once
                    from .._registry import typed_vjps

                    _set_inline(typed_vjps())
                nodes, grads, shared = _propagate_nodes(order, seed, seed_owned)
        else:  # a profile() recording: the generic pair calls and times each backward function
            totals = _propagate(order, seed, seed_owned)
            shared = {node for node, (_, own) in totals.items() if not own}
            nodes, grads = list(totals), [grad for grad, _ in totals.values()]
        _commit(nodes, grads, shared)
        if not keep_graph:
            if pure_nodes:
                guards = _guards
                for node in order:
                    if node._tensor_type is _T_INTERMEDIATE:
                        node._parent_nodes = ()
                        if guards:
                            guard.release(node)
            else:
                for node in order:
                    if node._tensor_type == _INTERMEDIATE:
                        node._cleanup_references()


_guards = guard._guards  # the guard's table of guarding nodes (one dict, never rebound)


def backward_scalar(root, keep_graph: bool) -> None:
    """``root.backward()`` with the default seed: the checks of ``Tensor.backward`` and a seed
    of ones (0-d for a 0-d root; a one-element tensor of any shape keeps its shape)."""
    if not root._requires_grad:
        raise RuntimeError("Tensor does not require gradients")
    if root._tensor_type == _INTERMEDIATE and not root._parents:
        raise RuntimeError("No backward graph exists for this tensor")
    data = root._data
    if data.size != 1:
        raise RuntimeError("Gradient can only be implicitly created for scalar outputs")
    # np.array is several times faster than np.ones for the usual 0-d loss.
    seed = np.array(1, dtype=data.dtype) if not data.ndim else np.ones(data.shape, dtype=data.dtype)
    backward_pass(root, seed, True, keep_graph)


def _reverse_topological_order(root, pure_nodes: bool = False) -> list:
    """Nodes that require gradients reachable from ``root``, each before all of its parents.

    Iterative depth-first search, so graph depth is limited only by memory.  One stack holds
    nodes to visit and, under a ``None`` marker, nodes whose parents are being visited: a node
    is emitted when its marker comes back to the top, after everything pushed above it.  No
    per-node tuples or iterators for the cyclic garbage collector to scan.
    """
    postorder: list = []
    visited: set = set()
    stack = [root]
    pop, push, emit = stack.pop, stack.append, postorder.append
    seen, see = visited.__contains__, visited.add
    if pure_nodes:  # the same walk, but the last parent pushed is visited at once (not pushed and popped)
        while stack:
            node = pop()
            if node is None:  # its parents are all emitted
                emit(pop())
                continue
            if seen(node):  # pushed twice (two children), visited from the other
                continue
            while node is not None:
                see(node)
                push(node)
                push(None)
                last = None
                for parent in node._parent_nodes:
                    if parent._requires_grad and not seen(parent):
                        if last is not None:
                            push(last)
                        last = parent
                node = last
        postorder.reverse()
        return postorder
    while stack:
        node = pop()
        if node is None:  # its parents are all emitted
            emit(pop())
            continue
        if seen(node):  # pushed twice (two children), visited from the other
            continue
        see(node)
        push(node)
        push(None)
        for parent in node._parents:
            if parent._requires_grad and not seen(parent):
                push(parent)
    postorder.reverse()
    return postorder


def _propagate(order: list, seed: np.ndarray, seed_owned: bool, pure_nodes: bool = False) -> dict:
    """Each node's total gradient of this pass, as ``{node: (array, engine_owns_it)}``.

    Owned arrays are accumulated into in place; others are replaced by a new sum on their
    second contribution (and copied at commit), so no ``.grad`` ever aliases another array.
    """
    pending = {order[0]: (seed, seed_owned)}
    get = pending.get
    for node in order:
        entry = get(node)
        if entry is None:
            continue
        if _hook_table and id(node) in _hook_table:  # hooks see (and may replace) the total
            fns = hooks.hooks_of(node)  # (a leaf's before the commit)
            if fns is not None:
                entry = pending[node] = (hooks.apply(node, fns, entry[0]), False)
        if node._grad_fn is None:
            continue
        try:
            if _backward_sink is None:
                _push_to_parents(node, entry[0], pending, pure_nodes)
            else:
                start = perf_counter_ns()
                _push_to_parents(node, entry[0], pending, pure_nodes)
                _backward_sink(node._grad_fn, perf_counter_ns() - start)
        except Exception as exc:
            raise RuntimeError(f"Error in backward pass at tensor {node._id}: {exc}") from exc
    return pending


def _push_to_parents(node, grad: np.ndarray, pending: dict, pure_nodes: bool = False) -> None:
    """Run ``node``'s backward function and add each parent's gradient into ``pending``.

    First the versions: ``RuntimeError`` if the node or a parent changed in place since it
    was recorded (``Node._check_versions``, inlined for this twin's nodes).
    """
    if pure_nodes:
        parents = node._parent_nodes
        if not parents:
            _raise_freed()
        if node._version:
            _raise_modified(node, node, 0)
        saved = node._saved_versions
        all_needed = True
        for i in range(len(parents)):
            parent = parents[i]
            if parent._version != saved[i]:
                _raise_modified(node, parent, saved[i])
            if not parent._requires_grad:
                all_needed = False
    else:
        parents = node._parents
        if not parents:
            _raise_freed()
        node._check_versions()
        all_needed = all([p._requires_grad for p in parents])
    grad_fn = node._grad_fn
    if all_needed or not getattr(grad_fn, "skips_unneeded", False):
        parent_grads = grad_fn(node, grad)
    else:
        parent_grads = grad_fn(node, grad, needs=tuple([p._requires_grad for p in parents]))
    if len(parent_grads) != len(parents):
        raise ValueError(
            f"{grad_fn.__name__} returned {len(parent_grads)} gradients for {len(parents)} parents"
        )
    for i in range(len(parents)):
        parent = parents[i]
        g = parent_grads[i]
        if g is None or not parent._requires_grad:
            continue
        if pure_nodes:
            data = parent._data
            dtype, shape = data.dtype, data.shape
        else:
            dtype, shape = parent._dtype, parent._shape
        if type(g) is not np.ndarray or (g.dtype is not dtype and g.dtype != dtype):
            g, owned = np.array(g, dtype=dtype), True  # one conversion, into a fresh array
        else:
            owned = g.base is None and _refcount(g) <= _FRESH_REFCOUNT
        if g.shape != shape:
            raise ValueError(
                f"Gradient shape mismatch for tensor {parent._id}: the gradient has shape {g.shape}, "
                f"expected {shape}"
            )
        entry = pending.get(parent)
        if entry is None:
            pending[parent] = (g, owned)
        elif entry[1]:
            entry[0].__iadd__(g)
        else:  # into a new array (a plain `+` of 0-d arrays gives a NumPy scalar)
            pending[parent] = (np.add(entry[0], g, out=np.empty_like(g)), True)


def _propagate_pure(order: list, seed: np.ndarray, seed_owned: bool):
    """:func:`_propagate` and :func:`_push_to_parents` in one loop, over this twin's nodes
    (not used while a ``clumsygrad.profile()`` records: the generic pair times each node).

    Returns ``(nodes, grads, shared)``: the nodes that got a gradient and each one's total (two
    lists, in order), and the set of nodes whose total the engine does not own (an array someone
    else may hold: copied at commit).  A node whose
    total is shared and which has no ``.grad`` gets its copy when its turn comes, so the
    usual commit copies nothing.  Same checks,
    order and errors as the generic pair; the slots are read directly, no tuple is made per
    gradient, and a node of one parent (most of them) takes a branch without a loop.
    """
    totals = {order[0]: seed}  # pending: a node's entry leaves when its turn comes (the dict stays small)
    shared = set() if seed_owned else {order[0]}
    nodes, grads = [], []  # each node's total, in order, once it is complete
    get, pop, share, is_shared = totals.get, totals.pop, shared.add, shared.__contains__
    done, done_grad = nodes.append, grads.append
    for node in order:
        grad = pop(node, None)
        if grad is None:
            continue
        if _hook_table and id(node) in _hook_table:  # as in _propagate
            fns = hooks.hooks_of(node)
            if fns is not None:
                grad = hooks.apply(node, fns, grad)
                share(node)  # the hook may keep it
        if shared and is_shared(node) and node._grad is None:  # the copy the commit would make, made now
            grad = grad.copy()  # (while the node's fields are in the cache)
            shared.discard(node)
        done(node)
        done_grad(grad)
        grad_fn = node._grad_fn
        if grad_fn is None:
            continue
        try:
            parents = node._parent_nodes
            if not parents:
                _raise_freed()
            if node._version:
                _raise_modified(node, node, 0)
            if len(parents) == 1:
                parent = parents[0]
                saved = node._saved_versions[0]
                if parent._version != saved:
                    _raise_modified(node, parent, saved)
                formula = _inline_get(grad_fn) if parent._requires_grad else None
                if formula is _PASS:  # add/sub of a constant: the registry's kernel returns (grad,)
                    g = grad
                elif formula is _SCALE:  # times a constant: (grad * scalar_value,)
                    c = node._extra.get("scalar_value", 1.0)
                    if type(c) is float and type(grad) is _ndarray and grad.ndim == 0:
                        g = _mul_0d(grad, c)
                    else:
                        g = grad * c
                else:
                    if parent._requires_grad or not getattr(grad_fn, "skips_unneeded", False):
                        parent_grads = grad_fn(node, grad)
                    else:
                        parent_grads = grad_fn(node, grad, needs=(False,))
                    if len(parent_grads) != 1:
                        raise ValueError(
                            f"{grad_fn.__name__} returned {len(parent_grads)} gradients for 1 parents"
                        )
                    g = parent_grads[0]
                    if g is None or not parent._requires_grad:
                        continue
                data = parent._data
                dtype = data.dtype
                if type(g) is not _ndarray or (g.dtype is not dtype and g.dtype != dtype):
                    g, own = np.array(g, dtype=dtype), True  # one conversion, into a fresh array
                else:
                    own = g.base is None and _refcount(g) <= _FRESH_REFCOUNT
                if g.shape != data.shape:
                    raise ValueError(
                        f"Gradient shape mismatch for tensor {parent._id}: the gradient has shape {g.shape}, "
                        f"expected {data.shape}"
                    )
                total = get(parent)
                if total is None:
                    totals[parent] = g
                    if not own:
                        share(parent)
                elif is_shared(parent):  # into a new array (a plain `+` of 0-d arrays gives a NumPy scalar)
                    totals[parent] = np.add(total, g, out=np.empty_like(g))
                    shared.discard(parent)
                else:
                    total.__iadd__(g)
                continue
            saved = node._saved_versions
            n = len(parents)
            all_needed = True
            for i in range(n):
                parent = parents[i]
                if parent._version != saved[i]:
                    _raise_modified(node, parent, saved[i])
                if not parent._requires_grad:
                    all_needed = False
            if all_needed or not getattr(grad_fn, "skips_unneeded", False):
                parent_grads = grad_fn(node, grad)
            else:
                parent_grads = grad_fn(node, grad, needs=tuple([p._requires_grad for p in parents]))
            if len(parent_grads) != n:
                raise ValueError(
                    f"{grad_fn.__name__} returned {len(parent_grads)} gradients for {n} parents"
                )
            for i in range(n):
                parent = parents[i]
                g = parent_grads[i]
                if g is None or not parent._requires_grad:
                    continue
                data = parent._data
                dtype = data.dtype
                if type(g) is not _ndarray or (g.dtype is not dtype and g.dtype != dtype):
                    g, own = np.array(g, dtype=dtype), True  # one conversion, into a fresh array
                else:
                    own = g.base is None and _refcount(g) <= _FRESH_REFCOUNT
                if g.shape != data.shape:
                    raise ValueError(
                        f"Gradient shape mismatch for tensor {parent._id}: the gradient has shape {g.shape}, "
                        f"expected {data.shape}"
                    )
                total = get(parent)
                if total is None:
                    totals[parent] = g
                    if not own:
                        share(parent)
                elif is_shared(parent):  # into a new array (a plain `+` of 0-d arrays gives a NumPy scalar)
                    totals[parent] = np.add(total, g, out=np.empty_like(g))
                    shared.discard(parent)
                else:
                    total.__iadd__(g)
        except Exception as exc:
            raise RuntimeError(f"Error in backward pass at tensor {node._id}: {exc}") from exc
    if totals:  # none is left in a pass over a whole order; kept for the commit all the same
        nodes.extend(totals)
        grads.extend(totals.values())
    return nodes, grads, shared


def _propagate_nodes(order: list, seed: np.ndarray, seed_owned: bool):
    """:func:`_propagate_pure` over nodes of either twin (the compiled twin's, when
    ``set_backend("python")`` runs the pure engine on them): the same loop, reading the fields
    both twins have (``_parents``, ``_check_versions()``, ``_dtype``, ``_shape``)."""
    totals = {order[0]: seed}  # pending: a node's entry leaves when its turn comes (the dict stays small)
    shared = set() if seed_owned else {order[0]}
    nodes, grads = [], []  # each node's total, in order, once it is complete
    get, pop, share, is_shared = totals.get, totals.pop, shared.add, shared.__contains__
    done, done_grad = nodes.append, grads.append
    for node in order:
        grad = pop(node, None)
        if grad is None:
            continue
        if _hook_table and id(node) in _hook_table:  # as in _propagate
            fns = hooks.hooks_of(node)
            if fns is not None:
                grad = hooks.apply(node, fns, grad)
                share(node)  # the hook may keep it
        if shared and is_shared(node) and node._grad is None:  # the copy the commit would make, made now
            grad = grad.copy()  # (while the node's fields are in the cache)
            shared.discard(node)
        done(node)
        done_grad(grad)
        grad_fn = node._grad_fn
        if grad_fn is None:
            continue
        try:
            parents = node._parents
            if not parents:
                _raise_freed()
            node._check_versions()
            if len(parents) == 1:
                parent = parents[0]
                formula = _inline_get(grad_fn) if parent._requires_grad else None
                if formula is _PASS:  # add/sub of a constant: the registry's kernel returns (grad,)
                    g = grad
                elif formula is _SCALE:  # times a constant: (grad * scalar_value,)
                    c = node._extra.get("scalar_value", 1.0)
                    if type(c) is float and type(grad) is _ndarray and grad.ndim == 0:
                        g = _mul_0d(grad, c)
                    else:
                        g = grad * c
                else:
                    if parent._requires_grad or not getattr(grad_fn, "skips_unneeded", False):
                        parent_grads = grad_fn(node, grad)
                    else:
                        parent_grads = grad_fn(node, grad, needs=(False,))
                    if len(parent_grads) != 1:
                        raise ValueError(
                            f"{grad_fn.__name__} returned {len(parent_grads)} gradients for 1 parents"
                        )
                    g = parent_grads[0]
                    if g is None or not parent._requires_grad:
                        continue
                dtype, shape = parent._dtype, parent._shape
                if type(g) is not _ndarray or (g.dtype is not dtype and g.dtype != dtype):
                    g, own = np.array(g, dtype=dtype), True  # one conversion, into a fresh array
                else:
                    own = g.base is None and _refcount(g) <= _FRESH_REFCOUNT
                if g.shape != shape:
                    raise ValueError(
                        f"Gradient shape mismatch for tensor {parent._id}: the gradient has shape {g.shape}, "
                        f"expected {shape}"
                    )
                total = get(parent)
                if total is None:
                    totals[parent] = g
                    if not own:
                        share(parent)
                elif is_shared(parent):  # into a new array (a plain `+` of 0-d arrays gives a NumPy scalar)
                    totals[parent] = np.add(total, g, out=np.empty_like(g))
                    shared.discard(parent)
                else:
                    total.__iadd__(g)
                continue
            n = len(parents)
            all_needed = all([p._requires_grad for p in parents])
            if all_needed or not getattr(grad_fn, "skips_unneeded", False):
                parent_grads = grad_fn(node, grad)
            else:
                parent_grads = grad_fn(node, grad, needs=tuple([p._requires_grad for p in parents]))
            if len(parent_grads) != n:
                raise ValueError(
                    f"{grad_fn.__name__} returned {len(parent_grads)} gradients for {n} parents"
                )
            for i in range(n):
                parent = parents[i]
                g = parent_grads[i]
                if g is None or not parent._requires_grad:
                    continue
                dtype, shape = parent._dtype, parent._shape
                if type(g) is not _ndarray or (g.dtype is not dtype and g.dtype != dtype):
                    g, own = np.array(g, dtype=dtype), True  # one conversion, into a fresh array
                else:
                    own = g.base is None and _refcount(g) <= _FRESH_REFCOUNT
                if g.shape != shape:
                    raise ValueError(
                        f"Gradient shape mismatch for tensor {parent._id}: the gradient has shape {g.shape}, "
                        f"expected {shape}"
                    )
                total = get(parent)
                if total is None:
                    totals[parent] = g
                    if not own:
                        share(parent)
                elif is_shared(parent):  # into a new array (a plain `+` of 0-d arrays gives a NumPy scalar)
                    totals[parent] = np.add(total, g, out=np.empty_like(g))
                    shared.discard(parent)
                else:
                    total.__iadd__(g)
        except Exception as exc:
            raise RuntimeError(f"Error in backward pass at tensor {node._id}: {exc}") from exc
    if totals:  # none is left in a pass over a whole order; kept for the commit all the same
        nodes.extend(totals)
        grads.extend(totals.values())
    return nodes, grads, shared


def _raise_freed() -> None:
    raise RuntimeError(
        "No backward graph exists for this tensor (freed by an earlier backward(); "
        "pass keep_graph=True to keep it)"
    )


def _commit(nodes: list, grads: list, shared: set) -> None:
    """Add each node's total (``grads[i]`` of ``nodes[i]``) into its ``.grad``: copies first, so
    nothing is written if one fails.

    ``shared``: the nodes whose total the engine may not adopt as their ``.grad`` (copied when
    it becomes one).  The writes themselves are one call into C (no line of Python runs between
    two of them), so an asynchronous exception such as a ``KeyboardInterrupt`` from a signal
    handler, which Python raises only between bytecodes, lands before all of them or after all
    of them.
    """
    currents = list(map(_grad_of, nodes))
    if not any(map(is_not, currents, repeat(None))):  # no .grad yet (the usual pass): each total becomes one
        if shared:
            grads = [grad.copy() if node in shared else grad for node, grad in zip(nodes, grads)]
        deque(map(setattr, nodes, repeat("_grad"), grads), maxlen=0)
        return
    fresh_nodes, fresh, added_to, added = [], [], [], []
    for node, grad, current in zip(nodes, grads, currents):
        if current is None:
            fresh_nodes.append(node)
            fresh.append(grad.copy() if node in shared else grad)
        else:
            added_to.append(current)
            added.append(grad)
    deque(chain(map(setattr, fresh_nodes, repeat("_grad"), fresh), map(iadd, added_to, added)), maxlen=0)


_grad_of = attrgetter("_grad")
