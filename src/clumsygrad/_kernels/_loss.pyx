# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled mean squared error: ``mse_forward`` (the loss) and ``mse_backward`` (both gradients).

Each is one pass over C-contiguous float32/float64 operands (the wrapper converts others).
The forward sum takes the differences of a block of ``SUM_BLOCK`` elements into a stack
buffer and hands it to the shared ``hdot`` (vectorised partial sums, blocks added in
double), so it is as accurate as NumPy's pairwise sum without a temporary array.
The backward pass computes ``((pred - target) * (2/n)) * grad`` in the order ``pure`` does,
so the two agree to the bit on float inputs.
"""
cimport numpy as cnp
from cython cimport floating

from ._shapes cimport (
    SUM_BLOCK, as_c_typed, fast_array, hdot, kernel_typenum, native_float_typenum, same_shape,
    slow_result_dtype,
)

from . import pure

cnp.import_array()

__all__ = ["mse_forward", "mse_backward"]


cdef double _sum_sq_diff(const floating* p, const floating* t, Py_ssize_t n) noexcept nogil:
    """Sum of ``(p[i] - t[i])**2`` over ``0 <= i < n``."""
    cdef:
        floating buf[SUM_BLOCK]
        floating* bp
        Py_ssize_t k, i
        double total = 0.0
    while n > 0:
        k = n if n < SUM_BLOCK else SUM_BLOCK
        bp = buf
        for i in range(k):
            bp[i] = p[i] - t[i]
        total += hdot(buf, buf, k)
        p += k
        t += k
        n -= k
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


cdef int _check_pair(cnp.ndarray pa, cnp.ndarray ta, str name) except -1:
    if not same_shape(pa, ta):
        raise ValueError(
            f"{name} needs the prediction and target in one shape, "
            f"got {(<object>pa).shape} and {(<object>ta).shape}"
        )
    return 0


def mse_forward(pred, target):
    """``mean((pred - target)**2)`` as a 0-d float32/float64 array (NaN when empty).

    ``pred`` and ``target`` share one shape, any layout; other real dtypes promote as in ``pure``.
    """
    cdef:
        cnp.ndarray pa = fast_array(pred)
        cnp.ndarray ta = fast_array(target)
        cnp.ndarray out
        int tn
        Py_ssize_t n
        double total
    tn = native_float_typenum(pa)
    if tn < 0 or native_float_typenum(ta) != tn:
        tn = kernel_typenum(slow_result_dtype((pa, ta)))
        if tn < 0:
            return pure.mse_forward(pa, ta)
    _check_pair(pa, ta, "mse_forward")
    n = cnp.PyArray_SIZE(pa)
    if n == 0:
        return pure.mse_forward(pa, ta)  # NaN, with NumPy's "mean of empty slice" warnings
    pa = as_c_typed(pa, tn)
    ta = as_c_typed(ta, tn)
    out = cnp.PyArray_EMPTY(0, NULL, tn, 0)
    if tn == cnp.NPY_FLOAT:
        with nogil:
            total = _sum_sq_diff[float](<const float*>cnp.PyArray_DATA(pa),
                                        <const float*>cnp.PyArray_DATA(ta), n)
        (<float*>cnp.PyArray_DATA(out))[0] = <float>(total / n)
    else:
        with nogil:
            total = _sum_sq_diff[double](<const double*>cnp.PyArray_DATA(pa),
                                         <const double*>cnp.PyArray_DATA(ta), n)
        (<double*>cnp.PyArray_DATA(out))[0] = total / n
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
        int tn, nd
        bint want_pred, want_target
        Py_ssize_t n
        double c
        void* dpp = NULL
        void* dtp = NULL
    tn = native_float_typenum(pa)
    if tn < 0 or native_float_typenum(ta) != tn or native_float_typenum(ga) != tn:
        tn = kernel_typenum(slow_result_dtype((pa, ta, ga)))
        if tn < 0:
            return pure.mse_backward(pa, ta, ga, need_pred, need_target)
    _check_pair(pa, ta, "mse_backward")
    if cnp.PyArray_SIZE(ga) != 1:
        raise ValueError(
            "mse_backward needs a one-element gradient (the loss is a scalar), "
            f"got shape {(<object>ga).shape}"
        )
    want_pred = need_pred
    want_target = need_target
    pa = as_c_typed(pa, tn)
    ta = as_c_typed(ta, tn)
    ga = as_c_typed(ga, tn)
    n = cnp.PyArray_SIZE(pa)
    nd = cnp.PyArray_NDIM(pa)
    c = 2.0 / (n if n > 1 else 1)
    if want_pred:
        dp = cnp.PyArray_EMPTY(nd, cnp.PyArray_DIMS(pa), tn, 0)
        dpp = cnp.PyArray_DATA(dp)
    if want_target:
        dt = cnp.PyArray_EMPTY(nd, cnp.PyArray_DIMS(pa), tn, 0)
        dtp = cnp.PyArray_DATA(dt)
    if tn == cnp.NPY_FLOAT:
        with nogil:
            _mse_grad_core[float](<const float*>cnp.PyArray_DATA(pa), <const float*>cnp.PyArray_DATA(ta),
                                  <float>c, (<float*>cnp.PyArray_DATA(ga))[0],
                                  <float*>dpp, <float*>dtp, n)
    else:
        with nogil:
            _mse_grad_core[double](<const double*>cnp.PyArray_DATA(pa), <const double*>cnp.PyArray_DATA(ta),
                                   c, (<double*>cnp.PyArray_DATA(ga))[0],
                                   <double*>dpp, <double*>dtp, n)
    return dp, dt
