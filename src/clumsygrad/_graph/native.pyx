# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The graph, compiled: twin of ``pure.py`` with the same names and results.

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
from cpython.ref cimport Py_REFCNT
from libc.math cimport cos, cosf, sin, sinf, sqrt, sqrtf, pow, powf
from libc.stdlib cimport free, malloc, realloc

import numpy as np

from . import ENGINE_LOCK
from . import guard as _guard
from . import hooks as _hooks
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

ctypedef fused floating:
    float
    double

# TensorType values (the enum members themselves come from install()).
cdef enum:
    INPUT = 0
    PARAMETER = 1
    INTERMEDIATE = 2

# Backward functions the engine runs as typed loops; GENERIC calls the Python function (relu's
# does too: it is the compiled kernel's cache-blocked loop, faster than a loop here).  The op
# registry names the typed loop of each backward function (``typed="EXP"``); install() reads
# the member of that name.
cpdef enum Op:
    GENERIC = 0
    ADD
    SUB
    MUL
    ADD_SCALAR
    SUB_SCALAR
    MUL_SCALAR
    NEGATE
    POWER
    EXP
    LOG
    SQRT
    SIN
    COS
    TANH
    SIGMOID
    RESHAPE
    TRANSPOSE
    DIVIDE_BY  # a forward loop of the fast paths only (division by a constant)

cdef dict _op_of = {}          # backward function -> Op
cdef list _fn_of = [None] * (TRANSPOSE + 1)  # Op -> backward function
cdef object _tensor_class = None
cdef tuple _types = None       # (INPUT, PARAMETER, INTERMEDIATE) members
cdef object _generic_add, _generic_radd, _generic_sub, _generic_rsub, _generic_mul, _generic_rmul
cdef object _generic_truediv, _generic_rtruediv, _generic_neg
cdef long long _next_id = 0
cdef unsigned int _pass_mark = 0
cdef int _engine_depth = 0     # > 0 while a compiled pass runs (a nested one goes to the pure engine)
cdef bint _guard_on = False    # guard.is_enabled(), kept in C for _make_node


def _set_guard(bint enabled):
    global _guard_on
    _guard_on = enabled


_guard._listeners.append(_set_guard)
_set_guard(_guard.is_enabled())


cdef bint _hooks_on = False    # hooks.active(), kept in C for the engine's per-node test
cdef dict _hook_table = _hooks._table


def _set_hooks(bint active):
    global _hooks_on
    _hooks_on = active


_hooks._listeners.append(_set_hooks)
_set_hooks(_hooks.active())


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
    _op_of.clear()
    for fn, name in typed_vjps.items():
        op = int(getattr(Op, name))
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

    cdef object data_            # the ndarray; None while a 0-d value lives in value_
    cdef object grad_
    cdef tuple parents_
    cdef object grad_fn_
    cdef object extra_           # dict, or None until first read (scalar ops keep scalar_ instead)
    cdef object pending_         # this pass's gradient, or None
    cdef tuple saved_many_       # every parent's version when recorded, if it has more than two
    cdef object __weakref__
    cdef double scalar_          # the constant of a scalar op recorded by a fast path
    cdef double value_           # the value of a 0-d result while data_ is None
    cdef double pending_value_   # this pass's gradient of a 0-d node, while pending_type_ is set
    cdef double grad_value_      # the gradient of a 0-d node, while grad_type_ is set
    cdef long long id_
    cdef unsigned int version_   # bumped by every in-place change made through the library
    cdef unsigned int saved0_    # parents_[0]'s version when recorded
    cdef unsigned int saved_rest_  # the sum of the other parents' versions when recorded
    cdef unsigned int mark_      # the number of the last pass that reached this node
    # The 4-byte flags, then the 1-byte fields: no padding between them (node size 176 bytes).
    cdef bint requires_grad_
    cdef bint pending_owned_     # the engine may add into pending_ in place
    cdef bint guarded_           # the memory guard holds arrays for this node
    cdef unsigned char type_
    cdef unsigned char op_
    cdef unsigned char value_type_  # NPY_FLOAT or NPY_DOUBLE: value_ is the data; 0: data_ is
    cdef unsigned char pending_type_  # NPY_FLOAT/NPY_DOUBLE: the pending gradient is pending_value_
    cdef unsigned char grad_type_     # NPY_FLOAT/NPY_DOUBLE: .grad is grad_value_ (array made on read)

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
        return _scalar_or_same_shape(self, other, ADD, ADD_SCALAR, _generic_add)

    def __radd__(self, other):
        return _scalar_or_same_shape(self, other, GENERIC, ADD_SCALAR, _generic_radd)

    def __sub__(self, other):
        return _scalar_or_same_shape(self, other, SUB, SUB_SCALAR, _generic_sub)

    def __rsub__(self, other):
        return _generic_rsub(self, other)

    def __mul__(self, other):
        return _scalar_or_same_shape(self, other, MUL, MUL_SCALAR, _generic_mul)

    def __rmul__(self, other):
        return _scalar_or_same_shape(self, other, GENERIC, MUL_SCALAR, _generic_rmul)

    def __truediv__(self, other):
        cdef double c
        if type(other) is float or type(other) is int:
            c = other
            if c != 0.0 and c == c:  # x / c records x * (1 / c); the forward value is the quotient
                result = _fast_unary(self, DIVIDE_BY, c, MUL_SCALAR, 1.0 / c)
                if result is not None:
                    return result
        return _generic_truediv(self, other)

    def __rtruediv__(self, other):
        return _generic_rtruediv(self, other)

    def __neg__(self):
        result = _fast_unary(self, NEGATE, 0.0, NEGATE, 0.0)
        return result if result is not None else _generic_neg(self)


