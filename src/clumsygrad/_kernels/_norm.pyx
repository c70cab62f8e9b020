# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled layer-norm and batch-norm backward passes: the row (or channel) reductions and the
``dx`` formula fused in one C loop, sums in double.

Same names, signatures and results as the pure twins in ``pure.py`` (section "convolution,
pooling, normalisation").  Each wrapper runs the shared prologue of ``_shapes.pxd``
(``fast_array``, ``kernel_type``, shape checks in C; the errors come from ``checks._norm_arrays``
and ``checks.check_norm_shapes``, the pure twin's), then its core through ``run_typed`` without
the GIL.
"""
cimport numpy as cnp
from cython cimport floating

from . import checks, pure
from ._shapes cimport Call, as_c_typed, fast_array, kernel_typenum, native_float_typenum, run_typed

cnp.import_array()

__all__ = ["layer_norm_backward", "batch_norm_backward"]


cdef void _norm_core(Call* k, floating* tag) noexcept nogil:
    """``a`` grad, ``b`` xhat, ``c`` rstd, ``aux`` weight or NULL; ``out`` dx, ``out2``/``out3``
    the dweight/dbias sums (double, zeroed).  Layer norm (``n2 == 0``): rows of (M, D) =
    (n0, n1), statistics per row.  Batch norm: (N, C, L) = (n0, n1, n2), statistics per channel."""
    cdef:
        const floating* g = <const floating*>k.a
        const floating* xh = <const floating*>k.b
        const floating* rstd = <const floating*>k.c
        const floating* wt = <const floating*>k.aux
        floating* dx = <floating*>k.out
        double* dw = <double*>k.out2
        double* db = <double*>k.out3
        Py_ssize_t N = k.n0, C = k.n1, L = k.n2, n, c, j, off
        double s1, s2, gk, scale, m = <double>(N * L)
    if L == 0:   # layer norm: n0 rows of n1
        for n in range(N):
            s1 = 0
            s2 = 0
            for j in range(C):
                gk = g[j] * wt[j] if wt != NULL else g[j]
                s1 += gk
                s2 += gk * xh[j]
                if wt != NULL:
                    dw[j] += g[j] * xh[j]
                    db[j] += g[j]
            s1 /= C
            s2 /= C
            scale = rstd[n]
            for j in range(C):
                gk = g[j] * wt[j] if wt != NULL else g[j]
                dx[j] = <floating>(scale * (gk - s1 - xh[j] * s2))
            g += C
            xh += C
            dx += C
        return
    for c in range(C):
        s1 = 0
        s2 = 0
        for n in range(N):
            off = (n * C + c) * L
            for j in range(L):
                s1 += g[off + j]
                s2 += g[off + j] * xh[off + j]
        db[c] = s1
        dw[c] = s2
        scale = rstd[c] * wt[c] if wt != NULL else rstd[c]
        s1 /= m
        s2 /= m
        for n in range(N):
            off = (n * C + c) * L
            for j in range(L):
                dx[off + j] = <floating>(scale * (g[off + j] - s1 - xh[off + j] * s2))


cdef inline bint _same_dims(cnp.ndarray a, cnp.ndarray b) noexcept:
    cdef int nd = cnp.PyArray_NDIM(a)
    return nd == cnp.PyArray_NDIM(b) and cnp.PyArray_CompareLists(cnp.PyArray_DIMS(a), cnp.PyArray_DIMS(b), nd)


cdef inline bint _vector(cnp.ndarray a, Py_ssize_t n) noexcept:
    return cnp.PyArray_NDIM(a) == 1 and cnp.PyArray_DIM(a, 0) == n


cdef object _norm_backward(str name, grad, xhat, rstd, weight, int ndim, object fallback):
    """The shared wrapper: checks (in C, errors by ``checks``), conversion, the core, results."""
    cdef cnp.ndarray ga = fast_array(grad), xa = fast_array(xhat), ra = fast_array(rstd)
    cdef cnp.ndarray wa = None if weight is None else fast_array(weight)
    cdef bint ok = (cnp.PyArray_NDIM(ga) == ndim and _same_dims(ga, xa)
                    and _vector(ra, cnp.PyArray_DIM(ga, 0 if ndim == 2 else 1))
                    and (wa is None or _vector(wa, cnp.PyArray_DIM(ga, 1))))
    cdef int tn = native_float_typenum(ga) if ok else -1
    if tn < 0 or native_float_typenum(xa) != tn or native_float_typenum(ra) != tn or (
            wa is not None and native_float_typenum(wa) != tn):
        # other dtypes or shapes: the pure twin's checks (and errors), its dtype rule
        ga, xa, ra, wa, dtype = checks._norm_arrays(name, ga, xa, ra, wa, ndim)
        checks.check_norm_shapes(name, ga, ra, wa)
        tn = kernel_typenum(dtype)
        if tn < 0:
            return fallback(grad, xhat, rstd, weight)
    ga, xa, ra = as_c_typed(ga, tn), as_c_typed(xa, tn), as_c_typed(ra, tn)
    if wa is not None:
        wa = as_c_typed(wa, tn)
    cdef Py_ssize_t d = cnp.PyArray_DIM(ga, 1)
    cdef cnp.ndarray dx = cnp.PyArray_EMPTY(ndim, cnp.PyArray_DIMS(ga), tn, 0)
    cdef cnp.npy_intp dd = d
    cdef cnp.ndarray dw = cnp.PyArray_ZEROS(1, &dd, cnp.NPY_DOUBLE, 0)
    cdef cnp.ndarray db = cnp.PyArray_ZEROS(1, &dd, cnp.NPY_DOUBLE, 0)
    cdef Call k
    k.a = cnp.PyArray_DATA(ga)
    k.b = cnp.PyArray_DATA(xa)
    k.c = cnp.PyArray_DATA(ra)
    k.aux = NULL if wa is None else cnp.PyArray_DATA(wa)
    k.out = cnp.PyArray_DATA(dx)
    k.out2 = cnp.PyArray_DATA(dw)
    k.out3 = cnp.PyArray_DATA(db)
    k.n0 = cnp.PyArray_DIM(ga, 0)
    k.n1 = d
    k.n2 = cnp.PyArray_DIM(ga, 2) if ndim == 3 else 0
    if ndim == 3 and k.n2 == 0:   # (N, C, 0): nothing to sum, an empty dx; zero sums
        return (dx, None, None) if weight is None else (dx, cnp.PyArray_Cast(dw, tn), cnp.PyArray_Cast(db, tn))
    run_typed(tn, &k, _norm_core[float], _norm_core[double])
    if weight is None:
        return dx, None, None
    return dx, cnp.PyArray_Cast(dw, tn), cnp.PyArray_Cast(db, tn)


def layer_norm_backward(grad, xhat, rstd, weight):
    return _norm_backward("layer_norm_backward", grad, xhat, rstd, weight, 2, pure.layer_norm_backward)


def batch_norm_backward(grad, xhat, rstd, weight):
    return _norm_backward("batch_norm_backward", grad, xhat, rstd, weight, 3, pure.batch_norm_backward)
