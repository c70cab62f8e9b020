# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled ``matmul_backward``: the gradients of ``x @ y`` with broadcast batch axes summed back.

The products are BLAS GEMMs through NumPy: ``product`` calls NumPy's own matmul inner loop
(taken from ``np.matmul``'s loop table: the code and BLAS calls of ``np.matmul``, without the
ufunc call), with ``np.dot``/``np.matmul`` for what it does not take (broadcast batches,
zero sizes, a floating-point flag raised, which NumPy then reports).  What is compiled here
is choosing the products so the batch reduction costs nothing extra:

* 2-D ``x @ y``: ``gx = grad @ y.T`` and ``gy = x.T @ grad``, two GEMMs on the operands
  as they are (BLAS reads the transposes by flags), except that a small C-ordered ``y`` is
  transposed into C order first (``swapped_copy``): OpenBLAS's small-matrix kernel for a
  transposed right operand is much slower than for a plain one.
* ``x`` carries the whole batch and ``y`` none (``(B.., n, k) @ (k, m)``, the linear
  layer): ``gy = x.reshape(B*n, k).T @ grad.reshape(B*n, m)`` sums over the batch inside one
  GEMM (no ``(B, k, m)`` temporary), and ``gx = grad.reshape(B*n, m) @ y.T`` is one GEMM too.
* otherwise: ``np.matmul`` per operand and, when the batch was broadcast, the compiled
  ``reduce_typed`` of ``_reduce`` sums it back (one pass, no NumPy reduction machinery).
