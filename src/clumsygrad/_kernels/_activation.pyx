# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled activations whose NumPy forms take many passes over the array.

* ``gelu_forward(x, approximate)`` / ``gelu_backward(x, grad, approximate)``: the exact form
  with libm's ``erf`` (the pure twin evaluates erf as a float64 series in NumPy: ~60 passes),
  or the tanh form; one pass, each element in double, rounded once to the array's dtype.
* ``log_softmax_forward(x, axis)`` / ``log_softmax_backward(y, grad, axis)``: per line along
  the axis, the max, the sum of exponentials (in double) and the output in one walk; the
  backward ``grad - exp(y) * sum(grad)``.  Inputs are made C-contiguous and seen as
  ``(outer, n, inner)``.  Above ``EXP_LOOP_MAX`` elements the pure twin's NumPy passes are
  faster (its ``exp`` is vectorised, libm's is a call per element), so they run there.
"""
cimport numpy as cnp
from cython cimport floating
from libc.math cimport erf, exp, log, tanh

from ._shapes cimport (
    Call, as_c_typed, check_same_shape, fast_array, kernel_type, one_axis, result_array, run_typed, split_at_axis,
)

from . import pure

cnp.import_array()

__all__ = ["gelu_forward", "gelu_backward", "log_softmax_forward", "log_softmax_backward"]

cdef enum:
    EXP_LOOP_MAX = 4096   # larger inputs: the pure twin's vectorised NumPy passes

cdef double SQRT_HALF = 0.70710678118654752440
cdef double INV_SQRT_2PI = 0.39894228040143267794
cdef double SQRT_2_OVER_PI = 0.79788456080286535588
cdef double CUBIC = 0.044715


cdef int _tanh_form(object approximate) except -1:
    """1 for ``"tanh"``, 0 for ``"none"``; anything else gets the pure twin's error."""
    if type(approximate) is str:
        if approximate == "none":
            return 0
        if approximate == "tanh":
            return 1
    pure._gelu_form(approximate)  # raises
    return -1


# ----------------------------------------------------------------- gelu
cdef void _gelu_forward_core(Call* k, floating* tag) noexcept nogil:
    cdef const floating* x = <const floating*>k.a
    cdef floating* out = <floating*>k.out
    cdef Py_ssize_t i
    cdef double v
    if k.flag:
        for i in range(k.n0):
            v = x[i]
            out[i] = <floating>(0.5 * v * (1.0 + tanh(SQRT_2_OVER_PI * (v + CUBIC * v * v * v))))
    else:
        for i in range(k.n0):
            v = x[i]
            out[i] = <floating>(v * (0.5 * (1.0 + erf(v * SQRT_HALF))))


cdef void _gelu_backward_core(Call* k, floating* tag) noexcept nogil:
    cdef const floating* x = <const floating*>k.a
    cdef const floating* g = <const floating*>k.b
    cdef floating* out = <floating*>k.out
    cdef Py_ssize_t i
    cdef double v, t, slope
    for i in range(k.n0):
        v = x[i]
        if k.flag:
            t = tanh(SQRT_2_OVER_PI * (v + CUBIC * v * v * v))
            slope = 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * CUBIC * v * v)
        else:
            slope = 0.5 * (1.0 + erf(v * SQRT_HALF)) + v * INV_SQRT_2PI * exp(-0.5 * v * v)
        if k.accumulate:
            out[i] += <floating>(g[i] * slope)
        else:
            out[i] = <floating>(g[i] * slope)


def gelu_forward(x, approximate="none"):
    """``x * Phi(x)`` (``approximate="none"``) or ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``
    elementwise: a new C array of ``x``'s shape, float32/float64 (other real dtypes promote as in
    ``pure``)."""
    cdef:
        cnp.ndarray xa = fast_array(x)
        cnp.ndarray out
        int tn = kernel_type(xa, None, None)
        int form = _tanh_form(approximate)
        Call k
    if tn < 0:
        return pure.gelu_forward(xa, approximate)
    xa = as_c_typed(xa, tn)
    out = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(xa), cnp.PyArray_DIMS(xa), tn, 0)
    k.a = cnp.PyArray_DATA(xa)
    k.out = cnp.PyArray_DATA(out)
    k.n0 = cnp.PyArray_SIZE(xa)
    k.flag = form
    run_typed(tn, &k, _gelu_forward_core[float], _gelu_forward_core[double])
    return out


def gelu_backward(x, grad, approximate="none", out=None):
    """``grad * gelu'(x)`` for the form ``approximate``; ``x`` and ``grad`` share one shape (any
    layout).  Returns a new C array of that shape, float32/float64, or ``out`` with the result
    added into it (``checks.check_out``)."""
    cdef:
        cnp.ndarray xa = fast_array(x)
        cnp.ndarray ga = fast_array(grad)
        cnp.ndarray result
        int tn = kernel_type(xa, ga, None)
        int form = _tanh_form(approximate)
        Call k
    if tn < 0:
        return pure.gelu_backward(xa, ga, approximate, out)
    check_same_shape(xa, ga, "gelu_backward", "the input and gradient")
    result = result_array(out, cnp.PyArray_NDIM(ga), cnp.PyArray_DIMS(ga), tn, "gelu_backward", xa, ga, &k)
    xa = as_c_typed(xa, tn)
    ga = as_c_typed(ga, tn)
    k.a = cnp.PyArray_DATA(xa)
    k.b = cnp.PyArray_DATA(ga)
    k.out = cnp.PyArray_DATA(result)
    k.n0 = cnp.PyArray_SIZE(ga)
    k.flag = form
    run_typed(tn, &k, _gelu_backward_core[float], _gelu_backward_core[double])
    return result


