# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled broadcast/reduce kernels: ``reduce_to_shape``, ``mul_reduce_to_shape``, ``expand_to_shape``.

Each ``def`` wrapper has the signature of its twin in ``pure``, validates and normalises
(dtype to float32/float64, element strides) and then runs a typed ``nogil`` core over a
``Plan`` (``_shapes.pxd``): the big array's axes with size-1 axes dropped and compatible
axes merged, the innermost merged axis run as a contiguous loop.  Inputs are walked with
their own strides (no copy for sliced, reversed, Fortran or broadcast views); only a dtype
change or misaligned data makes a copy.

Reductions accumulate into the zero-filled output: a kept innermost axis adds whole rows
(``out[j] += g[j]``, vectorisable), a reduced innermost axis is a horizontal sum with
independent partial sums.  ``mul_reduce_to_shape`` reads ``other`` through its broadcast
strides, so ``grad * other`` is never materialised.
"""
cimport numpy as cnp
from cython cimport floating
from libc.math cimport copysign, fabs, INFINITY
from libc.stdint cimport uint32_t
from libc.string cimport memcpy

from ._shapes cimport (
    MAXDIMS, Call, Plan, all_strides_ok, as_typed, axes_mask, broadcasts_to, c_strides, dims_tuple,
    fast_array, hdot, hsum, kernel_type, parse_shape, plan_coalesce, plan_step, raise_not_broadcast,
    result_array, run_typed,
)

import numpy as np

from . import pure

cnp.import_array()

__all__ = ["reduce_to_shape", "mul_reduce_to_shape", "expand_to_shape"]


# --------------------------------------------------------------------------- inner rows
cdef inline void _row_acc(floating* out, const floating* g, Py_ssize_t gs,
                          Py_ssize_t n, bint assign) noexcept nogil:
    """out[j] (+)= g[j*gs]."""
    cdef Py_ssize_t j
    if gs == 1:
        if assign:
            for j in range(n):
                out[j] = g[j]
        else:
            for j in range(n):
                out[j] += g[j]
    else:
        if assign:
            for j in range(n):
                out[j] = g[j * gs]
        else:
            for j in range(n):
                out[j] += g[j * gs]


cdef inline void _row_macc(floating* out, const floating* g, Py_ssize_t gs,
                           const floating* t, Py_ssize_t ts,
                           Py_ssize_t n, bint assign) noexcept nogil:
    """out[j] (+)= g[j*gs] * t[j*ts]; contiguous and broadcast-scalar ``t`` run vectorised."""
    cdef Py_ssize_t j
    cdef floating c
    if gs == 1 and ts == 1:
        if assign:
            for j in range(n):
                out[j] = g[j] * t[j]
        else:
            for j in range(n):
                out[j] += g[j] * t[j]
    elif gs == 1 and ts == 0:
        c = t[0]
        if assign:
            for j in range(n):
                out[j] = g[j] * c
        else:
            for j in range(n):
                out[j] += g[j] * c
    else:
        if assign:
            for j in range(n):
                out[j] = g[j * gs] * t[j * ts]
        else:
            for j in range(n):
                out[j] += g[j * gs] * t[j * ts]


cdef enum:
    PAIRWISE_BLOCK = 128   # below this a strided sum runs in 8 partial sums, above it halves


cdef floating _hdot_strided(const floating* g, Py_ssize_t gs, const floating* t, Py_ssize_t ts,
                            Py_ssize_t n) noexcept nogil:
    """Sum of ``g[j*gs] * t[j*ts]`` over ``j < n`` by NumPy's pairwise scheme (8 partial sums per
    block of at most 128, halves above), so a long float64 sum loses ~log2(n) roundings, not n.
    A plain sum passes ``t`` = a 1 with ``ts`` = 0 (multiplying by 1 is exact)."""
    cdef Py_ssize_t j, half
    cdef floating acc[8]
    cdef floating total
    cdef int l
    if n <= PAIRWISE_BLOCK:
        for l in range(8):
            acc[l] = 0
        j = 0
        while n - j >= 8:
            for l in range(8):
                acc[l] += g[(j + l) * gs] * t[(j + l) * ts]
            j += 8
        total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
        while j < n:
            total += g[j * gs] * t[j * ts]
            j += 1
        return total
    half = (n // 2) & ~(<Py_ssize_t> 7)
    return (_hdot_strided(g, gs, t, ts, half)
            + _hdot_strided(g + half * gs, gs, t + half * ts, ts, n - half))


cdef inline floating _hsum_any(const floating* g, Py_ssize_t gs, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    cdef double total = 0.0
    cdef floating one = 1
    if gs == 1:
        return hsum(g, n)
    if gs == 0:  # a broadcast value: n copies of it
        return <floating>(<double> g[0] * <double> n)
    if floating is double:  # float64 has no wider sum to absorb the roundings: go pairwise
        return _hdot_strided(g, gs, &one, 0, n)
    for j in range(n):
        total += g[j * gs]
    return <floating>total


cdef inline floating _hdot_any(const floating* g, Py_ssize_t gs, const floating* t,
                               Py_ssize_t ts, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    cdef double total = 0.0
    if gs == 1 and ts == 1:
        return hdot(g, t, n)
    if ts == 0:
        return t[0] * _hsum_any(g, gs, n)
    if floating is double:
        return _hdot_strided(g, gs, t, ts, n)
    for j in range(n):
        total += g[j * gs] * t[j * ts]
    return <floating>total


cdef inline void _rows_acc(floating* out, const floating* g, Py_ssize_t rs,
                           Py_ssize_t rows, Py_ssize_t n) noexcept nogil:
    """out[j] += sum_r g[r*rs + j] over contiguous rows of ``n``.

    Four rows per pass: a quarter of the loads and stores of ``out``, and pairwise adds
    (256x256 float32 to (256,): 7.7 us one row per pass, 6.1 us four).  Not used for
    ``mul_reduce``: with two input streams per row, 4 rows (8 streams) measured slower
    from DRAM (2048x2048: 1.1 ms against 0.9 ms one row at a time).
    """
    cdef:
        Py_ssize_t r = 0, j
        const floating* g0
        const floating* g1
        const floating* g2
        const floating* g3
    while rows - r >= 4:
        g0 = g
        g1 = g0 + rs
        g2 = g1 + rs
        g3 = g2 + rs
        for j in range(n):
            out[j] += (g0[j] + g1[j]) + (g2[j] + g3[j])
        g += 4 * rs
        r += 4
    while r < rows:
        for j in range(n):
            out[j] += g[j]
        g += rs
        r += 1


# --------------------------------------------------------------------------- typed cores
cdef void _reduce_core(floating* out, const floating* g, const floating* t,
                       const Plan* p, bint assign) noexcept nogil:
    """Plan operands: a = ``g`` (any strides), b = ``out`` (C strides, 0 on reduced axes),
    c = ``t`` (broadcast strides; ``t`` may be NULL).  ``out`` is zero-filled unless ``assign``
    (no reduction: every output element is visited exactly once)."""
    cdef:
        Py_ssize_t idx[MAXDIMS]
        Py_ssize_t og = 0, oo = 0, ot = 0, r, rows, n, gs, os, ts
        int i
        floating acc
        Plan outer
    if p.size == 0:
        return
    n = p.dims[p.nd - 1]
    gs = p.sa[p.nd - 1]
    os = p.sb[p.nd - 1]
    ts = p.sc[p.nd - 1]
    rows = p.size // n
    for i in range(p.nd):
        idx[i] = 0
    if p.nd >= 2 and os == 1 and p.sb[p.nd - 2] == 0 and gs == 1 and t == NULL and not assign:
        # contiguous kept rows summed over the next axis out (e.g. (n, m) -> (m,)):
        # the last two merged axes are one block of rows added into one output row
        outer = p[0]
        outer.nd = p.nd - 1
        rows = p.size // (n * p.dims[p.nd - 2])
        for r in range(rows):
            _rows_acc(out + oo, g + og, p.sa[p.nd - 2], p.dims[p.nd - 2], n)
            plan_step(&outer, idx, &og, &oo, &ot)
        return
    for r in range(rows):
        if os != 0:      # kept inner axis: the output row is contiguous (os == 1)
            if t == NULL:
                _row_acc(out + oo, g + og, gs, n, assign)
            else:
                _row_macc(out + oo, g + og, gs, t + ot, ts, n, assign)
        else:            # reduced inner axis: one horizontal sum per output element
            if t == NULL:
                acc = _hsum_any(g + og, gs, n)
            else:
                acc = _hdot_any(g + og, gs, t + ot, ts, n)
            if assign:
                out[oo] = acc
            else:
                out[oo] += acc
        plan_step(p, idx, &og, &oo, &ot)


cdef void _expand_core(floating* out, const floating* g, floating scale,
                       const Plan* p, bint accumulate) noexcept nogil:
    """Plan operands: a = ``out`` (C-contiguous), b = ``g`` (0 on the re-inserted axes).  With
    ``accumulate`` the values are added into ``out`` (no row copies: ``out``'s rows differ)."""
    cdef:
        Py_ssize_t idx[MAXDIMS]
        Py_ssize_t oo = 0, og = 0, unused = 0, r, rows, n, gs, j
        int i
        floating c
        floating* o
        floating* last_o = NULL
        const floating* q
        const floating* last_q = NULL
    if p.size == 0:
        return
    n = p.dims[p.nd - 1]
    gs = p.sb[p.nd - 1]
    rows = p.size // n
    for i in range(p.nd):
        idx[i] = 0
    for r in range(rows):
        o = out + oo
        q = g + og
        if accumulate:
            for j in range(n):
                o[j] += q[j * gs] * scale
        elif gs == 0:
            c = q[0] * scale
            for j in range(n):
                o[j] = c
        elif gs == 1:
            if q == last_q:   # the same grad row again (a broadcast axis): copy the row made
                memcpy(o, last_o, n * sizeof(floating))
            else:
                for j in range(n):
                    o[j] = q[j] * scale
                last_q = q
                last_o = o
        else:
            for j in range(n):
                o[j] = q[j * gs] * scale
        plan_step(p, idx, &oo, &og, &unused)


cdef void _reduce_call(Call* k, floating* tag) noexcept nogil:
    _reduce_core(<floating*>k.out, <const floating*>k.a, <const floating*>k.b, <const Plan*>k.aux, k.flag)


cdef void _expand_call(Call* k, floating* tag) noexcept nogil:
    _expand_core(<floating*>k.out, <const floating*>k.a, <floating>k.s0, <const Plan*>k.aux, k.accumulate)


# --------------------------------------------------------------------------- shared driver
cdef inline void _unit_stride_inner(Plan* p) noexcept nogil:
    """Make ``g``'s contiguous axis (stride 1) the inner one when it is summed away, as NumPy's
    iterator does: a Fortran-ordered or transposed gradient then sums along memory (vectorised,
    in blocks) instead of adding one row at a time across it.  (A kept axis stays where it is:
    the core writes a kept inner axis as one contiguous output row.)"""
    cdef int i, j, last = p.nd - 1
    cdef Py_ssize_t d, a, b, c
    if p.sa[last] == 1:
        return
    for i in range(last):
        if p.sa[i] == 1 and p.sb[i] == 0:
            d, a, b, c = p.dims[i], p.sa[i], p.sb[i], p.sc[i]
            for j in range(i, last):
                p.dims[j] = p.dims[j + 1]
                p.sa[j] = p.sa[j + 1]
                p.sb[j] = p.sb[j + 1]
                p.sc[j] = p.sc[j + 1]
            p.dims[last], p.sa[last], p.sb[last], p.sc[last] = d, a, b, c
            return


cdef cnp.ndarray reduce_typed(cnp.ndarray g, cnp.ndarray t, int tnd, Py_ssize_t* tdims, int tn):
    """Sum ``g`` (times ``t``, which broadcasts to ``g``; may be None) to ``tdims``.

    Preconditions (checked by the callers): ``g`` and ``t`` are ``tn`` arrays with element
    strides, ``tdims`` broadcasts to ``g.shape`` and so does ``t.shape``.
    """
    cdef:
        Plan plan
        Py_ssize_t ostr[MAXDIMS]
        int gnd = cnp.PyArray_NDIM(g), tlead, olead, i, ond = 0
        cnp.npy_intp* gdims = cnp.PyArray_DIMS(g)
        cnp.npy_intp* gstr = cnp.PyArray_STRIDES(g)
        cnp.npy_intp* odims = NULL
        cnp.npy_intp* ostrides = NULL
        Py_ssize_t item = cnp.PyArray_ITEMSIZE(g), d
        bint assign = True
        const void* tdata = NULL
        cnp.ndarray out
        Call k
    tlead = gnd - tnd
    for i in range(gnd):
        if gdims[i] != 1 and (i < tlead or tdims[i - tlead] == 1):
            assign = False
            break
    if t is not None:
        ond = cnp.PyArray_NDIM(t)
        odims = cnp.PyArray_DIMS(t)
        ostrides = cnp.PyArray_STRIDES(t)
        tdata = cnp.PyArray_DATA(t)
    olead = gnd - ond
    if assign:
        out = cnp.PyArray_EMPTY(tnd, <cnp.npy_intp*>tdims, tn, 0)
    else:
        out = cnp.PyArray_ZEROS(tnd, <cnp.npy_intp*>tdims, tn, 0)
    c_strides(tnd, tdims, ostr)
    plan.nd = gnd
    for i in range(gnd):
        d = gdims[i]
        plan.dims[i] = d
        plan.sa[i] = gstr[i] // item
        plan.sb[i] = 0 if (i < tlead or tdims[i - tlead] != d) else ostr[i - tlead]
        plan.sc[i] = 0 if (i < olead or odims[i - olead] != d) else ostrides[i - olead] // item
    plan_coalesce(&plan)
    _unit_stride_inner(&plan)
    k.out = cnp.PyArray_DATA(out)
    k.a = cnp.PyArray_DATA(g)
    k.b = tdata
    k.aux = &plan
    k.flag = assign
    run_typed(tn, &k, _reduce_call[float], _reduce_call[double])
    return out


# --------------------------------------------------------------------------- float32 range
# A float32 reduction accumulates partly in float32 (rows added into the output, lane sums
# within a block), so partial sums can leave float32's range although the total does not
# ([3e38, 3e38, -3e38, -3e38] over axis 0).  As in ``checks.sum_without_overflow``, a float32
# result with an inf or NaN is computed again with double accumulators and narrowed; the
# check is one vectorised pass over the (small) output.
cdef bint _all_finite(const float* x, Py_ssize_t n) noexcept nogil:
    """No inf or NaN in ``x[0:n]`` (exponent bits all ones), as an OR over integers (vectorised)."""
    cdef const uint32_t* bits = <const uint32_t*>x
    cdef uint32_t bad = 0
    cdef Py_ssize_t i
    for i in range(n):
        bad |= (bits[i] & 0x7f800000u) == 0x7f800000u
    return bad == 0


cdef void _narrow(float* out, const double* x, Py_ssize_t n) noexcept nogil:
    """``out = float32(x)`` with IEEE rounding, overflow to +-inf made explicit (C leaves an
    out-of-range conversion undefined): from 2**128 - 2**103 up, the nearest float is inf."""
    cdef Py_ssize_t i
    cdef double d
    for i in range(n):
        d = x[i]
        if fabs(d) >= 3.4028235677973366e38:
            out[i] = <float>copysign(INFINITY, d)
        else:
            out[i] = <float>d


cdef cnp.ndarray _fit_float32(cnp.ndarray out, cnp.ndarray g, cnp.ndarray t, int tnd, Py_ssize_t* tdims):
    """``out`` (a fresh C float32 result of ``reduce_typed(g, t, ...)``) itself when finite, else
    the same sum with double accumulators (of the float32 products ``g * t``, as ``pure``)."""
    cdef Py_ssize_t n = cnp.PyArray_SIZE(out)
    cdef cnp.ndarray wide
    cdef bint finite
    with nogil:
        finite = _all_finite(<const float*>cnp.PyArray_DATA(out), n)
    if finite:
        return out
    if t is not None:
        g = np.multiply(g, t, dtype=np.float32)
    wide = reduce_typed(as_typed(g, cnp.NPY_DOUBLE), None, tnd, tdims, cnp.NPY_DOUBLE)
    with nogil:
        _narrow(<float*>cnp.PyArray_DATA(out), <const double*>cnp.PyArray_DATA(wide), n)
    return out


# --------------------------------------------------------------------------- kernels
def reduce_to_shape(grad, shape):
    """Sum ``grad`` over the axes broadcasting added or stretched so it has ``shape``.

    float32/float64 stay as they are, other real dtypes promote as in ``pure``.  Returns
    ``grad`` itself (or a reshaped view) when nothing needs summing, else a new C array.
    """
    cdef:
        cnp.ndarray g = fast_array(grad)
        Py_ssize_t tdims[MAXDIMS]
        int tnd = parse_shape(shape, tdims)
        int tn = kernel_type(g, None, None)
        int gnd, i, lead
        cnp.npy_intp* gdims
        bint reduce = False, same = True
    if tn < 0:   # e.g. longdouble: the reference serves dtypes the cores do not
        return pure.reduce_to_shape(g, shape)
    gnd = cnp.PyArray_NDIM(g)
    gdims = cnp.PyArray_DIMS(g)
    if not broadcasts_to(tnd, tdims, gnd, <Py_ssize_t*>gdims):
        raise_not_broadcast((<object>g).shape, dims_tuple(tnd, tdims))
    lead = gnd - tnd
    for i in range(gnd):
        if gdims[i] != 1 and (i < lead or tdims[i - lead] == 1):
            reduce = True
            break
    if not reduce:
        if tn != cnp.PyArray_TYPE(g) or not cnp.PyArray_ISNOTSWAPPED(g):
            g = cnp.PyArray_FROMANY(g, tn, 0, 0, 0)
        if lead == 0:
            for i in range(gnd):
                if gdims[i] != tdims[i]:
                    same = False
                    break
            if same:
                return g
        return g.reshape(dims_tuple(tnd, tdims))
    if tn != cnp.PyArray_TYPE(g) or not cnp.PyArray_ISNOTSWAPPED(g) or not all_strides_ok(g):
        g = as_typed(g, tn)
    if tn == cnp.NPY_FLOAT:
        return _fit_float32(reduce_typed(g, None, tnd, tdims, tn), g, None, tnd, tdims)
    return reduce_typed(g, None, tnd, tdims, tn)


def mul_reduce_to_shape(grad, other, shape):
    """``reduce_to_shape(grad * other, shape)`` without the product temporary.

    ``other`` must broadcast to ``grad.shape``; the result is a new C array of ``shape``.
    """
    cdef:
        cnp.ndarray g = fast_array(grad)
        cnp.ndarray o = fast_array(other)
        Py_ssize_t tdims[MAXDIMS]
        int tnd = parse_shape(shape, tdims)
        int tn = kernel_type(g, o, None)
    if tn < 0:
        return pure.mul_reduce_to_shape(g, o, shape)
    if not broadcasts_to(cnp.PyArray_NDIM(o), <Py_ssize_t*>cnp.PyArray_DIMS(o),
                         cnp.PyArray_NDIM(g), <Py_ssize_t*>cnp.PyArray_DIMS(g)):
        raise_not_broadcast((<object>g).shape, (<object>o).shape)
    if not broadcasts_to(tnd, tdims, cnp.PyArray_NDIM(g), <Py_ssize_t*>cnp.PyArray_DIMS(g)):
        raise_not_broadcast((<object>g).shape, dims_tuple(tnd, tdims))
    if tn != cnp.PyArray_TYPE(g) or not cnp.PyArray_ISNOTSWAPPED(g) or not all_strides_ok(g):
        g = as_typed(g, tn)
    if tn != cnp.PyArray_TYPE(o) or not cnp.PyArray_ISNOTSWAPPED(o) or not all_strides_ok(o):
        o = as_typed(o, tn)
    if tn == cnp.NPY_FLOAT:
        return _fit_float32(reduce_typed(g, o, tnd, tdims, tn), g, o, tnd, tdims)
    return reduce_typed(g, o, tnd, tdims, tn)


def expand_to_shape(grad, input_shape, axis, keepdims, scale, out=None):
    """Gradient of ``sum``/``mean``: ``grad`` broadcast back over the reduced ``axis``, times ``scale``.

    ``grad`` has the shape of the reduction's result; returns a new C-contiguous array of
    ``input_shape`` (float32/float64, promoted as in ``pure``), or ``out`` with it added in
    (``checks.check_out``).
    """
    cdef:
        cnp.ndarray g = fast_array(grad)
        cnp.ndarray result
        Py_ssize_t idims[MAXDIMS]
        Py_ssize_t ostr[MAXDIMS]
        char mask[MAXDIMS]
        Plan plan
        Call k
        int ind = parse_shape(input_shape, idims)
        int tn = kernel_type(g, None, None)
        int gnd, i, j, count
        Py_ssize_t item
        cnp.npy_intp* gdims
        cnp.npy_intp* gstr
        bint kd = keepdims, fits
    if tn < 0:
        return pure.expand_to_shape(g, input_shape, axis, keepdims, scale, out)
    count = axes_mask(axis, ind, mask)
    # grad must have the reduction's shape
    gnd = cnp.PyArray_NDIM(g)
    gdims = cnp.PyArray_DIMS(g)
    fits = gnd == (ind if kd else ind - count)
    if fits:
        j = 0
        for i in range(ind):
            if kd:
                if gdims[i] != (1 if mask[i] else idims[i]):
                    fits = False
                    break
            elif not mask[i]:
                if gdims[j] != idims[i]:
                    fits = False
                    break
                j += 1
    if not fits:
        in_shape = dims_tuple(ind, idims)
        expected = tuple([1 if mask[i] else idims[i] for i in range(ind) if kd or not mask[i]])
        raise ValueError(
            f"gradient of shape {(<object>g).shape} does not fit a reduction of {in_shape} "
            f"over axis {axis} (keepdims={bool(keepdims)}), which has shape {expected}"
        )
    k.s0 = scale
    result = result_array(out, ind, <cnp.npy_intp*>idims, tn, "expand_to_shape", g, None, &k)
    if tn != cnp.PyArray_TYPE(g) or not cnp.PyArray_ISNOTSWAPPED(g) or not all_strides_ok(g):
        g = as_typed(g, tn)
    gstr = cnp.PyArray_STRIDES(g)
    item = cnp.PyArray_ITEMSIZE(g)
    c_strides(ind, idims, ostr)
    plan.nd = ind
    j = 0
    for i in range(ind):
        plan.dims[i] = idims[i]
        plan.sa[i] = ostr[i]
        plan.sc[i] = 0
        if mask[i]:
            plan.sb[i] = 0
            if kd:
                j += 1
        else:
            plan.sb[i] = gstr[j] // item
            j += 1
    plan_coalesce(&plan)
    k.out = cnp.PyArray_DATA(result)
    k.a = cnp.PyArray_DATA(g)
    k.aux = &plan
    run_typed(tn, &k, _expand_call[float], _expand_call[double])
    return result
