# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled shape/dtype helpers shared by the kernel modules (see ``_shapes.pxd``).

The ``cdef`` functions here are the rare paths of the kernels' wrappers: dtype promotion,
non-tuple shapes, axis normalisation, error messages.  The ``def`` functions are twins of
``checks``' helpers of the same name, built on the same ``cdef`` code, so tests can hold the
compiled validation against the reference.
"""
cimport numpy as cnp
from cpython.number cimport PyNumber_Index

import numpy as np

from . import checks

cnp.import_array()

__all__ = ["result_dtype", "as_shape", "normalize_axes", "reduction_axes"]


# --------------------------------------------------------------------------- cdef helpers
cdef cnp.ndarray to_array(object a):
    return np.asarray(a)


cdef object slow_result_dtype(tuple arrays):
    """``checks.result_dtype``: TypeError for non-real dtypes, else ``np.result_type(*arrays, float32)``."""
    for a in arrays:
        if (<cnp.ndarray>a).dtype.kind not in "biuf":
            raise TypeError(
                f"clumsygrad kernels need real numeric arrays, got dtype {(<cnp.ndarray>a).dtype}"
            )
    return np.result_type(*[a.dtype for a in arrays], np.float32)  # dtypes: no NumPy 1.x value-based casting


cdef tuple dims_tuple(int nd, const Py_ssize_t* dims):
    return tuple([dims[i] for i in range(nd)])


cdef int slow_parse_shape(object shape, Py_ssize_t* dims) except -1:
    """``checks.as_shape`` for any input (int, sequence of index-likes); fills ``dims``."""
    cdef Py_ssize_t i, n
    try:
        items = (PyNumber_Index(shape),)
    except TypeError:
        items = tuple([PyNumber_Index(d) for d in shape])
    for d in items:
        if d < 0:
            raise ValueError(f"shape {items} has a negative dimension")
    for d in items:
        if d >= PY_SSIZE_T_MAX:   # as checks.as_shape: a ValueError, not an OverflowError
            raise ValueError(f"shape {items} has a dimension too large for an array")
    n = len(items)
    if n > MAXDIMS:
        raise ValueError(f"shape {items} has more than {MAXDIMS} dimensions")
    for i in range(n):
        dims[i] = items[i]
    return <int>n


cdef int raise_not_broadcast(tuple grad_shape, tuple shape) except -1:
    raise ValueError(
        f"cannot reduce a gradient of shape {grad_shape} to shape {shape}: "
        f"{shape} does not broadcast to {grad_shape}"
    )


cdef Py_ssize_t slow_normalize_axis(object axis, Py_ssize_t ndim) except -1:
    """One axis (index-like, negatives allowed) as 0 <= axis < ndim; ``ValueError`` if out of range."""
    a = PyNumber_Index(axis)
    if not -ndim <= a < ndim:
        raise ValueError(f"axis {a} is out of bounds for an array of dimension {ndim}")
    return <Py_ssize_t>(a + ndim if a < 0 else a)


cdef int slow_axes_mask(object axis, int ndim, char* mask) except -1:
    """``checks.normalize_axes`` as a mask over ``ndim`` axes; returns how many are set."""
    cdef int i, count = 0
    cdef Py_ssize_t a
    for i in range(ndim):
        mask[i] = 0
    if axis is None:
        for i in range(ndim):
            mask[i] = 1
        return ndim
    try:
        axes = (PyNumber_Index(axis),)
    except TypeError:
        axes = tuple([PyNumber_Index(x) for x in axis])
    repeated = False
    for x in axes:
        a = slow_normalize_axis(x, ndim)
        if mask[a]:
            repeated = True
        else:
            mask[a] = 1
            count += 1
    if repeated:
        raise ValueError(f"repeated axis in {axis!r}")
    return count


cdef cnp.ndarray as_typed(cnp.ndarray a, int typenum):
    """``a`` as a native-order ``typenum`` array whose strides are whole elements."""
    cdef cnp.ndarray r = cnp.PyArray_FROMANY(a, typenum, 0, 0, cnp.NPY_ARRAY_ALIGNED)
    if not all_strides_ok(r):
        r = cnp.PyArray_FROMANY(r, typenum, 0, 0, cnp.NPY_ARRAY_CARRAY_RO)
    return r


cdef int slow_kernel_type(cnp.ndarray a, cnp.ndarray b, cnp.ndarray c) except -2:
    """``kernel_type`` for inputs not all in one native float type."""
    arrays = (a,) if b is None else (a, b) if c is None else (a, b, c)
    return kernel_typenum(slow_result_dtype(arrays))


cdef int raise_not_same_shape(cnp.ndarray a, cnp.ndarray b, str name, str what) except -1:
    raise ValueError(f"{name} needs {what} in one shape, got {(<object>a).shape} and {(<object>b).shape}")


cdef int raise_bad_out(str name, object out, int nd, const cnp.npy_intp* dims, int tn, tuple inputs) except -1:
    """The error ``checks.check_out`` words for a bad ``out=`` buffer."""
    checks.check_out(name, out, dims_tuple(nd, <const Py_ssize_t*>dims), cnp.PyArray_DescrFromType(tn),
                     *[a for a in inputs if a is not None])
    raise ValueError(f"{name}: out cannot take this result")  # (check_out raises first)


cdef inline void _byte_bounds(cnp.ndarray a, char** lo, char** hi) noexcept:
    cdef int i
    cdef Py_ssize_t step
    lo[0] = hi[0] = <char*>cnp.PyArray_DATA(a)
    for i in range(cnp.PyArray_NDIM(a)):
        step = cnp.PyArray_STRIDE(a, i) * (cnp.PyArray_DIM(a, i) - 1)
        if step < 0:
            lo[0] += step
        else:
            hi[0] += step
    hi[0] += cnp.PyArray_ITEMSIZE(a)


cdef bint bounds_overlap(cnp.ndarray a, cnp.ndarray b) noexcept:
    """The byte ranges ``a`` and ``b`` span intersect (``np.may_share_memory``); empty arrays never."""
    cdef char* alo
    cdef char* ahi
    cdef char* blo
    cdef char* bhi
    if cnp.PyArray_SIZE(a) == 0 or cnp.PyArray_SIZE(b) == 0:
        return False
    _byte_bounds(a, &alo, &ahi)
    _byte_bounds(b, &blo, &bhi)
    return alo < bhi and blo < ahi


# --------------------------------------------------------------------------- def twins of checks
def result_dtype(*arrays):
    """The kernels' output dtype for these inputs; ``TypeError`` for unsupported ones."""
    return slow_result_dtype(arrays)


