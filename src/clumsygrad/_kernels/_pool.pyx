# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled 2-d max and average pooling, forward and backward, as direct loops per (H, W) plane.

Same names, signatures and results as the pure twins in ``pure.py`` (section "convolution,
pooling, normalisation").  Each wrapper runs the shared prologue of ``_shapes.pxd``
(``fast_array``, the dtype, the geometry parsed in C; anything the fast path does not take, and
every error, goes through ``checks.pool_geometry`` and the other ``checks`` functions, so both
twins raise the same messages), then its core through ``run_typed`` without the GIL.  Max
pooling keeps each window's first maximum (a NaN wins, as with ``np.argmax``) and its flat
index ``h*W + w``; the backward pass adds each output gradient at that index.  ``ceil_mode``
is PyTorch's (``checks.pool_output_size``): windows may run past the bottom/right padding and
are clipped; the average's divisor is PyTorch's (``pure._avg_divisor``).
"""
cimport numpy as cnp
from cython cimport floating

import numpy as np

from . import checks, pure
from ._nn cimport small_dims, small_ints
from ._shapes cimport Call, as_c_typed, fast_array, kernel_typenum, native_float_typenum, run_typed

cnp.import_array()

__all__ = ["max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward"]

ctypedef struct Pool:
    Py_ssize_t planes, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw


# --------------------------------------------------------------------------- argument parsing
cdef inline Py_ssize_t _out_size(Py_ssize_t size, Py_ssize_t k, Py_ssize_t s, Py_ssize_t p, Py_ssize_t d,
                                 bint ceil_mode) noexcept:
    """``checks.pool_output_size`` for a non-negative span (the caller checks); 0 when it is not."""
    cdef Py_ssize_t span = size + 2 * p - d * (k - 1) - 1, out
    if span < 0:
        return 0
    out = ((span + s - 1) // s if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


cdef inline bint _windows_reach_the_image(Py_ssize_t size, Py_ssize_t out, Py_ssize_t k, Py_ssize_t s,
                                          Py_ssize_t p, Py_ssize_t d) noexcept:
    """Every window has a cell inside ``[0, size)`` (only dilated windows can miss it)."""
    cdef Py_ssize_t o, j, cell
    cdef bint found
    if d == 1:
        return True
    for o in range(out):
        found = False
        for j in range(k):
            cell = o * s - p + j * d
            if 0 <= cell < size:
                found = True
                break
        if not found:
            return False
    return True


cdef int _geometry(Pool* q, Py_ssize_t* xs, object x_shape, object kernel_size, object stride,
                   object padding, object dilation, object ceil_mode) except -1:
    """Fill ``q`` from the shape ``xs`` (NULL: parse ``x_shape``) and the arguments: exactly
    ``checks.pool_geometry``'s rules, which raise the errors."""
    cdef Py_ssize_t k[2]
    cdef Py_ssize_t s[2]
    cdef Py_ssize_t p[2]
    cdef Py_ssize_t d[2]
    cdef bint ceil = bool(ceil_mode)
    cdef bint fast = (xs != NULL and small_ints(kernel_size, k, 2) and small_ints(stride, s, 2)
                      and small_ints(padding, p, 2) and small_ints(dilation, d, 2))
    if fast:
        fast = (k[0] >= 1 and k[1] >= 1 and s[0] >= 1 and s[1] >= 1 and d[0] >= 1 and d[1] >= 1
                and 2 * p[0] <= k[0] and 2 * p[1] <= k[1])
    if fast:
        q.planes, q.h, q.w = xs[0] * xs[1], xs[2], xs[3]
        q.kh, q.kw, q.sh, q.sw, q.ph, q.pw, q.dh, q.dw = k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1]
        q.oh = _out_size(q.h, q.kh, q.sh, q.ph, q.dh, ceil)
        q.ow = _out_size(q.w, q.kw, q.sw, q.pw, q.dw, ceil)
        fast = (q.oh >= 1 and q.ow >= 1 and _windows_reach_the_image(q.h, q.oh, q.kh, q.sh, q.ph, q.dh)
                and _windows_reach_the_image(q.w, q.ow, q.kw, q.sw, q.pw, q.dw))
    if not fast:
        if x_shape is None:
            x_shape = tuple([xs[i] for i in range(4)])
        geo = checks.pool_geometry(x_shape, kernel_size, stride, padding, dilation, ceil)
        try:
            n, c, q.h, q.w, q.kh, q.kw, q.oh, q.ow, q.sh, q.sw, q.ph, q.pw, q.dh, q.dw = geo
            q.planes = n * c
        except OverflowError:
            raise ValueError(f"pooling geometry {geo} is too large for an array") from None
    return 0


