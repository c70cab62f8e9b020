# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The backward pass, compiled: the engine twin of ``pure.backward_pass`` (same contract).

The engine orders the graph with the nodes' visit marks (no ``set``), collects gradients in the
nodes' pending slots (no ``dict``), runs the elementwise backward functions as typed loops (the
``VJP`` members of ``native.pxd``; each maps to one of the shared ``Loop``s), calls the Python
backward function for every other op, and writes ``.grad`` only when the whole pass succeeded.
A 0-d node's gradient stays a C double while it can (``pending_value_``).
"""
cimport numpy as cnp
from cpython.ref cimport Py_REFCNT
from libc.stdlib cimport free, malloc, realloc

import numpy as np

from .._kernels._reduce import mul_reduce_to_shape as _mul_reduce_to_shape
from .._kernels._reduce import expand_to_shape as _expand_to_shape
from .._kernels._reduce import reduce_to_shape as _reduce_to_shape
from cpython.number cimport PyNumber_InPlaceTrueDivide, PyNumber_Multiply, PyNumber_Negative, PyNumber_TrueDivide

from .._kernels._activation import gelu_backward as _gelu_backward
from .._kernels._activation import log_softmax_backward as _log_softmax_backward
from .._kernels._cross_entropy import probs_minus_onehot as _probs_minus_onehot
from .._kernels._elementwise import relu_backward as _relu_backward
from .._kernels._loss import mse_backward as _mse_backward
from .._kernels._matmul import matmul_backward as _matmul_backward
from .._kernels._scatter import scatter_add as _scatter_add
from .._kernels._softmax import softmax_backward as _softmax_backward
from . import ENGINE_LOCK
from . import hooks as _hooks
from . import pure as _pure
from .native cimport (
    ADD, ADD_BROADCAST, ADD_SCALAR, CONCATENATE, CROSS_ENTROPY, DIVIDE, GELU, GETITEM, LOG_SOFTMAX, STACK, MATMUL, MEAN, MSE, MUL_BROADCAST, PERMUTE, SUM, RELU, SOFTMAX, SUB_BROADCAST, COS, EXP, GENERIC, INTERMEDIATE, L_ADD, L_COS_VJP, L_DIV, L_MUL, L_MUL_C, L_NEG,
    L_POWER_VJP, L_SIGMOID_VJP, L_SIN_VJP, L_SQRT_VJP, L_TANH_VJP, LOG, MUL, MUL_SCALAR, NEGATE,
    POWER, RESHAPE, SIGMOID, SIN, SQRT, SUB, SUB_SCALAR, TANH, TRANSPOSE, Node,
    _array_value, _basic_key, _check_versions, _compute, _data_of, _fast_operand, _fits, _free,
    _same_dtype, _same_layout, _same_shape, _scalar_array, _scalar_type, _value_of,
)
from ._operators cimport _apply, _apply_add, _dispatch
from .._kernels._matmul cimport is_swapped, swapped_copy

cnp.import_array()

cdef unsigned int _pass_mark = 0
cdef int _engine_depth = 0     # > 0 while a compiled pass runs (a nested one goes to the pure engine)
cdef bint _hooks_on = False    # hooks.active(), kept in C for the per-node test in _propagate
cdef dict _hook_table = _hooks._table


def _set_hooks(bint active):
    global _hooks_on
    _hooks_on = active


_hooks._listeners.append(_set_hooks)
_set_hooks(_hooks.active())


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
            except BaseException:
                for node in order:
                    node.pending_ = None
                    node.pending_type_ = 0
                raise
            # One walk empties this pass's slots and frees the graph: at a million nodes every
            # walk over the order costs a cache miss per node.
            for node in order:
                node.pending_ = None
                node.pending_type_ = 0
                if not keep_graph and node.type_ == INTERMEDIATE:
                    _free(node)
        finally:
            _engine_depth -= 1


def backward_scalar(Node root, bint keep_graph):
    """``root.backward()`` with the default seed: ``Tensor.backward``'s checks (same order and
    words as ``pure.backward_scalar``) and a seed of ones, without its ~0.5 us of Python."""
    cdef cnp.ndarray data, seed
    cdef int t
    if not root.requires_grad_:
        raise RuntimeError("Tensor does not require gradients")
    if root.type_ == INTERMEDIATE and not root.parents_:
        raise RuntimeError("No backward graph exists for this tensor")
    data = <cnp.ndarray?> _data_of(root)
    if cnp.PyArray_SIZE(data) != 1:
        raise RuntimeError("Gradient can only be implicitly created for scalar outputs")
    t = cnp.PyArray_TYPE(data)
    seed = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(data), cnp.PyArray_DIMS(data), t, 0)
    if t == cnp.NPY_FLOAT:
        (<float*> cnp.PyArray_DATA(seed))[0] = 1
    elif t == cnp.NPY_DOUBLE:
        (<double*> cnp.PyArray_DATA(seed))[0] = 1
    else:
        seed = np.ones((<object> data).shape, dtype=(<object> data).dtype)
    return backward_pass(root, seed, True, keep_graph)


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


# clumsygrad.profile(): the sink it installs, and one C flag the engine checks per node.
cdef bint _profiling = False
cdef object _backward_sink = None
from time import perf_counter_ns as _perf_counter_ns


def set_profile_sinks(node_sink, backward_sink):
    """Where ``new_node`` and the engine report to ``clumsygrad.profile()`` (None: nowhere)."""
    global _profiling, _backward_sink
    from . import native

    native._set_node_sink(node_sink)
    _backward_sink = backward_sink
    _profiling = backward_sink is not None


cdef int _propagate(list order) except -1:
    """Push each node's pending gradient to its parents' pending slots, root first."""
    cdef Node node
    cdef long long start = 0
    for node in order:
        if node.pending_ is None and not node.pending_type_:
            continue
        if _hooks_on:
            _run_hooks(node)
        if node.grad_fn_ is not None:
            if _profiling:
                start = _perf_counter_ns()
            try:
                if not node.parents_:
                    raise RuntimeError(
                        "No backward graph exists for this tensor (freed by an earlier backward(); "
                        "pass keep_graph=True to keep it)"
                    )
                _check_versions(node)
                if not (node.pending_type_ and _value_vjp(node)):
                    _pending_as_array(node)
                    if node.op_ == GENERIC or not _typed_vjp(node):
                        _python_vjp(node)
            except Exception as exc:
                raise RuntimeError(f"Error in backward pass at tensor {node.id_}: {exc}") from exc
            finally:
                if _profiling:
                    _backward_sink(node.grad_fn_, _perf_counter_ns() - start)
        # This node's gradient is final (its consumers came before it): the .grad it becomes
        # must not share memory with anything else, so a gradient the engine does not own is
        # copied now, while the node is in cache (_commit then writes without failing midway).
        if node.pending_ is not None and not node.pending_owned_ and node.grad_ is None and not node.grad_type_:
            node.pending_ = cnp.PyArray_NewCopy(<cnp.ndarray?> node.pending_, cnp.NPY_CORDER)
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
    """Add each node's pending gradient into its ``.grad`` (``_propagate`` made the copies it needs,
    so a failure of the pass writes nothing)."""
    cdef Node node
    for node in order:
        if node.pending_type_:
            if node.grad_type_:
                node.grad_value_ = _compute(L_ADD, node.grad_value_, node.pending_value_, node.grad_type_)
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
                _dispatch(single, L_ADD, a, a, b, 0.0, n)
        else:
            _dispatch(single, L_ADD, a, a, b, 0.0, n)
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
        parent.pending_value_ = _compute(L_ADD, parent.pending_value_, v, t)
    elif parent.pending_ is None:
        parent.pending_value_ = v
        parent.pending_type_ = t
    else:
        _accumulate(parent, _scalar_array(v, t), True)
    return 0


# The out= protocol between the engine and the kernels: when a parent already holds a pending
# gradient the engine owns, a backward kernel (or typed loop) adds its result straight into it
# (``out=``), instead of returning a temporary that _accumulate then adds and frees.
cdef Py_ssize_t _added_in_place = 0   # how many gradients took that path (read by the tests)


def _in_place_count():
    """How many gradients a kernel or typed loop added into an owned pending gradient (``out=``)."""
    return _added_in_place


cdef object _out_buffer(Node x, object like):
    """``x``'s pending gradient when a kernel may add a result of ``like``'s dtype and shape into
    it: an array the engine owns, of ``x``'s dtype and shape, writeable, C-contiguous; else None."""
    global _added_in_place
    cdef object p = x.pending_
    if p is None or not x.pending_owned_ or x.pending_type_ or not _fits(p, x):
        return None
    if not (cnp.PyArray_ISWRITEABLE(<cnp.ndarray> p) and cnp.PyArray_ISALIGNED(<cnp.ndarray> p)):
        return None
    if like is not None and not (type(like) is cnp.ndarray and _same_layout(<cnp.ndarray> p, <cnp.ndarray> like)):
        return None
    _added_in_place += 1
    return p