def as_shape(shape):
    """``shape`` as a tuple of non-negative ints (an int is a 1-d shape)."""
    cdef Py_ssize_t dims[MAXDIMS]
    cdef int nd = parse_shape(shape, dims)
    return dims_tuple(nd, dims)


def normalize_axes(axis, int ndim):
    """``axis`` (None, int or sequence of ints, negatives allowed) as a sorted tuple."""
    cdef char mask[MAXDIMS]
    if ndim > MAXDIMS:
        raise ValueError(f"ndim {ndim} exceeds {MAXDIMS}")
    axes_mask(axis, ndim, mask)
    return tuple([i for i in range(ndim) if mask[i]])


def reduction_axes(grad_shape, shape):
    """Axes of ``grad_shape`` to sum so that the result fits ``shape``; ``ValueError`` if it cannot."""
    cdef Py_ssize_t gdims[MAXDIMS]
    cdef Py_ssize_t tdims[MAXDIMS]
    cdef int gnd = parse_shape(tuple(grad_shape), gdims)
    cdef int tnd = parse_shape(tuple(shape), tdims)
    cdef int i, lead = gnd - tnd
    if not broadcasts_to(tnd, tdims, gnd, gdims):
        raise_not_broadcast(tuple(grad_shape), tuple(shape))
    return tuple([i for i in range(lead)]) + tuple(
        [lead + i for i in range(tnd) if tdims[i] == 1 and gdims[lead + i] != 1]
    )