cdef inline int _float4(cnp.ndarray a, str name) except -2:
    """NPY_FLOAT / NPY_DOUBLE for a 4-d real array (-1: a dtype for ``pure``); errors by ``checks``."""
    cdef int tn = native_float_typenum(a)
    if tn >= 0 and cnp.PyArray_NDIM(a) == 4:
        return tn
    checks._float_array(name, a, 4)
    return kernel_typenum(checks.result_dtype(a))


cdef inline cnp.ndarray _new(Py_ssize_t d0, Py_ssize_t d1, Py_ssize_t d2, Py_ssize_t d3, int tn, bint zero):
    cdef Py_ssize_t dims[4]
    dims[0], dims[1], dims[2], dims[3] = d0, d1, d2, d3
    if zero:
        return cnp.PyArray_ZEROS(4, <cnp.npy_intp*>dims, tn, 0)
    return cnp.PyArray_EMPTY(4, <cnp.npy_intp*>dims, tn, 0)


# --------------------------------------------------------------------------- cores (no GIL)
cdef void _max_core(Call* k, floating* tag) noexcept nogil:
    """``out`` = each window's max of ``a``, ``out2`` (int64) = its flat index in the plane."""
    cdef:
        const Pool* q = <const Pool*>k.aux
        const floating* x = <const floating*>k.a
        floating* out = <floating*>k.out
        cnp.int64_t* idx = <cnp.int64_t*>k.out2
        Py_ssize_t p, oh, ow, i, j, h, w, best
        floating m, v
        const floating* plane
        bint found
    for p in range(q.planes):
        plane = x + p * q.h * q.w
        for oh in range(q.oh):
            for ow in range(q.ow):
                found = False
                best = 0
                m = 0
                for i in range(q.kh):
                    h = oh * q.sh - q.ph + i * q.dh
                    if h < 0 or h >= q.h:
                        continue
                    for j in range(q.kw):
                        w = ow * q.sw - q.pw + j * q.dw
                        if w < 0 or w >= q.w:
                            continue
                        v = plane[h * q.w + w]
                        if not found or (m == m and (v > m or v != v)):
                            m = v
                            best = h * q.w + w
                            found = True
                out[0] = m
                idx[0] = best
                out += 1
                idx += 1


cdef void _max_back(Call* k, floating* tag) noexcept nogil:
    """``out`` (zeroed planes of ``n2`` cells) += ``a`` at the indices ``aux`` (``n1`` per plane)."""
    cdef:
        const floating* g = <const floating*>k.a
        const cnp.int64_t* idx = <const cnp.int64_t*>k.aux
        floating* dx = <floating*>k.out
        Py_ssize_t p, t
    for p in range(k.n0):
        for t in range(k.n1):
            dx[idx[t]] += g[t]
        g += k.n1
        idx += k.n1
        dx += k.n2


