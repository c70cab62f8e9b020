# cython: language_level=3
"""Argument parsing shared by the nn kernels (``_conv.pyx``, ``_pool.pyx``): the fast path of
their prologue reads small non-negative Python ints in C; anything else (other int-likes, a
negative or huge value, a wrong length) makes it return False, and the wrapper then takes the
slow path through ``checks``, which raises the errors both twins give."""
cimport numpy as cnp

from ._shapes cimport PyNumber_AsSsize_t

cdef enum:
    SMALL = 1 << 30   # the fast path takes ints below this (sizes, strides, paddings)


cdef inline bint small_ints(object value, Py_ssize_t* out, Py_ssize_t n) noexcept:
    """A tuple of ``n`` Python ints in ``[0, SMALL)`` into ``out``; False for anything else."""
    cdef Py_ssize_t i, v
    if type(value) is not tuple or len(<tuple>value) != n:
        return False
    for i in range(n):
        item = (<tuple>value)[i]
        if type(item) is not int:
            return False
        v = PyNumber_AsSsize_t(item, NULL)
        if v < 0 or v >= SMALL:
            return False
        out[i] = v
    return True


cdef inline bint small_dims(cnp.ndarray a, Py_ssize_t* out) noexcept:
    """The shape of a 4-d array into ``out`` when every size is below ``SMALL``."""
    cdef Py_ssize_t i
    for i in range(4):
        if cnp.PyArray_DIM(a, i) >= SMALL:
            return False
        out[i] = cnp.PyArray_DIM(a, i)
    return True
