# cython: language_level=3
"""Shared compiled helpers of the kernels: dtype rule, shape parsing, and the loop plan.

Everything on a kernel's fast path is ``cdef inline`` here so that each kernel module
``cimport``s it and the C compiler sees through it.  The rare paths (error messages,
dtype promotion, conversions) are plain ``cdef`` functions defined in ``_shapes.pyx``
and shared across modules through Cython's C-API capsules.

The loop plan
-------------
A kernel walks one *iteration shape* (the big array's shape) with up to three operands,
each given by element strides (0 along axes where the operand is broadcast).  Axes of
size 1 are dropped and adjacent axes are merged when every operand walks them as one
axis (``stride[k] == stride[k+1] * dim[k+1]``), so e.g. summing a C-contiguous
``(a, b, c, d)`` gradient to ``(1, c, d)`` becomes a 2-axis loop ``(a*b reduced, c*d kept)``.
The last merged axis is run as a contiguous inner loop; the others by an odometer.
"""
cimport numpy as cnp
from cython cimport floating

cdef extern from "Python.h":
    # with a NULL ``exc`` an out-of-range int is clipped to PY_SSIZE_T_MIN/MAX instead of raising
    Py_ssize_t PyNumber_AsSsize_t(object o, void* exc) except? -1
    const Py_ssize_t PY_SSIZE_T_MAX

cdef enum:
    MAXDIMS = 64   # NPY_MAXDIMS of NumPy 2


ctypedef struct Plan:
    int nd                       # number of merged axes (>= 1 after plan_coalesce)
    Py_ssize_t size              # element count of the iteration shape
    Py_ssize_t dims[MAXDIMS]
    Py_ssize_t sa[MAXDIMS]       # element strides of operand a
    Py_ssize_t sb[MAXDIMS]       # element strides of operand b
    Py_ssize_t sc[MAXDIMS]       # element strides of operand c


# ----------------------------------------------------------------- rare paths (_shapes.pyx)
cdef cnp.ndarray to_array(object a)
cdef object slow_result_dtype(tuple arrays)
cdef int slow_parse_shape(object shape, Py_ssize_t* dims) except -1
cdef tuple dims_tuple(int nd, const Py_ssize_t* dims)
cdef int raise_not_broadcast(tuple grad_shape, tuple shape) except -1
cdef Py_ssize_t slow_normalize_axis(object axis, Py_ssize_t ndim) except -1
cdef int slow_axes_mask(object axis, int ndim, char* mask) except -1
cdef cnp.ndarray as_typed(cnp.ndarray a, int typenum)


# ----------------------------------------------------------------- fast paths (inline)
cdef inline cnp.ndarray fast_array(object a):
    """``np.asarray(a)`` with no call when ``a`` already is an exact ndarray."""
    if cnp.PyArray_CheckExact(a):
        return <cnp.ndarray>a
    return to_array(a)


cdef inline int native_float_typenum(cnp.ndarray a) noexcept:
    """NPY_FLOAT / NPY_DOUBLE if ``a`` is a native-order float32 / float64 array, else -1."""
    cdef int t = cnp.PyArray_TYPE(a)
    if (t == cnp.NPY_FLOAT or t == cnp.NPY_DOUBLE) and cnp.PyArray_ISNOTSWAPPED(a):
        return t
    return -1


cdef inline int kernel_typenum(object dtype) noexcept:
    """NPY_FLOAT / NPY_DOUBLE for a result dtype the compiled cores serve, else -1."""
    cdef int t = (<cnp.dtype>dtype).type_num
    if t == cnp.NPY_FLOAT or t == cnp.NPY_DOUBLE:
        return t
    return -1


cdef inline int parse_shape(object shape, Py_ssize_t* dims) except -1:
    """``pure.as_shape`` into ``dims``; returns the number of dimensions."""
    cdef Py_ssize_t i, n, d
    if type(shape) is tuple:
        n = len(<tuple>shape)
        if n <= MAXDIMS:
            for i in range(n):
                item = (<tuple>shape)[i]
                if type(item) is not int:
                    return slow_parse_shape(shape, dims)
                d = PyNumber_AsSsize_t(item, NULL)
                if d < 0 or d == PY_SSIZE_T_MAX:   # the slow path raises the errors
                    return slow_parse_shape(shape, dims)
                dims[i] = d
            return <int>n
    return slow_parse_shape(shape, dims)


cdef inline bint broadcasts_to(int tnd, const Py_ssize_t* tdims,
                               int gnd, const Py_ssize_t* gdims) noexcept nogil:
    """True when a ``tdims`` array broadcasts to exactly ``gdims`` (``pure.reduction_axes`` OK)."""
    cdef int i, lead = gnd - tnd
    if lead < 0:
        return False
    for i in range(tnd):
        if tdims[i] != gdims[lead + i] and tdims[i] != 1:
            return False
    return True


cdef inline bint same_shape(cnp.ndarray a, cnp.ndarray b) noexcept:
    """``a.shape == b.shape``, without building the tuples."""
    cdef int nd = cnp.PyArray_NDIM(a)
    return nd == cnp.PyArray_NDIM(b) and cnp.PyArray_CompareLists(
        cnp.PyArray_DIMS(a), cnp.PyArray_DIMS(b), nd)


cdef inline cnp.ndarray as_c_typed(cnp.ndarray a, int typenum):
    """``a`` itself when it is a native-order, aligned, C-contiguous ``typenum`` array, else a
    C-contiguous ``typenum`` copy: the layout a kernel's flat ``nogil`` loop can walk."""
    if (cnp.PyArray_TYPE(a) == typenum and cnp.PyArray_ISNOTSWAPPED(a)
            and cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_ISALIGNED(a)):
        return a
    return cnp.PyArray_FROMANY(a, typenum, 0, 0, cnp.NPY_ARRAY_CARRAY_RO)