cdef void _avg(Call* k, floating* tag) noexcept nogil:
    """Forward (``flag`` False): ``out`` = window means of ``a``.  Backward: ``out`` (zeroed) +=
    ``a`` / divisor over each window (``a`` is then the output gradient).  ``s0``: 1 to count
    the padding in the divisor; ``n0``: a divisor for every window instead (0: none)."""
    cdef:
        const Pool* q = <const Pool*>k.aux
        const floating* src = <const floating*>k.a
        floating* dst = <floating*>k.out
        bint backward = k.flag, include_pad = k.s0 != 0
        Py_ssize_t override = k.n0
        Py_ssize_t p, oh, ow, h0, w0, h1, w1, h, w, hn, wn
        floating s, div
        const floating* xplane
        floating* dplane
    for p in range(q.planes):
        for oh in range(q.oh):
            h0 = oh * q.sh - q.ph
            h1 = h0 + q.kh
            if h1 > q.h + q.ph:
                h1 = q.h + q.ph
            hn = h1 - h0            # cells in the padded input
            if h0 < 0:
                h0 = 0
            if h1 > q.h:
                h1 = q.h
            for ow in range(q.ow):
                w0 = ow * q.sw - q.pw
                w1 = w0 + q.kw
                if w1 > q.w + q.pw:
                    w1 = q.w + q.pw
                wn = w1 - w0
                if w0 < 0:
                    w0 = 0
                if w1 > q.w:
                    w1 = q.w
                if override:
                    div = <floating>override
                elif include_pad:
                    div = <floating>(hn * wn)
                else:
                    div = <floating>((h1 - h0) * (w1 - w0))
                if backward:
                    dplane = dst + p * q.h * q.w
                    s = src[0] / div
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            dplane[h * q.w + w] += s
                    src += 1
                else:
                    xplane = src + p * q.h * q.w
                    s = 0
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            s = s + xplane[h * q.w + w]
                    dst[0] = s / div
                    dst += 1


# --------------------------------------------------------------------------- kernels
cdef Py_ssize_t _divisor(object divisor_override) except? -1:
    """``divisor_override`` as the core's ``n0`` (0: none); ``checks`` raises for a bad one."""
    if divisor_override is None:
        return 0
    return checks.divisor_override(divisor_override)


cdef object _pool_forward(bint is_max, x, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad,
                          divisor_override=None):
    """The forward pass of both poolings: prologue, output(s), core."""
    cdef cnp.ndarray xa = fast_array(x)
    cdef int tn = _float4(xa, "max_pool2d input" if is_max else "avg_pool2d input")
    if tn < 0:
        if is_max:
            return pure.max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode)
        return pure.avg_pool2d_forward(x, kernel_size, stride, padding, count_include_pad, ceil_mode,
                                       divisor_override)
    cdef Pool q
    cdef Py_ssize_t xs[4]
    _geometry(&q, xs if small_dims(xa, xs) else NULL, (<object>xa).shape, kernel_size, stride,
              padding, dilation, ceil_mode)
    xa = as_c_typed(xa, tn)
    cdef Py_ssize_t n = cnp.PyArray_DIM(xa, 0), c = cnp.PyArray_DIM(xa, 1)
    cdef cnp.ndarray out = _new(n, c, q.oh, q.ow, tn, False)
    cdef cnp.ndarray idx
    cdef Call k
    k.a = cnp.PyArray_DATA(xa)
    k.out = cnp.PyArray_DATA(out)
    k.aux = &q
    if is_max:
        idx = _new(n, c, q.oh, q.ow, cnp.NPY_INT64, False)
        k.out2 = cnp.PyArray_DATA(idx)
        run_typed(tn, &k, _max_core[float], _max_core[double])
        return out, idx
    k.flag = False
    k.s0 = 1.0 if count_include_pad else 0.0
    k.n0 = _divisor(divisor_override)
    run_typed(tn, &k, _avg[float], _avg[double])
    return out


def max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode=False):
    return _pool_forward(True, x, kernel_size, stride, padding, dilation, ceil_mode, False)


