# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled ``cross_entropy_backward``: ``(softmax(z) * sum(t) - t) * s`` per row, fused.

One pass per row of the (N, C) logits while the row is in L1: the max, ``exp(z - max)``
written straight into the output, the sum of the exponentials (``hsum``: partial sums in
double blocks), then one elementwise pass that normalises, scales and subtracts the target
(for class labels: one subtraction at the label).  Softmax of logits in the thousands stays
finite because the max is subtracted before ``exp``.

libc ``expf`` costs about 6 ns per element here against well under 1 ns for NumPy's SIMD
``np.exp``: above ``EXP_LOOP_MAX`` elements the rows are split into three passes instead,
``z - max`` (compiled), ``np.exp`` in place, then the fused normalise-and-subtract pass
(256x1000 float32: 1.59 ms fused with libc ``exp``, against 431 us for ``pure``).

Validation is ``checks``' own (``cross_entropy_targets``, ``cross_entropy_scale``): labels are
checked and converted to intp there, before the ``nogil`` loop trusts them, and both twins
raise the same errors.
"""
cimport numpy as cnp

from cython cimport floating
from libc.math cimport exp, expf

from ._shapes cimport Call, as_c_typed, fast_array, hsum, kernel_type, run_typed

import numpy as np

from . import checks, pure

cnp.import_array()

__all__ = ["cross_entropy_backward"]


cdef enum:
    EXP_LOOP_MAX = 4096   # largest input whose exponentials come from libc exp (see above)


cdef inline floating _exp(floating v) noexcept nogil:
    if floating is float:
        return expf(v)
    else:
        return exp(v)


cdef void _shift_rows(const floating* z, Py_ssize_t n, Py_ssize_t c, bint take_exp,
                      floating* out) noexcept nogil:
    """``out = z - max(z)`` per row of (n, c) ``z``, then ``exp`` of it when ``take_exp``.  ``c >= 1``."""
    cdef:
        Py_ssize_t i, k
        floating m
    for i in range(n):
        m = z[0]
        for k in range(1, c):
            m = z[k] if z[k] > m else m
        if take_exp:
            for k in range(c):
                out[k] = _exp(z[k] - m)
        else:
            for k in range(c):
                out[k] = z[k] - m
        z += c
        out += c


cdef void _ce_rows(const cnp.npy_intp* labels, const floating* t, const floating* scales,
                   floating scale, Py_ssize_t n, Py_ssize_t c, floating* out) noexcept nogil:
    """Rows of ``(softmax(z) sum(t) - t) * s`` from ``out = exp(z - max(z))``, in place;
    ``labels`` (one-hot rows) or ``t`` is NULL, ``s`` is ``scales[i]`` or, when ``scales`` is
    NULL, ``scale``.  ``c >= 1``."""
    cdef:
        Py_ssize_t i, k
        floating total, s, t_sum
    for i in range(n):
        total = hsum(out, c)
        s = scales[i] if scales != NULL else scale
        if t == NULL:
            for k in range(c):
                out[k] = (out[k] / total) * s
            out[labels[i]] -= s
        else:
            t_sum = hsum(t, c)
            for k in range(c):
                out[k] = ((out[k] / total) * t_sum - t[k]) * s
            t += c
        out += c


cdef void _shift_call(Call* k, floating* tag) noexcept nogil:
    _shift_rows(<const floating*>k.a, k.n0, k.n1, k.flag, <floating*>k.out)


cdef void _rows_call(Call* k, floating* tag) noexcept nogil:
    _ce_rows(<const cnp.npy_intp*>k.aux, <const floating*>k.b, <const floating*>k.c, <floating>k.s0,
             k.n0, k.n1, <floating*>k.out)


def cross_entropy_backward(logits, target, grad, reduction):
    """Gradient of cross-entropy with respect to (N, C) ``logits``: ``(softmax(z) sum(t) - t) * s``.

    ``target`` is class labels (N,) or targets (N, C); ``s`` per row is ``grad / N`` ("mean"),
    ``grad`` ("sum") or ``grad[i]`` ("none").  Inputs have any layout; returns a new C array
    in float32/float64 (other real dtypes promote as in ``pure``).
    """
    cdef:
        cnp.ndarray za = fast_array(logits)
        cnp.ndarray ga = fast_array(grad)
        cnp.ndarray ta = None
        cnp.ndarray sa = None
        cnp.ndarray out
        int tn
        Py_ssize_t n, c
        Call k
    labels, dense = checks.cross_entropy_targets(za, target)
    tn = kernel_type(za, ga, dense)
    if tn < 0:
        return pure.cross_entropy_backward(za, target, ga, reduction)
    n = cnp.PyArray_DIM(za, 0)
    c = cnp.PyArray_DIM(za, 1)
    scales = checks.cross_entropy_scale(ga, n, reduction, cnp.PyArray_DescrFromType(tn))
    k.aux = k.b = k.c = NULL
    k.s0 = 0.0
    if reduction == "none":
        sa = as_c_typed(scales, tn)
        k.c = cnp.PyArray_DATA(sa)
    elif n:
        k.s0 = (<object>scales)[0, 0]
    za = as_c_typed(za, tn)
    if dense is None:
        k.aux = cnp.PyArray_DATA(<cnp.ndarray>labels)
    else:
        ta = as_c_typed(dense, tn)
        k.b = cnp.PyArray_DATA(ta)
    out = cnp.PyArray_EMPTY(2, cnp.PyArray_DIMS(za), tn, 0)
    if n == 0:
        return out
    k.a = cnp.PyArray_DATA(za)
    k.out = cnp.PyArray_DATA(out)
    k.n0 = n
    k.n1 = c
    k.flag = n * c <= EXP_LOOP_MAX
    run_typed(tn, &k, _shift_call[float], _shift_call[double])
    if not k.flag:
        np.exp(out, out=out)
    run_typed(tn, &k, _rows_call[float], _rows_call[double])
    return out
