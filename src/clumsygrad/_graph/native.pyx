# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The graph, compiled: twin of ``pure.py`` with the same names and results.

This module is the node: grad mode, ids, the node's C fields and their properties, the creation
of result nodes, version checks, the fast operators and the elementwise loops.  The backward
pass is ``_engine.pyx`` (re-exported here as ``backward_pass``); both share ``native.pxd``.

* ``Node`` is a ``cdef class``: data, gradient, parents, backward function, type, id, version,
  this pass's pending gradient and a visit mark are C fields, read by the engine without any
  attribute lookup.  ``Tensor`` is a Python subclass with empty ``__slots__``.
* The common operators (``+ - * /`` and unary ``-`` between same-shape contiguous float arrays,
  or with a Python ``float``/``int``) compute and record in C; everything else calls the
  generic Python operators that ``clumsygrad.tensor`` installs.  A 0-d result of a fast path
  keeps its value as a C double (``value_``): its ndarray is made only when ``_data`` is read,
  which saves the array object and its buffer (~140 bytes) on every node of a scalar graph.
  Likewise a 0-d node's gradient stays a double during backward (``pending_value_``) and in
  ``.grad`` (``grad_value_``) until read, so a scalar graph backpropagates without arrays.
* The engine orders the graph with the visit mark (no ``set``), collects gradients in the
  nodes' pending slots (no ``dict``), runs the elementwise backward functions as typed loops,
  and writes ``.grad`` only when the whole pass succeeded.