"""
cimport numpy as cnp

from ._loops cimport UfuncLoop, feclearexcept, fetestexcept, find_loop, fp_flags
from ._reduce cimport reduce_typed
from ._shapes cimport MAXDIMS, as_typed, dims_tuple, fast_array, kernel_type

import numpy as np

from . import pure

cnp.import_array()

__all__ = ["matmul_backward"]

cdef object _matmul = np.matmul

cdef extern from "numpy/arrayobject.h":
    # ``np.dot(a, b, out=out)`` (numpy's .pxd does not declare it)
    object _matrix_product2 "PyArray_MatrixProduct2" (object a, object b, cnp.ndarray out)

cdef extern from *:
    """
    /* d (R, C) = transpose of s (C, R), both C-contiguous, for `batch` consecutive matrices.
       Tiles of 32x32; inside a tile, 4x4 blocks transposed in SSE registers for float32
       (every x86-64 has SSE2), scalar copies elsewhere. */
    #if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
    #include <emmintrin.h>
    #define CG_SSE 1
    #else
    #define CG_SSE 0
    #endif
    #define CG_TILE 32
    static void cg_swap_last2_f32(const float* s, float* d, Py_ssize_t batch, Py_ssize_t R, Py_ssize_t C)
    {
        Py_ssize_t b, ib, jb, i, j, iend, jend;
        for (b = 0; b < batch; b++, s += R * C, d += R * C) {
            for (ib = 0; ib < R; ib += CG_TILE) {
                iend = ib + CG_TILE < R ? ib + CG_TILE : R;
                for (jb = 0; jb < C; jb += CG_TILE) {
                    jend = jb + CG_TILE < C ? jb + CG_TILE : C;
                    i = ib;
    #if CG_SSE
                    for (; i + 4 <= iend; i += 4) {
                        j = jb;
                        for (; j + 4 <= jend; j += 4) {
                            __m128 r0 = _mm_loadu_ps(s + (j + 0) * R + i);
                            __m128 r1 = _mm_loadu_ps(s + (j + 1) * R + i);
                            __m128 r2 = _mm_loadu_ps(s + (j + 2) * R + i);
                            __m128 r3 = _mm_loadu_ps(s + (j + 3) * R + i);
                            _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
                            _mm_storeu_ps(d + (i + 0) * C + j, r0);
                            _mm_storeu_ps(d + (i + 1) * C + j, r1);
                            _mm_storeu_ps(d + (i + 2) * C + j, r2);
                            _mm_storeu_ps(d + (i + 3) * C + j, r3);
                        }
                        for (; j < jend; j++) {
                            d[(i + 0) * C + j] = s[j * R + i + 0];
                            d[(i + 1) * C + j] = s[j * R + i + 1];
                            d[(i + 2) * C + j] = s[j * R + i + 2];
                            d[(i + 3) * C + j] = s[j * R + i + 3];
                        }
                    }
    #endif
                    for (; i < iend; i++)
                        for (j = jb; j < jend; j++)
                            d[i * C + j] = s[j * R + i];
                }
            }
        }
    }
    static void cg_swap_last2_f64(const double* s, double* d, Py_ssize_t batch, Py_ssize_t R, Py_ssize_t C)
    {
        Py_ssize_t b, ib, jb, i, j, iend, jend;
        for (b = 0; b < batch; b++, s += R * C, d += R * C)
            for (ib = 0; ib < R; ib += CG_TILE) {
                iend = ib + CG_TILE < R ? ib + CG_TILE : R;
                for (jb = 0; jb < C; jb += CG_TILE) {
                    jend = jb + CG_TILE < C ? jb + CG_TILE : C;
                    for (i = ib; i < iend; i++)
                        for (j = jb; j < jend; j++)
                            d[i * C + j] = s[j * R + i];
                }
            }
    }
    """
    void cg_swap_last2_f32(const float* s, float* d, Py_ssize_t batch, Py_ssize_t R, Py_ssize_t C) noexcept nogil
    void cg_swap_last2_f64(const double* s, double* d, Py_ssize_t batch, Py_ssize_t R, Py_ssize_t C) noexcept nogil


# ----------------------------------------------------------------------------- products
# NumPy's own matmul inner loops (float32 and float64; ``_loops.pxd``): the same code and BLAS
# calls as ``np.matmul`` (same values), without the ufunc call (~0.4-0.9 us per product, as much
# as a whole 16x32x16 GEMM) and without ``np.dot``'s zero-fill of the result.
cdef UfuncLoop _mm_f32 = NULL
cdef UfuncLoop _mm_f64 = NULL
cdef void* _mm_f32_data = NULL
cdef void* _mm_f64_data = NULL
cdef int _FP_FLAGS = fp_flags()
find_loop(np.matmul, 2, cnp.NPY_FLOAT, &_mm_f32, &_mm_f32_data)
find_loop(np.matmul, 2, cnp.NPY_DOUBLE, &_mm_f64, &_mm_f64_data)


cdef bint _collapse(cnp.ndarray a, int first, int last, cnp.npy_intp* count, cnp.npy_intp* stride) noexcept:
    """Axes ``first <= i < last`` of ``a`` as one axis: ``count`` elements ``stride`` bytes
    apart; False when their strides do not nest (unit axes are skipped)."""
    cdef int i
    cdef cnp.npy_intp n = 1, st = 0
    cdef bint found = False
    for i in range(last - 1, first - 1, -1):
        if cnp.PyArray_DIM(a, i) == 1:
            continue
        if not found:
            st = cnp.PyArray_STRIDE(a, i)
            found = True
        elif cnp.PyArray_STRIDE(a, i) != st * n:
            return False
        n *= cnp.PyArray_DIM(a, i)
    count[0] = n
    stride[0] = st
    return True


cdef object product(cnp.ndarray a, cnp.ndarray b, int out_nd, cnp.npy_intp* out_dims):
    """``a @ b`` by NumPy's matmul inner loop into a new C-ordered array, or None when this does
    not apply (the caller then calls NumPy): ``a`` and ``b`` aligned native float32/float64
    arrays of one dtype and 2+ dimensions, no zero-size axis, and either ``b`` 2-D (``a``'s
    batch folded into the rows when its strides allow, else one product per batch entry) or
    both with the same batch shape, each batch collapsible into one stride.  The result has
    the shape ``out_dims`` (``out_nd`` axes, C order, ``batch + (n, m)`` elements) or, with
    ``out_dims`` NULL, ``batch + (n, m)``."""
    cdef int t = cnp.PyArray_TYPE(a), nda = cnp.PyArray_NDIM(a), ndb = cnp.PyArray_NDIM(b), i
    cdef cnp.npy_intp n, k, m, outer = 1, sa = 0, sb = 0, rows, stride, dims[64]
    cdef cnp.npy_intp ldims[4]
    cdef cnp.npy_intp steps[9]
    cdef char* args[3]
    cdef cnp.ndarray out
    cdef UfuncLoop loop
    cdef void* data
    if t == cnp.NPY_FLOAT:
        loop, data = _mm_f32, _mm_f32_data
    elif t == cnp.NPY_DOUBLE:
        loop, data = _mm_f64, _mm_f64_data
    else:
        return None
    if (loop == NULL or cnp.PyArray_TYPE(b) != t or nda < 2 or ndb < 2 or nda > 64 or ndb > 64
            or not cnp.PyArray_ISNOTSWAPPED(a) or not cnp.PyArray_ISNOTSWAPPED(b)
            or not cnp.PyArray_ISALIGNED(a) or not cnp.PyArray_ISALIGNED(b)
            or cnp.PyArray_SIZE(a) == 0 or cnp.PyArray_SIZE(b) == 0):
        return None
    n = cnp.PyArray_DIM(a, nda - 2)
    k = cnp.PyArray_DIM(a, nda - 1)
    m = cnp.PyArray_DIM(b, ndb - 1)
    if cnp.PyArray_DIM(b, ndb - 2) != k:
        return None
    rows = n
    if ndb == 2:
        if nda > 2 and _collapse(a, 0, nda - 1, &rows, &stride) and rows > 0:
            pass  # the batch and the rows as one axis of ``rows`` rows ``stride`` apart
        elif _collapse(a, 0, nda - 2, &outer, &sa):
            rows = n
            stride = cnp.PyArray_STRIDE(a, nda - 2)
        else:
            return None
    else:
        if nda != ndb or not cnp.PyArray_CompareLists(cnp.PyArray_DIMS(a), cnp.PyArray_DIMS(b), nda - 2):
            return None
        if not (_collapse(a, 0, nda - 2, &outer, &sa) and _collapse(b, 0, ndb - 2, &outer, &sb)):
            return None
        stride = cnp.PyArray_STRIDE(a, nda - 2)
    if out_dims == NULL:
        for i in range(nda - 2):
            dims[i] = cnp.PyArray_DIM(a, i)
        dims[nda - 2] = n
        dims[nda - 1] = m
        out = cnp.PyArray_EMPTY(nda, dims, t, 0)
    else:
        out = cnp.PyArray_EMPTY(out_nd, out_dims, t, 0)
        if cnp.PyArray_SIZE(out) != outer * rows * m:
            raise ValueError("product: the result shape does not hold the product")
    args[0] = <char*> cnp.PyArray_DATA(a)
    args[1] = <char*> cnp.PyArray_DATA(b)
    args[2] = <char*> cnp.PyArray_DATA(out)
    ldims[0] = outer
    ldims[1] = rows
    ldims[2] = k
    ldims[3] = m
    steps[0] = sa
    steps[1] = sb
    steps[2] = rows * m * cnp.PyArray_ITEMSIZE(out)
    steps[3] = stride
    steps[4] = cnp.PyArray_STRIDE(a, nda - 1)
    steps[5] = cnp.PyArray_STRIDE(b, ndb - 2)
    steps[6] = cnp.PyArray_STRIDE(b, ndb - 1)
    steps[7] = m * cnp.PyArray_ITEMSIZE(out)
    steps[8] = cnp.PyArray_ITEMSIZE(out)
    # NumPy checks the floating-point status after its loop (overflow warnings, np.errstate):
    # a product that raised any flag is left to NumPy, which computes it again and reports it
    if fetestexcept(_FP_FLAGS):  # stale flags (rare: NumPy clears them around its own loops);
        feclearexcept(_FP_FLAGS)  # glibc's clear costs ~30 ns even with none set, the test less
    if outer * rows * k * m > (1 << 20):
        with nogil:
            loop(args, ldims, steps, data)
    else:
        loop(args, ldims, steps, data)
    if fetestexcept(_FP_FLAGS):
        feclearexcept(_FP_FLAGS)
        return None
    return out


def _product(a, b):
    """``product`` for tests: ``a @ b`` by NumPy's matmul loop, or None when it does not apply."""
    return product(<cnp.ndarray?> a, <cnp.ndarray?> b, 0, NULL)


