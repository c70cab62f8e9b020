# cython: language_level=3
"""The graph's process state, compiled: twin of ``pure.py``'s "grad mode and ids" section.

The grad mode is one C flag per thread (``no_grad`` in one thread leaves the others recording);
ids count up for the life of the process.  Node creation (``native.pyx``) reads both through
the two ``cdef`` functions declared in ``_state.pxd``.
"""

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

cdef long long _next_id = 0


cdef bint grad_disabled() noexcept nogil:
    return cg_grad_disabled


cdef long long next_id() noexcept:
    """Take the next id."""
    global _next_id
    _next_id += 1
    return _next_id - 1


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
    return next_id()