"""
cimport cython
cimport numpy as cnp
from cpython.number cimport PyNumber_Add, PyNumber_Multiply, PyNumber_Subtract
from cpython.ref cimport Py_REFCNT

import numpy as np

from . import ENGINE_LOCK
from . import guard as _guard
from . import pure as _pure

cnp.import_array()

cdef extern from "Python.h":
    void PyObject_GC_UnTrack(void* op)

cdef extern from *:
    """
    #if defined(_MSC_VER)
    #define CG_THREAD_LOCAL __declspec(thread)
    #else
    #define CG_THREAD_LOCAL _Thread_local
    #endif
    static CG_THREAD_LOCAL int cg_grad_disabled = 0;
    """
    int cg_grad_disabled

cdef dict _op_of = {}          # backward function -> VJP member
cdef list _fn_of = [None] * (GETITEM + 1)  # VJP member -> backward function
cdef object _tensor_class = None
cdef tuple _types = None       # (INPUT, PARAMETER, INTERMEDIATE) members
cdef object _generic_add, _generic_radd, _generic_sub, _generic_rsub, _generic_mul, _generic_rmul
cdef object _generic_truediv, _generic_rtruediv, _generic_neg
cdef long long _next_id = 0
cdef bint _guard_on = False    # guard.is_enabled(), kept in C for _make_node
cdef object _node_sink = None  # clumsygrad.profile()'s counter of records, or None


def _set_guard(bint enabled):
    global _guard_on
    _guard_on = enabled


_guard._listeners.append(_set_guard)
_set_guard(_guard.is_enabled())


def install(tensor_class, tensor_types, generic_operators, typed_vjps):
    """Called once by ``clumsygrad.tensor``: the class to build, the enum members, the generic
    operators the fast paths fall back to, and each backward function that has a typed loop
    with the name of its ``Op`` member (from the op registry)."""
    global _tensor_class, _types, _generic_add, _generic_radd, _generic_sub, _generic_rsub
    global _generic_mul, _generic_rmul, _generic_truediv, _generic_rtruediv, _generic_neg
    if not issubclass(tensor_class, Node):
        raise TypeError(f"{tensor_class!r} is not a subclass of the compiled Node")
    _tensor_class = tensor_class
    _types = tuple(tensor_types)
    _generic_add = generic_operators["__add__"]
    _generic_radd = generic_operators["__radd__"]
    _generic_sub = generic_operators["__sub__"]
    _generic_rsub = generic_operators["__rsub__"]
    _generic_mul = generic_operators["__mul__"]
    _generic_rmul = generic_operators["__rmul__"]
    _generic_truediv = generic_operators["__truediv__"]
    _generic_rtruediv = generic_operators["__rtruediv__"]
    _generic_neg = generic_operators["__neg__"]
    if [int(t) for t in _types] != [INPUT, PARAMETER, INTERMEDIATE]:
        raise ValueError(f"TensorType values {_types} differ from the compiled node's")
    _op_of.clear()
    for fn, name in typed_vjps.items():
        op = int(getattr(VJP, name))
        _op_of[fn] = op
        _fn_of[op] = fn


# ----------------------------------------------------------------------------- grad mode, ids
def is_grad_enabled():
    """Whether operations in this thread record a graph."""
    return not cg_grad_disabled


def set_grad_enabled(enabled):
    """Turn graph recording in this thread on or off; returns the previous setting."""
    global cg_grad_disabled
    previous = not cg_grad_disabled
    cg_grad_disabled = not enabled
    return previous


def get_id_counter():
    return _next_id


def set_id_counter(long long value):
    global _next_id
    _next_id = value


def take_id():
    """A new tensor id (ids are unique for the life of the process)."""
    global _next_id
    _next_id += 1
    return _next_id - 1


# ----------------------------------------------------------------------------- the node
@cython.auto_pickle(False)
@cython.trashcan(True)
cdef class Node:
    """What the graph keeps of a tensor, as C fields (see the module docstring)."""

    @property
    def _data(self):
        return _data_of(self)

    @_data.setter
    def _data(self, value):
        self.data_ = value
        self.value_type_ = 0

    @property
    def _shape(self):
        return () if self.data_ is None and self.value_type_ else self.data_.shape

    @property
    def _dtype(self):
        if self.data_ is None and self.value_type_:
            return cnp.PyArray_DescrFromType(self.value_type_)
        return self.data_.dtype

    @property
    def _grad(self):
        if self.grad_type_:
            self.grad_ = _scalar_array(self.grad_value_, self.grad_type_)
            self.grad_type_ = 0
        return self.grad_

    @_grad.setter
    def _grad(self, value):
        self.grad_ = value
        self.grad_type_ = 0

    @property
    def _parents(self):
        return self.parents_

    @_parents.setter
    def _parents(self, value):
        cdef tuple parents = tuple(value)
        cdef unsigned int rest = 0
        cdef Py_ssize_t i
        for parent in parents:
            if not isinstance(parent, Node):
                raise TypeError(f"a parent must be a Tensor, got {type(parent).__name__}")
        # Assigning the parents records the graph by hand: their versions count from now on.
        self.parents_ = parents
        self.saved0_ = (<Node> parents[0]).version_ if parents else 0
        for i in range(1, len(parents)):
            rest += (<Node> parents[i]).version_
        self.saved_rest_ = rest
        self.saved_many_ = tuple([(<Node> p).version_ for p in parents]) if len(parents) > 2 else None

    @property
    def _grad_fn(self):
        return self.grad_fn_

    @_grad_fn.setter
    def _grad_fn(self, value):
        self.grad_fn_ = value
        self.op_ = _op_of.get(value, GENERIC) if value is not None else GENERIC
        if self.op_ == MUL_SCALAR or self.op_ == POWER:
            self.op_ = GENERIC  # its constant is in _extra, which the Python function reads

    @property
    def _extra(self):
        if self.extra_ is None:
            if self.op_ == MUL_SCALAR or self.op_ == ADD_SCALAR or self.op_ == SUB_SCALAR:
                self.extra_ = {"scalar_value": self.scalar_}
            elif self.op_ == POWER:
                self.extra_ = {"power": self.scalar_}
            else:
                self.extra_ = {}
        if self.op_ == MUL_SCALAR or self.op_ == POWER:
            self.op_ = GENERIC  # the dict may be changed from now on: let the Python function read it
        return self.extra_

    @_extra.setter
    def _extra(self, value):
        self.extra_ = value
        if self.op_ == MUL_SCALAR or self.op_ == POWER:
            self.op_ = GENERIC

    @property
    def _tensor_type(self):
        return _types[self.type_]

    @_tensor_type.setter
    def _tensor_type(self, value):
        self.type_ = _types.index(value)

    @property
    def _requires_grad(self):
        return self.requires_grad_

    @_requires_grad.setter
    def _requires_grad(self, value):
        self.requires_grad_ = value

    @property
    def _id(self):
        return self.id_

    @_id.setter
    def _id(self, long long value):
        self.id_ = value

    @property
    def _version(self):
        return self.version_

    @_version.setter
    def _version(self, unsigned int value):
        self.version_ = value

    def _bump_version(self):
        """Record an in-place change of ``_data`` (optimizer steps call this)."""
        self.version_ += 1

    def _cleanup_references(self):
        """Drop the links to the parents, freeing the graph behind this node."""
        _free(self)

    def _check_versions(self):
        """``RuntimeError`` if this node or a parent changed in place since the node was recorded."""
        _check_versions(self)

    # Operators: a fast path for the common cases, the generic Python operators for the rest.
    def __add__(self, other):
        return _scalar_or_same_shape(self, other, L_ADD, ADD, L_ADD_C, ADD_SCALAR, _generic_add)

    def __radd__(self, other):
        return _scalar_or_same_shape(self, other, L_ADD, GENERIC, L_ADD_C, ADD_SCALAR, _generic_radd)

    def __sub__(self, other):
        return _scalar_or_same_shape(self, other, L_SUB, SUB, L_SUB_C, SUB_SCALAR, _generic_sub)

    def __rsub__(self, other):
        return _generic_rsub(self, other)

    def __mul__(self, other):
        return _scalar_or_same_shape(self, other, L_MUL, MUL, L_MUL_C, MUL_SCALAR, _generic_mul)

    def __rmul__(self, other):
        return _scalar_or_same_shape(self, other, L_MUL, GENERIC, L_MUL_C, MUL_SCALAR, _generic_rmul)

    def __truediv__(self, other):
        cdef double c
        if type(other) is float or type(other) is int:
            c = other
            if c != 0.0 and c == c:  # x / c records x * (1 / c); the forward value is the quotient
                result = _fast_unary(self, L_DIV_C, c, MUL_SCALAR, 1.0 / c)
                if result is not None:
                    return result
        return _generic_truediv(self, other)

    def __rtruediv__(self, other):
        return _generic_rtruediv(self, other)

    def __neg__(self):
        result = _fast_unary(self, L_NEG, 0.0, NEGATE, 0.0)
        return result if result is not None else _generic_neg(self)


cdef object _scalar_or_same_shape(Node self, object other, int tensor_loop, int tensor_vjp,
                                  int scalar_loop, int scalar_vjp, object generic):
    """``self (op) other`` on the fast path when it applies, else ``generic(self, other)``.

    A tensor ``other`` is computed by ``tensor_loop`` and recorded as ``tensor_vjp`` (GENERIC:
    no tensor fast path); a number by ``scalar_loop``, recorded as ``scalar_vjp``."""
    cdef double c, a, b
    cdef int ta, tb
    cdef Node right
    if type(other) is float or type(other) is int:
        c = other
        if c == c and -3.4e38 < c < 3.4e38:  # finite in float32 too: no overflow warnings to mimic
            result = _fast_unary(self, scalar_loop, c, scalar_vjp, c)
            if result is not None:
                return result
    elif tensor_vjp != GENERIC and isinstance(other, Node):
        right = <Node> other
        if _value_of(self, &a, &ta) and _value_of(right, &b, &tb):
            if ta == tb:
                return _record_value(_compute(tensor_loop, a, b, ta), ta, tensor_vjp, (self, right), 0.0)
        elif _fast_operand(self.data_) and _fast_operand(right.data_):
            if _same_layout(self.data_, right.data_):
                return _make_node(_apply(tensor_loop, self.data_, right.data_, 0.0), _fn_of[tensor_vjp],
                                  (self, right), None, tensor_vjp, 0.0)
            if cnp.PyArray_TYPE(<cnp.ndarray> self.data_) == cnp.PyArray_TYPE(<cnp.ndarray> right.data_):
                return _broadcast(self, right, tensor_vjp, generic)
    return generic(self, other)


cdef object _broadcast(Node left, Node right, int tensor_vjp, object generic):
    """``left (op) right`` for arrays of one float dtype and different shapes (a bias row, a
    column): NumPy broadcasts, and the node records the op's broadcast VJP with both shapes."""
    cdef int vjp = tensor_vjp + (ADD_BROADCAST - ADD)
    try:
        if tensor_vjp == ADD:
            data = PyNumber_Add(left.data_, right.data_)
        elif tensor_vjp == SUB:
            data = PyNumber_Subtract(left.data_, right.data_)
        else:
            data = PyNumber_Multiply(left.data_, right.data_)
    except ValueError:  # shapes that do not broadcast: the generic operator words the error
        return generic(left, right)
    extra = {"left_shape": (<object> left.data_).shape, "right_shape": (<object> right.data_).shape}
    return _make_node(data, _fn_of[vjp], (left, right), extra, vjp, 0.0)


