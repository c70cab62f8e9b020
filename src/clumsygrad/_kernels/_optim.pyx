# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# distutils: extra_compile_args = -fno-math-errno
"""Compiled optimizer steps: ``adam_update``, one fused pass per parameter.

``pure.adam_update`` makes about ten NumPy passes and five temporaries for one Adam step
(moments, bias correction, weight decay, update); this loop reads the parameter, the
gradient and the two moments once and writes the parameter and the moments once, in place.

The wrapper checks everything first.  The compiled loop serves the layout the optimizer
makes: a float32/float64 parameter and moments of one dtype, shape and contiguous layout
(all C or all Fortran order), writeable and not overlapping.  The gradient is converted to
that dtype and layout when it is not already (a copy, as is one that overlaps the others).
Anything else (sliced parameters, foreign moment arrays, bad input) goes to the reference,
``pure.adam_update``, which updates any layout and raises the errors, so both backends
raise the same exception with the same message.

``-fno-math-errno`` (above) lets GCC vectorise ``sqrt``: with errno semantics it must
branch to libm for negative inputs, which keeps the loop scalar.  ``v`` is never negative
and NaN propagates the same way either way, so results do not change.
"""
cimport numpy as cnp
from cython cimport floating
from libc.math cimport pow, sqrt, sqrtf

from ._shapes cimport Call, run_typed, same_shape

import numpy as np

from . import checks, pure

cnp.import_array()

__all__ = ["adam_update"]


ctypedef struct AdamScalars:
    double decay        # AdamW: the parameter is multiplied by this first (1: no decay)
    double l2           # Adam: l2 * param is added to the gradient (0: none)
    double b1, c1       # beta1, 1 - beta1
    double b2, c2       # beta2, 1 - beta2
    double step_size    # lr / (1 - beta1**step)
    double inv_sqrt_bc2  # 1 / sqrt(1 - beta2**step)
    double eps


cdef inline floating _sqrt(floating x) noexcept nogil:
    """The square root in the precision of ``x`` (``sqrt`` alone would widen a float to double)."""
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef void _adam_core(floating* p, const floating* g, floating* m, floating* v,
                     const AdamScalars* s, Py_ssize_t n) noexcept nogil:
    """The update of ``pure.adam_update``, element by element, each operation rounded to
    ``floating`` in the same order as the reference (so the two agree to the last bit
    wherever the compiler does not contract a multiply-add)."""
    cdef:
        Py_ssize_t i
        floating decay = <floating>s.decay, l2 = <floating>s.l2
        floating b1 = <floating>s.b1, c1 = <floating>s.c1
        floating b2 = <floating>s.b2, c2 = <floating>s.c2
        floating step_size = <floating>s.step_size, inv_sqrt_bc2 = <floating>s.inv_sqrt_bc2
        floating eps = <floating>s.eps
        floating pi, gi, mi, vi, denom
    # three copies of the loop so that none of them tests a flag per element
    if decay != 1:
        for i in range(n):
            pi = p[i] * decay
            gi = g[i]
            mi = m[i] * b1 + c1 * gi
            vi = v[i] * b2 + c2 * (gi * gi)
            denom = _sqrt(vi) * inv_sqrt_bc2 + eps
            m[i] = mi
            v[i] = vi
            p[i] = pi - step_size * (mi / denom)
    elif l2 != 0:
        for i in range(n):
            pi = p[i]
            gi = g[i] + l2 * pi
            mi = m[i] * b1 + c1 * gi
            vi = v[i] * b2 + c2 * (gi * gi)
            denom = _sqrt(vi) * inv_sqrt_bc2 + eps
            m[i] = mi
            v[i] = vi
            p[i] = pi - step_size * (mi / denom)
    else:
        for i in range(n):
            pi = p[i]
            gi = g[i]
            mi = m[i] * b1 + c1 * gi
            vi = v[i] * b2 + c2 * (gi * gi)
            denom = _sqrt(vi) * inv_sqrt_bc2 + eps
            m[i] = mi
            v[i] = vi
            p[i] = pi - step_size * (mi / denom)


cdef void _adam_call(Call* k, floating* tag) noexcept nogil:
    _adam_core(<floating*>k.out, <const floating*>k.a, <floating*>k.out2, <floating*>k.out3,
               <const AdamScalars*>k.aux, k.n0)


# --------------------------------------------------------------------------- validation
cdef int _layout(cnp.ndarray a) noexcept:
    """1 for a C-contiguous, 2 for a Fortran-contiguous (and not C) array, 0 otherwise.

    An array that is both (1-d, or size <= 1 along all but one axis) counts as C.
    """
    if cnp.PyArray_IS_C_CONTIGUOUS(a):
        return 1
    if cnp.PyArray_IS_F_CONTIGUOUS(a):
        return 2
    return 0


cdef inline bint _disjoint(cnp.ndarray a, cnp.ndarray b) noexcept:
    """The memory of two contiguous arrays does not overlap (``np.may_share_memory`` is False)."""
    cdef char* ap = <char*>cnp.PyArray_DATA(a)
    cdef char* bp = <char*>cnp.PyArray_DATA(b)
    if cnp.PyArray_NBYTES(a) == 0 or cnp.PyArray_NBYTES(b) == 0:
        return True
    return ap + cnp.PyArray_NBYTES(a) <= bp or bp + cnp.PyArray_NBYTES(b) <= ap