cdef int _accumulate_loop(Node x, int loop, object a, object b, double c) except -1:
    """Accumulate ``loop(a, b or c)`` into ``x``: added straight into an owned pending gradient
    (``_apply_add``, no temporary), else a new array it owns."""
    if _out_buffer(x, a) is not None:
        return _apply_add(loop, x.pending_, a, b, c)
    return _accumulate(x, _apply(loop, a, b, c), True)


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
                              else _compute(_loop_of(op), g, node.scalar_, t), t)
        return True
    if (op == ADD or op == SUB or op == MUL) and n == 2:
        y = <Node> node.parents_[1]
        if _scalar_type(y) != t:
            return False
        if op == MUL:
            if not (_value_of(x, &a, &ta) and _value_of(y, &b, &tb)):
                return False
            if x.requires_grad_:
                _accumulate_value(x, _compute(L_MUL, g, b, t), t)
            if y.requires_grad_:
                _accumulate_value(y, _compute(L_MUL, g, a, t), t)
            return True
        if x.requires_grad_:
            _accumulate_value(x, g, t)
        if y.requires_grad_:
            _accumulate_value(y, _compute(L_NEG, g, 0.0, t) if op == SUB else g, t)
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
                f"Gradient shape mismatch for tensor {parent.id_}: the gradient has shape "
                f"{(<object> g).shape}, expected {(<object> data).shape}"
            )
        _accumulate(parent, g, owned)
    return 0


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
    if op == ADD_BROADCAST or op == SUB_BROADCAST or op == MUL_BROADCAST:
        return _broadcast_vjp(node, op, g)
    if op == CONCATENATE or op == STACK:
        return _join_vjp(node, op, g)
    if op >= MATMUL and op != PERMUTE:
        return _kernel_vjp(node, op, g)
    cdef Node x = <Node> node.parents_[0]
    cdef Node y = <Node> node.parents_[1] if n == 2 else None
    if op == RESHAPE or op == TRANSPOSE or op == PERMUTE:  # a view of the gradient, copied if ever written
        if n != 1:
            return False
        if op == RESHAPE:
            if not _fast_operand(g):
                return False
            g = cnp.PyArray_Reshape(<cnp.ndarray> g, x._shape)
        elif not _fits_view(g, node):
            return False
        elif op == TRANSPOSE:
            g = cnp.PyArray_Transpose(<cnp.ndarray> g, NULL)
        else:
            g = _inverse_permutation(node, <cnp.ndarray> g)
            if g is None:
                return False
        if not _fits_view(g, x):
            return False
        if x.requires_grad_:
            _accumulate_view(x, g)
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
                _accumulate_loop(x, L_MUL, g, y.data_, 0.0)
            if y.requires_grad_:
                _accumulate_loop(y, L_MUL, g, x.data_, 0.0)
            return True
        if x.requires_grad_:
            _accumulate(x, g, False)
        if y.requires_grad_:
            if op == SUB:
                _accumulate_loop(y, L_NEG, g, None, 0.0)
            else:
                _accumulate(y, g, False)
        return True
    if n != 1 or not _fits(g, x):
        return False
    if not x.requires_grad_:
        return True
    if op == ADD_SCALAR or op == SUB_SCALAR:
        return _accumulate(x, g, False) == 0
    if op == NEGATE or op == MUL_SCALAR:
        return _accumulate_loop(x, _loop_of(op), g, None, node.scalar_) == 0
    if op == EXP or op == SQRT or op == TANH or op == SIGMOID:  # they read the output
        if not _fast_operand(_data_of(node)):
            return False
        return _accumulate_loop(x, _loop_of(op), g, node.data_, 0.0) == 0
    if not _fast_operand(_data_of(x)):  # the rest read the input
        return False
    return _accumulate_loop(x, _loop_of(op), g, x.data_, node.scalar_) == 0