cdef inline bint _fast_operand(object data):
    """A C-contiguous float32/float64 ndarray: what the fast paths and typed loops take."""
    if type(data) is not cnp.ndarray:
        return False
    cdef int t = cnp.PyArray_TYPE(<cnp.ndarray> data)
    return (t == cnp.NPY_FLOAT or t == cnp.NPY_DOUBLE) and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray> data)


cdef inline bint _same_layout(cnp.ndarray a, cnp.ndarray b):
    """Same dtype and shape (both already known to be fast operands)."""
    cdef int k, nd = cnp.PyArray_NDIM(a)
    if cnp.PyArray_TYPE(a) != cnp.PyArray_TYPE(b) or nd != cnp.PyArray_NDIM(b):
        return False
    for k in range(nd):
        if cnp.PyArray_DIMS(a)[k] != cnp.PyArray_DIMS(b)[k]:
            return False
    return True


cdef object _scalar_or_same_shape(Node self, object other, int tensor_op, int scalar_op, object generic):
    """``self (op) other`` on the fast path when it applies, else ``generic(self, other)``."""
    cdef double c, a, b
    cdef int ta, tb
    cdef Node right
    if type(other) is float or type(other) is int:
        c = other
        if c == c and -3.4e38 < c < 3.4e38:  # finite in float32 too: no overflow warnings to mimic
            result = _fast_unary(self, scalar_op, c, scalar_op, c)
            if result is not None:
                return result
    elif tensor_op != GENERIC and isinstance(other, Node):
        right = <Node> other
        if _value_of(self, &a, &ta) and _value_of(right, &b, &tb):
            if ta == tb:
                return _record_value(_compute(tensor_op, a, b, ta), ta, tensor_op, (self, right), 0.0)
        elif (_fast_operand(self.data_) and _fast_operand(right.data_)
              and _same_layout(self.data_, right.data_)):
            return _make_node(_apply(tensor_op, self.data_, right.data_, 0.0), _fn_of[tensor_op],
                              (self, right), None, tensor_op, 0.0)
    return generic(self, other)


cdef object _fast_unary(Node self, int compute_op, double c, int op, double scalar):
    """``compute_op`` of ``self`` and the constant ``c``, recorded as ``op``; None off the fast path."""
    cdef double a
    cdef int t
    if _value_of(self, &a, &t):
        return _record_value(_compute(compute_op, a, c, t), t, op, (self,), scalar)
    if _fast_operand(self.data_):
        return _make_node(_apply(compute_op, self.data_, None, c), _fn_of[op], (self,), None, op, scalar)
    return None


cdef bint _value_of(Node n, double* value, int* typenum):
    """The value of a 0-d float tensor (kept as a double, or in a 0-d array); False otherwise."""
    if n.data_ is None:
        if not n.value_type_:
            return False
        value[0] = n.value_
        typenum[0] = n.value_type_
        return True
    return _array_value(n.data_, value, typenum)


