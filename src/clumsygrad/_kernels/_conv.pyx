# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled 2-d convolution: direct loops (``_conv_direct.h``) where the reduction per output
value is short, otherwise im2col / col2im / layout loops in C with the products through NumPy (BLAS).

Same names, signatures, layout and results as the pure twins in ``pure.py`` (section
"convolution, pooling, normalisation").  Each wrapper runs the shared prologue of
``_shapes.pxd``: ``fast_array``, the dtype (native float32/float64), the geometry parsed in C (any
argument the fast path does not take, and every error, goes through ``checks.conv2d_geometry``
and ``checks.conv2d_arrays``, so both twins raise the same messages), then the C loops without
the GIL.

The design (measurements in the notes of issue 16):

* **Direct loops** (``_direct``: the AVX2 + FMA copies available, stride 1 and
  ``C/G * kh * kw <= 288``; the input gradient also ``F/G * kh * kw <= 576`` and output rows of
  whole vectors or ``C/G >= 8``).  Each plane is zero-padded once; seen flat, a stride-1
  convolution is then one long correlation per output channel, vectorised over output positions
  with register blocking (four output channels x two vectors; the input gradient as the adjoint:
  per-tap sums over the output channels, four vectors x three taps, then a gather of those sums
  at the flipped offsets; the weight gradient as four channels x three taps of dot products).
  ``_conv_direct.h`` compiles each loop for the baseline instruction set and, on x86-64, for
  AVX2 + FMA, and picks at run time (``__builtin_cpu_supports``), so the wheel stays baseline;
  without AVX2 + FMA (and for compilers without generic vectors, MSVC) im2col + BLAS everywhere,
  the baseline copies having measured slower than it.  Measured 1.2-3x faster than im2col + BLAS
  for the forward pass and the weight gradient up to K = 288 (a tie at 576), and at the small
  bench size (1x8x8 -> 16) 2.7-3.1x, 1.6x and 2.2-2.5x for the forward pass, input and weight
  gradients.
* **im2col + BLAS** otherwise: each (H, W) plane is padded once (``_pad_plane``), then every row
  of the column matrix is a plain strided copy (``_windows``; ``_col2im`` walks it backwards,
  adding).  The batch loop depends on the size (``_per_image``):

  - the batch's columns fit in a core's cache (small images): one product per group over the
    whole batch.  Forward ``W (F/G, K) @ cols (K, N*L)``, then one pass lays the (F, N*L)
    product out as (N, F, L) and adds the bias (``_relayout``); input gradient ``W^T @ grad_n``
    for every image in one ``np.matmul`` (no transposed copy of ``grad``), scattered back by
    ``_col2im``; weight gradient ``cols (K, N*L) @ grad^T`` with ``grad`` laid out as (F, N*L) by
    ``_relayout`` (this orientation measured faster than ``grad @ cols^T``);
  - otherwise one product per image (and group), its columns kept in cache: measured faster than
    one product over a column matrix of many megabytes.