cdef int _accumulate_view(Node x, object g) except -1:
    """Accumulate the view ``g`` of a gradient into ``x``.  When ``g`` is a transpose of the
    last two axes and will become ``x``'s first pending gradient and its ``.grad`` (no gradient
    yet), a C-ordered copy is made now, owned, instead of the strided copy ``_propagate``
    would make later: one copy either way, and ``x``'s own backward (a matmul) reads C order."""
    if (x.pending_ is None and not x.pending_type_ and x.grad_ is None and not x.grad_type_
            and is_swapped(g)):
        return _accumulate(x, swapped_copy(g), True)
    return _accumulate(x, g, False)


cdef bint _broadcast_vjp(Node node, int op, object g) except -1:
    """The broadcast add/sub/mul VJPs: each gradient summed to its operand's shape by the
    compiled reduction kernels (the Python kernels' calls, without their frames).  False (nothing
    done) off the fast path: an incoming gradient of another dtype or shape, missing shapes."""
    cdef Node x, y
    cdef object dx = None, dy = None
    cdef bint own_x = True, own_y = True
    if len(node.parents_) != 2 or type(node.extra_) is not dict or not _fits(g, node):
        return False
    x = <Node> node.parents_[0]
    y = <Node> node.parents_[1]
    left_shape = (<dict> node.extra_).get("left_shape")
    right_shape = (<dict> node.extra_).get("right_shape")
    if left_shape is None or right_shape is None:
        return False
    if op == MUL_BROADCAST:
        if x.requires_grad_:
            dx = _mul_reduce_to_shape(g, _data_of(y), left_shape)
        if y.requires_grad_:
            dy = _mul_reduce_to_shape(g, _data_of(x), right_shape)
    else:
        if x.requires_grad_:
            dx = _reduce_to_shape(g, left_shape)
            own_x = dx is not g and cnp.PyArray_BASE(<cnp.ndarray> dx) == NULL
        if y.requires_grad_:
            dy = _reduce_to_shape(g, right_shape)
            own_y = dy is not g and cnp.PyArray_BASE(<cnp.ndarray> dy) == NULL
            if op == SUB_BROADCAST:  # a new array of its own is negated in place
                dy = np.negative(dy, out=dy) if own_y else np.negative(dy)
                own_y = True
    if (dx is not None and not _fits(dx, x)) or (dy is not None and not _fits(dy, y)):
        return False  # an operand changed shape since it was recorded: the Python kernel words it
    if dx is not None:
        _accumulate(x, dx, own_x)
    if dy is not None:
        _accumulate(y, dy, own_y)
    return True


