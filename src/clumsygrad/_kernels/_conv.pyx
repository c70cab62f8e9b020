# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled 2-d convolution: im2col / col2im loops in C, the products through ``np.matmul``.

Same names, signatures, layout and results as the pure twins in ``pure.py`` (section "nn
kernels"), which also check the arguments (``pure.conv2d_geometry``) before any loop here
runs.  The inputs are made C-contiguous in the result dtype (a copy only when they are not
already); the loops run without the GIL.

Why im2col + GEMM and not direct loops (forward and both gradients, one core, float64): a
direct 7-deep loop tied at N=64, 1x8x8 -> 16 channels 3x3 (2.4 against 2.3 ms) and was 4.5x
slower at N=32, 16x28x28 -> 32 channels (424 against 94 ms): the BLAS product wins as soon as
there are a few channels.  The gather and the scatter are the parts NumPy does slowly (a copy
out of a strided view, ``kh * kw`` strided slice additions), so those are the loops compiled
here.  The weight gradient is one small GEMM per image, then a sum over the images; folding the
batch into one GEMM needs transposed copies of the gradient and the columns that cost 3-10x more.
"""
cimport numpy as cnp
from cython cimport floating

import numpy as np

from . import pure

cnp.import_array()

__all__ = ["conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight"]


cdef void _im2col(const floating* x, floating* cols, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                  Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t OH, Py_ssize_t OW,
                  Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                  Py_ssize_t dh, Py_ssize_t dw) noexcept nogil:
    """One image: ``x`` (C, H, W) into ``cols`` (C*kh*kw, OH*OW), zeros outside the image."""
    cdef:
        Py_ssize_t c, i, j, oh, ow, h, w, w0, lo, hi
        floating* row
        const floating* src
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                row = cols + ((c * kh + i) * kw + j) * OH * OW
                w0 = j * dw - pl
                # the output columns whose input column lies inside [0, W)
                lo = 0 if w0 >= 0 else (-w0 + sw - 1) // sw
                hi = 0 if W - w0 <= 0 else (W - w0 + sw - 1) // sw
                if hi > OW:
                    hi = OW
                if lo > hi:
                    lo = hi
                for oh in range(OH):
                    h = oh * sh - pt + i * dh
                    if h < 0 or h >= H:
                        for ow in range(OW):
                            row[ow] = 0
                    else:
                        src = x + (c * H + h) * W + w0
                        for ow in range(lo):
                            row[ow] = 0
                        if sw == 1:
                            for ow in range(lo, hi):
                                row[ow] = src[ow]
                        else:
                            for ow in range(lo, hi):
                                row[ow] = src[ow * sw]
                        for ow in range(hi, OW):
                            row[ow] = 0
                    row += OW


cdef void _col2im(const floating* cols, floating* dx, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                  Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t OH, Py_ssize_t OW,
                  Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                  Py_ssize_t dh, Py_ssize_t dw) noexcept nogil:
    """The adjoint of ``_im2col``: ``dx`` (C, H, W, zeroed by the caller) += scattered ``cols``."""
    cdef:
        Py_ssize_t c, i, j, oh, ow, h, w0, lo, hi
        const floating* row
        floating* dst
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                row = cols + ((c * kh + i) * kw + j) * OH * OW
                w0 = j * dw - pl
                lo = 0 if w0 >= 0 else (-w0 + sw - 1) // sw
                hi = 0 if W - w0 <= 0 else (W - w0 + sw - 1) // sw
                if hi > OW:
                    hi = OW
                if lo > hi:
                    lo = hi
                for oh in range(OH):
                    h = oh * sh - pt + i * dh
                    if 0 <= h < H:
                        dst = dx + (c * H + h) * W + w0
                        if sw == 1:
                            for ow in range(lo, hi):
                                dst[ow] += row[ow]
                        else:
                            for ow in range(lo, hi):
                                dst[ow * sw] += row[ow]
                    row += OW


cdef object _im2col_batch(cnp.ndarray x, tuple geo):
    """(N, C*kh*kw, OH*OW) columns of a C-contiguous float32/float64 ``x``."""
    cdef Py_ssize_t n, c, h, w, f, kh, kw, oh, ow, sh, sw, pt, pl, dh, dw, g, b, k, L
    n, c, h, w, f, kh, kw, oh, ow, sh, sw, pt, pl, dh, dw, g = geo
    k = c * kh * kw
    L = oh * ow
    cols = np.empty((n, k, L), x.dtype)
    cdef cnp.ndarray cols_a = cols
    if x.dtype == np.float32:
        with nogil:
            for b in range(n):
                _im2col(<const float*>cnp.PyArray_DATA(x) + b * c * h * w,
                        <float*>cnp.PyArray_DATA(cols_a) + b * k * L,
                        c, h, w, kh, kw, oh, ow, sh, sw, pt, pl, dh, dw)
    else:
        with nogil:
            for b in range(n):
                _im2col(<const double*>cnp.PyArray_DATA(x) + b * c * h * w,
                        <double*>cnp.PyArray_DATA(cols_a) + b * k * L,
                        c, h, w, kh, kw, oh, ow, sh, sw, pt, pl, dh, dw)
    return cols


cdef object _col2im_batch(cnp.ndarray cols, tuple geo):
    cdef Py_ssize_t n, c, h, w, f, kh, kw, oh, ow, sh, sw, pt, pl, dh, dw, g, b, k, L
    n, c, h, w, f, kh, kw, oh, ow, sh, sw, pt, pl, dh, dw, g = geo
    k = c * kh * kw
    L = oh * ow
    dx = np.zeros((n, c, h, w), cols.dtype)
    cdef cnp.ndarray dx_a = dx
    if cols.dtype == np.float32:
        with nogil:
            for b in range(n):
                _col2im(<const float*>cnp.PyArray_DATA(cols) + b * k * L,
                        <float*>cnp.PyArray_DATA(dx_a) + b * c * h * w,
                        c, h, w, kh, kw, oh, ow, sh, sw, pt, pl, dh, dw)
    else:
        with nogil:
            for b in range(n):
                _col2im(<const double*>cnp.PyArray_DATA(cols) + b * k * L,
                        <double*>cnp.PyArray_DATA(dx_a) + b * c * h * w,
                        c, h, w, kh, kw, oh, ow, sh, sw, pt, pl, dh, dw)
    return dx


def conv2d_forward(x, weight, stride, padding, dilation, groups):
    x = pure._float_array("conv2d input", x, 4)
    weight = pure._float_array("conv2d weight", weight, 4)
    dtype = pure.result_dtype(x, weight)
    geo = pure.conv2d_geometry(x.shape, weight.shape, stride, padding, dilation, groups)
    n, c, h, w, f, kh, kw, oh, ow = geo[:9]
    g = geo[15]
    cols = _im2col_batch(np.ascontiguousarray(x, dtype), geo).reshape(n, g, (c // g) * kh * kw, oh * ow)
    wm = weight.astype(dtype, copy=False).reshape(g, f // g, (c // g) * kh * kw)
    return np.matmul(wm, cols).reshape(n, f, oh, ow)


def conv2d_backward_input(grad, weight, input_shape, stride, padding, dilation, groups):
    grad = pure._float_array("conv2d gradient", grad, 4)
    weight = pure._float_array("conv2d weight", weight, 4)
    dtype = pure.result_dtype(grad, weight)
    geo = pure.conv2d_geometry(pure.as_shape(input_shape), weight.shape, stride, padding, dilation, groups)
    n, c, h, w, f, kh, kw, oh, ow = geo[:9]
    g = geo[15]
    if grad.shape != (n, f, oh, ow):
        raise ValueError(f"conv2d gradient of shape {grad.shape}, expected {(n, f, oh, ow)}")
    wm = weight.astype(dtype, copy=False).reshape(g, f // g, (c // g) * kh * kw)
    gm = grad.astype(dtype, copy=False).reshape(n, g, f // g, oh * ow)
    cols = np.ascontiguousarray(np.matmul(wm.transpose(0, 2, 1), gm)).reshape(n, c * kh * kw, oh * ow)
    return _col2im_batch(cols, geo)


def conv2d_backward_weight(grad, x, weight_shape, stride, padding, dilation, groups):
    grad = pure._float_array("conv2d gradient", grad, 4)
    x = pure._float_array("conv2d input", x, 4)
    dtype = pure.result_dtype(grad, x)
    geo = pure.conv2d_geometry(x.shape, pure.as_shape(weight_shape), stride, padding, dilation, groups)
    n, c, h, w, f, kh, kw, oh, ow = geo[:9]
    g = geo[15]
    if grad.shape != (n, f, oh, ow):
        raise ValueError(f"conv2d gradient of shape {grad.shape}, expected {(n, f, oh, ow)}")
    k = (c // g) * kh * kw
    cols = _im2col_batch(np.ascontiguousarray(x, dtype), geo).reshape(n, g, k, oh * ow)
    gm = grad.astype(dtype, copy=False).reshape(n, g, f // g, oh * ow)
    # per image and group, then summed over the images (see the pure twin)
    return np.matmul(gm, cols.transpose(0, 1, 3, 2)).sum(axis=0).reshape(f, c // g, kh, kw)
