# cython: language_level=3
"""Shared compiled helpers of the kernels: dtype rule, shape parsing, the prologue, the dispatch, the loop plan.

Everything on a kernel's fast path is ``cdef inline`` here so that each kernel module
``cimport``s it and the C compiler sees through it.  The rare paths (error messages,
dtype promotion, conversions) are plain ``cdef`` functions defined in ``_shapes.pyx``
and shared across modules through Cython's C-API capsules.

The prologue and the dispatch
-----------------------------
Every kernel's ``def`` wrapper starts the same way: ``fast_array`` on its array inputs, then
``kernel_type`` (the dtype rule ``np.result_type(*inputs, np.float32)`` as NPY_FLOAT or
NPY_DOUBLE; -1 when the cores do not serve that dtype and the wrapper hands the call to
``pure``; ``TypeError`` for a non-real dtype), then its own shape checks (``check_same_shape``
and the others raise ``ValueError`` naming the shapes), then ``as_c_typed``/``as_typed``.
Only then does it fill a ``Call`` with raw pointers and sizes and pass it to ``run_typed``,
the one float32/float64 branch: it drops the GIL and runs the float or the double
specialisation of the kernel's fused ``cdef`` core.  (Typed memoryviews would do the same
dispatch, but acquiring three views measured 0.9-1.6 us per call, three to four times a
whole 16x32 ``relu_backward``; see ``docs/kernels.md``.)

Axes
----
``one_axis`` and ``axes_mask`` are the only axis normalisation of the compiled kernels (an
in-range int inline, everything else through ``slow_normalize_axis``), with the messages of
``checks.normalize_axes``.

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
cdef int slow_kernel_type(cnp.ndarray a, cnp.ndarray b, cnp.ndarray c) except -2
cdef int raise_not_same_shape(cnp.ndarray a, cnp.ndarray b, str name, str what) except -1
cdef int raise_bad_out(str name, object out, int nd, const cnp.npy_intp* dims, int tn, tuple inputs) except -1
cdef bint bounds_overlap(cnp.ndarray a, cnp.ndarray b) noexcept


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


cdef inline int kernel_type(cnp.ndarray a, cnp.ndarray b, cnp.ndarray c) except -2:
    """The type the cores run in for array inputs ``a``, ``b``, ``c`` (``b``, ``c`` may be None).

    NPY_FLOAT or NPY_DOUBLE by ``np.result_type(*inputs, np.float32)``; -1 for a real result
    dtype the cores do not serve (longdouble: the caller returns ``pure``'s result);
    ``TypeError`` naming a non-real dtype.  Inputs already in one native float type cost
    three compares.
    """
    cdef int tn = native_float_typenum(a)
    if tn >= 0 and (b is None or native_float_typenum(b) == tn) and (
            c is None or native_float_typenum(c) == tn):
        return tn
    return slow_kernel_type(a, b, c)


cdef inline int check_same_shape(cnp.ndarray a, cnp.ndarray b, str name, str what) except -1:
    """``ValueError`` "``name`` needs ``what`` in one shape, got ..." (``checks.check_same_shape``)."""
    if not same_shape(a, b):
        raise_not_same_shape(a, b, name, what)
    return 0


cdef inline Py_ssize_t one_axis(object axis, Py_ssize_t ndim) except -1:
    """One axis (index-like, negatives allowed) as ``0 <= axis < ndim``; ``ValueError`` when out of range.

    A Python int is read as a C integer (clipped when huge) and checked in C; anything else,
    and an int out of range, goes to ``slow_normalize_axis``, which raises the errors.
    """
    cdef Py_ssize_t a
    if type(axis) is int:
        a = PyNumber_AsSsize_t(axis, NULL)
        if -ndim <= a < ndim:
            return a + ndim if a < 0 else a
    return slow_normalize_axis(axis, ndim)


cdef inline int axes_mask(object axis, int ndim, char* mask) except -1:
    """``checks.normalize_axes(axis, ndim)`` as a mask over ``ndim <= MAXDIMS`` axes; returns how many are set."""
    cdef int i
    if axis is None:
        for i in range(ndim):
            mask[i] = 1
        return ndim
    if type(axis) is int:
        for i in range(ndim):
            mask[i] = 0
        mask[one_axis(axis, ndim)] = 1
        return 1
    return slow_axes_mask(axis, ndim, mask)


cdef inline int parse_shape(object shape, Py_ssize_t* dims) except -1:
    """``checks.as_shape`` into ``dims``; returns the number of dimensions."""
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
    """True when a ``tdims`` array broadcasts to exactly ``gdims`` (``checks.reduction_axes`` OK)."""
    cdef int i, lead = gnd - tnd
    if lead < 0:
        return False
    for i in range(tnd):
        if tdims[i] != gdims[lead + i] and tdims[i] != 1:
            return False
    return True


cdef inline void split_at_axis(int nd, const cnp.npy_intp* dims, Py_ssize_t ax, Py_ssize_t* outer,
                               Py_ssize_t* n, Py_ssize_t* inner) noexcept:
    """The shape as ``(outer, n, inner)`` around axis ``ax`` (all 1 for a 0-d array): the lines
    along one axis of a C-contiguous array, for the softmax-like kernels."""
    cdef int i
    outer[0] = 1
    n[0] = 1
    inner[0] = 1
    for i in range(nd):
        if i < ax:
            outer[0] *= dims[i]
        elif i == ax:
            n[0] = dims[i]
        else:
            inner[0] *= dims[i]


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


cdef inline cnp.ndarray result_array(object out, int nd, const cnp.npy_intp* dims, int tn, str name,
                                     cnp.ndarray in1, cnp.ndarray in2, Call* k):
    """Where a backward kernel puts its result: a new C array (``out`` None), or the ``out=``
    buffer it adds into (``k.accumulate`` set) after the checks of ``checks.check_out``, which
    words any failure.  Called before the inputs are converted (overlap is judged on them)."""
    cdef cnp.ndarray o
    if out is None:
        k.accumulate = False
        return cnp.PyArray_EMPTY(nd, <cnp.npy_intp*>dims, tn, 0)
    if cnp.PyArray_CheckExact(out):
        o = <cnp.ndarray>out
        if (cnp.PyArray_TYPE(o) == tn and cnp.PyArray_ISNOTSWAPPED(o) and cnp.PyArray_NDIM(o) == nd
                and cnp.PyArray_CompareLists(cnp.PyArray_DIMS(o), <cnp.npy_intp*>dims, nd)
                and cnp.PyArray_IS_C_CONTIGUOUS(o) and cnp.PyArray_ISALIGNED(o) and cnp.PyArray_ISWRITEABLE(o)
                and (in1 is None or not bounds_overlap(o, in1)) and (in2 is None or not bounds_overlap(o, in2))):
            k.accumulate = True
            return o
    raise_bad_out(name, out, nd, dims, tn, (in1, in2))


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


# ----------------------------------------------------------------- the float32/float64 dispatch
# What a kernel hands its core: raw pointers (typed ``floating*`` by the core) and sizes.
ctypedef struct Call:
    const void* a        # typed inputs, in the order the core names them
    const void* b
    const void* c
    void* out            # typed outputs
    void* out2
    void* out3
    void* scratch        # a work buffer the wrapper allocated (layout per core)
    const void* aux      # an untyped extra: a Plan, intp indices, an AdamScalars
    Py_ssize_t n0, n1, n2
    double s0            # scalars, rounded to ``floating`` by the core
    bint flag
    bint accumulate      # the core adds its result into ``out`` (an ``out=`` buffer) instead of writing it
    double ret           # a result the core returns to the wrapper

ctypedef void (*Core32)(Call* k, float* tag) noexcept nogil
ctypedef void (*Core64)(Call* k, double* tag) noexcept nogil


cdef inline void run_typed(int tn, Call* k, Core32 f32, Core64 f64) noexcept:
    """Run a fused core, ``core[float]`` for NPY_FLOAT else ``core[double]``, without the GIL.

    A core is ``cdef void core(Call* k, floating* tag) noexcept nogil``: ``tag`` (always NULL)
    only selects the specialisation.  The wrapper validated and converted everything before.
    """
    with nogil:
        if tn == cnp.NPY_FLOAT:
            f32(k, NULL)
        else:
            f64(k, NULL)


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