cdef bint _fits_view(object g, Node n):
    """``g`` is an ndarray of ``n``'s float dtype and shape, in any layout (a view)."""
    cdef int t
    if type(g) is not cnp.ndarray or type(n.data_) is not cnp.ndarray:
        return False
    t = cnp.PyArray_TYPE(<cnp.ndarray> g)
    return ((t == cnp.NPY_FLOAT or t == cnp.NPY_DOUBLE) and t == cnp.PyArray_TYPE(<cnp.ndarray> n.data_)
            and _same_shape(<cnp.ndarray> g, <cnp.ndarray> n.data_))


cdef object _inverse_permutation(Node node, cnp.ndarray g):
    """``g`` transposed back through the node's recorded ``axes`` (non-negative ints, a
    permutation of ``g``'s axes); None for anything else (the Python formula handles it)."""
    cdef cnp.npy_intp inverse[64]
    cdef cnp.PyArray_Dims dims
    cdef int nd = cnp.PyArray_NDIM(g), i
    cdef Py_ssize_t a
    if type(node.extra_) is not dict:
        return None
    axes = (<dict> node.extra_).get("axes")
    if type(axes) is not tuple and type(axes) is not list:
        return None
    if len(axes) != nd or nd > 64:
        return None
    for i in range(nd):
        inverse[i] = -1
    for i in range(nd):
        if type(axes[i]) is not int:
            return None
        a = axes[i]
        if a < 0 or a >= nd or inverse[a] != -1:
            return None
        inverse[a] = i
    dims.ptr = inverse
    dims.len = nd
    return cnp.PyArray_Transpose(g, &dims)


