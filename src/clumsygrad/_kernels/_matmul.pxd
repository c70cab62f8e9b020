# cython: language_level=3
"""The transposing copy of ``_matmul.pyx``, for the graph modules (``_engine``, ``_operators``) to cimport."""

cdef bint is_swapped(object a) noexcept
cdef object swapped_copy(object a)