cdef bint is_swapped(object a) noexcept:
    """``a`` is an aligned native float32/float64 ndarray of 2+ dimensions whose last two axes
    are swapped from C order (``np.swapaxes(c, -1, -2)`` of a C-contiguous ``c``) and which is
    not C-contiguous itself: the layout ``swapped_copy`` copies in C order."""
    cdef cnp.ndarray x
    cdef int nd, i, t
    cdef Py_ssize_t item, expect
    cdef cnp.npy_intp* st
    cdef cnp.npy_intp* dm
    if type(a) is not cnp.ndarray:
        return False
    x = <cnp.ndarray> a
    nd = cnp.PyArray_NDIM(x)
    t = cnp.PyArray_TYPE(x)
    if (nd < 2 or (t != cnp.NPY_FLOAT and t != cnp.NPY_DOUBLE) or not cnp.PyArray_ISNOTSWAPPED(x)
            or not cnp.PyArray_ISALIGNED(x) or cnp.PyArray_IS_C_CONTIGUOUS(x)):
        return False
    item = cnp.PyArray_ITEMSIZE(x)
    st = cnp.PyArray_STRIDES(x)
    dm = cnp.PyArray_DIMS(x)
    if (dm[nd - 2] != 1 and st[nd - 2] != item) or (dm[nd - 1] != 1 and st[nd - 1] != item * dm[nd - 2]):
        return False
    expect = item * dm[nd - 2] * dm[nd - 1]
    for i in range(nd - 3, -1, -1):
        if dm[i] != 1 and st[i] != expect:
            return False
        expect *= dm[i]
    return True