# ----------------------------------------------------------------------------- kernel VJPs
# Ops whose backward is a compiled kernel: the engine calls the kernel itself with the node's
# arrays (what the op's Python kernel function does, without its frame), checks that every
# gradient fits its parent, and only then accumulates them.  False (nothing done) when a case
# is off the fast path; the Python backward function then handles it, errors included.
cdef inline bint _fresh(object r, object g):
    """A kernel's result that nothing else holds: adopted as a pending gradient, not copied."""
    return r is not g and cnp.PyArray_BASE(<cnp.ndarray> r) == NULL


cdef bint _kernel_vjp(Node node, int op, object g) except -1:
    cdef tuple parents = node.parents_
    cdef Py_ssize_t n = len(parents)
    cdef Node x, y = None
    cdef object r0 = None, r1 = None, extra = node.extra_, out = None
    if n == 0 or n > 2 or not (_fits(g, node) or _fits_view(g, node)):  # the kernels take any layout
        return False
    x = <Node> parents[0]
    if n == 2:
        y = <Node> parents[1]
    if op == MATMUL or op == MSE or op == DIVIDE:
        if n != 2:
            return False
        xd = _data_of(x)
        yd = _data_of(y)
        if type(xd) is not cnp.ndarray or type(yd) is not cnp.ndarray:
            return False
        if op == MATMUL:
            if cnp.PyArray_NDIM(<cnp.ndarray> xd) < 2 or cnp.PyArray_NDIM(<cnp.ndarray> yd) < 2:
                pair = _vector_matmul(x, y, <cnp.ndarray> xd, <cnp.ndarray> yd, g)
                if pair is None:
                    return False
                r0, r1 = pair
            else:
                r0, r1 = _matmul_backward(xd, yd, g, x.requires_grad_, y.requires_grad_)
        elif op == MSE:
            r0, r1 = _mse_backward(xd, yd, g, x.requires_grad_, y.requires_grad_)
        else:
            pair = _divide(node, x, y, <cnp.ndarray> xd, <cnp.ndarray> yd, g)
            if pair is None:
                return False
            r0, r1 = pair
    elif n != 1:
        return False
    elif not x.requires_grad_:
        return True
    elif op == RELU:
        out = _out_buffer(x, g)  # (the elementwise kernels' results have g's dtype and shape)
        r0 = _relu_backward(_data_of(node), g, out)
    elif op == SOFTMAX or op == LOG_SOFTMAX:
        if extra is not None and type(extra) is not dict:
            return False
        axis = (<dict> extra).get("axis", -1) if extra is not None else -1
        out = _out_buffer(x, g)
        r0 = (_softmax_backward if op == SOFTMAX else _log_softmax_backward)(_data_of(node), g, axis, out)
    elif op == GELU:
        if extra is not None and type(extra) is not dict:
            return False
        out = _out_buffer(x, g)
        r0 = _gelu_backward(_data_of(x), g, (<dict> extra).get("approximate", "none") if extra is not None else "none",
                            out)
    elif op == CROSS_ENTROPY:
        if type(extra) is not dict or (<dict> extra).get("probs") is None:
            return False  # recorded without its softmax (targets): the Python kernel
        probs = (<dict> extra)["probs"]
        out = _out_buffer(x, probs) if _fits(g, node) and cnp.PyArray_TYPE(<cnp.ndarray> g) == cnp.PyArray_TYPE(<cnp.ndarray> probs) else None
        r0 = _probs_minus_onehot(probs, (<dict> extra)["target"], g, (<dict> extra)["reduction"], out)
    elif op == GETITEM:
        return _rows_vjp(node, x, g) or _basic_index_vjp(node, x, g)
    elif op == SUM or op == MEAN:
        r0 = _reduction_vjp(node, op, x, g)
        if r0 is None:
            return False
        if r0 is x.pending_:  # added into it (out=)
            return True
    else:
        return False
    if out is not None:  # added into x's pending gradient by the kernel
        return True
    if (r0 is not None and not _fits(r0, x)) or (r1 is not None and not _fits(r1, y)):
        return False
    if r0 is not None and x.requires_grad_:
        _accumulate(x, r0, _fresh(r0, g))
    if r1 is not None and y.requires_grad_:
        _accumulate(y, r1, _fresh(r1, g))
    return True


