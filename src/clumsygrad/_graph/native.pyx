# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The graph, compiled: twin of ``pure.py`` with the same names and results.

The compiled graph is four modules by job, sharing ``native.pxd`` (the node's C fields, the
enums, the inline 0-d helpers and elementwise loops):

* ``_state.pyx``: the thread's grad mode and the id counter;
* ``native.pyx`` (this module): the node, its properties, the creation of result nodes and the
  version checks.  ``Node`` is a ``cdef class``: data, gradient, parents, backward function,
  type, id, version, this pass's pending gradient and a visit mark are C fields, read by the
  engine without any attribute lookup.  ``Tensor`` is a Python subclass with empty ``__slots__``;
* ``_operators.pyx``: the fast operators (``+ - * /`` and unary ``-`` computed and recorded in C,
  a 0-d result kept as a C double until its array is read) and the elementwise loops;
* ``_engine.pyx``: the backward pass and its typed VJPs.

This module re-exports the functions of the other three: the graph is one module to its users
(``clumsygrad._backend.graph``), as ``pure.py`` is.
"""
cimport cython
cimport numpy as cnp
from cpython.ref cimport Py_REFCNT

import numpy as np
from inspect import signature as _signature

from . import ENGINE_LOCK
from . import guard as _guard
from . import pure as _pure

from . cimport _operators, _state

cnp.import_array()

cdef extern from "Python.h":
    object PyMethod_New(object func, object self)
    void PyObject_GC_UnTrack(void* op)

cdef dict _op_of = {}          # backward function -> VJP member
cdef list _fn_of = [None] * (DIVIDE + 1)  # VJP member -> backward function (the last member + 1)
cdef object _tensor_class = None
cdef tuple _types = None       # (INPUT, PARAMETER, INTERMEDIATE) members
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
    global _tensor_class, _types
    if not issubclass(tensor_class, Node):
        raise TypeError(f"{tensor_class!r} is not a subclass of the compiled Node")
    _tensor_class = tensor_class
    _types = tuple(tensor_types)
    _operators.install_generic(dict(generic_operators))
    if [int(t) for t in _types] != [INPUT, PARAMETER, INTERMEDIATE]:
        raise ValueError(f"TensorType values {_types} differ from the compiled node's")
    _op_of.clear()
    for fn, name in typed_vjps.items():
        op = int(getattr(VJP, name))
        _op_of[fn] = op
        _fn_of[op] = fn


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

    # Operators: the fast paths of _operators.pyx, which fall back to the generic Python ones.
    def __add__(self, other):
        return _operators.add(self, other)

    def __radd__(self, other):
        return _operators.radd(self, other)

    def __sub__(self, other):
        return _operators.sub(self, other)

    def __rsub__(self, other):
        return _operators.rsub(self, other)

    def __mul__(self, other):
        return _operators.mul(self, other)

    def __rmul__(self, other):
        return _operators.rmul(self, other)

    def __truediv__(self, other):
        return _operators.truediv(self, other)

    def __rtruediv__(self, other):
        return _operators.rtruediv(self, other)

    def __neg__(self):
        return _operators.neg(self)

    def __pow__(self, power, modulo=None):
        if modulo is not None:
            return NotImplemented  # three-argument pow: not defined for tensors
        return _operators.pow_(self, power)

    def __rpow__(self, base, modulo=None):
        if modulo is not None:
            return NotImplemented
        return _operators.rpow(self, base)

    def __matmul__(self, other):
        return _operators.matmul(self, other)

    def __getitem__(self, key):
        """``self[key]`` for any NumPy index, with gradients: basic indexing (ints, slices, None,
        ``...``: a view) and integer row arrays (an embedding lookup) are recorded in C, every
        other key by ``clumsygrad.shape.getitem``."""
        return _operators.getitem(self, key)

    def transpose(self, *axes):
        """The axes reversed (no arguments) or permuted: ``t.transpose(1, 0)`` or ``t.transpose((1, 0))``."""
        return _operators.transpose(self, axes)

    def reshape(self, new_shape, *more):
        """The same values in ``new_shape`` (one dimension may be -1): ``t.reshape((2, -1))`` or
        ``t.reshape(2, -1)``."""
        return _operators.reshape(self, new_shape, more)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _operators.array_ufunc(self, ufunc, method, inputs, kwargs)


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
    node.id_ = _state.next_id()
    if track and not _state.grad_disabled():
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
    if type(node.extra_) is dict:  # a fresh dict of the record's constants: no cycle through it either
        PyObject_GC_UnTrack(<void*> node.extra_)
    return node


cdef Node _make_leaf(object data):
    """An INPUT tensor of ``data`` (already the caller's own array): ``Tensor(data)``'s fields."""
    cdef Node node = Node.__new__(_tensor_class)
    node.data_ = data
    node.id_ = _state.next_id()
    node.type_ = INPUT
    node.parents_ = ()
    PyObject_GC_UnTrack(<void*> node)
    return node


cdef int _free(Node node) except -1:
    """Drop the node's parents (its graph) and give back what the memory guard holds for it."""
    node.parents_ = ()
    if node.guarded_:
        node.guarded_ = False
        _guard.release(node)
    return 0


cdef object _vjp_function(int op):
    """The backward function recorded with the typed VJP ``op``."""
    return _fn_of[op]


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



# ----------------------------------------------------------------------------- optimizer steps
def sgd_step(params, lr, update, update_guarded):
    """Plain SGD over ``params``: ``update(data, grad, lr)`` in place (the active kernels'
    ``sgd_update``), then the version bump that tells the graph the data changed.

    A parameter without a gradient is skipped; one whose data the memory guard holds read-only
    (or that has no array yet) goes to ``update_guarded(tensor, grad, lr)``.  The loop of
    ``SGD.step`` for the plain case, in C: ~0.15 us per parameter instead of ~0.6.
    """
    cdef Node p
    cdef object g, d
    for obj in params:
        p = <Node?> obj
        if p.grad_type_:  # a 0-d gradient kept as a C value: its array, as ``_grad`` makes it
            p.grad_ = _scalar_array(p.grad_value_, p.grad_type_)
            p.grad_type_ = 0
        g = p.grad_
        if g is None:
            continue
        d = p.data_
        if type(d) is cnp.ndarray and cnp.PyArray_ISWRITEABLE(<cnp.ndarray> d):
            update(d, g, lr)
        else:
            update_guarded(p, g, lr)
        p.version_ += 1


def clear_grads(params):
    """``tensor.grad = None`` for every tensor of ``params`` (``Optimizer.zero_grad``)."""
    cdef Node p
    for obj in params:
        p = <Node?> obj
        p.grad_ = None
        p.grad_type_ = 0


def record(data, grad_fn, tuple parents, dict extra=None):
    """``new_node`` for the registry's public functions: ``parents`` a tuple and ``extra`` a dict
    the caller made for this node (or None), kept without a copy.  When every parent is a tensor
    of ``data``'s dtype (nearly every call) the node is made at once; else ``new_node`` decides."""
    return _record(data, grad_fn, parents, extra)


cdef object _record(object data, object grad_fn, tuple parents, dict extra):
    cdef Node parent
    cdef int t, op
    if type(data) is not cnp.ndarray or not parents or not cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray> data):
        return new_node(data, grad_fn, parents, extra)
    t = cnp.PyArray_TYPE(<cnp.ndarray> data)
    for p in parents:
        if not isinstance(p, Node):
            return new_node(data, grad_fn, parents, extra)
        parent = <Node> p
        if parent.data_ is None or cnp.PyArray_TYPE(<cnp.ndarray> parent.data_) != t:
            return new_node(data, grad_fn, parents, extra)
    op = _op_of.get(grad_fn, GENERIC) if grad_fn is not None else GENERIC
    if op == MUL_SCALAR or op == POWER:
        op = GENERIC  # the constant is in ``extra``, which the Python function reads
    return _make_node(data, grad_fn, parents, extra if extra else None, op, 0.0)


