# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled ``softmax_backward``: ``s * (grad - sum(s * grad, axis, keepdims=True))`` fused.

The wrapper makes ``s`` and ``grad`` C-contiguous float32/float64 (a copy only when they are
not already) and views them as ``(outer, n, inner)`` with ``n`` the softmax axis.  Along the
last axis (``inner == 1``) each row is one dot product with independent partial sums, then
one elementwise pass over the row while it is still in L1.  Along another axis the ``inner``
dot products are accumulated row by row into a contiguous buffer (``acc[i] += s[i] * g[i]``,
a vectorised loop; never a strided column walk), then a second row-by-row pass writes the
output.  (Blocking the columns so that both passes hit L2 measured slower at 2048x2048,
6.0 ms against 2.2 ms: every row of a narrow block is another page, likely TLB misses.)

Compiled ``softmax_forward``: ``exp(x - max(x, axis)) / sum(...)`` with the same
``(outer, n, inner)`` walk.  Along the last axis each row is one pass for the max (16
independent lanes, like ``hsum``), one for ``exp`` (libc ``expf``/``exp``: a call per
element, not vectorised) and the contiguous sum, one to divide, all while the row is in L1.
Along another axis the max and the sum (in double) are kept per column in contiguous
buffers and updated row by row, as in the backward pass.
The scalar libc ``exp`` costs 3.4-4.5 ns per element here against 0.6 ns for NumPy's SIMD
``np.exp``: the fused loop wins below about 4096 elements (64x10: 3.3 us against 11.4 us),
loses above (256x256: 283 us against 100 us), so larger inputs go to ``pure``'s NumPy
formula (``EXP_LOOP_MAX``).
"""
cimport numpy as cnp
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cython cimport floating
from libc.math cimport exp, expf

from ._shapes cimport (
    LANES, as_c_typed, fast_array, hdot, hsum, kernel_typenum, native_float_typenum,
    same_shape, slow_normalize_axis, slow_result_dtype,
)
import numpy as np

from . import pure

cnp.import_array()

__all__ = ["softmax_forward", "softmax_backward"]

cdef enum:
    EXP_LOOP_MAX = 4096   # largest input softmax_forward runs through libc exp (see above)


cdef inline Py_ssize_t _axis_of(object axis, int nd) except -1:
    """``axis`` (one int, negatives allowed) in ``[0, max(nd, 1))``: a 0-d array has one axis."""
    cdef Py_ssize_t ax, ndim = nd if nd > 0 else 1
    if type(axis) is int and -ndim <= axis < ndim:
        ax = <Py_ssize_t>axis
    else:
        ax = slow_normalize_axis(axis, ndim)
    return ax + ndim if ax < 0 else ax


cdef inline void _split(int nd, const cnp.npy_intp* dims, Py_ssize_t ax, Py_ssize_t* outer,
                        Py_ssize_t* n, Py_ssize_t* inner) noexcept:
    """The shape as ``(outer, n, inner)`` around axis ``ax`` (all 1 for a 0-d array)."""
    cdef int i
    outer[0] = 1
    n[0] = 1
    inner[0] = 1
    for i in range(nd):
        if i < ax:
            outer[0] *= dims[i]
        elif i == ax:
            n[0] = dims[i]
        else:
            inner[0] *= dims[i]


# ----------------------------------------------------------------- softmax_forward
cdef inline floating _exp(floating v) noexcept nogil:
    if floating is float:
        return expf(v)
    else:
        return exp(v)


cdef inline floating _hmax(const floating* x, Py_ssize_t n) noexcept nogil:
    """Max of ``x[0:n]``, ``n >= 1``, in independent lanes (a compare and blend GCC vectorises).

    A NaN may or may not win, unlike ``np.maximum``; the softmax of its row is all NaN either
    way, because the NaN reaches the row's sum.
    """
    cdef:
        const floating* end = x + n
        const floating* vec_end = x + (n & ~(<Py_ssize_t>(LANES - 1)))
        floating acc[LANES]
        floating m = x[0]
        int l
    if n >= LANES:
        for l in range(LANES):
            acc[l] = x[l]
        x += LANES
        while x < vec_end:
            for l in range(LANES):
                acc[l] = x[l] if x[l] > acc[l] else acc[l]
            x += LANES
        for l in range(LANES):
            m = acc[l] if acc[l] > m else m
    while x < end:
        m = x[0] if x[0] > m else m
        x += 1
    return m


cdef void _softmax_forward_core(const floating* x, floating* out, floating* mx, double* sm,
                                Py_ssize_t outer, Py_ssize_t n, Py_ssize_t inner) noexcept nogil:
    """``out = exp(x - max_axis(x)) / sum_axis(...)`` on C arrays viewed as (outer, n, inner), n >= 1.

    ``mx`` and ``sm`` are scratch buffers of ``inner`` elements (unused when ``inner == 1``).
    """
    cdef:
        Py_ssize_t o, r, i
        floating m, total
        const floating* xp
        floating* op
    if inner == 1:
        for o in range(outer):
            m = _hmax(x, n)
            for i in range(n):
                out[i] = _exp(x[i] - m)
            total = hsum(out, n)
            for i in range(n):
                out[i] = out[i] / total
            x += n
            out += n
        return
    for o in range(outer):
        xp = x
        for i in range(inner):
            mx[i] = xp[i]
        for r in range(1, n):
            xp += inner
            for i in range(inner):
                mx[i] = xp[i] if xp[i] > mx[i] else mx[i]
        for i in range(inner):
            sm[i] = 0
        xp = x
        op = out
        for r in range(n):
            for i in range(inner):
                op[i] = _exp(xp[i] - mx[i])
            for i in range(inner):
                sm[i] += op[i]
            xp += inner
            op += inner
        for i in range(inner):
            mx[i] = <floating>sm[i]
        op = out
        for r in range(n):
            for i in range(inner):
                op[i] = op[i] / mx[i]
            op += inner
        x += n * inner
        out += n * inner


def softmax_forward(x, axis):
    """``exp(x - max(x, axis)) / sum(exp(x - max(x, axis)), axis)`` for one int ``axis``.

    ``x`` has any layout; returns a new C array of its shape, float32/float64 (other real
    dtypes promote as in ``pure``).  A 0-d ``x`` takes axis 0 or -1 and gives 1.0.
    """
    cdef:
        cnp.ndarray xa = fast_array(x)
        cnp.ndarray out
        int tn, nd
        Py_ssize_t ax, outer, n, inner
        void* buf = NULL
    tn = native_float_typenum(xa)
    if tn < 0:
        tn = kernel_typenum(slow_result_dtype((xa,)))
        if tn < 0:
            return pure.softmax_forward(xa, axis)
    nd = cnp.PyArray_NDIM(xa)
    ax = _axis_of(axis, nd)
    if nd and cnp.PyArray_DIM(xa, <int>ax) == 0:  # no max to subtract
        raise ValueError(
            f"softmax_forward over axis {ax} of shape {(<object>xa).shape}, which has no elements"
        )
    if cnp.PyArray_SIZE(xa) > EXP_LOOP_MAX:
        return pure.softmax_forward(xa, axis)  # NumPy's vectorised exp beats a libc call per element
    xa = as_c_typed(xa, tn)
    _split(nd, cnp.PyArray_DIMS(xa), ax, &outer, &n, &inner)
    out = cnp.PyArray_EMPTY(nd, cnp.PyArray_DIMS(xa), tn, 0)
    if outer * n * inner == 0:
        return out
    if inner > 1:
        buf = PyMem_Malloc(inner * (sizeof(double) + cnp.PyArray_ITEMSIZE(out)))
        if buf == NULL:
            raise MemoryError()
    if tn == cnp.NPY_FLOAT:
        with nogil:
            _softmax_forward_core[float](<const float*>cnp.PyArray_DATA(xa), <float*>cnp.PyArray_DATA(out),
                                         <float*>(<double*>buf + inner), <double*>buf, outer, n, inner)
    else:
        with nogil:
            _softmax_forward_core[double](<const double*>cnp.PyArray_DATA(xa), <double*>cnp.PyArray_DATA(out),
                                          <double*>buf + inner, <double*>buf, outer, n, inner)
    PyMem_Free(buf)
    return out


# ----------------------------------------------------------------- softmax_backward

cdef void _softmax_core(const floating* s, const floating* g, floating* out, floating* acc,
                        Py_ssize_t outer, Py_ssize_t n, Py_ssize_t inner) noexcept nogil:
    """``out = s * (g - sum_axis(s * g))`` on C arrays viewed as (outer, n, inner)."""
    cdef:
        Py_ssize_t o, r, i
        floating dot
        const floating* sp
        const floating* gp
        floating* op
    if inner == 1:
        for o in range(outer):
            dot = hdot(s, g, n)
            for i in range(n):
                out[i] = s[i] * (g[i] - dot)
            s += n
            g += n
            out += n
        return
    for o in range(outer):
        for i in range(inner):
            acc[i] = 0
        sp = s
        gp = g
        for r in range(n):
            for i in range(inner):
                acc[i] += sp[i] * gp[i]
            sp += inner
            gp += inner
        sp = s
        gp = g
        op = out
        for r in range(n):
            for i in range(inner):
                op[i] = sp[i] * (gp[i] - acc[i])
            sp += inner
            gp += inner
            op += inner
        s += n * inner
        g += n * inner
        out += n * inner


def softmax_backward(s, grad, axis):
    """``s * (grad - sum(s * grad, axis, keepdims=True))`` for a softmax output ``s``.

    ``s`` and ``grad`` share one shape (any layout); returns a new C array of that shape,
    float32/float64 (other real dtypes promote as in ``pure``).
    """
    cdef:
        cnp.ndarray sa = fast_array(s)
        cnp.ndarray ga = fast_array(grad)
        cnp.ndarray out
        int tn, nd
        Py_ssize_t ax, outer, n, inner
        void* acc = NULL
    tn = native_float_typenum(sa)
    if tn < 0 or native_float_typenum(ga) != tn:
        tn = kernel_typenum(slow_result_dtype((sa, ga)))
        if tn < 0:
            return pure.softmax_backward(sa, ga, axis)
    if not same_shape(sa, ga):
        raise ValueError(
            "softmax_backward needs the output and gradient in one shape, "
            f"got {(<object>sa).shape} and {(<object>ga).shape}"
        )
    nd = cnp.PyArray_NDIM(sa)
    ax = _axis_of(axis, nd)
    # dims are read after the conversions: a converted temporary may have been the only owner
    sa = as_c_typed(sa, tn)
    ga = as_c_typed(ga, tn)
    _split(nd, cnp.PyArray_DIMS(sa), ax, &outer, &n, &inner)
    out = cnp.PyArray_EMPTY(nd, cnp.PyArray_DIMS(sa), tn, 0)
    if outer * n * inner == 0:
        return out
    if inner > 1:
        acc = PyMem_Malloc(inner * cnp.PyArray_ITEMSIZE(out))
        if acc == NULL:
            raise MemoryError()
    if tn == cnp.NPY_FLOAT:
        with nogil:
            _softmax_core[float](<const float*>cnp.PyArray_DATA(sa), <const float*>cnp.PyArray_DATA(ga),
                                 <float*>cnp.PyArray_DATA(out), <float*>acc, outer, n, inner)
    else:
        with nogil:
            _softmax_core[double](<const double*>cnp.PyArray_DATA(sa), <const double*>cnp.PyArray_DATA(ga),
                                  <double*>cnp.PyArray_DATA(out), <double*>acc, outer, n, inner)
    PyMem_Free(acc)
    return out
