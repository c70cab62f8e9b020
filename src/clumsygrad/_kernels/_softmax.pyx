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

from ._loops cimport UfuncLoop, feclearexcept, fetestexcept, find_loop, fp_flags
from ._shapes cimport (
    LANES, Call, Core32, Core64, as_c_typed, check_same_shape, fast_array, hdot, hsum, kernel_type, one_axis,
    result_array, run_typed, split_at_axis,
)
import numpy as np

from . import pure

cnp.import_array()

__all__ = ["softmax_forward", "softmax_backward"]

cdef enum:
    EXP_LOOP_MAX = 4096   # largest input softmax_forward runs through libc exp (see above)
    SPLIT_MIN = 512       # from here rows along the last axis take NumPy's exp between two passes
    SHORT_ROW = 64        # float32 rows up to this length: the SSE row passes below


cdef extern from *:
    """
    /* Row passes over short float32 rows (an attention map's 16 keys) in SSE registers: the
       max, the sum and the dot product of a row are 4-lane vectors reduced once per row (the
       generic loops reduce 16 lanes one by one: a chain of dependent scalar operations per
       row).  Sums and dots add the four lanes in double.  Without SSE2, plain loops. */
    #if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
    #include <emmintrin.h>
    #define CG_SM_SSE 1
    #else
    #define CG_SM_SSE 0
    #endif

    static float cg_row_max_f32(const float* x, Py_ssize_t n)
    {
        Py_ssize_t i = 1;
        float m = x[0];
    #if CG_SM_SSE
        if (n >= 4) {
            __m128 acc = _mm_loadu_ps(x);
            for (i = 4; i + 4 <= n; i += 4)
                acc = _mm_max_ps(acc, _mm_loadu_ps(x + i));
            acc = _mm_max_ps(acc, _mm_shuffle_ps(acc, acc, _MM_SHUFFLE(1, 0, 3, 2)));
            acc = _mm_max_ps(acc, _mm_shuffle_ps(acc, acc, _MM_SHUFFLE(2, 3, 0, 1)));
            m = _mm_cvtss_f32(acc);
        }
    #endif
        for (; i < n; i++)
            m = x[i] > m ? x[i] : m;
        return m;
    }

    /* sum of x[i] * (y ? y[i] : 1) */
    static double cg_row_dot_f32(const float* x, const float* y, Py_ssize_t n)
    {
        Py_ssize_t i = 0;
        double total = 0.0;
    #if CG_SM_SSE
        if (n >= 4) {
            float lanes[4];
            __m128 acc = _mm_setzero_ps();
            if (y)
                for (; i + 4 <= n; i += 4)
                    acc = _mm_add_ps(acc, _mm_mul_ps(_mm_loadu_ps(x + i), _mm_loadu_ps(y + i)));
            else
                for (; i + 4 <= n; i += 4)
                    acc = _mm_add_ps(acc, _mm_loadu_ps(x + i));
            _mm_storeu_ps(lanes, acc);
            total = ((double)lanes[0] + (double)lanes[1]) + ((double)lanes[2] + (double)lanes[3]);
        }
    #endif
        for (; i < n; i++)
            total += y ? (double)x[i] * (double)y[i] : (double)x[i];
        return total;
    }

    /* out = x - max(x), row by row */
    static void cg_shift_rows_f32(const float* x, float* out, Py_ssize_t rows, Py_ssize_t n)
    {
        Py_ssize_t r, i;
        for (r = 0; r < rows; r++, x += n, out += n) {
            float m = cg_row_max_f32(x, n);
            i = 0;
    #if CG_SM_SSE
            {
                __m128 mv = _mm_set1_ps(m);
                for (; i + 4 <= n; i += 4)
                    _mm_storeu_ps(out + i, _mm_sub_ps(_mm_loadu_ps(x + i), mv));
            }
    #endif
            for (; i < n; i++)
                out[i] = x[i] - m;
        }
    }

    /* out *= 1 / sum(out), row by row */
    static void cg_normalise_rows_f32(float* out, Py_ssize_t rows, Py_ssize_t n)
    {
        Py_ssize_t r, i;
        for (r = 0; r < rows; r++, out += n) {
            float inv = (float)(1.0 / cg_row_dot_f32(out, NULL, n));
            i = 0;
    #if CG_SM_SSE
            {
                __m128 iv = _mm_set1_ps(inv);
                for (; i + 4 <= n; i += 4)
                    _mm_storeu_ps(out + i, _mm_mul_ps(_mm_loadu_ps(out + i), iv));
            }
    #endif
            for (; i < n; i++)
                out[i] = out[i] * inv;
        }
    }

    /* out = s * (g - dot(s, g)) (out += ... when accumulate), row by row */
    static void cg_softmax_vjp_rows_f32(const float* s, const float* g, float* out, Py_ssize_t rows, Py_ssize_t n,
                                        int accumulate)
    {
        Py_ssize_t r, i;
        for (r = 0; r < rows; r++, s += n, g += n, out += n) {
            float dot = (float)cg_row_dot_f32(s, g, n);
            i = 0;
    #if CG_SM_SSE
            {
                __m128 dv = _mm_set1_ps(dot);
                for (; i + 4 <= n; i += 4) {
                    __m128 v = _mm_mul_ps(_mm_loadu_ps(s + i), _mm_sub_ps(_mm_loadu_ps(g + i), dv));
                    _mm_storeu_ps(out + i, accumulate ? _mm_add_ps(_mm_loadu_ps(out + i), v) : v);
                }
            }
    #endif
            for (; i < n; i++)
                out[i] = accumulate ? out[i] + s[i] * (g[i] - dot) : s[i] * (g[i] - dot);
        }
    }
    """
    void cg_shift_rows_f32(const float* x, float* out, Py_ssize_t rows, Py_ssize_t n) noexcept nogil
    void cg_normalise_rows_f32(float* out, Py_ssize_t rows, Py_ssize_t n) noexcept nogil
    void cg_softmax_vjp_rows_f32(const float* s, const float* g, float* out, Py_ssize_t rows, Py_ssize_t n,
                                 int accumulate) noexcept nogil