cdef object _fast_unary(Node self, int loop, double c, int op, double scalar):
    """``loop`` of ``self`` and the constant ``c``, recorded as the VJP ``op``; None off the fast path."""
    cdef double a
    cdef int t
    if _value_of(self, &a, &t):
        return _record_value(_compute(loop, a, c, t), t, op, (self,), scalar)
    if _fast_operand(self.data_):
        return _make_node(_apply(loop, self.data_, None, c), _fn_of[op], (self,), None, op, scalar)
    return None


cdef object _record_value(double value, int typenum, int op, tuple parents, double scalar):
    """A 0-d result node whose value stays a C double until ``_data`` is read."""
    cdef Node node = _make_node(None, _fn_of[op], parents, None, op, scalar)
    node.value_ = value
    node.value_type_ = typenum
    return node


cdef object _data_of(Node n):
    """``n``'s data array, made from ``value_`` on first use."""
    if n.data_ is None and n.value_type_:
        n.data_ = _scalar_array(n.value_, n.value_type_)
    return n.data_


cdef bint _fits(object g, Node n):
    """``g`` is a fast operand with ``n``'s dtype and shape (without making ``n``'s array)."""
    if not _fast_operand(g):
        return False
    if n.data_ is None:
        return (n.value_type_ != 0 and cnp.PyArray_NDIM(<cnp.ndarray> g) == 0
                and cnp.PyArray_TYPE(<cnp.ndarray> g) == n.value_type_)
    return (type(n.data_) is cnp.ndarray
            and cnp.PyArray_TYPE(<cnp.ndarray> g) == cnp.PyArray_TYPE(<cnp.ndarray> n.data_)
            and _same_shape(<cnp.ndarray> g, <cnp.ndarray> n.data_))


