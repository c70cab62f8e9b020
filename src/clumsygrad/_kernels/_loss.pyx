# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled mean squared error: ``mse_forward`` (the loss) and ``mse_backward`` (both gradients).

Each is one pass over C-contiguous float32/float64 operands (the wrapper converts others).
The forward sum keeps ``LANES`` partial sums of the squared differences in one pass (the
shape of the shared ``hdot``: vectorised, blocks of ``SUM_BLOCK`` added in double), so it is as
accurate as NumPy's pairwise sum without a temporary array.  Inputs of up to ``GIL_KEPT_MAX``
elements are computed without releasing the GIL.
The backward pass computes ``((pred - target) * (2/n)) * grad`` in the order ``pure`` does,
so the two agree to the bit on float inputs.
"""
cimport numpy as cnp
from cython cimport floating

from ._shapes cimport (
    LANES, SUM_BLOCK, Call, Core32, Core64, as_c_typed, check_same_shape, fast_array, kernel_type, run_typed,
    same_shape,
)

from . import checks, pure

cnp.import_array()

__all__ = ["mse_forward", "mse_backward"]


cdef enum:
    GIL_KEPT_MAX = 16384   # up to this many elements the GIL is kept (releasing it costs more)


cdef inline void _run(int tn, Call* k, Core32 f32, Core64 f64, Py_ssize_t n) noexcept:
    """``run_typed`` for large inputs; small ones run with the GIL held (a release and
    re-acquire is ~0.1 us, a sixth of a 16x256 loss)."""
    if n > GIL_KEPT_MAX:
        run_typed(tn, k, f32, f64)
    elif tn == cnp.NPY_FLOAT:
        f32(k, NULL)
    else:
        f64(k, NULL)


cdef double _sum_sq_diff(const floating* p, const floating* t, Py_ssize_t n) noexcept nogil:
    """Sum of ``(p[i] - t[i])**2`` over ``0 <= i < n``: ``LANES`` partial sums of the squared
    differences in one pass (as ``hdot`` does for a product), blocks of ``SUM_BLOCK`` added in
    double, so no buffer of differences is written and read back."""
    cdef:
        const floating* end = p + n
        const floating* block_end
        Py_ssize_t left
        int l
        floating acc[LANES]
        floating d
        double total = 0.0
    while end - p >= LANES:
        left = end - p
        if left > SUM_BLOCK:
            left = SUM_BLOCK
        block_end = p + (left & ~(<Py_ssize_t>(LANES - 1)))
        for l in range(LANES):
            acc[l] = 0
        while p < block_end:
            for l in range(LANES):
                acc[l] += (p[l] - t[l]) * (p[l] - t[l])
            p += LANES
            t += LANES
        for l in range(LANES // 2):
            acc[l] += acc[l + LANES // 2]
        for l in range(LANES // 4):
            acc[l] += acc[l + LANES // 4]
        total += (acc[0] + acc[1]) + (acc[2] + acc[3])
    while p < end:
        d = p[0] - t[0]
        total += d * d
        p += 1
        t += 1
    return total


cdef void _mse_grad_core(const floating* p, const floating* t, floating c, floating g,
                         floating* dp, floating* dt, Py_ssize_t n) noexcept nogil:
    """``dp = ((p - t) * c) * g`` and ``dt = -dp``; either output may be NULL."""
    cdef:
        Py_ssize_t i
        floating d
    if dp != NULL and dt != NULL:
        for i in range(n):
            d = (p[i] - t[i]) * c * g
            dp[i] = d
            dt[i] = -d
    elif dp != NULL:
        for i in range(n):
            dp[i] = (p[i] - t[i]) * c * g
    elif dt != NULL:
        for i in range(n):
            dt[i] = -((p[i] - t[i]) * c * g)


cdef void _mse_call(Call* k, floating* tag) noexcept nogil:
    """``out[0] = sum((a - b)**2) / n0``, the mean rounded once to ``floating``."""
    cdef double total = _sum_sq_diff(<const floating*>k.a, <const floating*>k.b, k.n0)
    (<floating*>k.out)[0] = <floating>(total / k.n0)


cdef void _mse_grad_call(Call* k, floating* tag) noexcept nogil:
    """``_mse_grad_core`` with ``c = s0`` and the one-element gradient ``c[0]``."""
    _mse_grad_core(<const floating*>k.a, <const floating*>k.b, <floating>k.s0, (<const floating*>k.c)[0],
                   <floating*>k.out, <floating*>k.out2, k.n0)


def mse_forward(pred, target):
    """``mean((pred - target)**2)`` as a 0-d float32/float64 array (NaN when empty).

    ``pred`` and ``target`` share one shape, any layout (else ``mse_loss``'s ``ValueError``,
    ``checks.check_mse_shapes``); other real dtypes promote as in ``pure``.
    """
    cdef:
        cnp.ndarray pa = fast_array(pred)
        cnp.ndarray ta = fast_array(target)
        cnp.ndarray out
        int tn = kernel_type(pa, ta, None)
        Call k
    if tn < 0:
        return pure.mse_forward(pa, ta)
    if not same_shape(pa, ta):
        checks.check_mse_shapes(pa, ta)  # raises mse_loss's error (the public function checks nothing)
    if cnp.PyArray_SIZE(pa) == 0:
        return pure.mse_forward(pa, ta)  # NaN, with NumPy's "mean of empty slice" warnings
    pa = as_c_typed(pa, tn)
    ta = as_c_typed(ta, tn)
    out = cnp.PyArray_EMPTY(0, NULL, tn, 0)
    k.a = cnp.PyArray_DATA(pa)
    k.b = cnp.PyArray_DATA(ta)
    k.out = cnp.PyArray_DATA(out)
    k.n0 = cnp.PyArray_SIZE(pa)
    _run(tn, &k, _mse_call[float], _mse_call[double], k.n0)
    return out


def mse_backward(pred, target, grad, need_pred=True, need_target=True):
    """``(d_pred, d_target)`` of ``mean((pred - target)**2)``: ``2 (pred - target) grad / n`` and its negative.

    ``grad`` has one element (any shape, any real dtype); results are new C arrays of
    ``pred.shape`` in ``np.result_type(pred, target, grad, float32)``, None where not needed.
    """
    cdef:
        cnp.ndarray pa = fast_array(pred)
        cnp.ndarray ta = fast_array(target)
        cnp.ndarray ga = fast_array(grad)
        cnp.ndarray dp = None
        cnp.ndarray dt = None
        int tn = kernel_type(pa, ta, ga)
        int nd
        Py_ssize_t n
        Call k
    if tn < 0:
        return pure.mse_backward(pa, ta, ga, need_pred, need_target)
    check_same_shape(pa, ta, "mse_backward", "the prediction and target")
    if cnp.PyArray_SIZE(ga) != 1:
        raise ValueError(
            "mse_backward needs a one-element gradient (the loss is a scalar), "
            f"got shape {(<object>ga).shape}"
        )
    pa = as_c_typed(pa, tn)
    ta = as_c_typed(ta, tn)
    ga = as_c_typed(ga, tn)
    n = cnp.PyArray_SIZE(pa)
    nd = cnp.PyArray_NDIM(pa)
    k.out = k.out2 = NULL
    if need_pred:
        dp = cnp.PyArray_EMPTY(nd, cnp.PyArray_DIMS(pa), tn, 0)
        k.out = cnp.PyArray_DATA(dp)
    if need_target:
        dt = cnp.PyArray_EMPTY(nd, cnp.PyArray_DIMS(pa), tn, 0)
        k.out2 = cnp.PyArray_DATA(dt)
    k.a = cnp.PyArray_DATA(pa)
    k.b = cnp.PyArray_DATA(ta)
    k.c = cnp.PyArray_DATA(ga)
    k.s0 = 2.0 / (n if n > 1 else 1)
    k.n0 = n
    _run(tn, &k, _mse_grad_call[float], _mse_grad_call[double], n)
    return dp, dt
