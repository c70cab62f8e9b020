# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Compiled twin of ``pure.backward_pass``: the same traversal and gradient accumulation.

The nodes are Python ``Tensor`` objects, so this module cannot run without the GIL; what
it removes is the interpreter's per-node overhead: the stack bookkeeping of the
traversal, and the type, dtype, ownership and shape checks of every edge, which become
pointer comparisons on the NumPy C structs.  Semantics match ``pure.py`` line for line.
"""
cimport numpy as cnp
from cpython.ref cimport Py_REFCNT
from libc.stdlib cimport free, malloc, realloc

import numpy as np

cnp.import_array()

cdef int INTERMEDIATE = 2  # TensorType.INTERMEDIATE


def backward_pass(root, cnp.ndarray seed, bint seed_owned, bint keep_graph):
    """Backpropagate ``seed`` from ``root`` into ``.grad`` of every tensor that requires it.

    Same contract as ``clumsygrad._kernels.pure.backward_pass``.
    """
    cdef list order = _reverse_topological_order(root)
    _backpropagate(order, seed, seed_owned)
    if not keep_graph:
        for node in order:
            if node._tensor_type == INTERMEDIATE:
                node._parents = ()


cdef list _reverse_topological_order(root):
    """Nodes that require gradients reachable from ``root``, each before all of its parents.

    Iterative depth-first search: ``stack`` holds the path from the root, ``next_parent``
    the index of the next parent to visit for each node on it.
    """
    cdef list postorder = []
    cdef set visited = {root}
    cdef list stack = [root]
    cdef list stack_parents = [_parents_of(root)]
    cdef Py_ssize_t capacity = 64, depth = 1, i
    cdef Py_ssize_t* next_parent = <Py_ssize_t*> malloc(capacity * sizeof(Py_ssize_t))
    cdef tuple parents
    cdef Py_ssize_t* grown
    if next_parent == NULL:
        raise MemoryError()
    next_parent[0] = 0
    try:
        while depth:
            parents = <tuple> stack_parents[depth - 1]
            i = next_parent[depth - 1]
            while i < len(parents):
                parent = parents[i]
                i += 1
                if parent._requires_grad and parent not in visited:
                    visited.add(parent)
                    next_parent[depth - 1] = i
                    if depth == capacity:
                        grown = <Py_ssize_t*> realloc(next_parent, 2 * capacity * sizeof(Py_ssize_t))
                        if grown == NULL:
                            raise MemoryError()
                        next_parent = grown
                        capacity *= 2
                    stack.append(parent)
                    stack_parents.append(_parents_of(parent))
                    next_parent[depth] = 0
                    depth += 1
                    break
            else:
                depth -= 1
                postorder.append(stack.pop())
                stack_parents.pop()
    finally:
        free(next_parent)
    postorder.reverse()
    return postorder


cdef inline tuple _parents_of(node):
    parents = node._parents
    return parents if type(parents) is tuple else tuple(parents)


cdef _backpropagate(list order, cnp.ndarray seed, bint seed_owned):
    """Push ``seed`` from ``order[0]`` through ``order``; see ``pure._backpropagate``."""
    cdef dict pending = {order[0]: (seed, seed_owned)}
    cdef tuple entry
    cdef bint owned
    for node in order:
        found = pending.pop(node, None)
        if found is None:
            continue
        entry = <tuple> found
        grad = entry[0]
        owned = entry[1]
        if node._grad is None:
            node._grad = grad if owned else grad.copy()
        else:
            node._grad += grad
        if node._grad_fn is None:
            continue
        try:
            _push_to_parents(node, grad, pending)
        except Exception as exc:
            raise RuntimeError(f"Error in backward pass at tensor {node._id}: {exc}") from exc


cdef _push_to_parents(node, grad, dict pending):
    """Run ``node``'s backward function and add each parent's gradient into ``pending``."""
    cdef tuple parents = _parents_of(node)
    cdef Py_ssize_t n = len(parents), i
    cdef bint all_needed = True, owned
    cdef cnp.ndarray g, data
    if n == 0:
        raise RuntimeError(
            "No backward graph exists for this tensor (freed by an earlier backward(); "
            "pass keep_graph=True to keep it)"
        )
    grad_fn = node._grad_fn
    for i in range(n):
        if not parents[i]._requires_grad:
            all_needed = False
    if not all_needed and getattr(grad_fn, "skips_unneeded", False):
        parent_grads = grad_fn(node, grad, needs=tuple([p._requires_grad for p in parents]))
    else:
        parent_grads = grad_fn(node, grad)
    if len(parent_grads) != n:
        raise ValueError(
            f"{grad_fn.__name__} returned {len(parent_grads)} gradients for {n} parents"
        )
    for i in range(n):
        parent = parents[i]
        result = parent_grads[i]
        # Fresh: owns its memory, and only parent_grads and `result` refer to it (the
        # rule of pure._push_to_parents; in C the count is exact, no calibration needed).
        # Checked before any other local takes a reference.
        owned = (
            type(result) is np.ndarray
            and cnp.PyArray_BASE(<cnp.ndarray> result) == NULL
            and Py_REFCNT(result) <= 2
        )
        if result is None or not parent._requires_grad:
            continue
        data = <cnp.ndarray?> parent._data
        if type(result) is not np.ndarray or not _same_dtype(<cnp.ndarray> result, data):
            g = np.array(result, dtype=data.dtype)  # one conversion, into a fresh array
            owned = True
        else:
            g = <cnp.ndarray> result
        if not _same_shape(g, data):
            raise ValueError(
                f"gradient for tensor {parent._id} has shape {(<object> g).shape}, expected {parent._shape}"
            )
        found = pending.get(parent)
        if found is None:
            pending[parent] = (g, owned)
        elif (<tuple> found)[1]:
            acc = (<tuple> found)[0]
            acc += g
        else:  # into a new array (a plain `+` of 0-d arrays gives a NumPy scalar)
            pending[parent] = (np.add((<tuple> found)[0], g, out=np.empty_like(g)), True)


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