cdef object _FLOAT32 = np.dtype(np.float32)
cdef object _FLOAT64 = np.dtype(np.float64)


cdef object _constant_beside(Node x, object y):
    """``registry.as_tensors((x, y))``'s constant for a float32/float64 ndarray ``y`` beside the
    tensor ``x``: ``Tensor(y, dtype=own)``, a copy of ``y`` (NumPy's "K" order) in float64 when
    ``y`` or ``x`` is float64, else float32.  None for anything else (the Python function
    converts it and words the errors)."""
    cdef int t
    if type(y) is not cnp.ndarray or not cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray> y):
        return None
    t = cnp.PyArray_TYPE(<cnp.ndarray> y)
    if t != cnp.NPY_FLOAT and t != cnp.NPY_DOUBLE:
        return None
    xd = _data_of(x)
    if type(xd) is cnp.ndarray and cnp.PyArray_TYPE(<cnp.ndarray> xd) == cnp.NPY_DOUBLE:
        t = cnp.NPY_DOUBLE
    return _make_leaf((<object> y).astype(_FLOAT64 if t == cnp.NPY_DOUBLE else _FLOAT32))  # np.array's copy


@cython.auto_pickle(False)
cdef class CompiledFunction:
    """What the compiled public functions share (``OpFunction``, ``CrossEntropyFunction``,
    ``JoinFunction``): each wraps a Python function (``python_function``), runs the common calls
    in C and hands every other call to it.  To ``inspect``, Sphinx, pickle and ``copy`` it is
    that function: its name, qualname, module, doc and signature; it binds as a method (Tensor
    methods) and pickles by reference."""
    cdef readonly object python_function
    cdef dict __dict__

    def __init__(self, python_function):
        self.python_function = python_function
        for attr in ("__name__", "__qualname__", "__module__", "__doc__"):
            setattr(self, attr, getattr(python_function, attr))
        self.__signature__ = getattr(python_function, "__signature__", None) or _signature(python_function)

    def __get__(self, instance, owner):
        return self if instance is None else PyMethod_New(self, instance)

    def __reduce__(self):
        return self.__qualname__  # pickled by reference, as functions are

    def __repr__(self):
        return f"<function {self.__qualname__} at {id(self):#x}>"