"""
cimport numpy as cnp
from cython cimport floating

import numpy as np

from . import checks, pure
from ._nn cimport small_dims, small_ints
from ._shapes cimport Call, as_c_typed, fast_array, hsum, kernel_typenum, native_float_typenum, run_typed

cdef extern from "numpy/arrayobject.h":
    object PyArray_MatrixProduct2(object a, object b, void* out)   # NULL out: a new array

cdef extern from "_conv_direct.h" nogil:
    ctypedef struct cg_geo:
        Py_ssize_t n, c, h, w, f, kh, kw, oh, ow, pt, pl, dh, dw, g, hp, wp
    enum:
        CG_DIRECT
        CG_MAX_TAPS
        CG_MAX_K
    Py_ssize_t cg_direct_scratch(const cg_geo* q, int kind, Py_ssize_t nl)
    int cg_direct_isa()
    int cg_direct_set_isa(int isa)
    Py_ssize_t cg_direct_lanes(int dbl)
    void cg_direct_forward_f(const cg_geo* q, const float* x, const float* w, const float* bias, float* out,
                             float* scratch)
    void cg_direct_forward_d(const cg_geo* q, const double* x, const double* w, const double* bias,
                             double* out, double* scratch)
    void cg_direct_input_f(const cg_geo* q, const float* grad, const float* w, float* dx, float* scratch)
    void cg_direct_input_d(const cg_geo* q, const double* grad, const double* w, double* dx, double* scratch)
    void cg_direct_weight_f(const cg_geo* q, const float* grad, const float* x, float* dw, float* scratch)
    void cg_direct_weight_d(const cg_geo* q, const double* grad, const double* x, double* dw, double* scratch)
    void cg_channel_sums_f(const float* grad, Py_ssize_t n, Py_ssize_t f, Py_ssize_t L, float* out)
    void cg_channel_sums_d(const double* grad, Py_ssize_t n, Py_ssize_t f, Py_ssize_t L, double* out)

cnp.import_array()

__all__ = ["conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight", "conv2d_backward_bias"]

cdef enum:
    PER_IMAGE_BYTES = 1 << 20   # see _per_image

cdef Py_ssize_t _direct_k = 288   # see _direct; _direct_limit changes it (tests, timing)
cdef bint _direct_base = False    # the baseline copies too (see _direct; tests, timing)


ctypedef struct Geo:
    Py_ssize_t n, c, h, w, f, kh, kw, oh, ow, sh, sw, pt, pb, pl, pr, dh, dw, g
    # a column matrix: element (image b, row (c*kh + i)*kw + j, position l) at b*sn + row*sk + l
    Py_ssize_t sn, sk
    # the padded plane the windows read: rows -pt .. hp-pt-1, columns -pl .. wp-pl-1 of the image
    Py_ssize_t hp, wp


# --------------------------------------------------------------------------- argument parsing
cdef int _geometry(Geo* q, Py_ssize_t* xs, Py_ssize_t* ws, object x_shape, object w_shape,
                   object stride, object padding, object dilation, object groups) except -1:
    """Fill ``q`` from the shapes ``xs``/``ws`` (NULL: parse ``x_shape``/``w_shape``) and the
    arguments; exactly ``checks.conv2d_geometry``'s rules, which raise the errors."""
    cdef Py_ssize_t s[2]
    cdef Py_ssize_t p[4]
    cdef Py_ssize_t d[2]
    cdef Py_ssize_t gg[1]
    gg[0] = 0
    cdef bint fast = (xs != NULL and ws != NULL and small_ints(stride, s, 2)
                      and small_ints(padding, p, 4) and small_ints(dilation, d, 2)
                      and small_ints((groups,), gg, 1))
    if fast:
        q.n, q.c, q.h, q.w = xs[0], xs[1], xs[2], xs[3]
        q.f, q.kh, q.kw = ws[0], ws[2], ws[3]
        q.sh, q.sw, q.pt, q.pb, q.pl, q.pr, q.dh, q.dw, q.g = s[0], s[1], p[0], p[1], p[2], p[3], d[0], d[1], gg[0]
        fast = (q.sh >= 1 and q.sw >= 1 and q.dh >= 1 and q.dw >= 1 and q.g >= 1
                and q.c % q.g == 0 and q.f % q.g == 0 and ws[1] * q.g == q.c and q.kh >= 1 and q.kw >= 1)
        if fast:
            q.oh = (q.h + q.pt + q.pb - q.dh * (q.kh - 1) - 1) // q.sh + 1
            q.ow = (q.w + q.pl + q.pr - q.dw * (q.kw - 1) - 1) // q.sw + 1
            # floor division of a negative numerator: C truncates, so re-check on the slow path
            fast = (q.h + q.pt + q.pb - q.dh * (q.kh - 1) - 1 >= 0
                    and q.w + q.pl + q.pr - q.dw * (q.kw - 1) - 1 >= 0)
    if not fast:
        if x_shape is None:
            x_shape = tuple([xs[i] for i in range(4)])
        if w_shape is None:
            w_shape = tuple([ws[i] for i in range(4)])
        geo = checks.conv2d_geometry(x_shape, w_shape, stride, padding, dilation, groups)
        try:
            (q.n, q.c, q.h, q.w, q.f, q.kh, q.kw, q.oh, q.ow, q.sh, q.sw, q.pt, q.pl, q.dh, q.dw,
             q.g) = geo
        except OverflowError:
            raise ValueError(f"conv2d geometry {geo} is too large for an array") from None
    return 0


cdef int _arrays(cnp.ndarray a, str a_name, cnp.ndarray b, str b_name, cnp.ndarray bias) except -2:
    """The type the cores run in (NPY_FLOAT / NPY_DOUBLE; -1: hand the call to ``pure``) for two
    4-d arrays and an optional (F,) bias of the weight ``b``; errors by ``checks.conv2d_arrays``."""
    cdef int tn = native_float_typenum(a)
    if (tn >= 0 and cnp.PyArray_NDIM(a) == 4 and cnp.PyArray_NDIM(b) == 4 and native_float_typenum(b) == tn
            and (bias is None or (native_float_typenum(bias) == tn and cnp.PyArray_NDIM(bias) == 1
                                  and cnp.PyArray_DIM(bias, 0) == cnp.PyArray_DIM(b, 0)))):
        return tn
    return kernel_typenum(checks.conv2d_arrays(a_name, a, b_name, b, bias)[3])


cdef inline cnp.ndarray _empty(int nd, Py_ssize_t* dims, int tn):
    return cnp.PyArray_EMPTY(nd, <cnp.npy_intp*>dims, tn, 0)