cdef inline void _run(int tn, Call* k, Core32 f32, Core64 f64, Py_ssize_t n) noexcept:
    """``run_typed`` for large inputs; up to 16384 elements with the GIL held (releasing and
    re-acquiring it costs ~0.1 us, a tenth of an 8x16x16 softmax)."""
    if n > 16384:
        run_typed(tn, k, f32, f64)
    elif tn == cnp.NPY_FLOAT:
        f32(k, NULL)
    else:
        f64(k, NULL)


# NumPy's own inner loops of ``np.exp`` for float32 and float64 (the CPU-dispatched SIMD loops;
# ``_loops.pxd``), called between the compiled passes: the values of ``np.exp(out, out=out)``
# without the ufunc call (~0.5 us, a third of an 8x16x16 softmax).  NULL when the table has no
# such loop; then ``np.exp`` is called.
cdef UfuncLoop _exp_f32 = NULL
cdef UfuncLoop _exp_f64 = NULL
cdef void* _exp_f32_data = NULL
cdef void* _exp_f64_data = NULL
cdef int _FP_FLAGS = fp_flags()
find_loop(np.exp, 1, cnp.NPY_FLOAT, &_exp_f32, &_exp_f32_data)
find_loop(np.exp, 1, cnp.NPY_DOUBLE, &_exp_f64, &_exp_f64_data)