@cython.auto_pickle(False)
cdef class OpFunction(CompiledFunction):
    """A registry op's public function on the compiled node (``op_function`` makes it).

    The common calls - the op's tensor inputs (a float32/float64 ndarray as the second input of
    a two-input op is made its constant here, as ``as_tensors`` makes it), parameters (if any) by
    position or keyword, no profiler running - run in C from the call to the recorded node (the op's ``save`` step, if
    it has one, called as the Python function calls it, or, for ``registry.save_input_shape``,
    its one entry written here): ~0.4 us less per call than the Python
    function, whose frame, argument checks and ``new_node`` it skips.
    Every other call goes to that Python function (``python_function``), which binds the
    arguments and words the errors (function-like: ``CompiledFunction``).
    """
    cdef object forward, backend, kernel_name, backward, profiler, save
    cdef dict defaults
    cdef tuple param_names     # the parameters in signature order, if every one has a default, else ()
    cdef frozenset param_set   # the parameters with defaults (the keyword path takes those)
    cdef int nin
    cdef int positional        # 1 or 2: a kernel called with that many parameters by position, else 0
    cdef bint save_shape       # the save step only records the input's shape: done here, no call

    def __init__(self, python_function, forward, backward, int nin, params, defaults, kernel_name, save,
                 backend, profiler):
        CompiledFunction.__init__(self, python_function)
        self.forward = forward
        self.backward = backward
        self.save = save
        self.save_shape = getattr(save, "input_shape_only", False) is True
        self.nin = nin
        self.defaults = dict(defaults)
        self.param_set = frozenset(defaults)
        self.param_names = tuple(params) if self.param_set.issuperset(params) else ()
        self.kernel_name = kernel_name
        # a forward kernel takes the forward's parameters in the forward's order (``defop``):
        # called by position, it parses no keywords
        self.positional = len(self.param_names) if (kernel_name is not None and len(self.param_names) in (1, 2)
                                                    and len(self.param_names) == len(self.defaults)) else 0
        self.backend = backend
        self.profiler = profiler

    def __call__(self, *args, **kwargs):
        cdef Py_ssize_t n = len(args), i
        cdef object x, y, compute, name
        cdef dict extra = None
        if self.profiler.active is not None or n == 0:
            return self.python_function(*args, **kwargs)
        x = args[0]
        if not isinstance(x, _tensor_class):
            return self.python_function(*args, **kwargs)
        if self.nin == 1:
            if n == 1 and not kwargs:
                if self.defaults:  # a kernel takes the parameters' defaults from here
                    extra = dict(self.defaults)
                return self._record_one(x, extra)
            # parameters by position (``softmax(t, 0)``, ``t.sum(1)``) or keyword, bound to their
            # names here; a name given twice or unknown goes to the Python function, which raises
            if n > 1 + len(self.param_names) or (kwargs and not self.param_set.issuperset(kwargs)):
                return self.python_function(*args, **kwargs)
            extra = dict(self.defaults)
            for i in range(1, n):
                name = self.param_names[i - 1]
                if kwargs and name in kwargs:
                    return self.python_function(*args, **kwargs)
                extra[name] = args[i]
            if kwargs:
                extra.update(kwargs)
            return self._record_one(x, extra)
        if n != 2 or kwargs:
            return self.python_function(*args, **kwargs)
        y = args[1]
        if not isinstance(y, _tensor_class):
            y = _constant_beside(<Node> x, y)  # ``mse_loss(pred, target_array)``
            if y is None:
                return self.python_function(*args, **kwargs)
        compute = self.forward if self.kernel_name is None else getattr(self.backend.active, self.kernel_name)
        xd = _data_of(<Node> x)
        yd = _data_of(<Node> y)
        data = compute(xd, yd)
        if self.save is not None:  # (two-input ops here have no parameters)
            extra = dict(self.save(data, xd, yd))
        return _record(data, self.backward, (x, y), extra)

    cdef object _record_one(self, object x, dict extra):
        """The forward of one-input ``x`` with the parameters ``extra`` (all of them, or None for an
        op without any), the save step, the record."""
        cdef object data, xd = _data_of(<Node> x), kernel
        if self.kernel_name is None:
            data = self.forward(xd) if extra is None else self.forward(xd, **extra)
        else:
            kernel = getattr(self.backend.active, self.kernel_name)
            if extra is None:
                data = kernel(xd)
            elif self.positional == 1:  # the kernel takes the forward's parameters in order
                data = kernel(xd, extra[self.param_names[0]])
            elif self.positional == 2:
                data = kernel(xd, extra[self.param_names[0]], extra[self.param_names[1]])
            else:
                data = kernel(xd, **extra)
        if self.save is not None:  # what the backward needs beyond the inputs and output
            if extra is None:
                extra = {}
            if self.save_shape:  # ``registry.save_input_shape``'s one entry, without its frame
                extra["input_shape"] = (<object> xd).shape
            else:
                extra.update(self.save(data, xd, **extra))
        return _record(data, self.backward, (x,), extra)