# --------------------------------------------------------------------------- cores (no GIL)
cdef inline void _pad_plane(const floating* src, floating* P, const Geo* q) noexcept nogil:
    """The padded plane ``P`` (hp x wp, zeros around) of one (H, W) plane ``src``."""
    cdef Py_ssize_t r, h, t, n = q.wp - q.pl if q.wp - q.pl < q.w else q.w
    cdef floating* prow
    for t in range(q.hp * q.wp):
        P[t] = 0
    if n <= 0:
        return
    for r in range(q.pt, q.hp):
        h = r - q.pt
        if h >= q.h:
            break
        prow = P + r * q.wp + q.pl
        for t in range(n):
            prow[t] = src[h * q.w + t]


cdef inline void _row(const floating* src, floating* dst, Py_ssize_t n, bint add) noexcept nogil:
    """``dst[:n] = src[:n]`` (``+=`` when ``add``) for short rows: four loads, then four stores
    per step, which the compiler turns into one vector copy without the overlap checks (and
    set-up) of a loop."""
    cdef Py_ssize_t t = 0
    cdef floating a0, a1, a2, a3
    while t + 4 <= n:
        a0 = src[t]
        a1 = src[t + 1]
        a2 = src[t + 2]
        a3 = src[t + 3]
        if add:
            a0 = a0 + dst[t]
            a1 = a1 + dst[t + 1]
            a2 = a2 + dst[t + 2]
            a3 = a3 + dst[t + 3]
        dst[t] = a0
        dst[t + 1] = a1
        dst[t + 2] = a2
        dst[t + 3] = a3
        t += 4
    while t < n:
        dst[t] = dst[t] + src[t] if add else src[t]
        t += 1


cdef inline void _windows(const Geo* q, floating* P, floating* cols, Py_ssize_t images, bint scatter) noexcept nogil:
    """Between the padded planes ``P`` (``images`` x C planes of hp x wp) and the column matrix
    ``cols`` (layout ``Geo.sn``/``Geo.sk``): gather each window row into ``cols`` (im2col), or,
    with ``scatter``, add each row of ``cols`` back onto the planes (its adjoint).  Rows of
    ``cols`` are walked in order."""
    cdef:
        Py_ssize_t b, c, i, j, oh, ow, plane = q.hp * q.wp
        floating* row
        floating* win
    for c in range(q.c):
        for i in range(q.kh):
            for j in range(q.kw):
                for b in range(images):
                    row = cols + b * q.sn + ((c * q.kh + i) * q.kw + j) * q.sk
                    win = P + (b * q.c + c) * plane + i * q.dh * q.wp + j * q.dw
                    for oh in range(q.oh):
                        if q.sw == 1:
                            if scatter:
                                _row(row, win, q.ow, True)
                            else:
                                _row(win, row, q.ow, False)
                        elif scatter:
                            for ow in range(q.ow):
                                win[ow * q.sw] += row[ow]
                        else:
                            for ow in range(q.ow):
                                row[ow] = win[ow * q.sw]
                        row += q.ow
                        win += q.sh * q.wp


cdef void _im2col(Call* k, floating* tag) noexcept nogil:
    """Images ``n0 .. n0+n1-1`` of ``a`` (N, C, H, W) into the column matrix ``out`` laid out by
    ``Geo.sn``/``Geo.sk`` (image ``n0`` first).  The planes are padded once into ``scratch``
    (n1*C planes of hp x wp); then each row of ``out`` is written in order, plain strided copies."""
    cdef:
        const Geo* q = <const Geo*>k.aux
        Py_ssize_t b, c, plane = q.hp * q.wp
    for b in range(k.n1):
        for c in range(q.c):
            _pad_plane(<const floating*>k.a + ((k.n0 + b) * q.c + c) * q.h * q.w,
                       <floating*>k.scratch + (b * q.c + c) * plane, q)
    _windows(q, <floating*>k.scratch, <floating*>k.out, k.n1, False)


cdef void _col2im(Call* k, floating* tag) noexcept nogil:
    """The adjoint of ``_im2col``: images ``n0 .. n0+n1-1`` of ``out`` (N, C, H, W) = the columns
    ``a`` (image ``n0`` first) added up in padded planes (``scratch``), whose insides are then
    copied out."""
    cdef:
        const Geo* q = <const Geo*>k.aux
        floating* dx
        floating* P = <floating*>k.scratch
        Py_ssize_t b, c, h, t, plane = q.hp * q.wp
        Py_ssize_t n = q.wp - q.pl if q.wp - q.pl < q.w else q.w
        const floating* prow
    if n < 0:
        n = 0
    for t in range(k.n1 * q.c * plane):
        P[t] = 0
    _windows(q, P, <floating*>k.a, k.n1, True)   # reads the columns only
    for b in range(k.n1):
        for c in range(q.c):
            prow = P + (b * q.c + c) * plane + q.pt * q.wp + q.pl
            dx = <floating*>k.out + ((k.n0 + b) * q.c + c) * q.h * q.w
            for h in range(q.h):
                if h + q.pt < q.hp:
                    for t in range(n):
                        dx[t] = prow[t]
                    for t in range(n, q.w):
                        dx[t] = 0
                else:
                    for t in range(q.w):
                        dx[t] = 0
                dx += q.w
                prow += q.wp