# ----------------------------------------------------------------- log-softmax
cdef void _log_softmax_forward_core(Call* k, floating* tag) noexcept nogil:
    """Per line: ``out = (x - max) - log(sum(exp(x - max)))``, the sum in double."""
    cdef const floating* x
    cdef floating* out
    cdef Py_ssize_t o, j, i, n = k.n1, inner = k.n2
    cdef floating top, shift
    cdef double total
    for o in range(k.n0):
        for j in range(inner):
            x = <const floating*>k.a + o * n * inner + j
            out = <floating*>k.out + o * n * inner + j
            top = x[0]
            for i in range(1, n):
                if x[i * inner] > top or x[i * inner] != x[i * inner]:
                    top = x[i * inner]  # NaN wins, as in np.maximum.reduce
            total = 0.0
            for i in range(n):
                total += exp(<double>(x[i * inner] - top))
            shift = <floating>log(total)
            for i in range(n):
                out[i * inner] = (x[i * inner] - top) - shift


cdef void _log_softmax_backward_core(Call* k, floating* tag) noexcept nogil:
    """Per line: ``out = g - exp(y) * sum(g)``, the sum in double."""
    cdef const floating* y
    cdef const floating* g
    cdef floating* out
    cdef Py_ssize_t o, j, i, n = k.n1, inner = k.n2, base
    cdef double total
    cdef floating s
    for o in range(k.n0):
        for j in range(inner):
            base = o * n * inner + j
            y = <const floating*>k.a + base
            g = <const floating*>k.b + base
            out = <floating*>k.out + base
            total = 0.0
            for i in range(n):
                total += g[i * inner]
            s = <floating>total
            if k.accumulate:
                for i in range(n):
                    out[i * inner] += g[i * inner] - <floating>exp(<double>y[i * inner]) * s
            else:
                for i in range(n):
                    out[i * inner] = g[i * inner] - <floating>exp(<double>y[i * inner]) * s


def log_softmax_forward(x, axis):
    """``log(softmax(x, axis))`` as ``(x - max) - log(sum(exp(x - max)))`` for one int ``axis``:
    a new C array of ``x``'s shape, float32/float64.  A 0-d ``x`` takes axis 0 or -1."""
    cdef:
        cnp.ndarray xa = fast_array(x)
        cnp.ndarray out
        int tn = kernel_type(xa, None, None)
        int nd = cnp.PyArray_NDIM(xa)
        Py_ssize_t ax
        Call k
    if tn < 0:
        return pure.log_softmax_forward(xa, axis)
    ax = one_axis(axis, nd if nd > 0 else 1)
    if nd and cnp.PyArray_DIM(xa, <int>ax) == 0:
        raise ValueError(
            f"log_softmax_forward over axis {ax} of shape {(<object>xa).shape}, which has no elements"
        )
    if cnp.PyArray_SIZE(xa) > EXP_LOOP_MAX:
        return pure.log_softmax_forward(xa, axis)
    xa = as_c_typed(xa, tn)
    out = cnp.PyArray_EMPTY(nd, cnp.PyArray_DIMS(xa), tn, 0)
    split_at_axis(nd, cnp.PyArray_DIMS(xa), ax, &k.n0, &k.n1, &k.n2)
    if k.n0 * k.n1 * k.n2 == 0:
        return out
    k.a = cnp.PyArray_DATA(xa)
    k.out = cnp.PyArray_DATA(out)
    run_typed(tn, &k, _log_softmax_forward_core[float], _log_softmax_forward_core[double])
    return out


def log_softmax_backward(y, grad, axis, out=None):
    """``grad - exp(y) * sum(grad, axis, keepdims=True)`` for a log-softmax output ``y``; ``y`` and
    ``grad`` share one shape (any layout).  Returns a new C array of that shape, float32/float64,
    or ``out`` with the result added into it (``checks.check_out``)."""
    cdef:
        cnp.ndarray ya = fast_array(y)
        cnp.ndarray ga = fast_array(grad)
        cnp.ndarray result
        int tn = kernel_type(ya, ga, None)
        int nd = cnp.PyArray_NDIM(ya)
        Py_ssize_t ax
        Call k
    if tn < 0:
        return pure.log_softmax_backward(ya, ga, axis, out)
    check_same_shape(ya, ga, "log_softmax_backward", "the output and gradient")
    ax = one_axis(axis, nd if nd > 0 else 1)
    if cnp.PyArray_SIZE(ya) > EXP_LOOP_MAX:
        return pure.log_softmax_backward(ya, ga, axis, out)
    result = result_array(out, nd, cnp.PyArray_DIMS(ga), tn, "log_softmax_backward", ya, ga, &k)
    ya = as_c_typed(ya, tn)
    ga = as_c_typed(ga, tn)
    split_at_axis(nd, cnp.PyArray_DIMS(ga), ax, &k.n0, &k.n1, &k.n2)
    if k.n0 * k.n1 * k.n2 == 0:
        return result
    k.a = cnp.PyArray_DATA(ya)
    k.b = cnp.PyArray_DATA(ga)
    k.out = cnp.PyArray_DATA(result)
    run_typed(tn, &k, _log_softmax_backward_core[float], _log_softmax_backward_core[double])
    return result