cdef Node _make_node(object data, object grad_fn, tuple parents, object extra, int op, double scalar):
    """Build a result node: the tensor-type rule of ``pure.new_node``, with C fields."""
    cdef Node node = Node.__new__(_tensor_class)
    cdef Node parent
    cdef bint track = False, requires_grad = False
    cdef unsigned int rest = 0
    cdef Py_ssize_t i
    if _node_sink is not None:  # clumsygrad.profile() counts every record, fast paths too
        _node_sink(grad_fn)
    for i in range(len(parents)):
        parent = <Node> parents[i]
        if parent.type_ != INPUT:
            track = True
        if parent.requires_grad_:
            requires_grad = True
        if i:
            rest += parent.version_
    node.data_ = data
    node.id_ = _next_id
    _inc_id()
    if track and not cg_grad_disabled:
        node.type_ = INTERMEDIATE
        node.requires_grad_ = requires_grad
        node.grad_fn_ = grad_fn
        node.parents_ = parents
        node.extra_ = extra
        node.op_ = op
        node.scalar_ = scalar
        node.saved0_ = (<Node> parents[0]).version_
        node.saved_rest_ = rest
        if len(parents) > 2:  # a sum of versions cannot tell which of them changed
            node.saved_many_ = tuple([(<Node> p).version_ for p in parents])
        if _guard_on:
            node.guarded_ = _guard.protect(node, (data,) + tuple([_data_of(<Node> p) for p in parents]))
    else:
        node.type_ = INPUT
        node.parents_ = ()
    # Results and their parent tuples are not tracked by the cyclic garbage collector: a graph
    # has no cycles (parents only point back), and full collections over a million live nodes
    # cost seconds (gen-2 passes took ~70% of building a 1M-node chain).  CPython never
    # untracks a tuple of GC-capable objects by itself.
    PyObject_GC_UnTrack(<void*> node)
    PyObject_GC_UnTrack(<void*> node.parents_)
    return node


