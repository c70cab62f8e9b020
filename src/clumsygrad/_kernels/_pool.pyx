# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled 2-d max and average pooling, forward and backward, as direct loops per (H, W) plane.

Same names, signatures and results as the pure twins in ``pure.py`` (section "nn kernels"),
which also check the arguments (``pure.pool_geometry``) before any loop here runs.  Max
pooling keeps each window's first maximum (a NaN wins, as with ``np.argmax``) and its flat
index ``h*W + w``; the backward pass adds each output gradient at that index.
"""
cimport numpy as cnp
from cython cimport floating

import numpy as np

from . import pure

cnp.import_array()

__all__ = ["max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward"]


cdef void _max_core(const floating* x, floating* out, cnp.int64_t* idx, Py_ssize_t planes,
                    Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t OH,
                    Py_ssize_t OW, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                    Py_ssize_t dh, Py_ssize_t dw) noexcept nogil:
    cdef:
        Py_ssize_t p, oh, ow, i, j, h, w, best
        floating m, v
        const floating* plane
        bint found
    for p in range(planes):
        plane = x + p * H * W
        for oh in range(OH):
            for ow in range(OW):
                found = False
                best = 0
                m = 0
                for i in range(kh):
                    h = oh * sh - ph + i * dh
                    if h < 0 or h >= H:
                        continue
                    for j in range(kw):
                        w = ow * sw - pw + j * dw
                        if w < 0 or w >= W:
                            continue
                        v = plane[h * W + w]
                        if not found or (m == m and (v > m or v != v)):
                            m = v
                            best = h * W + w
                            found = True
                out[0] = m
                idx[0] = best
                out += 1
                idx += 1


def max_pool2d_forward(x, kernel_size, stride, padding, dilation):
    x = pure._float_array("max_pool2d input", x, 4)
    dtype = pure.result_dtype(x)
    n, c, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw = pure.pool_geometry(
        x.shape, kernel_size, stride, padding, dilation)
    cdef cnp.ndarray xa = np.ascontiguousarray(x, dtype)
    cdef cnp.ndarray out = np.empty((n, c, oh, ow), dtype)
    cdef cnp.ndarray idx = np.empty((n, c, oh, ow), np.int64)
    cdef Py_ssize_t planes = n * c, H = h, W = w, KH = kh, KW = kw, OH = oh, OW = ow
    cdef Py_ssize_t SH = sh, SW = sw, PH = ph, PW = pw, DH = dh, DW = dw
    if dtype == np.float32:
        with nogil:
            _max_core(<const float*>cnp.PyArray_DATA(xa), <float*>cnp.PyArray_DATA(out),
                      <cnp.int64_t*>cnp.PyArray_DATA(idx), planes, H, W, KH, KW, OH, OW, SH, SW, PH, PW, DH, DW)
    else:
        with nogil:
            _max_core(<const double*>cnp.PyArray_DATA(xa), <double*>cnp.PyArray_DATA(out),
                      <cnp.int64_t*>cnp.PyArray_DATA(idx), planes, H, W, KH, KW, OH, OW, SH, SW, PH, PW, DH, DW)
    return out, idx


cdef void _max_back(const floating* g, const cnp.int64_t* idx, floating* dx, Py_ssize_t planes,
                    Py_ssize_t L, Py_ssize_t HW) noexcept nogil:
    cdef Py_ssize_t p, k
    for p in range(planes):
        for k in range(L):
            dx[idx[k]] += g[k]
        g += L
        idx += L
        dx += HW


def max_pool2d_backward(grad, indices, input_shape):
    grad = pure._float_array("max_pool2d gradient", grad, 4)
    indices = np.asarray(indices)
    n, c, h, w = pure.as_shape(input_shape)
    if indices.shape != grad.shape or indices.dtype.kind not in "iu":
        raise ValueError(
            f"max_pool2d indices of shape {indices.shape} and dtype {indices.dtype} do not match "
            f"the gradient of shape {grad.shape}"
        )
    if grad.shape[:2] != (n, c):
        raise ValueError(f"max_pool2d gradient of shape {grad.shape} for an input of shape {(n, c, h, w)}")
    if indices.size and (indices.min() < 0 or indices.max() >= h * w):
        raise ValueError(f"max_pool2d indices out of range for planes of {h}x{w}")
    dtype = pure.result_dtype(grad)
    cdef cnp.ndarray ga = np.ascontiguousarray(grad, dtype)
    cdef cnp.ndarray ia = np.ascontiguousarray(indices, np.int64)
    cdef cnp.ndarray dx = np.zeros((n, c, h, w), dtype)
    cdef Py_ssize_t planes = n * c, L = grad.shape[2] * grad.shape[3], HW = h * w
    if dtype == np.float32:
        with nogil:
            _max_back(<const float*>cnp.PyArray_DATA(ga), <const cnp.int64_t*>cnp.PyArray_DATA(ia),
                      <float*>cnp.PyArray_DATA(dx), planes, L, HW)
    else:
        with nogil:
            _max_back(<const double*>cnp.PyArray_DATA(ga), <const cnp.int64_t*>cnp.PyArray_DATA(ia),
                      <double*>cnp.PyArray_DATA(dx), planes, L, HW)
    return dx


cdef inline Py_ssize_t _lo(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return a if a < b else b


cdef inline Py_ssize_t _hi(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return a if a > b else b


cdef void _avg(floating* x, floating* out, Py_ssize_t planes, Py_ssize_t H, Py_ssize_t W,
               Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t sh,
               Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, bint include_pad, bint backward) noexcept nogil:
    """Forward: ``out`` = window means of ``x``.  Backward: ``x`` (zeroed) += ``out`` / divisor
    over each window (``out`` is then the incoming gradient)."""
    cdef:
        Py_ssize_t p, oh, ow, h0, w0, h1, w1, h, w
        floating s, div
        floating* plane
    for p in range(planes):
        plane = x + p * H * W
        for oh in range(OH):
            h0 = oh * sh - ph
            h1 = _lo(h0 + kh, H)
            h0 = _hi(h0, 0)
            for ow in range(OW):
                w0 = ow * sw - pw
                w1 = _lo(w0 + kw, W)
                w0 = _hi(w0, 0)
                div = <floating>(kh * kw) if include_pad else <floating>((h1 - h0) * (w1 - w0))
                if backward:
                    s = out[0] / div
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            plane[h * W + w] += s
                else:
                    s = 0
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            s = s + plane[h * W + w]
                    out[0] = s / div
                out += 1


def avg_pool2d_forward(x, kernel_size, stride, padding, count_include_pad):
    x = pure._float_array("avg_pool2d input", x, 4)
    dtype = pure.result_dtype(x)
    n, c, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw = pure.pool_geometry(
        x.shape, kernel_size, stride, padding, (1, 1))
    cdef bint incl = bool(count_include_pad)
    cdef cnp.ndarray xa = np.ascontiguousarray(x, dtype)
    cdef cnp.ndarray out = np.empty((n, c, oh, ow), dtype)
    cdef Py_ssize_t planes = n * c, H = h, W = w, KH = kh, KW = kw, OH = oh, OW = ow
    cdef Py_ssize_t SH = sh, SW = sw, PH = ph, PW = pw
    if dtype == np.float32:
        with nogil:
            _avg(<float*>cnp.PyArray_DATA(xa), <float*>cnp.PyArray_DATA(out), planes, H, W, KH, KW,
                 OH, OW, SH, SW, PH, PW, incl, False)
    else:
        with nogil:
            _avg(<double*>cnp.PyArray_DATA(xa), <double*>cnp.PyArray_DATA(out), planes, H, W, KH, KW,
                 OH, OW, SH, SW, PH, PW, incl, False)
    return out


def avg_pool2d_backward(grad, input_shape, kernel_size, stride, padding, count_include_pad):
    grad = pure._float_array("avg_pool2d gradient", grad, 4)
    dtype = pure.result_dtype(grad)
    n, c, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw = pure.pool_geometry(
        pure.as_shape(input_shape), kernel_size, stride, padding, (1, 1))
    if grad.shape != (n, c, oh, ow):
        raise ValueError(f"avg_pool2d gradient of shape {grad.shape}, expected {(n, c, oh, ow)}")
    cdef bint incl = bool(count_include_pad)
    cdef cnp.ndarray ga = np.ascontiguousarray(grad, dtype)
    cdef cnp.ndarray dx = np.zeros((n, c, h, w), dtype)
    cdef Py_ssize_t planes = n * c, H = h, W = w, KH = kh, KW = kw, OH = oh, OW = ow
    cdef Py_ssize_t SH = sh, SW = sw, PH = ph, PW = pw
    if dtype == np.float32:
        with nogil:
            _avg(<float*>cnp.PyArray_DATA(dx), <float*>cnp.PyArray_DATA(ga), planes, H, W, KH, KW,
                 OH, OW, SH, SW, PH, PW, incl, True)
    else:
        with nogil:
            _avg(<double*>cnp.PyArray_DATA(dx), <double*>cnp.PyArray_DATA(ga), planes, H, W, KH, KW,
                 OH, OW, SH, SW, PH, PW, incl, True)
    return dx