cdef object swapped_copy(object a):
    """A new C-ordered copy of ``a`` if ``is_swapped(a)`` (a transpose in SSE blocks, not
    NumPy's element-by-element strided copy), else None."""
    cdef cnp.ndarray x, out
    cdef int nd
    cdef Py_ssize_t R, C, batch
    if not is_swapped(a):
        return None
    x = <cnp.ndarray> a
    nd = cnp.PyArray_NDIM(x)
    out = cnp.PyArray_EMPTY(nd, cnp.PyArray_DIMS(x), cnp.PyArray_TYPE(x), 0)
    R = cnp.PyArray_DIM(x, nd - 2)
    C = cnp.PyArray_DIM(x, nd - 1)
    batch = cnp.PyArray_SIZE(x) // (R * C) if R * C else 0
    if batch == 0:
        return out
    if batch * R * C <= 16384:  # small: releasing the GIL would cost more than the copy
        if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT:
            cg_swap_last2_f32(<const float*> cnp.PyArray_DATA(x), <float*> cnp.PyArray_DATA(out), batch, R, C)
        else:
            cg_swap_last2_f64(<const double*> cnp.PyArray_DATA(x), <double*> cnp.PyArray_DATA(out), batch, R, C)
    elif cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT:
        with nogil:
            cg_swap_last2_f32(<const float*> cnp.PyArray_DATA(x), <float*> cnp.PyArray_DATA(out), batch, R, C)
    else:
        with nogil:
            cg_swap_last2_f64(<const double*> cnp.PyArray_DATA(x), <double*> cnp.PyArray_DATA(out), batch, R, C)
    return out


def _swapped_copy(a):
    """``swapped_copy`` for tests: the C-ordered copy, or None when ``a`` is not in that layout."""
    return swapped_copy(a)


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


cdef cnp.ndarray _as_2d(cnp.ndarray a, Py_ssize_t rows, Py_ssize_t cols):
    """``a.reshape(rows, cols)`` without the method call (a view when the layout allows)."""
    cdef cnp.npy_intp dims[2]
    cdef cnp.PyArray_Dims shape
    dims[0] = rows
    dims[1] = cols
    shape.ptr = dims
    shape.len = 2
    return <cnp.ndarray> cnp.PyArray_Newshape(a, &shape, cnp.NPY_CORDER)