cdef void _relayout(Call* k, floating* tag) noexcept nogil:
    """Between the per-image layout (N, F, L) and the per-channel one (F, N*L) of ``n0`` images
    of ``n1`` channels of ``n2`` values: ``flag`` True, ``out`` (N, F, L) = ``a`` (F, N*L) plus
    ``b[f]`` (the bias, or NULL); ``flag`` False, ``out`` (F, N*L) = ``a`` (N, F, L)."""
    cdef:
        const floating* src = <const floating*>k.a
        const floating* bias = <const floating*>k.b
        floating* dst = <floating*>k.out
        Py_ssize_t n = k.n0, f = k.n1, L = k.n2, b, c, l, per_channel, per_image
        const floating* s
        floating* d
        floating v
    for b in range(n):
        for c in range(f):
            per_channel = (c * n + b) * L
            per_image = (b * f + c) * L
            s = src + (per_channel if k.flag else per_image)
            d = dst + (per_image if k.flag else per_channel)
            v = bias[c] if bias != NULL else 0
            for l in range(L):
                d[l] = s[l] + v


cdef void _add_bias(Call* k, floating* tag) noexcept nogil:
    """``out`` (n1 rows of L, channel ``row % n0``) += ``b[channel]``."""
    cdef:
        const floating* bias = <const floating*>k.b
        floating* dst = <floating*>k.out
        Py_ssize_t rows = k.n1, f = k.n0, L = k.n2, c, l
        floating v
    for c in range(rows):
        v = bias[c % f]
        for l in range(L):
            dst[l] += v
        dst += L


cdef cnp.ndarray _plane(Geo* q, int tn, Py_ssize_t images):
    """Sets ``q.hp``/``q.wp`` (the rows and columns the windows reach) and returns scratch
    space for the padded planes of ``images`` images."""
    cdef Py_ssize_t size
    q.hp = (q.oh - 1) * q.sh + (q.kh - 1) * q.dh + 1
    q.wp = (q.ow - 1) * q.sw + (q.kw - 1) * q.dw + 1
    size = images * q.c * q.hp * q.wp
    return _empty(1, &size, tn)


cdef inline bint _per_image(const Geo* q, int tn):
    """The batch loop: one product per image (columns of one image, kept in cache) when the
    batch's column matrix would not fit in a core's cache; one product over the whole batch
    (fewer, larger products) otherwise.  Measured in the notes of issue 16."""
    return q.n > 1 and q.c * q.kh * q.kw * q.n * q.oh * q.ow * (4 if tn == cnp.NPY_FLOAT else 8) > PER_IMAGE_BYTES


cdef inline void _columns_of(Call* k, Geo* q, int tn, cnp.ndarray xa, cnp.ndarray cols, cnp.ndarray plane,
                             Py_ssize_t first, Py_ssize_t count):
    """Images ``first .. first+count-1`` of ``xa`` into ``cols`` (layout ``q.sn``/``q.sk``)."""
    k.a = cnp.PyArray_DATA(xa)
    k.out = cnp.PyArray_DATA(cols)
    k.scratch = cnp.PyArray_DATA(plane)
    k.aux = q
    k.n0 = first
    k.n1 = count
    run_typed(tn, k, _im2col[float], _im2col[double])


cdef inline object _dot(object a, object b, cnp.ndarray out):
    """``a @ b`` of two 2-d arrays into ``out`` (a new array when None): NumPy's ``dot``, BLAS
    for float32/float64, without the generalised-ufunc set-up of ``np.matmul``."""
    return PyArray_MatrixProduct2(a, b, NULL if out is None else <void*>out)


