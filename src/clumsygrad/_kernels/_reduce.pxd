# cython: language_level=3
"""The reduction driver of ``_reduce.pyx``, for other kernel modules (``_matmul``) to cimport."""
cimport numpy as cnp

cdef cnp.ndarray reduce_typed(cnp.ndarray g, cnp.ndarray t, int tnd, Py_ssize_t* tdims, int tn)