cdef inline bint _same_kind(cnp.ndarray a, cnp.ndarray like, int t, int lay) noexcept:
    """``a`` is a writeable, aligned, native ``t`` array of ``like``'s shape and layout ``lay``."""
    return (cnp.PyArray_TYPE(a) == t and cnp.PyArray_ISNOTSWAPPED(a) and cnp.PyArray_ISALIGNED(a)
            and cnp.PyArray_ISWRITEABLE(a) and _layout(a) == lay and same_shape(like, a))


cdef bint _state_fits(object param, object m, object v) noexcept:
    """``param``, ``m``, ``v`` are exact, writeable, aligned float32/float64 ndarrays of one
    dtype, shape and contiguous layout that do not overlap: the arrays the loop walks flat."""
    cdef cnp.ndarray pa, ma, va
    cdef int t, lay
    if not (cnp.PyArray_CheckExact(param) and cnp.PyArray_CheckExact(m) and cnp.PyArray_CheckExact(v)):
        return False
    pa = <cnp.ndarray>param
    ma = <cnp.ndarray>m
    va = <cnp.ndarray>v
    t = cnp.PyArray_TYPE(pa)
    lay = _layout(pa)
    if not ((t == cnp.NPY_FLOAT or t == cnp.NPY_DOUBLE) and lay != 0
            and _same_kind(pa, pa, t, lay) and _same_kind(ma, pa, t, lay) and _same_kind(va, pa, t, lay)):
        return False
    return _disjoint(pa, ma) and _disjoint(pa, va) and _disjoint(ma, va)


cdef int _scalars(AdamScalars* s, object lr, object beta1, object beta2, object eps,
                  object weight_decay, object decoupled, object step) except -1:
    """``checks.adam_coefficients`` in C doubles (the same formulas, so the same roundings)."""
    cdef Py_ssize_t k = step   # TypeError for a non-integer, as operator.index
    cdef double lr_, wd
    if k < 1:
        raise ValueError(f"adam_update needs step >= 1 (the step count after this update), got {k}")
    # converted in the reference's order, so the first bad value raises the same error
    lr_ = lr
    s.b1 = beta1
    s.b2 = beta2
    s.eps = eps
    wd = weight_decay
    if not (0.0 <= s.b1 < 1.0 and 0.0 <= s.b2 < 1.0):
        raise ValueError(f"adam_update needs 0 <= beta1, beta2 < 1, got {s.b1!r} and {s.b2!r}")
    if decoupled:
        s.decay = 1.0 - lr_ * wd
        s.l2 = 0.0
    else:
        s.decay = 1.0
        s.l2 = wd
    s.c1 = 1.0 - s.b1
    s.c2 = 1.0 - s.b2
    s.step_size = lr_ / (1.0 - pow(s.b1, <double>k))
    s.inv_sqrt_bc2 = 1.0 / sqrt(1.0 - pow(s.b2, <double>k))
    return 0


# --------------------------------------------------------------------------- kernel
def adam_update(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, decoupled, step):
    """One Adam/AdamW step, in place on ``param``, ``m`` and ``v``; returns None.

    The update and the rounding of each operation are those of ``pure.adam_update``
    (see its docstring).  ``grad`` may have any real dtype and layout.
    """
    cdef:
        cnp.ndarray pa, ga, ma, va
        AdamScalars s
        int tn, flags
        Call k
    if not _state_fits(param, m, v):
        return pure.adam_update(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, decoupled, step)
    pa = <cnp.ndarray>param
    ma = <cnp.ndarray>m
    va = <cnp.ndarray>v
    tn = cnp.PyArray_TYPE(pa)
    ga = grad if cnp.PyArray_Check(grad) else np.asarray(grad)
    if not ((cnp.PyArray_ISFLOAT(ga) or cnp.PyArray_ISINTEGER(ga) or cnp.PyArray_ISBOOL(ga))
            and same_shape(pa, ga)):
        checks.check_adam_arrays(param, grad, m, v)   # raises the reference's error
    _scalars(&s, lr, beta1, beta2, eps, weight_decay, decoupled, step)
    # the gradient as a contiguous array in the parameter's dtype and layout, never
    # overlapping what the loop writes (an aliasing gradient is copied: read before written)
    flags = cnp.NPY_ARRAY_ALIGNED | cnp.NPY_ARRAY_NOTSWAPPED | cnp.NPY_ARRAY_FORCECAST | (
        cnp.NPY_ARRAY_C_CONTIGUOUS if _layout(pa) == 1 else cnp.NPY_ARRAY_F_CONTIGUOUS)
    ga = cnp.PyArray_FROMANY(ga, tn, 0, 0, flags)
    if not (_disjoint(ga, pa) and _disjoint(ga, ma) and _disjoint(ga, va)):
        ga = ga.copy(order="K")
    k.out = cnp.PyArray_DATA(pa)
    k.a = cnp.PyArray_DATA(ga)
    k.out2 = cnp.PyArray_DATA(ma)
    k.out3 = cnp.PyArray_DATA(va)
    k.aux = &s
    k.n0 = cnp.PyArray_SIZE(pa)
    run_typed(tn, &k, _adam_call[float], _adam_call[double])
    return None
