# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled elementwise steps that NumPy needs two ufunc calls for, or makes slow by dispatch.

* ``relu_forward(x)``: ``max(x, 0)``; ``np.maximum(x, 0)`` resolves its loop and casts the 0
  on every call (~0.65 us at 16x32 against ~0.05 us of work);
* ``relu_backward(y, grad)``: ``grad * (y > 0)`` in one pass over blocks of ``SUM_BLOCK``
  elements (vectorised compares, then multiplies: NaN and infinite gradients behave exactly
  as in ``pure``);
* ``sgd_update(data, grad, lr)``: ``data -= lr * grad`` in place, no temporary.

At the tiny sizes of a small network the cost of a NumPy step is its per-call overhead,
so fusing two calls into one roughly halves it; at large sizes each saves one pass.
"""
cimport numpy as cnp
from cython cimport floating

from ._shapes cimport (
    SUM_BLOCK, Call, as_c_typed, check_same_shape, fast_array, kernel_type, native_float_typenum, result_array,
    run_typed, same_shape,
)

from . import pure

cnp.import_array()

__all__ = ["relu_forward", "relu_backward", "sgd_update"]


cdef void _relu_core(const floating* x, floating* out, Py_ssize_t n) noexcept nogil:
    """``out = max(x, 0)`` as ``np.maximum`` has it: NaN passes through, -0.0 becomes 0.0.

    ``x <= 0`` is false for NaN, so the select keeps it; a compare and a mask, vectorised.
    """
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = 0 if x[i] <= 0 else x[i]


cdef void _relu_grad_core(const floating* y, const floating* g, floating* out,
                          Py_ssize_t n, bint accumulate) noexcept nogil:
    """``out = g * (y > 0)`` (``+=`` when ``accumulate``), the 0/1 factors of a block made first
    in a stack buffer.

    Written as one loop, GCC turns ``g * (floating)(y > 0)`` into ``y > 0 ? g : g * 0`` and,
    since ``inf * 0`` may trap, will not if-convert that branch back: a mispredicted branch per
    element on random signs (3-5 ns against NumPy's 0.4 ns at 256x256).  Two loops over a
    block that stays in L1 are both plain vectorised compares and multiplies.
    """
    cdef:
        floating mask[SUM_BLOCK]
        floating* mp
        Py_ssize_t i, k
    while n > 0:
        k = n if n < SUM_BLOCK else SUM_BLOCK
        mp = mask
        for i in range(k):
            mp[i] = <floating>(y[i] > 0)
        if accumulate:
            for i in range(k):
                out[i] += g[i] * mp[i]
        else:
            for i in range(k):
                out[i] = g[i] * mp[i]
        y += k
        g += k
        out += k
        n -= k


cdef void _axpy_core(floating* d, const floating* g, floating a, Py_ssize_t n) noexcept nogil:
    """``d -= a * g``, the product rounded to ``floating`` first (as NumPy's ``lr * grad``)."""
    cdef Py_ssize_t i
    cdef floating step
    for i in range(n):
        step = a * g[i]
        d[i] = d[i] - step


cdef void _relu_forward_call(Call* k, floating* tag) noexcept nogil:
    _relu_core(<const floating*>k.a, <floating*>k.out, k.n0)


cdef void _relu_call(Call* k, floating* tag) noexcept nogil:
    _relu_grad_core(<const floating*>k.a, <const floating*>k.b, <floating*>k.out, k.n0, k.accumulate)


cdef void _axpy_call(Call* k, floating* tag) noexcept nogil:
    _axpy_core(<floating*>k.out, <const floating*>k.a, <floating>k.s0, k.n0)


def relu_forward(x):
    """``max(x, 0)`` elementwise: a new C array of ``x``'s shape, float32/float64 (other real
    dtypes promote as in ``pure``); NaN stays NaN and -0.0 becomes 0.0, as in ``np.maximum``."""
    cdef:
        cnp.ndarray xa = fast_array(x)
        cnp.ndarray out
        int tn = kernel_type(xa, None, None)
        Call k
    if tn < 0:
        return pure.relu_forward(xa)
    xa = as_c_typed(xa, tn)
    out = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(xa), cnp.PyArray_DIMS(xa), tn, 0)
    k.a = cnp.PyArray_DATA(xa)
    k.out = cnp.PyArray_DATA(out)
    k.n0 = cnp.PyArray_SIZE(xa)
    run_typed(tn, &k, _relu_forward_call[float], _relu_forward_call[double])
    return out


def relu_backward(y, grad, out=None):
    """``grad * (y > 0)`` for a relu output ``y``.

    ``y`` and ``grad`` share one shape (any layout); returns a new C array of that shape,
    float32/float64 (other real dtypes promote as in ``pure``), or ``out`` with the result
    added into it (``checks.check_out``: the result's dtype and shape, C-contiguous).
    """
    cdef:
        cnp.ndarray ya = fast_array(y)
        cnp.ndarray ga = fast_array(grad)
        cnp.ndarray result
        int tn = kernel_type(ya, ga, None)
        Call k
    if tn < 0:
        return pure.relu_backward(ya, ga, out)
    check_same_shape(ya, ga, "relu_backward", "the output and gradient")
    result = result_array(out, cnp.PyArray_NDIM(ga), cnp.PyArray_DIMS(ga), tn, "relu_backward", ya, ga, &k)
    # converting y keeps its sign: every real dtype's positive values stay positive
    ya = as_c_typed(ya, tn)
    ga = as_c_typed(ga, tn)
    k.a = cnp.PyArray_DATA(ya)
    k.b = cnp.PyArray_DATA(ga)
    k.out = cnp.PyArray_DATA(result)
    k.n0 = cnp.PyArray_SIZE(ga)
    run_typed(tn, &k, _relu_call[float], _relu_call[double])
    return result


cdef inline bint _flat_same(cnp.ndarray d, cnp.ndarray g, int tn) noexcept:
    """``d`` and ``g`` are writeable/readable C arrays of ``tn``, one shape, and do not partly overlap."""
    cdef char* dp
    cdef char* gp
    cdef Py_ssize_t nbytes
    if not (cnp.PyArray_TYPE(g) == tn and cnp.PyArray_ISNOTSWAPPED(g) and same_shape(d, g)
            and cnp.PyArray_IS_C_CONTIGUOUS(d) and cnp.PyArray_IS_C_CONTIGUOUS(g)
            and cnp.PyArray_ISALIGNED(d) and cnp.PyArray_ISALIGNED(g)
            and cnp.PyArray_ISWRITEABLE(d)):
        return False
    dp = <char*>cnp.PyArray_DATA(d)
    gp = <char*>cnp.PyArray_DATA(g)
    nbytes = cnp.PyArray_NBYTES(d)
    return dp == gp or gp + nbytes <= dp or dp + nbytes <= gp


def sgd_update(data, grad, lr):
    """``data -= lr * grad`` in place; returns None.

    The compiled loop serves a C-contiguous float32/float64 ``data``, a ``grad`` of its
    dtype and shape and a Python float ``lr``; anything else (other layouts, dtypes, a NumPy
    scalar ``lr``, whose promotion differs) goes to ``pure.sgd_update``, which also raises
    for bad input.
    """
    cdef:
        cnp.ndarray da, ga
        int tn
        Call k
    if cnp.PyArray_CheckExact(data) and cnp.PyArray_CheckExact(grad) and type(lr) is float:
        da = <cnp.ndarray>data
        ga = <cnp.ndarray>grad
        tn = native_float_typenum(da)
        if tn >= 0 and _flat_same(da, ga, tn):
            k.out = cnp.PyArray_DATA(da)
            k.a = cnp.PyArray_DATA(ga)
            k.s0 = lr
            k.n0 = cnp.PyArray_SIZE(da)
            run_typed(tn, &k, _axpy_call[float], _axpy_call[double])
            return None
    return pure.sgd_update(data, grad, lr)