cdef int _free(Node node) except -1:
    """Drop the node's parents (its graph) and give back what the memory guard holds for it."""
    node.parents_ = ()
    if node.guarded_:
        node.guarded_ = False
        _guard.release(node)
    return 0


cdef inline void _inc_id() noexcept:
    global _next_id
    _next_id += 1


def new_node(data, grad_fn, parents, extra=None):
    """A result tensor of an operation on ``parents``; the same contract as ``pure.new_node``."""
    cdef tuple ps = parents if type(parents) is tuple else tuple(parents)
    cdef Node first, parent
    cdef object dtype
    cdef int op
    cdef double scalar = 0.0
    if not ps:
        raise ValueError("an operation needs at least one parent tensor")
    for p in ps:
        if not isinstance(p, Node):
            raise TypeError(f"the parents of a tensor must be tensors, got {type(p).__name__}")
    first = <Node> ps[0]
    dtype = _data_of(first).dtype
    for parent in ps:
        if _data_of(parent).dtype is not dtype and _data_of(parent).dtype != dtype:
            dtype = np.dtype(np.float64)
    if type(data) is not cnp.ndarray or (data.dtype is not dtype and data.dtype != dtype):
        data = np.asarray(data, dtype=dtype)
    op = _op_of.get(grad_fn, GENERIC) if grad_fn is not None else GENERIC
    if op == MUL_SCALAR or op == POWER:
        op = GENERIC  # the constant is in ``extra``, which the Python function reads
    return _make_node(data, grad_fn, ps, dict(extra) if extra else None, op, scalar)



# ----------------------------------------------------------------------------- versions
cdef int _check_versions(Node node) except -1:
    cdef Node parent
    cdef unsigned int rest = 0
    cdef Py_ssize_t i, n = len(node.parents_)
    if node.version_:
        _pure._raise_modified(node, node, 0)
    if node.saved_many_ is not None and len(node.saved_many_) == n:
        for i in range(n):
            parent = <Node> node.parents_[i]
            if parent.version_ != <unsigned int> node.saved_many_[i]:
                _pure._raise_modified(node, parent, node.saved_many_[i])
        return 0
    if n and (<Node> node.parents_[0]).version_ != node.saved0_:
        _pure._raise_modified(node, node.parents_[0], node.saved0_)
    for i in range(1, n):
        rest += (<Node> node.parents_[i]).version_
    if rest != node.saved_rest_:
        for i in range(1, n):
            parent = <Node> node.parents_[i]
            if parent.version_:
                _pure._raise_modified(node, parent, node.saved_rest_ if n == 2 else "an earlier one")
    return 0


# ----------------------------------------------------------------------------- elementwise loops
cdef object _apply(int loop, object a, object b, double c):
    """A new array of ``a``'s shape and dtype: ``loop`` of ``a`` and ``b`` (or the constant ``c``).

    ``a`` and ``b`` (when given) are fast operands of one dtype and size.  Large arrays are
    computed without the GIL.
    """
    cdef cnp.ndarray x = <cnp.ndarray> a
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(x), cnp.PyArray_DIMS(x),
                                             cnp.PyArray_TYPE(x), 0)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    cdef void* y = cnp.PyArray_DATA(<cnp.ndarray> b) if b is not None else NULL
    cdef bint single = cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT
    if n > 4096:
        with nogil:
            _dispatch(single, loop, cnp.PyArray_DATA(out), cnp.PyArray_DATA(x), y, c, n)
    else:
        _dispatch(single, loop, cnp.PyArray_DATA(out), cnp.PyArray_DATA(x), y, c, n)
    return out


cdef void _dispatch(bint single, int loop, void* out, const void* x, const void* y, double c,
                    Py_ssize_t n) noexcept nogil:
    # The constant in the array's precision, as NumPy casts a Python scalar (c - 1 for POWER
    # is taken in double first, as Python computes it).
    if single:
        _loop(loop, <float*> out, <const float*> x, <const float*> y, <float> c, <float> (c - 1), n)
    else:
        _loop(loop, <double*> out, <const double*> x, <const double*> y, c, c - 1, n)


def _set_node_sink(sink):
    global _node_sink
    _node_sink = sink


# The backward pass lives in _engine.pyx; the graph twin is one module to its users.
from ._engine import backward_pass, set_profile_sinks  # noqa: E402