cdef tuple _vector_matmul(Node x, Node y, cnp.ndarray xd, cnp.ndarray yd, object g):
    """The gradients of ``x @ y`` with a 1-D operand, as NumPy defines it: a 1-D ``x`` is a row
    ``(1, k)``, a 1-D ``y`` a column ``(k, 1)``, and the gradient gets the axis the product
    removed; then the 2-D kernel, and its gradients reshaped back (views).  None off the path."""
    cdef int xn = cnp.PyArray_NDIM(xd), yn = cnp.PyArray_NDIM(yd)
    cdef tuple gshape = (<object> g).shape
    cdef Py_ssize_t gn = len(gshape)
    if xn == 0 or yn == 0 or gn != (xn if xn > yn else yn) - 1:  # the product drops one axis
        return None
    if xn == 1 and yn == 1:
        gshape = (1, 1)
    elif xn == 1:
        gshape = gshape[:gn - 1] + (1, gshape[gn - 1])
    else:
        gshape = gshape + (1,)
    r0, r1 = _matmul_backward((<object> xd).reshape(1, -1) if xn == 1 else xd,
                              (<object> yd).reshape(-1, 1) if yn == 1 else yd,
                              (<object> g).reshape(gshape), x.requires_grad_, y.requires_grad_)
    return (None if r0 is None else r0.reshape((<object> xd).shape),
            None if r1 is None else r1.reshape((<object> yd).shape))


cdef tuple _divide(Node node, Node x, Node y, cnp.ndarray xd, cnp.ndarray yd, object g):
    """The gradients of ``x / y``: ``g / y`` and ``-g * out / y`` (the formulas' operations in
    their order, by NumPy's C entry points, with its warnings), each summed to its operand's
    shape by the reduction kernel.  None for 0-d results (NumPy's arithmetic gives scalars)."""
    cdef object dx = None, dy = None, t
    out = _data_of(node)
    if type(out) is not cnp.ndarray or cnp.PyArray_NDIM(<cnp.ndarray> out) == 0:
        return None
    if x.requires_grad_:
        dx = _reduce_to_shape(PyNumber_TrueDivide(g, yd), (<object> xd).shape)
    if y.requires_grad_:
        t = PyNumber_Multiply(PyNumber_Negative(g), out)  # a new array of the result's shape
        dy = _reduce_to_shape(PyNumber_InPlaceTrueDivide(t, yd), (<object> yd).shape)
    return dx, dy


cdef bint _basic_index_vjp(Node node, Node x, object g) except -1:
    """``x[key]`` for a key of ints, slices, None and ``...`` (a view: no element twice): the
    gradient written into zeros of ``x``'s shape at ``key``, in C (NumPy's setitem)."""
    cdef object extra = node.extra_
    cdef cnp.ndarray out
    if type(extra) is not dict:
        return False
    key = (<dict> extra).get("key")
    shape = (<dict> extra).get("original_shape")
    if type(shape) is not tuple or not _basic_key(key):
        return False
    out = np.zeros(shape, dtype=(<object> g).dtype)
    out[key] = g
    if not _fits(out, x):
        return False
    _accumulate(x, out, True)
    return True


cdef bint _join_vjp(Node node, int op, object g) except -1:
    """concatenate / stack: each input gets its slice of the gradient along the recorded axis,
    a view (as ``np.split`` and ``g[..., i]`` give the formulas); all pieces are checked against
    their inputs before any is accumulated."""
    cdef tuple parents = node.parents_
    cdef Py_ssize_t n = len(parents), i, start = 0, size
    cdef int ax, nd
    cdef Node p
    cdef list pieces = []
    if type(node.extra_) is not dict or not _fits_view(g, node):
        return False
    axis = (<dict> node.extra_).get("axis")
    if type(axis) is not int:
        return False
    nd = cnp.PyArray_NDIM(<cnp.ndarray> g)
    ax = axis
    if ax < 0 or ax >= nd:
        return False
    lead = (slice(None),) * ax
    for i in range(n):
        p = <Node> parents[i]
        data = _data_of(p)
        if type(data) is not cnp.ndarray:
            return False
        if op == CONCATENATE:
            if cnp.PyArray_NDIM(<cnp.ndarray> data) != nd:
                return False
            size = cnp.PyArray_DIM(<cnp.ndarray> data, ax)
            piece = g[lead + (slice(start, start + size),)]
            start += size
        else:
            piece = g[lead + (i,)]
        if p.requires_grad_ and not _fits_view(piece, p):
            return False
        pieces.append(piece)
    if op == CONCATENATE and start != cnp.PyArray_DIM(<cnp.ndarray> g, ax):
        return False
    for i in range(n):
        p = <Node> parents[i]
        if p.requires_grad_:
            _accumulate(p, pieces[i], False)
    return True


