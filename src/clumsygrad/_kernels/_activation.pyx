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
  The axis errors are ``clumsygrad.log_softmax``'s (``checks.log_softmax_axis``): the public
  function calls the kernel with no check of its own.
* ``sigmoid_forward(x)``: ``1 / (1 + exp(-x))`` with NumPy's own ``exp`` loop (``_loops.pxd``)
  between a negation and a reciprocal pass, block by block: the values of the NumPy formula,
  bit for bit, without its three ufunc calls and temporaries.  Overflow of ``exp(-x)`` (very
  negative ``x``) is ignored, as the formula's ``np.errstate(over="ignore")`` does; any other
  floating-point flag that NumPy would report under the caller's ``np.errstate`` (underflow when
  it is not ignored, invalid) has the call redone by the pure twin, which reports it as NumPy does.
"""
cimport numpy as cnp
from cython cimport floating
from libc.math cimport erf, exp, log, tanh

from ._loops cimport UfuncLoop, FE_DIVBYZERO, FE_INVALID, FE_UNDERFLOW, feclearexcept, fetestexcept, find_loop, fp_flags
from ._shapes cimport (
    PyNumber_AsSsize_t, Call, as_c_typed, check_same_shape, fast_array, kernel_type, one_axis, result_array,
    run_typed, split_at_axis,
)

import numpy as np

from . import checks, pure

cnp.import_array()

__all__ = ["gelu_forward", "gelu_backward", "log_softmax_forward", "log_softmax_backward", "sigmoid_forward"]

cdef enum:
    EXP_LOOP_MAX = 4096   # larger inputs: the pure twin's vectorised NumPy passes
    SIGMOID_BLOCK = 1024  # elements per negate / exp / reciprocal round (in L1)
    WITH_GIL_MAX = 16384  # up to this size the GIL stays held (dropping it costs ~0.1 us)

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


cdef Py_ssize_t _log_softmax_axis(cnp.ndarray xa, object axis) except -1:
    """``checks.log_softmax_axis(xa.shape, axis)``: an in-range int axis along which ``xa`` has
    elements is read in C; anything else goes to ``checks``, which raises the error."""
    cdef int nd = cnp.PyArray_NDIM(xa)
    cdef Py_ssize_t a, n = nd if nd > 0 else 1
    if type(axis) is int:
        a = PyNumber_AsSsize_t(axis, NULL)  # clipped when huge: out of range either way
        if -n <= a < n:
            if a < 0:
                a += n
            if nd == 0 or cnp.PyArray_DIM(xa, <int>a) != 0:
                return a
    return checks.log_softmax_axis((<object>xa).shape, axis)


def log_softmax_forward(x, axis):
    """``log(softmax(x, axis))`` as ``(x - max) - log(sum(exp(x - max)))`` for one int ``axis``:
    a new C array of ``x``'s shape, float32/float64.  A 0-d ``x`` takes axis 0 or -1.  The axis
    errors are ``clumsygrad.log_softmax``'s (``checks.log_softmax_axis``)."""
    cdef:
        cnp.ndarray xa = fast_array(x)
        cnp.ndarray out
        int tn = kernel_type(xa, None, None)
        int nd = cnp.PyArray_NDIM(xa)
        Py_ssize_t ax
        Call k
    if tn < 0:
        return pure.log_softmax_forward(xa, axis)
    ax = _log_softmax_axis(xa, axis)
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


# ----------------------------------------------------------------- sigmoid
# NumPy's own ``exp`` loops for float32 and float64 (``_loops.pxd``); NULL when its table has
# none, and then the pure twin runs.
cdef UfuncLoop _exp_f32 = NULL
cdef UfuncLoop _exp_f64 = NULL
cdef void* _exp_f32_data = NULL
cdef void* _exp_f64_data = NULL
cdef int _FP_FLAGS = fp_flags()
cdef int _REPORTED = FE_UNDERFLOW | FE_INVALID | FE_DIVBYZERO  # the flags NumPy may report here
find_loop(np.exp, 1, cnp.NPY_FLOAT, &_exp_f32, &_exp_f32_data)
find_loop(np.exp, 1, cnp.NPY_DOUBLE, &_exp_f64, &_exp_f64_data)
try:  # NumPy's error state as a dict, read in C (``np.geterr`` is a Python function around it)
    from numpy._core._multiarray_umath import _get_extobj_dict as _error_state
except ImportError:  # another NumPy: its public function
    _error_state = np.geterr


cdef void _sigmoid_core(Call* k, floating* tag) noexcept nogil:
    """``out = 1 / (1 + exp(-x))`` over ``n0`` contiguous elements, block by block: the negation,
    NumPy's ``exp`` loop in place, the reciprocal (each step rounded as NumPy's ufunc rounds it)."""
    cdef const floating* x = <const floating*>k.a
    cdef floating* out = <floating*>k.out
    cdef Py_ssize_t i, m, left = k.n0
    cdef floating one = 1
    cdef char* args[2]
    cdef cnp.npy_intp dims[1]
    cdef cnp.npy_intp steps[2]
    steps[0] = steps[1] = sizeof(floating)
    while left > 0:
        m = left if left < SIGMOID_BLOCK else SIGMOID_BLOCK
        for i in range(m):
            out[i] = -x[i]
        args[0] = args[1] = <char*>out
        dims[0] = m
        if floating is float:
            _exp_f32(args, dims, steps, _exp_f32_data)
        else:
            _exp_f64(args, dims, steps, _exp_f64_data)
        for i in range(m):
            out[i] = one / (one + out[i])  # in floating: a literal 1 would make it double
        x += m
        out += m
        left -= m


def sigmoid_forward(x):
    """``1 / (1 + exp(-x))`` elementwise: a new C array of ``x``'s shape, float32/float64 (other
    real dtypes promote as in ``pure``), equal bit for bit to NumPy's formula; very negative
    ``x`` saturates to 0 without an overflow warning."""
    cdef:
        cnp.ndarray xa = fast_array(x)
        cnp.ndarray out
        int tn = kernel_type(xa, None, None)
        int raised
        Call k
    if tn < 0 or _exp_f32 == NULL or _exp_f64 == NULL:
        return pure.sigmoid_forward(xa)
    xa = as_c_typed(xa, tn)
    out = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(xa), cnp.PyArray_DIMS(xa), tn, 0)
    k.a = cnp.PyArray_DATA(xa)
    k.out = cnp.PyArray_DATA(out)
    k.n0 = cnp.PyArray_SIZE(xa)
    if k.n0 == 0:
        return out
    if fetestexcept(_FP_FLAGS):  # stale flags of earlier code: cleared (the test is the cheap part)
        feclearexcept(_FP_FLAGS)
    if k.n0 > WITH_GIL_MAX:
        run_typed(tn, &k, _sigmoid_core[float], _sigmoid_core[double])
    elif tn == cnp.NPY_FLOAT:
        _sigmoid_core[float](&k, NULL)
    else:
        _sigmoid_core[double](&k, NULL)
    raised = fetestexcept(_REPORTED)
    feclearexcept(_FP_FLAGS)
    if raised:
        # underflow (tiny exp(-x) or results) is reported only when np.errstate asks for it;
        # invalid or divide-by-zero (a signalling NaN) always: then NumPy's formula reports it
        if raised != FE_UNDERFLOW or _error_state()["under"] != "ignore":
            return pure.sigmoid_forward(xa)
    return out