cdef double _compute(int op, double a, double b, int typenum) noexcept:
    """One element of ``_loop``, in the precision of ``typenum`` (the same arithmetic as arrays)."""
    cdef float fa = <float> a, fb = <float> b, fout
    cdef double out
    if typenum == cnp.NPY_FLOAT:
        _loop(op, &fout, &fa, &fb, fb, fb, 1)
        return fout
    _loop(op, &out, &a, &b, b, b, 1)
    return out


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


cdef object _scalar_array(double value, int typenum):
    """A new 0-d array of ``typenum`` (float32 or float64) holding ``value``."""
    cdef cnp.ndarray a = cnp.PyArray_EMPTY(0, NULL, typenum, 0)
    if typenum == cnp.NPY_FLOAT:
        (<float*> cnp.PyArray_DATA(a))[0] = <float> value
    else:
        (<double*> cnp.PyArray_DATA(a))[0] = value
    return a


cdef int _scalar_type(Node n):
    """NPY_FLOAT or NPY_DOUBLE for a 0-d float node (its gradient can be a double), else 0."""
    cdef cnp.ndarray a
    if n.data_ is None:
        return n.value_type_
    if type(n.data_) is not cnp.ndarray:
        return 0
    a = <cnp.ndarray> n.data_
    if cnp.PyArray_NDIM(a) == 0 and (cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT or cnp.PyArray_TYPE(a) == cnp.NPY_DOUBLE):
        return cnp.PyArray_TYPE(a)
    return 0


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


cdef inline int _free(Node node) except -1:
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


# ----------------------------------------------------------------------------- the engine
def backward_pass(Node root, cnp.ndarray seed, bint seed_owned, bint keep_graph):
    """Backpropagate ``seed`` from ``root`` into ``.grad`` of every tensor that requires it.

    The contract of ``pure.backward_pass`` (all or nothing, adopt-or-copy, graph freed unless
    ``keep_graph``).  A pass started from inside a backward function runs on the pure engine,
    since the outer pass owns the nodes' pending slots.
    """
    global _engine_depth
    cdef list order
    cdef Node node
    with ENGINE_LOCK:
        if _engine_depth:
            return _pure.backward_pass(root, seed, seed_owned, keep_graph)
        _engine_depth += 1
        try:
            order = _reverse_topological_order(root)
            try:
                _accumulate(root, seed, seed_owned)
                _propagate(order)
                _commit(order)
            finally:
                for node in order:
                    node.pending_ = None
                    node.pending_type_ = 0
            if not keep_graph:
                for node in order:
                    if node.type_ == INTERMEDIATE:
                        _free(node)
        finally:
            _engine_depth -= 1


cdef list _reverse_topological_order(Node root):
    """Nodes that require gradients reachable from ``root``, each before all of its parents.

    Iterative depth-first search over C arrays (the path from the root and, for each node on
    it, the next parent to visit); a node is visited once per pass by its mark.
    """
    global _pass_mark
    _pass_mark += 1
    if _pass_mark == 0:
        _pass_mark = 1
    cdef unsigned int mark = _pass_mark
    cdef list postorder = []
    cdef Py_ssize_t capacity = 256, depth = 1, i, n
    cdef void** path = <void**> malloc(capacity * sizeof(void*))
    cdef Py_ssize_t* next_parent = <Py_ssize_t*> malloc(capacity * sizeof(Py_ssize_t))
    cdef Node node, parent
    cdef object parents
    if path == NULL or next_parent == NULL:
        free(path)
        free(next_parent)
        raise MemoryError()
    try:
        root.mark_ = mark
        path[0] = <void*> root
        next_parent[0] = 0
        while depth:
            node = <Node> <object> path[depth - 1]
            n = len(node.parents_)
            i = next_parent[depth - 1]
            while i < n:
                parents = node.parents_[i]
                i += 1
                if not isinstance(parents, Node):
                    raise TypeError(f"a parent of tensor {node.id_} is not a Tensor: {type(parents).__name__}")
                parent = <Node> parents
                if parent.requires_grad_ and parent.mark_ != mark:
                    parent.mark_ = mark
                    next_parent[depth - 1] = i
                    if depth == capacity:
                        _grow(&path, &next_parent, &capacity)
                    path[depth] = <void*> parent
                    next_parent[depth] = 0
                    depth += 1
                    break
            else:
                depth -= 1
                postorder.append(node)
    finally:
        free(path)
        free(next_parent)
    postorder.reverse()
    return postorder