# --------------------------------------------------------------------------- direct loops
cdef inline bint _direct(const Geo* q, bint input_grad, int tn):
    """The direct loops of ``_conv_direct.h`` instead of im2col + BLAS: stride 1 and a short
    reduction per output value, ``C/G * kh * kw <= _direct_k`` (288).  The input gradient, whose
    loop also reduces over the output channels, moreover needs ``F/G * kh * kw <= 2 * _direct_k``
    (576) and either output rows of whole vectors (its gradient read in place) or ``C/G >= 8``
    (the gradient's re-layout, once per image, shared by enough input channels).  Only the
    AVX2 + FMA copies run by default: the baseline ones (SSE2, no FMA) measured 0.3-0.9x the speed
    of im2col + BLAS (whose BLAS picks its own kernels for the CPU) at all but the smallest size.
    Measured (float32 and float64, one core; the notes of issue 16): forward and weight gradient
    1.2-3x faster than im2col + BLAS up to K = 288, a tie at 576; the input gradient 1.2-1.8x
    faster inside its rule, 0.6-0.98x outside it."""
    cdef Py_ssize_t taps = q.kh * q.kw
    if not (CG_DIRECT and (cg_direct_isa() == 1 or _direct_base) and q.sh == 1 and q.sw == 1 and taps <= CG_MAX_TAPS and q.h >= 1 and q.w >= 1
            and (q.c // q.g) * taps <= _direct_k and (q.c // q.g) * taps <= CG_MAX_K):
        return False
    if not input_grad:
        return True
    return ((q.f // q.g) * taps <= 2 * _direct_k
            and (q.ow % cg_direct_lanes(tn == cnp.NPY_DOUBLE) == 0 or q.c // q.g >= 8))


cdef cnp.ndarray _direct_run(int kind, const Geo* q, int tn, cnp.ndarray a, cnp.ndarray b, cnp.ndarray bias,
                             cnp.ndarray out):
    """Run a direct loop (kind 0 forward ``out = conv(a, b) + bias``, 1 input gradient of grad
    ``a`` and weight ``b``, 2 weight gradient of grad ``a`` and input ``b``) on C-contiguous
    arrays of type ``tn``; returns ``out``."""
    cdef cg_geo z
    z.n, z.c, z.h, z.w, z.f, z.kh, z.kw, z.oh, z.ow = q.n, q.c, q.h, q.w, q.f, q.kh, q.kw, q.oh, q.ow
    z.pt, z.pl, z.dh, z.dw, z.g = q.pt, q.pl, q.dh, q.dw, q.g
    z.hp = q.oh + (q.kh - 1) * q.dh
    z.wp = q.ow + (q.kw - 1) * q.dw
    cdef bint single = tn == cnp.NPY_FLOAT
    cdef cnp.npy_intp size = cg_direct_scratch(&z, kind, 8 if single else 4)
    cdef cnp.ndarray scratch = cnp.PyArray_ZEROS(1, &size, tn, 0)
    cdef void* pa = cnp.PyArray_DATA(a)
    cdef void* pb = cnp.PyArray_DATA(b)
    cdef void* pbias = NULL if bias is None else cnp.PyArray_DATA(bias)
    cdef void* po = cnp.PyArray_DATA(out)
    cdef void* ps = cnp.PyArray_DATA(scratch)
    with nogil:
        if kind == 0:
            if single:
                cg_direct_forward_f(&z, <float*>pa, <float*>pb, <float*>pbias, <float*>po, <float*>ps)
            else:
                cg_direct_forward_d(&z, <double*>pa, <double*>pb, <double*>pbias, <double*>po, <double*>ps)
        elif kind == 1:
            if single:
                cg_direct_input_f(&z, <float*>pa, <float*>pb, <float*>po, <float*>ps)
            else:
                cg_direct_input_d(&z, <double*>pa, <double*>pb, <double*>po, <double*>ps)
        elif single:
            cg_direct_weight_f(&z, <float*>pa, <float*>pb, <float*>po, <float*>ps)
        else:
            cg_direct_weight_d(&z, <double*>pa, <double*>pb, <double*>po, <double*>ps)
    return out


def _direct_limit(k=None):
    """The largest ``C/G * kh * kw`` the direct loops take (0: never; see ``_direct``); ``k``
    sets it (for tests and timing).  Returns the limit in force before the call."""
    global _direct_k
    old = _direct_k
    if k is not None:
        _direct_k = k
    return old


def _direct_baseline(flag=None):
    """Whether the direct loops also run on the baseline copies (CPUs without AVX2 + FMA, other
    architectures), where the rule of ``_direct`` leaves them off; ``flag`` sets it (for tests
    and timing).  Returns the setting in force before the call."""
    global _direct_base
    old = _direct_base
    if flag is not None:
        _direct_base = bool(flag)
    return old


def _direct_isa(isa=None):
    """The instruction set the direct loops run with (0 baseline, 1 AVX2 + FMA); ``isa`` 0 forces
    the baseline copies, 1 the AVX2 + FMA ones where the CPU has them (for tests and timing)."""
    return cg_direct_isa() if isa is None else cg_direct_set_isa(isa)


# --------------------------------------------------------------------------- kernels
def conv2d_forward(x, weight, stride, padding, dilation, groups, bias=None):
    cdef cnp.ndarray xa = fast_array(x), wa = fast_array(weight)
    cdef cnp.ndarray ba = None if bias is None else fast_array(bias)
    cdef int tn = _arrays(xa, "conv2d input", wa, "conv2d weight", ba)
    if tn < 0:
        return pure.conv2d_forward(x, weight, stride, padding, dilation, groups, bias)
    cdef Geo q
    cdef Py_ssize_t xs[4]
    cdef Py_ssize_t ws[4]
    cdef Py_ssize_t dims[4]
    _geometry(&q, xs if small_dims(xa, xs) else NULL, ws if small_dims(wa, ws) else NULL,
              (<object>xa).shape, (<object>wa).shape, stride, padding, dilation, groups)
    xa = as_c_typed(xa, tn)
    if ba is not None:
        ba = as_c_typed(ba, tn)
    if _direct(&q, False, tn):
        dims[0], dims[1], dims[2], dims[3] = q.n, q.f, q.oh, q.ow
        return _direct_run(0, &q, tn, xa, as_c_typed(wa, tn), ba, _empty(4, dims, tn))
    cdef Py_ssize_t L = q.oh * q.ow, K = (q.c // q.g) * q.kh * q.kw, G = q.g, Fg = q.f // q.g, b, gi
    cdef Call k
    cdef bint per_image = _per_image(&q, tn)
    cdef cnp.ndarray plane = _plane(&q, tn, 1 if per_image else q.n), cols, out, prod
    wm = as_c_typed(wa, tn).reshape(G, Fg, K)
    dims[0], dims[1], dims[2], dims[3] = q.n, q.f, q.oh, q.ow
    if per_image:
        # per image: its columns (C*kh*kw, L) in cache, one product per group into the output
        dims[0], dims[1] = q.c * q.kh * q.kw, L
        cols = _empty(2, dims, tn)
        q.sn, q.sk = 0, L
        dims[0], dims[1] = q.n, q.f
        out = _empty(4, dims, tn)
        out_g = out.reshape(q.n, G, Fg, L)
        cols_g = [cols[gi * K:(gi + 1) * K] for gi in range(G)]
        w_g = [wm[gi] for gi in range(G)]
        for b in range(q.n):
            _columns_of(&k, &q, tn, xa, cols, plane, b, 1)
            for gi in range(G):
                _dot(w_g[gi], cols_g[gi], out_g[b, gi])
        prod = None
    else:
        # the whole batch: columns (C*kh*kw, N*L), one product per group, laid out per image
        dims[0], dims[1] = q.c * q.kh * q.kw, q.n * L
        cols = _empty(2, dims, tn)
        q.sn, q.sk = L, q.n * L
        _columns_of(&k, &q, tn, xa, cols, plane, 0, q.n)
        if G == 1:
            prod = _dot(wm[0], cols, None)
        else:
            prod = np.matmul(wm, cols.reshape(G, K, q.n * L))
        if q.n == 1:   # (F, 1*L) is already the output's layout
            out = prod.reshape(1, q.f, q.oh, q.ow)
        else:
            dims[0], dims[1] = q.n, q.f
            out = _empty(4, dims, tn)
    k.b = NULL if ba is None else cnp.PyArray_DATA(ba)
    k.out = cnp.PyArray_DATA(out)
    k.n0, k.n1, k.n2 = q.n, q.f, L
    if prod is not None and q.n != 1:
        k.a = cnp.PyArray_DATA(prod)
        k.flag = True
        run_typed(tn, &k, _relayout[float], _relayout[double])
    elif ba is not None:
        k.n1 = q.n * q.f
        k.n0 = q.f
        run_typed(tn, &k, _add_bias[float], _add_bias[double])
    return out


cdef inline int _check_grad(cnp.ndarray ga, const Geo* q) except -1:
    if not (cnp.PyArray_DIM(ga, 0) == q.n and cnp.PyArray_DIM(ga, 1) == q.f
            and cnp.PyArray_DIM(ga, 2) == q.oh and cnp.PyArray_DIM(ga, 3) == q.ow):
        checks.check_conv2d_grad((<object>ga).shape, (q.n, q.c, q.h, q.w, q.f, q.kh, q.kw, q.oh, q.ow))
    return 0


cdef int _backward_geometry(Geo* q, cnp.ndarray ga, cnp.ndarray arr, bint arr_is_input, object shape,
                            object stride, object padding, object dilation, object groups) except -1:
    """The geometry of a gradient kernel: ``arr`` is the input (its weight given by ``shape``) or
    the weight (the input given by ``shape``); then ``ga`` must be the output's shape."""
    cdef Py_ssize_t from_arr[4]
    cdef Py_ssize_t from_shape[4]
    cdef bint fast_arr = small_dims(arr, from_arr), fast_shape = small_ints(shape, from_shape, 4)
    arr_shape = (<object>arr).shape
    parsed = None if fast_shape else checks.as_shape(shape)
    if arr_is_input:
        _geometry(q, from_arr if fast_arr else NULL, from_shape if fast_shape else NULL,
                  arr_shape, parsed, stride, padding, dilation, groups)
    else:
        _geometry(q, from_shape if fast_shape else NULL, from_arr if fast_arr else NULL,
                  parsed, arr_shape, stride, padding, dilation, groups)
    return _check_grad(ga, q)


def conv2d_backward_input(grad, weight, input_shape, stride, padding, dilation, groups):
    cdef cnp.ndarray ga = fast_array(grad), wa = fast_array(weight)
    cdef int tn = _arrays(ga, "conv2d gradient", wa, "conv2d weight", None)
    if tn < 0:
        return pure.conv2d_backward_input(grad, weight, input_shape, stride, padding, dilation, groups)
    cdef Geo q
    cdef Py_ssize_t dims[4]
    _backward_geometry(&q, ga, wa, False, input_shape, stride, padding, dilation, groups)
    if _direct(&q, True, tn):
        dims[0], dims[1], dims[2], dims[3] = q.n, q.c, q.h, q.w
        return _direct_run(1, &q, tn, as_c_typed(ga, tn), as_c_typed(wa, tn), None, _empty(4, dims, tn))
    cdef Py_ssize_t L = q.oh * q.ow, K = (q.c // q.g) * q.kh * q.kw, G = q.g, Fg = q.f // q.g, b, gi
    cdef cnp.ndarray cols
    wt = as_c_typed(wa, tn).reshape(G, Fg, K).transpose(0, 2, 1)
    gm = as_c_typed(ga, tn).reshape(q.n, G, Fg, L)
    dims[0], dims[1], dims[2], dims[3] = q.n, q.c, q.h, q.w
    cdef cnp.ndarray dx = _empty(4, dims, tn)
    cdef bint per_image = _per_image(&q, tn)
    cdef cnp.ndarray plane = _plane(&q, tn, 1 if per_image else q.n)
    cdef Call k
    k.out = cnp.PyArray_DATA(dx)
    k.scratch = cnp.PyArray_DATA(plane)
    k.aux = &q
    if per_image:
        # per image: W^T grad_n into cache-sized columns, scattered back at once
        dims[0], dims[1] = q.c * q.kh * q.kw, L
        cols = _empty(2, dims, tn)
        q.sn, q.sk = 0, L
        k.a = cnp.PyArray_DATA(cols)
        cols_g = [cols[gi * K:(gi + 1) * K] for gi in range(G)]
        w_g = [wt[gi] for gi in range(G)]
        for b in range(q.n):
            for gi in range(G):
                _dot(w_g[gi], gm[b, gi], cols_g[gi])
            k.n0, k.n1 = b, 1
            run_typed(tn, &k, _col2im[float], _col2im[double])
        return dx
    # (G, K, F/G) @ (N, G, F/G, L) -> (N, G, K, L): per image in one call, no transposed grad
    cols = as_c_typed(<cnp.ndarray>np.matmul(wt, gm), tn)
    q.sn, q.sk = q.c * q.kh * q.kw * L, L
    k.a = cnp.PyArray_DATA(cols)
    k.n0, k.n1 = 0, q.n
    run_typed(tn, &k, _col2im[float], _col2im[double])
    return dx


def conv2d_backward_weight(grad, x, weight_shape, stride, padding, dilation, groups):
    cdef cnp.ndarray ga = fast_array(grad), xa = fast_array(x)
    cdef int tn = _arrays(ga, "conv2d gradient", xa, "conv2d input", None)
    if tn < 0:
        return pure.conv2d_backward_weight(grad, x, weight_shape, stride, padding, dilation, groups)
    cdef Geo q
    cdef Py_ssize_t dims[3]
    _backward_geometry(&q, ga, xa, True, weight_shape, stride, padding, dilation, groups)
    cdef Py_ssize_t wdims[4]
    if _direct(&q, False, tn):
        wdims[0], wdims[1], wdims[2], wdims[3] = q.f, q.c // q.g, q.kh, q.kw
        return _direct_run(2, &q, tn, as_c_typed(ga, tn), as_c_typed(xa, tn), None, _empty(4, wdims, tn))
    cdef Py_ssize_t L = q.oh * q.ow, K = (q.c // q.g) * q.kh * q.kw, G = q.g, Fg = q.f // q.g, b, gi
    cdef cnp.ndarray gc = as_c_typed(ga, tn), gt, cols, acc, part
    cdef bint per_image = _per_image(&q, tn)
    cdef cnp.ndarray plane = _plane(&q, tn, 1 if per_image else q.n)
    cdef Call k
    xa = as_c_typed(xa, tn)
    if per_image:
        # per image: its columns in cache; (K, L) @ grad_n^T (L, F/G) added up over the images
        dims[0], dims[1] = q.c * q.kh * q.kw, L
        cols = _empty(2, dims, tn)
        q.sn, q.sk = 0, L
        dims[0], dims[1], dims[2] = G, K, Fg
        acc = cnp.PyArray_ZEROS(3, <cnp.npy_intp*>dims, tn, 0)
        part = _empty(3, dims, tn)
        gm = gc.reshape(q.n, G, Fg, L).transpose(0, 1, 3, 2)
        cols_g = [cols[gi * K:(gi + 1) * K] for gi in range(G)]
        for b in range(q.n):
            _columns_of(&k, &q, tn, xa, cols, plane, b, 1)
            for gi in range(G):
                _dot(cols_g[gi], gm[b, gi], part[gi])
            np.add(acc, part, out=acc)
        return acc.transpose(0, 2, 1).reshape(q.f, q.c // q.g, q.kh, q.kw)
    gt = gc
    if q.n > 1:   # grad (N, F, L) laid out as (F, N*L)
        dims[0], dims[1] = q.f, q.n * L
        gt = _empty(2, dims, tn)
        k.a = cnp.PyArray_DATA(gc)
        k.out = cnp.PyArray_DATA(gt)
        k.n0, k.n1, k.n2 = q.n, q.f, L
        k.b = NULL
        k.flag = False
        run_typed(tn, &k, _relayout[float], _relayout[double])
    dims[0], dims[1] = q.c * q.kh * q.kw, q.n * L
    cols = _empty(2, dims, tn)
    q.sn, q.sk = L, q.n * L
    _columns_of(&k, &q, tn, xa, cols, plane, 0, q.n)
    # (G, K, N*L) @ (G, N*L, F/G): one product per group over the whole batch (this orientation
    # measured faster than grad @ cols^T), then the small (K, F/G) blocks transposed
    if G == 1:
        return _dot(cols, gt.reshape(q.f, q.n * L).T, None).T.reshape(q.f, q.c, q.kh, q.kw)
    dw = np.matmul(cols.reshape(G, K, q.n * L), gt.reshape(G, Fg, q.n * L).transpose(0, 2, 1))
    return dw.transpose(0, 2, 1).reshape(q.f, q.c // q.g, q.kh, q.kw)


cdef void _channel_sums(Call* k, floating* tag) noexcept nogil:
    """``out`` (n1,) = sums of ``a`` (n0, n1, n2) over its first and last axes (in double)."""
    cdef:
        const floating* g = <const floating*>k.a
        floating* out = <floating*>k.out
        double* acc = <double*>k.scratch
        Py_ssize_t b, c
    for c in range(k.n1):
        acc[c] = 0
    for b in range(k.n0):
        for c in range(k.n1):
            acc[c] += hsum(g, k.n2)
            g += k.n2
    for c in range(k.n1):
        out[c] = <floating>acc[c]


def conv2d_backward_bias(grad):
    cdef cnp.ndarray ga = fast_array(grad)
    cdef int tn = native_float_typenum(ga)
    if tn < 0 or cnp.PyArray_NDIM(ga) != 4:
        tn = kernel_typenum(checks.result_dtype(checks._float_array("conv2d gradient", ga, 4)))
        if tn < 0:
            return pure.conv2d_backward_bias(grad)
    ga = as_c_typed(ga, tn)
    cdef cnp.npy_intp f = cnp.PyArray_DIM(ga, 1)
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(1, &f, tn, 0)
    cdef Py_ssize_t n = cnp.PyArray_DIM(ga, 0), L = cnp.PyArray_DIM(ga, 2) * cnp.PyArray_DIM(ga, 3)
    cdef void* pg = cnp.PyArray_DATA(ga)
    cdef void* po = cnp.PyArray_DATA(out)
    if CG_DIRECT:   # the vector loop of _conv_direct.h
        with nogil:
            if tn == cnp.NPY_FLOAT:
                cg_channel_sums_f(<float*>pg, n, f, L, <float*>po)
            else:
                cg_channel_sums_d(<double*>pg, n, f, L, <double*>po)
        return out
    cdef cnp.ndarray acc = cnp.PyArray_EMPTY(1, &f, cnp.NPY_DOUBLE, 0)
    cdef Call k
    k.a = cnp.PyArray_DATA(ga)
    k.out = cnp.PyArray_DATA(out)
    k.scratch = cnp.PyArray_DATA(acc)
    k.n0, k.n1 = cnp.PyArray_DIM(ga, 0), f
    k.n2 = cnp.PyArray_DIM(ga, 2) * cnp.PyArray_DIM(ga, 3)
    run_typed(tn, &k, _channel_sums[float], _channel_sums[double])
    return out
