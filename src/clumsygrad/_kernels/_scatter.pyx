# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled ``scatter_add``: ``out[indices[i]] += grad[i]`` along axis 0, into zeros of ``shape``.

The backward pass of an embedding lookup ``table[indices]``.  ``np.add.at`` (the ``pure`` twin)
goes through NumPy's general indexed-ufunc machinery for every element; here each index is one
contiguous row add (``row = prod(shape[1:])`` elements, a loop GCC vectorises).  The indices
are checked in one C pass before the scatter loop runs, so a bad index never reaches memory;
the scatter itself then trusts them.  Rows are added in index order, as ``np.add.at`` does,
so repeated indices accumulate in the same order and the two twins agree to the bit.
"""
cimport numpy as cnp

from cython cimport floating

from ._shapes cimport (
    MAXDIMS, Call, as_c_typed, dims_tuple, fast_array, kernel_type, parse_shape, result_array, run_typed,
)

from . import checks, pure

cnp.import_array()

__all__ = ["scatter_add"]


cdef Py_ssize_t _first_out_of_range(const cnp.npy_intp* idx, Py_ssize_t n,
                                    Py_ssize_t size) noexcept nogil:
    """Position of the first index outside ``[-size, size)``, or -1 when all are valid."""
    cdef Py_ssize_t i
    for i in range(n):
        if idx[i] >= size or idx[i] < -size:
            return i
    return -1


cdef void _scatter_rows(const floating* g, const cnp.npy_intp* idx, floating* out, Py_ssize_t n,
                        Py_ssize_t size, Py_ssize_t row) noexcept nogil:
    """``out[idx[i]] += g[i]`` for row-major (n, row) ``g`` and (size, row) ``out``; indices valid."""
    cdef:
        Py_ssize_t i, j, k
        floating* dst
    for i in range(n):
        j = idx[i]
        if j < 0:
            j += size
        dst = out + j * row
        for k in range(row):
            dst[k] += g[k]
        g += row


cdef void _scatter_call(Call* k, floating* tag) noexcept nogil:
    _scatter_rows(<const floating*>k.a, <const cnp.npy_intp*>k.aux, <floating*>k.out, k.n0, k.n1, k.n2)


cdef bint _fits_intp(cnp.ndarray ia) noexcept:
    """Every value of the integer array ``ia`` converts to intp exactly (only uint64 may not)."""
    return cnp.PyArray_TYPE(ia) != cnp.NPY_UINT64 and cnp.PyArray_TYPE(ia) != cnp.NPY_ULONGLONG


def scatter_add(grad, indices, shape, out=None):
    """Zeros of ``shape`` with ``out[indices[i]] += grad[i]`` for every ``i``, in order.

    ``indices`` is a 1-D integer array (negatives count from the end, repeats add up), ``grad``
    has shape ``(len(indices),) + shape[1:]`` and any layout.  Returns a new C array in
    float32/float64 (other real dtypes promote as in ``pure``); given an ``out=`` buffer
    (``checks.check_out``) the rows are added into it instead.
    """
    cdef:
        cnp.ndarray ga = fast_array(grad)
        cnp.ndarray ia = fast_array(indices)
        cnp.ndarray result
        Py_ssize_t dims[MAXDIMS]
        Py_ssize_t n, row, bad, size
        int nd = parse_shape(shape, dims)
        int tn = kernel_type(ga, None, None)
        int i
        bint ok
        const cnp.npy_intp* idx
        Call k
    if tn < 0:
        return pure.scatter_add(ga, ia, shape, out)
    ok = nd >= 1 and cnp.PyArray_NDIM(ia) == 1 and cnp.PyArray_ISINTEGER(ia)
    if ok:
        n = cnp.PyArray_DIM(ia, 0)
        ok = cnp.PyArray_NDIM(ga) == nd and cnp.PyArray_DIM(ga, 0) == n
        for i in range(1, nd if ok else 0):
            ok = ok and cnp.PyArray_DIM(ga, i) == dims[i]
    if not ok:
        checks.check_scatter((<object>ga).shape, ia, dims_tuple(nd, dims))  # raises the reference's error
    if not _fits_intp(ia):
        return pure.scatter_add(ga, ia, shape, out)
    if out is None:
        result = cnp.PyArray_ZEROS(nd, <cnp.npy_intp*>dims, tn, 0)
    else:
        result = result_array(out, nd, <cnp.npy_intp*>dims, tn, "scatter_add", ga, ia, &k)
    ia = cnp.PyArray_FROMANY(ia, cnp.NPY_INTP, 1, 1, cnp.NPY_ARRAY_CARRAY_RO)
    idx = <const cnp.npy_intp*>cnp.PyArray_DATA(ia)
    size = dims[0]
    with nogil:
        bad = _first_out_of_range(idx, n, size)
    if bad >= 0:
        raise IndexError(f"index {idx[bad]} is out of bounds for axis 0 with size {size}")
    ga = as_c_typed(ga, tn)
    row = 1
    for i in range(1, nd):
        row *= dims[i]
    if n == 0 or row == 0:
        return result
    k.a = cnp.PyArray_DATA(ga)
    k.aux = idx
    k.out = cnp.PyArray_DATA(result)
    k.n0 = n
    k.n1 = size
    k.n2 = row
    run_typed(tn, &k, _scatter_call[float], _scatter_call[double])
    return result