cdef int _grow(void*** path, Py_ssize_t** next_parent, Py_ssize_t* capacity) except -1:
    cdef void* grown_path = realloc(path[0], 2 * capacity[0] * sizeof(void*))
    if grown_path == NULL:
        raise MemoryError()
    path[0] = <void**> grown_path
    cdef void* grown_next = realloc(next_parent[0], 2 * capacity[0] * sizeof(Py_ssize_t))
    if grown_next == NULL:
        raise MemoryError()
    next_parent[0] = <Py_ssize_t*> grown_next
    capacity[0] *= 2
    return 0


cdef int _propagate(list order) except -1:
    """Push each node's pending gradient to its parents' pending slots, root first."""
    cdef Node node
    for node in order:
        if node.pending_ is None and not node.pending_type_:
            continue
        if _hooks_on:
            _run_hooks(node)
        if node.grad_fn_ is None:
            continue
        try:
            if not node.parents_:
                raise RuntimeError(
                    "No backward graph exists for this tensor (freed by an earlier backward(); "
                    "pass keep_graph=True to keep it)"
                )
            _check_versions(node)
            if node.pending_type_ and _value_vjp(node):
                continue
            _pending_as_array(node)
            if node.op_ == GENERIC or not _typed_vjp(node):
                _python_vjp(node)
        except Exception as exc:
            raise RuntimeError(f"Error in backward pass at tensor {node.id_}: {exc}") from exc
    return 0


cdef int _run_hooks(Node node) except -1:
    """The node's hooks on its total gradient (a leaf's before the commit); a replacement is
    never adopted in place, since the hook may keep it."""
    if id(node) not in _hook_table:
        return 0
    fns = _hooks.hooks_of(node)
    if fns is not None:
        _pending_as_array(node)
        node.pending_ = _hooks.apply(node, fns, node.pending_)
        node.pending_owned_ = False
    return 0


cdef int _commit(list order) except -1:
    """Add each node's pending gradient into its ``.grad``: copies first, so a failure writes nothing."""
    cdef Node node
    for node in order:
        if node.pending_ is not None and node.grad_ is None and not node.grad_type_ and not node.pending_owned_:
            node.pending_ = cnp.PyArray_NewCopy(<cnp.ndarray?> node.pending_, cnp.NPY_CORDER)
    for node in order:
        if node.pending_type_:
            if node.grad_type_:
                node.grad_value_ = _compute(ADD, node.grad_value_, node.pending_value_, node.grad_type_)
            elif node.grad_ is None:
                node.grad_value_ = node.pending_value_
                node.grad_type_ = node.pending_type_
            else:  # an array the user assigned: NumPy adds the double as it would a Python float
                node.grad_ += node.pending_value_
        elif node.pending_ is not None:
            if node.grad_type_:
                node.grad_ = _scalar_array(node.grad_value_, node.grad_type_)
                node.grad_type_ = 0
                node.grad_ += node.pending_
            elif node.grad_ is None:
                node.grad_ = node.pending_
            else:
                _add_into(node.grad_, node.pending_)
    return 0


cdef int _add_into(object acc, object g) except -1:
    """``acc += g`` in place: a typed loop for same-layout contiguous arrays, NumPy otherwise."""
    cdef Py_ssize_t n
    cdef bint single
    cdef void* a
    cdef void* b
    if _fast_operand(acc) and _fast_operand(g) and _same_layout(acc, g):
        n = cnp.PyArray_SIZE(<cnp.ndarray> acc)
        single = cnp.PyArray_TYPE(<cnp.ndarray> acc) == cnp.NPY_FLOAT
        a = cnp.PyArray_DATA(<cnp.ndarray> acc)
        b = cnp.PyArray_DATA(<cnp.ndarray> g)
        if n > 4096:
            with nogil:
                _dispatch(single, ADD, a, a, b, 0.0, n)
        else:
            _dispatch(single, ADD, a, a, b, 0.0, n)
    else:
        acc += g
    return 0