@cython.auto_pickle(False)
cdef class CrossEntropyFunction(CompiledFunction):
    """``clumsygrad.cross_entropy`` on the compiled node (``cross_entropy_function`` makes it).

    Its common call - a logits tensor, class labels that are not a tensor (an array or a list),
    ``reduction`` by position or keyword, no profiler running - runs in C: the active kernel
    set's ``cross_entropy_forward`` (which checks the labels and the reduction in its pass and
    words the errors) and the record of its loss with what the backward reads (the reduction,
    the checked labels, the softmax).  Every other call (targets of the logits' shape, a target
    tensor, arguments by keyword, an array as logits) goes to the Python function
    (``python_function``; function-like: ``CompiledFunction``).
    """
    cdef object backend, backward, profiler

    def __init__(self, python_function, backward, backend, profiler):
        CompiledFunction.__init__(self, python_function)
        self.backward = backward
        self.backend = backend
        self.profiler = profiler

    def __call__(self, *args, **kwargs):
        cdef Py_ssize_t n = len(args)
        cdef object logits, labels, reduction = "mean", fast
        if self.profiler.active is not None or n < 2 or n > 3:
            return self.python_function(*args, **kwargs)
        if kwargs:
            if n != 2 or len(kwargs) != 1 or "reduction" not in kwargs:
                return self.python_function(*args, **kwargs)
            reduction = kwargs["reduction"]
        elif n == 3:
            reduction = args[2]
        logits, labels = args[0], args[1]
        if (not isinstance(logits, Node) or isinstance(labels, Node)
                or (type(labels) is cnp.ndarray and cnp.PyArray_NDIM(<cnp.ndarray> labels) != 1)):
            return self.python_function(*args, **kwargs)  # targets, a target tensor, array logits
        fast = self.backend.active.cross_entropy_forward(_data_of(<Node> logits), labels, reduction)
        if fast is None:  # targets of the logits' shape given as nested lists
            return self.python_function(*args, **kwargs)
        data, probs, kept = fast
        return _record(data, self.backward, (logits,), {"reduction": reduction, "target": kept, "probs": probs})


