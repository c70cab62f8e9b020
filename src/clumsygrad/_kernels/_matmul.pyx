# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled ``matmul_backward``: the gradients of ``x @ y`` with broadcast batch axes summed back.

The products are BLAS GEMMs through NumPy (``PyArray_MatrixProduct`` is ``np.dot``); what
is compiled here is choosing them so the batch reduction costs nothing extra:

* 2-D ``x @ y``: ``gx = grad @ y.T`` and ``gy = x.T @ grad``, two GEMMs on the operands
  as they are (BLAS reads the transposes by flags, no copy).
* ``x`` carries the whole batch and ``y`` none (``(B.., n, k) @ (k, m)``, the linear
  layer): ``gy = x.reshape(B*n, k).T @ grad.reshape(B*n, m)`` sums over the batch inside one
  GEMM (no ``(B, k, m)`` temporary), and ``gx = grad.reshape(B*n, m) @ y.T`` is one GEMM too.
* otherwise: ``np.matmul`` per operand and, when the batch was broadcast, the compiled
  ``reduce_typed`` of ``_reduce`` sums it back (one pass, no NumPy reduction machinery).
"""
cimport numpy as cnp

from ._reduce cimport reduce_typed
from ._shapes cimport MAXDIMS, as_typed, dims_tuple, fast_array, kernel_type

import numpy as np

from . import pure

cnp.import_array()

__all__ = ["matmul_backward"]

cdef object _matmul = np.matmul


cdef inline object _T(cnp.ndarray a):
    return cnp.PyArray_Transpose(a, NULL)


cdef inline object _swap(cnp.ndarray a):
    """``np.swapaxes(a, -1, -2)`` as a view."""
    return cnp.PyArray_SwapAxes(a, cnp.PyArray_NDIM(a) - 1, cnp.PyArray_NDIM(a) - 2)


cdef object _finish(object full, cnp.ndarray like, int tn):
    """``full`` (the batch-broadcast gradient) summed back to the shape of ``like``."""
    cdef cnp.ndarray f = <cnp.ndarray>full
    cdef int nd = cnp.PyArray_NDIM(like)
    if nd == cnp.PyArray_NDIM(f) and cnp.PyArray_CompareLists(
            cnp.PyArray_DIMS(f), cnp.PyArray_DIMS(like), nd):
        return f
    return reduce_typed(f, None, nd, <Py_ssize_t*>cnp.PyArray_DIMS(like), tn)


def matmul_backward(x, y, grad, need_x=True, need_y=True):
    """Gradients ``(gx, gy)`` of ``x @ y``, shaped like ``x`` and ``y``.

    Operands have at least 2 dimensions; batch axes broadcast as in ``np.matmul`` and those
    that broadcasting added or stretched are summed back.  float32/float64 in, same out.
    A gradient whose ``need_*`` flag is false is not computed and returned as None.
    """
    cdef:
        cnp.ndarray xa = fast_array(x)
        cnp.ndarray ya = fast_array(y)
        cnp.ndarray ga = fast_array(grad)
        int tn = kernel_type(xa, ya, ga)
        int xnd, ynd, bnd, i, xi, yi
        cnp.npy_intp* xd
        cnp.npy_intp* yd
        cnp.npy_intp* gd
        Py_ssize_t edims[MAXDIMS]
        Py_ssize_t dx, dy, b, n, k, m, nb = 1, xb = 1, yb = 1
        bint fits, nx = need_x, ny = need_y
        object gx, gy, g2
    if tn < 0:
        return pure.matmul_backward(xa, ya, ga, need_x, need_y)
    xnd = cnp.PyArray_NDIM(xa)
    ynd = cnp.PyArray_NDIM(ya)
    xd = cnp.PyArray_DIMS(xa)
    yd = cnp.PyArray_DIMS(ya)
    if xnd < 2 or ynd < 2:
        raise ValueError(
            "matmul_backward needs operands of at least 2 dimensions, "
            f"got {(<object>xa).shape} and {(<object>ya).shape}"
        )
    if xd[xnd - 1] != yd[ynd - 2]:
        raise ValueError(f"Matrix shapes not aligned: {(<object>xa).shape} @ {(<object>ya).shape}")
    n = xd[xnd - 2]
    k = xd[xnd - 1]
    m = yd[ynd - 1]
    bnd = (xnd if xnd > ynd else ynd) - 2
    if bnd + 2 > MAXDIMS:
        raise ValueError(f"too many dimensions: {(<object>xa).shape} @ {(<object>ya).shape}")
    for i in range(bnd):
        xi = i - (bnd - (xnd - 2))
        yi = i - (bnd - (ynd - 2))
        dx = xd[xi] if xi >= 0 else 1
        dy = yd[yi] if yi >= 0 else 1
        if dx == dy or dy == 1:
            b = dx
        elif dx == 1:
            b = dy
        else:
            raise ValueError(
                "matmul batch dimensions do not broadcast: "
                f"{(<object>xa).shape} @ {(<object>ya).shape}"
            )
        edims[i] = b
        nb *= b
        xb *= dx
        yb *= dy
    edims[bnd] = n
    edims[bnd + 1] = m
    gd = cnp.PyArray_DIMS(ga)
    fits = cnp.PyArray_NDIM(ga) == bnd + 2
    if fits:
        for i in range(bnd + 2):
            if gd[i] != edims[i]:
                fits = False
                break
    if not fits:
        raise ValueError(
            f"gradient of shape {(<object>ga).shape} does not fit "
            f"{(<object>xa).shape} @ {(<object>ya).shape}, "
            f"which has shape {dims_tuple(bnd + 2, edims)}"
        )
    if cnp.PyArray_TYPE(xa) != tn or not cnp.PyArray_ISNOTSWAPPED(xa):
        xa = as_typed(xa, tn)
    if cnp.PyArray_TYPE(ya) != tn or not cnp.PyArray_ISNOTSWAPPED(ya):
        ya = as_typed(ya, tn)
    if cnp.PyArray_TYPE(ga) != tn or not cnp.PyArray_ISNOTSWAPPED(ga):
        ga = as_typed(ga, tn)

    gx = gy = None
    if bnd == 0:
        if nx:
            gx = cnp.PyArray_MatrixProduct(ga, _T(ya))
        if ny:
            gy = cnp.PyArray_MatrixProduct(_T(xa), ga)
        return gx, gy
    if xb == nb and yb == 1 and nb * n * k * m != 0:
        # (B.., n, k) @ (k, m): fold the batch into the GEMM rows
        g2 = ga.reshape(nb * n, m)
        if nx:
            gx = cnp.PyArray_MatrixProduct(g2, _T(ya.reshape(k, m))).reshape((<object>xa).shape)
        if ny:
            gy = cnp.PyArray_MatrixProduct(_T(xa.reshape(nb * n, k)), g2).reshape((<object>ya).shape)
        return gx, gy
    if nx:
        gx = _finish(_matmul(ga, _swap(ya)), xa, tn)
    if ny:
        gy = _finish(_matmul(_swap(xa), ga), ya, tn)
    return gx, gy
