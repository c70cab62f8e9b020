# cython: language_level=3
"""The graph's process state, compiled: the thread's grad mode and the tensor id counter."""

cdef bint grad_disabled() noexcept nogil
cdef long long next_id() noexcept
