# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled layer-norm and batch-norm backward passes: the row (or channel) reductions and the
``dx`` formula fused in one C loop, sums in double.

Same names, signatures and results as the pure twins in ``pure.py`` (section "nn kernels"),
whose argument checks run first.
"""
cimport numpy as cnp
from cython cimport floating

import numpy as np

from . import pure

cnp.import_array()

__all__ = ["layer_norm_backward", "batch_norm_backward"]


cdef void _layer_core(const floating* g, const floating* xh, const floating* rstd, const floating* wt,
                      floating* dx, double* dw, double* db, Py_ssize_t M, Py_ssize_t D) noexcept nogil:
    cdef:
        Py_ssize_t r, k
        double s1, s2, gk, r_
    for r in range(M):
        s1 = 0
        s2 = 0
        for k in range(D):
            gk = g[k] * wt[k] if wt != NULL else g[k]
            s1 += gk
            s2 += gk * xh[k]
            if wt != NULL:
                dw[k] += g[k] * xh[k]
                db[k] += g[k]
        s1 /= D
        s2 /= D
        r_ = rstd[r]
        for k in range(D):
            gk = g[k] * wt[k] if wt != NULL else g[k]
            dx[k] = <floating>(r_ * (gk - s1 - xh[k] * s2))
        g += D
        xh += D
        dx += D


def layer_norm_backward(grad, xhat, rstd, weight):
    grad, xhat, rstd, weight, dtype = pure._norm_arrays("layer_norm_backward", grad, xhat, rstd, weight, 2)
    m, d = grad.shape
    if rstd.shape != (m,) or (weight is not None and weight.shape != (d,)):
        raise ValueError(
            f"layer_norm_backward: rstd of shape {rstd.shape} and weight of shape "
            f"{None if weight is None else weight.shape} for rows of shape {(m, d)}"
        )
    cdef cnp.ndarray ga = np.ascontiguousarray(grad, dtype)
    cdef cnp.ndarray xa = np.ascontiguousarray(xhat, dtype)
    cdef cnp.ndarray ra = np.ascontiguousarray(rstd, dtype)
    cdef cnp.ndarray wa = None if weight is None else np.ascontiguousarray(weight, dtype)
    cdef cnp.ndarray dx = np.empty((m, d), dtype)
    cdef cnp.ndarray dw = np.zeros(d, np.float64)
    cdef cnp.ndarray db = np.zeros(d, np.float64)
    cdef Py_ssize_t M = m, D = d
    cdef void* wp = NULL if wa is None else cnp.PyArray_DATA(wa)
    if dtype == np.float32:
        with nogil:
            _layer_core(<const float*>cnp.PyArray_DATA(ga), <const float*>cnp.PyArray_DATA(xa),
                        <const float*>cnp.PyArray_DATA(ra), <const float*>wp, <float*>cnp.PyArray_DATA(dx),
                        <double*>cnp.PyArray_DATA(dw), <double*>cnp.PyArray_DATA(db), M, D)
    else:
        with nogil:
            _layer_core(<const double*>cnp.PyArray_DATA(ga), <const double*>cnp.PyArray_DATA(xa),
                        <const double*>cnp.PyArray_DATA(ra), <const double*>wp, <double*>cnp.PyArray_DATA(dx),
                        <double*>cnp.PyArray_DATA(dw), <double*>cnp.PyArray_DATA(db), M, D)
    if weight is None:
        return dx, None, None
    return dx, dw.astype(dtype), db.astype(dtype)


cdef void _batch_core(const floating* g, const floating* xh, const floating* rstd, const floating* wt,
                      floating* dx, double* dw, double* db, Py_ssize_t N, Py_ssize_t C,
                      Py_ssize_t L) noexcept nogil:
    cdef:
        Py_ssize_t n, c, k, off
        double s1, s2, scale, m = <double>(N * L)
    for c in range(C):
        s1 = 0
        s2 = 0
        for n in range(N):
            off = (n * C + c) * L
            for k in range(L):
                s1 += g[off + k]
                s2 += g[off + k] * xh[off + k]
        db[c] = s1
        dw[c] = s2
        scale = rstd[c] * wt[c] if wt != NULL else rstd[c]
        s1 /= m
        s2 /= m
        for n in range(N):
            off = (n * C + c) * L
            for k in range(L):
                dx[off + k] = <floating>(scale * (g[off + k] - s1 - xh[off + k] * s2))


def batch_norm_backward(grad, xhat, rstd, weight):
    grad, xhat, rstd, weight, dtype = pure._norm_arrays("batch_norm_backward", grad, xhat, rstd, weight, 3)
    n, c, l = grad.shape
    if rstd.shape != (c,) or (weight is not None and weight.shape != (c,)):
        raise ValueError(
            f"batch_norm_backward: rstd of shape {rstd.shape} and weight of shape "
            f"{None if weight is None else weight.shape} for an input of shape {(n, c, l)}"
        )
    cdef cnp.ndarray ga = np.ascontiguousarray(grad, dtype)
    cdef cnp.ndarray xa = np.ascontiguousarray(xhat, dtype)
    cdef cnp.ndarray ra = np.ascontiguousarray(rstd, dtype)
    cdef cnp.ndarray wa = None if weight is None else np.ascontiguousarray(weight, dtype)
    cdef cnp.ndarray dx = np.empty((n, c, l), dtype)
    cdef cnp.ndarray dw = np.zeros(c, np.float64)
    cdef cnp.ndarray db = np.zeros(c, np.float64)
    cdef Py_ssize_t N = n, C = c, L = l
    cdef void* wp = NULL if wa is None else cnp.PyArray_DATA(wa)
    if dtype == np.float32:
        with nogil:
            _batch_core(<const float*>cnp.PyArray_DATA(ga), <const float*>cnp.PyArray_DATA(xa),
                        <const float*>cnp.PyArray_DATA(ra), <const float*>wp, <float*>cnp.PyArray_DATA(dx),
                        <double*>cnp.PyArray_DATA(dw), <double*>cnp.PyArray_DATA(db), N, C, L)
    else:
        with nogil:
            _batch_core(<const double*>cnp.PyArray_DATA(ga), <const double*>cnp.PyArray_DATA(xa),
                        <const double*>cnp.PyArray_DATA(ra), <const double*>wp, <double*>cnp.PyArray_DATA(dx),
                        <double*>cnp.PyArray_DATA(dw), <double*>cnp.PyArray_DATA(db), N, C, L)
    if weight is None:
        return dx, None, None
    return dx, dw.astype(dtype), db.astype(dtype)