cdef bint _numpy_exp_in_place(int tn, void* out, Py_ssize_t n) noexcept nogil:
    """``out[:n] = exp(out[:n])`` by NumPy's inner loop; False when it was not found."""
    cdef char* args[2]
    cdef cnp.npy_intp dims[1]
    cdef cnp.npy_intp steps[2]
    args[0] = <char*> out
    args[1] = <char*> out
    dims[0] = n
    if tn == cnp.NPY_FLOAT:
        if _exp_f32 == NULL:
            return False
        steps[0] = steps[1] = sizeof(float)
        _exp_f32(args, dims, steps, _exp_f32_data)
    else:
        if _exp_f64 == NULL:
            return False
        steps[0] = steps[1] = sizeof(double)
        _exp_f64(args, dims, steps, _exp_f64_data)
    return True


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
        # a tree over the lanes (vector maxima), not a chain of LANES dependent scalar ones:
        # on a row of 16 the chain was most of the max pass
        for l in range(LANES // 2):
            acc[l] = acc[l + LANES // 2] if acc[l + LANES // 2] > acc[l] else acc[l]
        for l in range(LANES // 4):
            acc[l] = acc[l + LANES // 4] if acc[l + LANES // 4] > acc[l] else acc[l]
        m = acc[0]
        for l in range(1, LANES // 4):
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
    """``out *= 1 / sum(out)`` per row (the pass after NumPy's ``exp``): a product by the
    reciprocal (within an ulp of the quotient; a vector division took a third of the pass)."""
    cdef Py_ssize_t o, i
    cdef floating inv
    for o in range(rows):
        inv = 1 / hsum(out, n)
        for i in range(n):
            out[i] = out[i] * inv
        out += n


cdef void _shift_call(Call* k, floating* tag) noexcept nogil:
    _shift_rows(<const floating*>k.a, <floating*>k.out, k.n0, k.n1)


cdef void _normalise_call(Call* k, floating* tag) noexcept nogil:
    _normalise_rows(<floating*>k.out, k.n0, k.n1)


cdef void _split_call(Call* k, floating* tag) noexcept nogil:
    """The max pass, NumPy's exp loop in place, the sum pass (the exp loops were found)."""
    if floating is float:
        if k.n1 <= SHORT_ROW:
            cg_shift_rows_f32(<const float*>k.a, <float*>k.out, k.n0, k.n1)
            _numpy_exp_in_place(cnp.NPY_FLOAT, k.out, k.n0 * k.n1)
            cg_normalise_rows_f32(<float*>k.out, k.n0, k.n1)
            return
    _shift_rows(<const floating*>k.a, <floating*>k.out, k.n0, k.n1)
    _numpy_exp_in_place(cnp.NPY_FLOAT if floating is float else cnp.NPY_DOUBLE, k.out, k.n0 * k.n1)
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
    split_at_axis(nd, cnp.PyArray_DIMS(xa), ax, &k.n0, &k.n1, &k.n2)
    out = cnp.PyArray_EMPTY(nd, cnp.PyArray_DIMS(xa), tn, 0)
    if k.n0 * k.n1 * k.n2 == 0:
        return out
    if k.n2 == 1 and cnp.PyArray_SIZE(xa) >= SPLIT_MIN:
        # along the last axis: the max pass, NumPy's vectorised exp in place, the sum pass
        k.a = cnp.PyArray_DATA(xa)
        k.out = cnp.PyArray_DATA(out)
        k.n0 = k.n0 * k.n2
        if _exp_f32 != NULL and _exp_f64 != NULL:  # the three passes in one call
            if fetestexcept(_FP_FLAGS):  # stale flags: cleared (rare; the test is the cheap part)
                feclearexcept(_FP_FLAGS)
            _run(tn, &k, _split_call[float], _split_call[double], cnp.PyArray_SIZE(out))
            if not fetestexcept(_FP_FLAGS):
                return out
            # a flag was raised (underflow of far-off logits, NaN): again with np.exp, which
            # reports it as NumPy does (np.errstate), like the pure twin
            feclearexcept(_FP_FLAGS)
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
                        Py_ssize_t outer, Py_ssize_t n, Py_ssize_t inner, bint accumulate) noexcept nogil:
    """``out = s * (g - sum_axis(s * g))`` (``+=`` when ``accumulate``) on C arrays viewed as
    (outer, n, inner)."""
    cdef:
        Py_ssize_t o, r, i
        floating dot
        const floating* sp
        const floating* gp
        floating* op
    if floating is float:
        if inner == 1 and n <= SHORT_ROW:
            cg_softmax_vjp_rows_f32(<const float*>s, <const float*>g, <float*>out, outer, n, accumulate)
            return
    if inner == 1:
        for o in range(outer):
            dot = hdot(s, g, n)
            if accumulate:
                for i in range(n):
                    out[i] += s[i] * (g[i] - dot)
            else:
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
            if accumulate:
                for i in range(inner):
                    op[i] += sp[i] * (gp[i] - acc[i])
            else:
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
                  k.n0, k.n1, k.n2, k.accumulate)


def softmax_backward(s, grad, axis, out=None):
    """``s * (grad - sum(s * grad, axis, keepdims=True))`` for a softmax output ``s``.

    ``s`` and ``grad`` share one shape (any layout); returns a new C array of that shape,
    float32/float64 (other real dtypes promote as in ``pure``), or ``out`` with the result
    added into it (``checks.check_out``).
    """
    cdef:
        cnp.ndarray sa = fast_array(s)
        cnp.ndarray ga = fast_array(grad)
        cnp.ndarray result
        int tn = kernel_type(sa, ga, None)
        int nd = cnp.PyArray_NDIM(sa)
        Py_ssize_t ax
        Call k
    if tn < 0:
        return pure.softmax_backward(sa, ga, axis, out)
    check_same_shape(sa, ga, "softmax_backward", "the output and gradient")
    ax = one_axis(axis, nd if nd > 0 else 1)   # a 0-d array has one axis
    result = result_array(out, nd, cnp.PyArray_DIMS(sa), tn, "softmax_backward", sa, ga, &k)
    # dims are read after the conversions: a converted temporary may have been the only owner
    sa = as_c_typed(sa, tn)
    ga = as_c_typed(ga, tn)
    split_at_axis(nd, cnp.PyArray_DIMS(sa), ax, &k.n0, &k.n1, &k.n2)
    if k.n0 * k.n1 * k.n2 == 0:
        return result
    k.scratch = NULL
    if k.n2 > 1:
        k.scratch = PyMem_Malloc(k.n2 * cnp.PyArray_ITEMSIZE(result))
        if k.scratch == NULL:
            raise MemoryError()
    k.a = cnp.PyArray_DATA(sa)
    k.b = cnp.PyArray_DATA(ga)
    k.out = cnp.PyArray_DATA(result)
    _run(tn, &k, _backward_call[float], _backward_call[double], cnp.PyArray_SIZE(result))
    PyMem_Free(k.scratch)
    return result
