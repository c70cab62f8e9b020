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
formula (``EXP_LOOP_MAX``).  Between ``SPLIT_MIN`` and ``EXP_LOOP_MAX`` elements along the last
axis the row passes stay compiled but ``exp`` is NumPy's, in place between them (an attention
map of 8x16x16: 10.5 us fused with libc ``expf``, about 4 us split).
"""
cimport numpy as cnp
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cython cimport floating
from libc.math cimport exp, expf

from ._shapes cimport (
    LANES, Call, as_c_typed, check_same_shape, fast_array, hdot, hsum, kernel_type, one_axis, run_typed,
)
import numpy as np

from . import pure

cnp.import_array()

__all__ = ["softmax_forward", "softmax_backward"]

cdef enum:
    EXP_LOOP_MAX = 4096   # largest input softmax_forward runs through libc exp (see above)
    SPLIT_MIN = 512       # from here rows along the last axis take NumPy's exp between two passes


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


cdef void _shift_rows(const floating* x, floating* out, Py_ssize_t rows, Py_ssize_t n) noexcept nogil:
    """``out = x - max(x)`` per row of ``n >= 1`` (the pass before NumPy's ``exp``)."""
    cdef Py_ssize_t o, i
    cdef floating m
    for o in range(rows):
        m = _hmax(x, n)
        for i in range(n):
            out[i] = x[i] - m
        x += n
        out += n


cdef void _normalise_rows(floating* out, Py_ssize_t rows, Py_ssize_t n) noexcept nogil:
    """``out /= sum(out)`` per row (the pass after NumPy's ``exp``)."""
    cdef Py_ssize_t o, i
    cdef floating total
    for o in range(rows):
        total = hsum(out, n)
        for i in range(n):
            out[i] = out[i] / total
        out += n


cdef void _shift_call(Call* k, floating* tag) noexcept nogil:
    _shift_rows(<const floating*>k.a, <floating*>k.out, k.n0, k.n1)


cdef void _normalise_call(Call* k, floating* tag) noexcept nogil:
    _normalise_rows(<floating*>k.out, k.n0, k.n1)


cdef void _forward_call(Call* k, floating* tag) noexcept nogil:
    """``scratch`` holds ``n2`` doubles (the sums), then ``n2`` ``floating`` (the maxima)."""
    _softmax_forward_core(<const floating*>k.a, <floating*>k.out, <floating*>(<double*>k.scratch + k.n2),
                          <double*>k.scratch, k.n0, k.n1, k.n2)


def softmax_forward(x, axis):
    """``exp(x - max(x, axis)) / sum(exp(x - max(x, axis)), axis)`` for one int ``axis``.

    ``x`` has any layout; returns a new C array of its shape, float32/float64 (other real
    dtypes promote as in ``pure``).  A 0-d ``x`` takes axis 0 or -1 and gives 1.0.
    """
    cdef:
        cnp.ndarray xa = fast_array(x)
        cnp.ndarray out
        int tn = kernel_type(xa, None, None)
        int nd = cnp.PyArray_NDIM(xa)
        Py_ssize_t ax
        Call k
    if tn < 0:
        return pure.softmax_forward(xa, axis)
    ax = one_axis(axis, nd if nd > 0 else 1)   # a 0-d array has one axis
    if nd and cnp.PyArray_DIM(xa, <int>ax) == 0:  # no max to subtract
        raise ValueError(
            f"softmax_forward over axis {ax} of shape {(<object>xa).shape}, which has no elements"
        )
    if cnp.PyArray_SIZE(xa) > EXP_LOOP_MAX:
        return pure.softmax_forward(xa, axis)  # NumPy's vectorised exp beats a libc call per element
    xa = as_c_typed(xa, tn)
    _split(nd, cnp.PyArray_DIMS(xa), ax, &k.n0, &k.n1, &k.n2)
    out = cnp.PyArray_EMPTY(nd, cnp.PyArray_DIMS(xa), tn, 0)
    if k.n0 * k.n1 * k.n2 == 0:
        return out
    if k.n2 == 1 and cnp.PyArray_SIZE(xa) >= SPLIT_MIN:
        # along the last axis: the max pass, NumPy's vectorised exp in place, the sum pass
        k.a = cnp.PyArray_DATA(xa)
        k.out = cnp.PyArray_DATA(out)
        k.n0 = k.n0 * k.n2
        run_typed(tn, &k, _shift_call[float], _shift_call[double])
        np.exp(out, out=out)
        run_typed(tn, &k, _normalise_call[float], _normalise_call[double])
        return out
    k.scratch = NULL
    if k.n2 > 1:
        k.scratch = PyMem_Malloc(k.n2 * (sizeof(double) + cnp.PyArray_ITEMSIZE(out)))
        if k.scratch == NULL:
            raise MemoryError()
    k.a = cnp.PyArray_DATA(xa)
    k.out = cnp.PyArray_DATA(out)
    run_typed(tn, &k, _forward_call[float], _forward_call[double])
    PyMem_Free(k.scratch)
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


cdef void _backward_call(Call* k, floating* tag) noexcept nogil:
    """``scratch`` holds ``n2`` ``floating`` (the dot products)."""
    _softmax_core(<const floating*>k.a, <const floating*>k.b, <floating*>k.out, <floating*>k.scratch,
                  k.n0, k.n1, k.n2)


def softmax_backward(s, grad, axis):
    """``s * (grad - sum(s * grad, axis, keepdims=True))`` for a softmax output ``s``.

    ``s`` and ``grad`` share one shape (any layout); returns a new C array of that shape,
    float32/float64 (other real dtypes promote as in ``pure``).
    """
    cdef:
        cnp.ndarray sa = fast_array(s)
        cnp.ndarray ga = fast_array(grad)
        cnp.ndarray out
        int tn = kernel_type(sa, ga, None)
        int nd = cnp.PyArray_NDIM(sa)
        Py_ssize_t ax
        Call k
    if tn < 0:
        return pure.softmax_backward(sa, ga, axis)
    check_same_shape(sa, ga, "softmax_backward", "the output and gradient")
    ax = one_axis(axis, nd if nd > 0 else 1)   # a 0-d array has one axis
    # dims are read after the conversions: a converted temporary may have been the only owner
    sa = as_c_typed(sa, tn)
    ga = as_c_typed(ga, tn)
    _split(nd, cnp.PyArray_DIMS(sa), ax, &k.n0, &k.n1, &k.n2)
    out = cnp.PyArray_EMPTY(nd, cnp.PyArray_DIMS(sa), tn, 0)
    if k.n0 * k.n1 * k.n2 == 0:
        return out
    k.scratch = NULL
    if k.n2 > 1:
        k.scratch = PyMem_Malloc(k.n2 * cnp.PyArray_ITEMSIZE(out))
        if k.scratch == NULL:
            raise MemoryError()
    k.a = cnp.PyArray_DATA(sa)
    k.b = cnp.PyArray_DATA(ga)
    k.out = cnp.PyArray_DATA(out)
    run_typed(tn, &k, _backward_call[float], _backward_call[double])
    PyMem_Free(k.scratch)
    return out