cdef object _reduction_vjp(Node node, int op, Node x, object g):
    """``expand_to_shape`` of the gradient of ``sum``/``mean`` over the recorded ``axis``
    (``keepdims`` as recorded), scaled by ``1 / count`` for the mean, as the op's formula does;
    None (the formula runs) for an empty input or an axis given as a list."""
    cdef object extra = node.extra_
    cdef Py_ssize_t size, out_size
    cdef double scale = 1.0
    data = _data_of(x)
    if type(data) is not cnp.ndarray or (extra is not None and type(extra) is not dict):
        return None
    axis = (<dict> extra).get("axis") if extra is not None else None
    keepdims = (<dict> extra).get("keepdims", False) if extra is not None else False
    if type(axis) is list or type(keepdims) is not bool:
        return None
    size = cnp.PyArray_SIZE(<cnp.ndarray> data)
    if op == MEAN:
        out_size = cnp.PyArray_SIZE(<cnp.ndarray> g)
        if size == 0 or out_size == 0:
            return None
        scale = 1.0 / <double> (size // out_size)  # the count of the reduced axes
    shape = (<object> data).shape
    if type(g) is cnp.ndarray and cnp.PyArray_TYPE(<cnp.ndarray> g) == cnp.PyArray_TYPE(<cnp.ndarray> data):
        out = _out_buffer(x, None)
        if out is not None:  # added into x's pending gradient
            _expand_to_shape(g, shape, axis, keepdims, scale, out)
            return out
    return _expand_to_shape(g, shape, axis, keepdims, scale)


cdef bint _rows_vjp(Node node, Node x, object g) except -1:
    """``x[rows]`` for a 1-D integer array ``rows`` (an embedding lookup): the ``scatter_add``
    kernel adds the gradient's rows into ``x``'s pending gradient when the engine owns one
    (``out=``: no zeros, no temporary), else into a new array of zeros."""
    cdef object extra = node.extra_
    cdef cnp.ndarray rows
    if type(extra) is not dict:
        return False
    key = (<dict> extra).get("key")
    shape = (<dict> extra).get("original_shape")
    if type(key) is not cnp.ndarray or type(shape) is not tuple or not shape:
        return False
    rows = <cnp.ndarray> key
    if cnp.PyArray_NDIM(rows) != 1 or cnp.PyArray_TYPE(rows) != cnp.NPY_INTP or not cnp.PyArray_IS_C_CONTIGUOUS(rows):
        return False
    if (x.pending_ is not None and type(g) is cnp.ndarray and type(x.data_) is cnp.ndarray
            and cnp.PyArray_TYPE(<cnp.ndarray> g) == cnp.PyArray_TYPE(<cnp.ndarray> x.data_)
            and (<object> x.data_).shape == shape and _out_buffer(x, None) is not None):
        _scatter_add(g, rows, shape, x.pending_)
        return True
    r0 = _scatter_add(g, rows, shape)
    if not _fits(r0, x):
        return False
    _accumulate(x, r0, _fresh(r0, g))
    return True


cdef inline int _loop_of(int op) noexcept:
    """The shared loop that computes the typed VJP ``op`` (see native.pxd)."""
    if op == NEGATE:
        return L_NEG
    if op == MUL_SCALAR:
        return L_MUL_C
    if op == EXP:  # grad * output
        return L_MUL
    if op == LOG:  # grad / input
        return L_DIV
    if op == SQRT:
        return L_SQRT_VJP
    if op == SIN:
        return L_SIN_VJP
    if op == COS:
        return L_COS_VJP
    if op == TANH:
        return L_TANH_VJP
    if op == SIGMOID:
        return L_SIGMOID_VJP
    return L_POWER_VJP  # POWER
