# cython: language_level=3
"""The transposing copy and the direct product of ``_matmul.pyx``, for the graph modules
(``_engine``, ``_operators``) to cimport."""
cimport numpy as cnp

cdef bint is_swapped(object a) noexcept
cdef object swapped_copy(object a)
cdef object product(cnp.ndarray a, cnp.ndarray b, int out_nd, cnp.npy_intp* out_dims)