def cross_entropy_function(python_function, backward, backend, profiler):
    """``clumsygrad.cross_entropy``: a ``CrossEntropyFunction`` over the Python function, whose
    common call (logits tensor, class labels, reduction) it runs in C."""
    return CrossEntropyFunction(python_function, backward, backend, profiler)


def op_function(python_function, forward, backward, nin, params, defaults, kernel_name, save, backend, profiler):
    """The public function of a registry op: an ``OpFunction`` over ``python_function`` when its
    common calls can run in C (one input, or two without parameters), else ``python_function``."""
    if nin not in (1, 2) or (nin == 2 and params):
        return python_function
    return OpFunction(python_function, forward, backward, nin, params, defaults, kernel_name, save, backend,
                      profiler)


@cython.auto_pickle(False)
cdef class JoinFunction(CompiledFunction):
    """``clumsygrad.concatenate`` or ``clumsygrad.stack`` on the compiled node (``join_function``
    makes them).

    The common call - a list or tuple of tensors of one float dtype and an int ``axis``, by
    position or keyword - is recorded in C (``_operators.join``): the same node as the Python
    function's (parents, ``_extra``, backward function, the typed CONCATENATE/STACK VJP) with no
    Python frame.  Every other call goes to that Python function (``python_function``), which
    makes constants of arrays, promotes dtypes and words the errors (function-like:
    ``CompiledFunction``).
    """
    cdef object backward
    cdef bint stacking

    def __init__(self, python_function, backward, bint stacking):
        CompiledFunction.__init__(self, python_function)
        self.backward = backward
        self.stacking = stacking

    def __call__(self, *args, **kwargs):
        cdef Py_ssize_t n = len(args)
        result = None
        if n == 2 and not kwargs:
            result = _operators.join(args[0], args[1], self.stacking, self.backward, _tensor_class)
        elif n == 1:
            if not kwargs:
                result = _operators.join(args[0], 0, self.stacking, self.backward, _tensor_class)
            elif len(kwargs) == 1 and "axis" in kwargs:
                result = _operators.join(args[0], kwargs["axis"], self.stacking, self.backward, _tensor_class)
        return result if result is not None else self.python_function(*args, **kwargs)


def join_function(python_function, backward, stack):
    """``clumsygrad.concatenate`` (``stack`` False) or ``clumsygrad.stack``: a ``JoinFunction``
    over ``python_function`` recording with ``backward``."""
    return JoinFunction(python_function, backward, stack)


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


def _set_node_sink(sink):
    global _node_sink
    _node_sink = sink


# The other jobs' Python functions: the graph twin is one module to its users.
from ._engine import backward_pass, backward_scalar, set_profile_sinks  # noqa: E402
from ._state import get_id_counter, is_grad_enabled, set_grad_enabled, set_id_counter, take_id  # noqa: E402
