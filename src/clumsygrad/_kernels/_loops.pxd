# cython: language_level=3
"""NumPy's own inner loops, taken from a ufunc's loop table and called directly, and the
floating-point flags NumPy reports, shared by the kernels that call such loops (``_matmul``,
``_softmax``).

A loop found here is the code NumPy itself runs for arrays of that dtype (CPU-dispatched SIMD,
or BLAS for ``np.matmul``): the same values, without the ufunc call (argument parsing, dtype
resolution, iterator setup: ~0.4-0.9 us a call).  Such a loop reports overflow, underflow,
invalid and divide-by-zero only in the CPU's flags, which its caller tests (``FP_FLAGS``) and,
when one is raised, redoes the call through NumPy, whose warnings and ``np.errstate`` apply.
"""
cimport numpy as cnp

ctypedef void (*UfuncLoop)(char** args, cnp.npy_intp* dims, cnp.npy_intp* steps, void* data) noexcept nogil

cdef extern from "<fenv.h>" nogil:  # the flags NumPy reports (not "inexact", which any rounding raises)
    int feclearexcept(int excepts)
    int fetestexcept(int excepts)
    int FE_OVERFLOW
    int FE_UNDERFLOW
    int FE_INVALID
    int FE_DIVBYZERO


cdef inline int fp_flags() noexcept nogil:
    return FE_OVERFLOW | FE_UNDERFLOW | FE_INVALID | FE_DIVBYZERO


cdef inline bint find_loop(object ufunc, int nin, int typenum, UfuncLoop* loop, void** data) noexcept:
    """``ufunc``'s inner loop whose ``nin`` inputs and one output are all ``typenum`` (the first
    such entry of its table, the one NumPy picks), into ``loop`` and ``data``; False, and
    nothing written, when it is not a ufunc of that arity or has no such loop."""
    cdef cnp.ufunc u
    cdef int i, j, nargs = nin + 1
    if not isinstance(ufunc, cnp.ufunc):  # another NumPy build: the ufunc call stays
        return False
    u = <cnp.ufunc> ufunc
    if u.nin != nin or u.nout != 1 or u.functions == NULL or u.types == NULL:
        return False
    for i in range(u.ntypes):
        for j in range(nargs):
            if u.types[nargs * i + j] != typenum:
                break
        else:
            loop[0] = <UfuncLoop> u.functions[i]
            data[0] = u.data[i] if u.data != NULL else NULL
            return True
    return False