def max_pool2d_backward(grad, indices, input_shape):
    cdef cnp.ndarray ga = fast_array(grad)
    cdef cnp.ndarray ia = fast_array(indices)
    cdef int tn = _float4(ga, "max_pool2d gradient")
    if tn < 0:
        return pure.max_pool2d_backward(grad, indices, input_shape)
    cdef Py_ssize_t xs[4]
    cdef Py_ssize_t i, size
    cdef const cnp.int64_t* ip
    if not small_ints(input_shape, xs, 4):
        shape = checks.as_shape(input_shape)
        if len(shape) != 4:   # the pure twin raises its error
            return pure.max_pool2d_backward(grad, indices, input_shape)
        for i in range(4):
            xs[i] = shape[i]
    # the indices are checked before the loop below writes where they say
    cdef bint fast = (cnp.PyArray_TYPE(ia) == cnp.NPY_INT64 and cnp.PyArray_ISNOTSWAPPED(ia)
                      and cnp.PyArray_NDIM(ia) == 4 and cnp.PyArray_DIM(ga, 0) == xs[0]
                      and cnp.PyArray_DIM(ga, 1) == xs[1])
    if fast:
        for i in range(4):
            fast = fast and cnp.PyArray_DIM(ia, i) == cnp.PyArray_DIM(ga, i)
    if fast:
        ia = as_c_typed(ia, cnp.NPY_INT64)
        ip = <const cnp.int64_t*>cnp.PyArray_DATA(ia)
        size = cnp.PyArray_SIZE(ia)
        for i in range(size):
            if ip[i] < 0 or ip[i] >= xs[2] * xs[3]:
                fast = False
                break
    if not fast:   # raises the error (or accepts other integer dtypes, then converted)
        checks.check_max_pool_indices(ga, ia, tuple([xs[i] for i in range(4)]))
        ia = as_c_typed(ia, cnp.NPY_INT64)
    ga = as_c_typed(ga, tn)
    cdef cnp.ndarray dx = _new(xs[0], xs[1], xs[2], xs[3], tn, True)
    cdef Call k
    k.a = cnp.PyArray_DATA(ga)
    k.aux = cnp.PyArray_DATA(ia)
    k.out = cnp.PyArray_DATA(dx)
    k.n0 = xs[0] * xs[1]
    k.n1 = cnp.PyArray_DIM(ga, 2) * cnp.PyArray_DIM(ga, 3)
    k.n2 = xs[2] * xs[3]
    run_typed(tn, &k, _max_back[float], _max_back[double])
    return dx


def avg_pool2d_forward(x, kernel_size, stride, padding, count_include_pad, ceil_mode=False,
                       divisor_override=None):
    return _pool_forward(False, x, kernel_size, stride, padding, (1, 1), ceil_mode, count_include_pad,
                         divisor_override)


def avg_pool2d_backward(grad, input_shape, kernel_size, stride, padding, count_include_pad, ceil_mode=False,
                        divisor_override=None):
    cdef cnp.ndarray ga = fast_array(grad)
    cdef int tn = _float4(ga, "avg_pool2d gradient")
    if tn < 0:
        return pure.avg_pool2d_backward(grad, input_shape, kernel_size, stride, padding, count_include_pad,
                                        ceil_mode, divisor_override)
    cdef Pool q
    cdef Py_ssize_t xs[4]
    cdef Py_ssize_t i
    cdef bint fast_shape = small_ints(input_shape, xs, 4)
    _geometry(&q, xs if fast_shape else NULL, None if fast_shape else checks.as_shape(input_shape),
              kernel_size, stride, padding, (1, 1), ceil_mode)
    if not fast_shape:
        shape = checks.as_shape(input_shape)
        for i in range(4):
            xs[i] = shape[i]
    if not (cnp.PyArray_DIM(ga, 0) == xs[0] and cnp.PyArray_DIM(ga, 1) == xs[1]
            and cnp.PyArray_DIM(ga, 2) == q.oh and cnp.PyArray_DIM(ga, 3) == q.ow):
        checks.check_pool_grad("avg_pool2d", (<object>ga).shape, (xs[0], xs[1], q.oh, q.ow))
    ga = as_c_typed(ga, tn)
    cdef cnp.ndarray dx = _new(xs[0], xs[1], xs[2], xs[3], tn, True)
    cdef Call k
    k.a = cnp.PyArray_DATA(ga)
    k.out = cnp.PyArray_DATA(dx)
    k.aux = &q
    k.flag = True
    k.s0 = 1.0 if count_include_pad else 0.0
    k.n0 = _divisor(divisor_override)
    run_typed(tn, &k, _avg[float], _avg[double])
    return dx
