# cython: language_level=3
"""The fast operators and the elementwise loops that compute them (``_operators.pyx``)."""
from .native cimport Node

cdef int install_generic(dict generic_operators) except -1

# ``Node``'s operator methods; each falls back to the generic Python operator off its fast path.
cdef object array_ufunc(Node self, object ufunc, object method, tuple inputs, dict kwargs)
cdef object add(Node self, object other)
cdef object radd(Node self, object other)
cdef object sub(Node self, object other)
cdef object rsub(Node self, object other)
cdef object mul(Node self, object other)
cdef object rmul(Node self, object other)
cdef object truediv(Node self, object other)
cdef object rtruediv(Node self, object other)
cdef object neg(Node self)
cdef object pow_(Node self, object power)
cdef object rpow(Node self, object base)
cdef object matmul(Node self, object other)
cdef object getitem(Node self, object key)
cdef object transpose(Node self, tuple args)
cdef object reshape(Node self, object shape, tuple more)
# ``clumsygrad.concatenate`` / ``stack`` of tensors (None: the Python function's call).
cdef object join(object tensors, object axis, bint stacking, object grad_fn, object tensor_class)

# The loops over whole arrays (the engine's typed VJPs run them too).
cdef object _apply(int loop, object a, object b, double c)
cdef int _apply_add(int loop, object acc, object a, object b, double c) except -1
cdef void _dispatch(bint single, int loop, void* out, const void* x, const void* y, double c,
                    Py_ssize_t n) noexcept nogil