cdef object _reshaped(object r, cnp.ndarray like):
    """The C-ordered product ``r`` in the shape of ``like``: ``r`` itself when it has that
    shape (a new array the engine adopts), else a view."""
    cdef cnp.PyArray_Dims shape
    if cnp.PyArray_NDIM(<cnp.ndarray> r) == cnp.PyArray_NDIM(like) and cnp.PyArray_CompareLists(
            cnp.PyArray_DIMS(<cnp.ndarray> r), cnp.PyArray_DIMS(like), cnp.PyArray_NDIM(like)):
        return r
    shape.ptr = cnp.PyArray_DIMS(like)
    shape.len = cnp.PyArray_NDIM(like)
    return cnp.PyArray_Newshape(<cnp.ndarray> r, &shape, cnp.NPY_CORDER)


cdef enum:
    NT_COPY_MAX = 65536        # largest right operand copied to turn an "nt" GEMM into "nn"
    NT_COPY_WORK = 1 << 22     # ... in products of at most this many multiply-adds


cdef object _right_T(cnp.ndarray y, Py_ssize_t rows):
    """``y.T`` as the right operand of ``grad @ y.T`` (``rows`` rows of ``grad``).

    For a small C-ordered ``y`` the transpose is copied into C order: OpenBLAS's small-matrix
    kernel for a transposed right operand ("nt") is much slower than for a plain one ("nn"),
    e.g. (128, 32) @ (32, 32).T 4.5 us against 3.5 us with the 0.3 us copy.  Large products
    (256 x 1024 x 1024: the copy is 6% of the GEMM, which gains nothing) keep the view.
    """
    cdef Py_ssize_t size = cnp.PyArray_SIZE(y)
    if size <= NT_COPY_MAX and size * rows <= NT_COPY_WORK:
        c = swapped_copy(_T(y))
        if c is not None:
            return c
    return _T(y)


cdef object _right_swap(cnp.ndarray y, Py_ssize_t rows):
    """``_right_T`` for a batch: ``swapaxes(y, -1, -2)`` copied into C order when small."""
    cdef Py_ssize_t size = cnp.PyArray_SIZE(y)
    if size <= NT_COPY_MAX and size * rows <= NT_COPY_WORK:
        c = swapped_copy(_swap(y))
        if c is not None:
            return c
    return _swap(y)


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
            gx = _dot(ga, _right_T(ya, n))
        if ny:
            gy = _dot(_T(xa), ga)
        return gx, gy
    if xb == nb and yb == 1 and nb * n * k * m != 0:
        # (B.., n, k) @ (k, m): fold the batch into the GEMM rows (reshapes in C: views, or
        # copies of non-contiguous operands, a swapped gradient by swapped_copy)
        if is_swapped(ga):
            ga = <cnp.ndarray> swapped_copy(ga)
        g2 = _as_2d(ga, nb * n, m)
        if nx:  # a new array of x's shape: the engine adopts it (no copy for .grad)
            yT = _right_T(_as_2d(ya, k, m), nb * n)
            gx = product(g2, <cnp.ndarray> yT, xnd, cnp.PyArray_DIMS(xa))
            if gx is None:
                gx = cnp.PyArray_EMPTY(xnd, cnp.PyArray_DIMS(xa), tn, 0)
                _matrix_product2(g2, yT, _as_2d(gx, nb * n, k))
        if ny:
            gy = _reshaped(_dot(_T(_as_2d(xa, nb * n, k)), g2), ya)
        return gx, gy
    if nx:
        gx = _finish(_batched(ga, _right_swap(ya, nb * n)), xa, tn)
    if ny:
        gy = _finish(_batched(_swap(xa), ga), ya, tn)
    return gx, gy


cdef object _dot(object a, object b):
    """A 2-D product by NumPy's matmul loop (``product``), else ``np.dot``."""
    r = product(<cnp.ndarray> a, <cnp.ndarray> b, 0, NULL)
    return r if r is not None else cnp.PyArray_MatrixProduct(a, b)


cdef object _batched(object a, object b):
    """A batched product by NumPy's matmul loop (``product``), else ``np.matmul``."""
    r = product(<cnp.ndarray> a, <cnp.ndarray> b, 0, NULL)
    return r if r is not None else _matmul(a, b)