cdef inline bint all_strides_ok(cnp.ndarray a) noexcept:
    """Element strides exist: aligned data, every byte stride a multiple of the item size."""
    cdef int i
    cdef Py_ssize_t item = cnp.PyArray_ITEMSIZE(a)
    cdef cnp.npy_intp* st = cnp.PyArray_STRIDES(a)
    if not cnp.PyArray_ISALIGNED(a):
        return False
    for i in range(cnp.PyArray_NDIM(a)):
        if st[i] % item != 0:
            return False
    return True


cdef inline void plan_coalesce(Plan* p) noexcept nogil:
    """Drop size-1 axes and merge adjacent axes every operand walks as one.

    On entry ``p.nd`` axes with their strides are filled in; on exit ``p.size`` is set and
    ``p.nd >= 1`` (a 0-d or all-ones shape becomes one axis of length 1, strides 0).
    """
    cdef int i, k = -1
    cdef Py_ssize_t d, size = 1
    for i in range(p.nd):
        size *= p.dims[i]
    p.size = size
    if size != 0:
        for i in range(p.nd):
            d = p.dims[i]
            if d == 1:
                continue
            if (k >= 0 and p.sa[k] == p.sa[i] * d and p.sb[k] == p.sb[i] * d
                    and p.sc[k] == p.sc[i] * d):
                p.dims[k] *= d
                p.sa[k] = p.sa[i]
                p.sb[k] = p.sb[i]
                p.sc[k] = p.sc[i]
            else:
                k += 1
                p.dims[k] = d
                p.sa[k] = p.sa[i]
                p.sb[k] = p.sb[i]
                p.sc[k] = p.sc[i]
    if k < 0:
        k = 0
        p.dims[0] = 1 if size != 0 else 0
        p.sa[0] = 0
        p.sb[0] = 0
        p.sc[0] = 0
    p.nd = k + 1


cdef inline void plan_step(const Plan* p, Py_ssize_t* idx, Py_ssize_t* oa,
                           Py_ssize_t* ob, Py_ssize_t* oc) noexcept nogil:
    """Advance the odometer over the outer axes (all but the last) by one inner row."""
    cdef int ax = p.nd - 2
    while ax >= 0:
        idx[ax] += 1
        oa[0] += p.sa[ax]
        ob[0] += p.sb[ax]
        oc[0] += p.sc[ax]
        if idx[ax] < p.dims[ax]:
            return
        oa[0] -= p.sa[ax] * p.dims[ax]
        ob[0] -= p.sb[ax] * p.dims[ax]
        oc[0] -= p.sc[ax] * p.dims[ax]
        idx[ax] = 0
        ax -= 1


cdef inline void c_strides(int nd, const Py_ssize_t* dims, Py_ssize_t* out) noexcept nogil:
    """Element strides of a C-contiguous array of ``dims``."""
    cdef int i
    cdef Py_ssize_t s = 1
    for i in range(nd - 1, -1, -1):
        out[i] = s
        s *= dims[i]


# ----------------------------------------------------------------- contiguous sums (inline)
# Horizontal sums keep 16 independent partial sums in a small array: GCC unrolls the
# ``for l in range(LANES)`` loops and keeps the partial sums in vector registers, so the
# adds are SIMD and overlap.  Blocks of at most SUM_BLOCK values are added up in double,
# which keeps float32 sums as accurate as NumPy's pairwise summation.
# The loops walk pointers, not ``g[i + l]``: CPython builds extensions with -fwrapv, under
# which GCC cannot prove that a signed ``i + l`` does not wrap and gives up vectorising.
cdef enum:
    LANES = 16
    SUM_BLOCK = 1024


cdef inline floating hsum(const floating* g, Py_ssize_t n) noexcept nogil:
    """Sum of ``g[0:n]``."""
    cdef:
        const floating* end = g + n
        const floating* block_end
        Py_ssize_t left
        int l
        floating acc[LANES]
        double total = 0.0
    while end - g >= LANES:
        left = end - g
        if left > SUM_BLOCK:
            left = SUM_BLOCK
        block_end = g + (left & ~(<Py_ssize_t>(LANES - 1)))
        for l in range(LANES):
            acc[l] = 0
        while g < block_end:
            for l in range(LANES):
                acc[l] += g[l]
            g += LANES
        for l in range(LANES // 2):
            acc[l] += acc[l + LANES // 2]
        for l in range(LANES // 4):
            acc[l] += acc[l + LANES // 4]
        total += (acc[0] + acc[1]) + (acc[2] + acc[3])
    while g < end:
        total += g[0]
        g += 1
    return <floating>total


cdef inline floating hdot(const floating* g, const floating* t, Py_ssize_t n) noexcept nogil:
    """Sum of ``g[0:n] * t[0:n]``."""
    cdef:
        const floating* end = g + n
        const floating* block_end
        Py_ssize_t left
        int l
        floating acc[LANES]
        double total = 0.0
    while end - g >= LANES:
        left = end - g
        if left > SUM_BLOCK:
            left = SUM_BLOCK
        block_end = g + (left & ~(<Py_ssize_t>(LANES - 1)))
        for l in range(LANES):
            acc[l] = 0
        while g < block_end:
            for l in range(LANES):
                acc[l] += g[l] * t[l]
            g += LANES
            t += LANES
        for l in range(LANES // 2):
            acc[l] += acc[l + LANES // 2]
        for l in range(LANES // 4):
            acc[l] += acc[l + LANES // 4]
        total += (acc[0] + acc[1]) + (acc[2] + acc[3])
    while g < end:
        total += g[0] * t[0]
        g += 1
        t += 1
    return <floating>total