cdef int _accumulate(Node parent, object g, bint owned) except -1:
    """Add ``g`` (the parent's dtype and shape) into ``parent``'s pending gradient."""
    cdef double v
    cdef int t
    if parent.pending_type_ or (parent.pending_ is None and _scalar_type(parent)):
        if _array_value(g, &v, &t) and t == _scalar_type(parent):
            return _accumulate_value(parent, v, t)
        _pending_as_array(parent)
    if parent.pending_ is None:
        parent.pending_ = g
        parent.pending_owned_ = owned
    elif parent.pending_owned_:
        _add_into(parent.pending_, g)
    else:  # into a new array (a plain `+` of 0-d arrays gives a NumPy scalar)
        parent.pending_ = np.add(parent.pending_, g, out=np.empty_like(g))
        parent.pending_owned_ = True
    return 0


cdef int _accumulate_value(Node parent, double v, int t) except -1:
    """Add ``v`` into the pending gradient of a 0-d ``parent`` of float type ``t``."""
    if parent.pending_type_:
        parent.pending_value_ = _compute(ADD, parent.pending_value_, v, t)
    elif parent.pending_ is None:
        parent.pending_value_ = v
        parent.pending_type_ = t
    else:
        _accumulate(parent, _scalar_array(v, t), True)
    return 0


cdef bint _array_value(object g, double* v, int* t):
    """The value of a 0-d float32/float64 array; False for anything else."""
    cdef cnp.ndarray a
    if type(g) is not cnp.ndarray:
        return False
    a = <cnp.ndarray> g
    if cnp.PyArray_NDIM(a) != 0 or not cnp.PyArray_ISALIGNED(a):
        return False
    t[0] = cnp.PyArray_TYPE(a)
    if t[0] == cnp.NPY_FLOAT:
        v[0] = (<float*> cnp.PyArray_DATA(a))[0]
    elif t[0] == cnp.NPY_DOUBLE:
        v[0] = (<double*> cnp.PyArray_DATA(a))[0]
    else:
        return False
    return True


cdef int _pending_as_array(Node node) except -1:
    """Turn a pending double into a 0-d array the engine owns (for array-level backward code)."""
    if node.pending_type_:
        node.pending_ = _scalar_array(node.pending_value_, node.pending_type_)
        node.pending_owned_ = True
        node.pending_type_ = 0
    return 0


cdef bint _value_vjp(Node node) except -1:
    """The elementwise backward functions on a double gradient, for 0-d nodes and parents.

    Same arithmetic and precision as ``_loop``; False (nothing done) when it does not apply.
    """
    cdef int op = node.op_, t = node.pending_type_
    cdef double g = node.pending_value_, a, b
    cdef int ta, tb
    cdef Py_ssize_t n = len(node.parents_)
    cdef Node x = <Node> node.parents_[0]
    cdef Node y
    if _scalar_type(x) != t:
        return False
    if op == ADD_SCALAR or op == SUB_SCALAR or op == MUL_SCALAR or op == NEGATE:
        if n != 1:
            return False
        if x.requires_grad_:
            _accumulate_value(x, g if op == ADD_SCALAR or op == SUB_SCALAR
                              else _compute(op, g, node.scalar_, t), t)
        return True
    if (op == ADD or op == SUB or op == MUL) and n == 2:
        y = <Node> node.parents_[1]
        if _scalar_type(y) != t:
            return False
        if op == MUL:
            if not (_value_of(x, &a, &ta) and _value_of(y, &b, &tb)):
                return False
            if x.requires_grad_:
                _accumulate_value(x, _compute(MUL, g, b, t), t)
            if y.requires_grad_:
                _accumulate_value(y, _compute(MUL, g, a, t), t)
            return True
        if x.requires_grad_:
            _accumulate_value(x, g, t)
        if y.requires_grad_:
            _accumulate_value(y, _compute(NEGATE, g, 0.0, t) if op == SUB else g, t)
        return True
    return False


cdef int _python_vjp(Node node) except -1:
    """Run the node's Python backward function and accumulate what it returns."""
    cdef tuple parents = node.parents_
    cdef Py_ssize_t n = len(parents), i
    cdef bint all_needed = True, owned
    cdef Node parent
    cdef cnp.ndarray g, data
    grad_fn = node.grad_fn_
    for i in range(n):
        if not (<Node> parents[i]).requires_grad_:
            all_needed = False
    if not all_needed and getattr(grad_fn, "skips_unneeded", False):
        parent_grads = grad_fn(node, node.pending_, needs=tuple([(<Node> p).requires_grad_ for p in parents]))
    else:
        parent_grads = grad_fn(node, node.pending_)
    if len(parent_grads) != n:
        raise ValueError(
            f"{grad_fn.__name__} returned {len(parent_grads)} gradients for {n} parents"
        )
    for i in range(n):
        parent = <Node> parents[i]
        result = parent_grads[i]
        # The adopt-or-copy rule (clumsygrad._graph): only parent_grads and `result` may hold
        # it.  Checked before any other local takes a reference.
        owned = (
            type(result) is cnp.ndarray
            and cnp.PyArray_BASE(<cnp.ndarray> result) == NULL
            and Py_REFCNT(result) <= 2
        )
        if result is None or not parent.requires_grad_:
            continue
        data = <cnp.ndarray?> _data_of(parent)
        if type(result) is not cnp.ndarray or not _same_dtype(<cnp.ndarray> result, data):
            g = np.array(result, dtype=data.dtype)  # one conversion, into a fresh array
            owned = True
        else:
            g = <cnp.ndarray> result
        if not _same_shape(g, data):
            raise ValueError(
                f"gradient for tensor {parent.id_} has shape {(<object> g).shape}, expected {(<object> data).shape}"
            )
        _accumulate(parent, g, owned)
    return 0


cdef inline bint _same_dtype(cnp.ndarray a, cnp.ndarray b):
    cdef cnp.PyArray_Descr* da = cnp.PyArray_DESCR(a)
    cdef cnp.PyArray_Descr* db = cnp.PyArray_DESCR(b)
    return da == db or cnp.PyArray_EquivTypes(<cnp.dtype> da, <cnp.dtype> db)


cdef inline bint _same_shape(cnp.ndarray a, cnp.ndarray b):
    cdef int k, nd = cnp.PyArray_NDIM(a)
    if nd != cnp.PyArray_NDIM(b):
        return False
    for k in range(nd):
        if cnp.PyArray_DIMS(a)[k] != cnp.PyArray_DIMS(b)[k]:
            return False
    return True


# ----------------------------------------------------------------------------- typed VJPs
cdef bint _typed_vjp(Node node) except -1:
    """Run the node's elementwise backward function as a typed loop; False if it does not apply.

    It applies when the pending gradient has the node's float dtype and shape, and the operands
    it reads are contiguous arrays of that dtype and shape; the Python function handles the rest.
    The results equal the Python functions' (same operations, same order, same precision).
    Ops that need only the gradient never make a 0-d node's array.
    """
    cdef int op = node.op_
    cdef object g = node.pending_
    cdef Py_ssize_t n = len(node.parents_)
    cdef Node x = <Node> node.parents_[0]
    cdef Node y = <Node> node.parents_[1] if n == 2 else None
    if op == RESHAPE or op == TRANSPOSE:  # a view of the gradient, copied if ever written
        if not _fast_operand(g) or n != 1:
            return False
        if op == RESHAPE:
            g = cnp.PyArray_Reshape(<cnp.ndarray> g, x._shape)
        else:
            g = cnp.PyArray_Transpose(<cnp.ndarray> g, NULL)
        if not _fits(g, x):
            return False
        if x.requires_grad_:
            _accumulate(x, g, False)
        return True
    if not _fits(g, node):
        return False
    if op == ADD or op == SUB or op == MUL:
        if n != 2 or not (_fits(g, x) and _fits(g, y)):
            return False
        if op == MUL:
            if not (_fast_operand(_data_of(x)) and _fast_operand(_data_of(y))):
                return False
            if x.requires_grad_:
                _accumulate(x, _apply(MUL, g, y.data_, 0.0), True)
            if y.requires_grad_:
                _accumulate(y, _apply(MUL, g, x.data_, 0.0), True)
            return True
        if x.requires_grad_:
            _accumulate(x, g, False)
        if y.requires_grad_:
            _accumulate(y, _apply(NEGATE, g, None, 0.0) if op == SUB else g, op == SUB)
        return True
    if n != 1 or not _fits(g, x):
        return False
    if not x.requires_grad_:
        return True
    if op == ADD_SCALAR or op == SUB_SCALAR:
        return _accumulate(x, g, False) == 0
    if op == NEGATE or op == MUL_SCALAR:
        return _accumulate(x, _apply(op, g, None, node.scalar_), True) == 0
    if op == EXP or op == SQRT or op == TANH or op == SIGMOID:  # they read the output
        if not _fast_operand(_data_of(node)):
            return False
        return _accumulate(x, _apply(op, g, node.data_, 0.0), True) == 0
    if not _fast_operand(_data_of(x)):  # the rest read the input
        return False
    return _accumulate(x, _apply(op, g, x.data_, node.scalar_), True) == 0


cdef object _apply(int op, object a, object b, double c):
    """A new array of ``a``'s shape and dtype: ``op`` of ``a`` and ``b`` (or the constant ``c``).

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
            _dispatch(single, op, cnp.PyArray_DATA(out), cnp.PyArray_DATA(x), y, c, n)
    else:
        _dispatch(single, op, cnp.PyArray_DATA(out), cnp.PyArray_DATA(x), y, c, n)
    return out


cdef inline void _dispatch(bint single, int op, void* out, const void* x, const void* y, double c,
                           Py_ssize_t n) noexcept nogil:
    # The constant in the array's precision, as NumPy casts a Python scalar (c - 1 for POWER
    # is taken in double first, as Python computes it).
    if single:
        _loop(op, <float*> out, <const float*> x, <const float*> y, <float> c, <float> (c - 1), n)
    else:
        _loop(op, <double*> out, <const double*> x, <const double*> y, c, c - 1, n)


cdef void _loop(int op, floating* out, const floating* x, const floating* y, floating c,
                floating c_minus_1, Py_ssize_t n) noexcept nogil:
    """One contiguous loop per operation.

    Forward ops read ``x`` (and ``y`` or ``c``); backward ops read the gradient as ``x`` and
    an operand or output as ``y``, written exactly as ``clumsygrad.grad`` writes them.
    """
    cdef Py_ssize_t i
    cdef floating one = 1, two = 2
    if op == ADD:
        for i in range(n):
            out[i] = x[i] + y[i]
    elif op == SUB:
        for i in range(n):
            out[i] = x[i] - y[i]
    elif op == MUL or op == EXP:  # exp: grad * output
        for i in range(n):
            out[i] = x[i] * y[i]
    elif op == LOG:  # grad / input
        for i in range(n):
            out[i] = x[i] / y[i]
    elif op == ADD_SCALAR:
        for i in range(n):
            out[i] = x[i] + c
    elif op == SUB_SCALAR:
        for i in range(n):
            out[i] = x[i] - c
    elif op == MUL_SCALAR:
        for i in range(n):
            out[i] = x[i] * c
    elif op == DIVIDE_BY:
        for i in range(n):
            out[i] = x[i] / c
    elif op == NEGATE:
        for i in range(n):
            out[i] = -x[i]
    elif op == POWER:  # grad * (p * input ** (p - 1)), with NumPy's exact special powers
        for i in range(n):
            out[i] = x[i] * (c * _power(y[i], c_minus_1))
    elif op == SQRT:  # grad / (2 * output)
        for i in range(n):
            out[i] = x[i] / (two * y[i])
    elif op == SIN:  # grad * cos(input)
        for i in range(n):
            out[i] = x[i] * _cos(y[i])
    elif op == COS:  # grad * -sin(input)
        for i in range(n):
            out[i] = x[i] * -_sin(y[i])
    elif op == TANH:  # grad * (1 - output^2)
        for i in range(n):
            out[i] = x[i] * (one - y[i] * y[i])
    elif op == SIGMOID:  # grad * (output * (1 - output))
        for i in range(n):
            out[i] = x[i] * (y[i] * (one - y[i]))


cdef inline floating _cos(floating x) noexcept nogil:
    if floating is float:
        return cosf(x)
    else:
        return cos(x)


cdef inline floating _sin(floating x) noexcept nogil:
    if floating is float:
        return sinf(x)
    else:
        return sin(x)


cdef inline floating _power(floating x, floating e) noexcept nogil:
    if e == 1:
        return x
    if e == 2:
        return x * x
    if e == 0:
        return 1
    if e == -1:
        return 1 / x
    if e == 0.5:
        if floating is float:
            return sqrtf(x)
        else:
            return sqrt(x)
    if floating is float:
        return powf(x, e)
    else:
        return pow(x, e)
