# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The fast operators, compiled: ``+ - * /`` and unary ``-`` computed and recorded in C.

Between same-shape contiguous float arrays, with a Python ``float``/``int``, or between arrays of
one float dtype that broadcast (a bias row: NumPy computes, the node records the op's broadcast
VJP), the result is computed by the shared elementwise loops (``native.pxd``'s ``Loop``) and
recorded by ``native._make_node`` without a Python frame.  A 0-d result keeps its value as a C
double (``value_``; the array is made when ``_data`` is read).  Everything else calls the generic
Python operator that ``clumsygrad.tensor`` installs (``install_generic``).  The pure twin has no
fast paths: its operators are the generic ones.

``t / u`` between tensors records the generic operator's two nodes (``u ** -1``, then the
product holding the exact quotient: ``_divide``), and ``join`` records ``clumsygrad.concatenate``
/ ``stack`` for ``native.JoinFunction``; ``@``, indexing, ``reshape`` and ``transpose`` are here too.
"""
cimport numpy as cnp
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.number cimport PyNumber_Add, PyNumber_Multiply, PyNumber_Power, PyNumber_Subtract, PyNumber_TrueDivide
from libc.string cimport memcpy

from .native cimport (
    ADD, ADD_BROADCAST, ADD_SCALAR, GENERIC, GETITEM, MATMUL, PERMUTE, TRANSPOSE, L_ADD, L_ADD_C, L_DIV_C, L_MUL, L_MUL_C, L_NEG, L_SUB,
    L_SUB_C, MUL, MUL_SCALAR, NEGATE, POWER, SUB, SUB_SCALAR, Node, _compute, _fast_operand, _loop,
    _make_leaf, _make_node, _same_layout, _same_shape, _value_of, _vjp_function,
)
from .native cimport CONCATENATE, L_DIV, MUL_BROADCAST, RESHAPE, STACK, _array_value, _basic_key, _data_of

from .._kernels._matmul cimport is_swapped, product, swapped_copy

import numpy as np

cnp.import_array()

cdef extern from "numpy/arrayobject.h":
    # numpy's .pxd types ``out`` as an ndarray, which cannot be NULL (a new array)
    object _take_rows "PyArray_TakeFrom" (cnp.ndarray a, object indices, int axis, void* out,
                                          cnp.NPY_CLIPMODE mode)

cdef extern from "<fenv.h>" nogil:
    # The C loops of ``t / u`` raise no NumPy warning: a loop that sets one of these flags is
    # done again by NumPy (the generic operator), which warns (or raises) as the user's errstate says.
    int feclearexcept(int excepts)
    int fetestexcept(int excepts)
    int FE_DIVBYZERO
    int FE_INVALID
    int FE_OVERFLOW
    int FE_UNDERFLOW

cdef int _FP_FLAGS = FE_DIVBYZERO | FE_INVALID | FE_OVERFLOW | FE_UNDERFLOW

cdef object _generic_add, _generic_radd, _generic_sub, _generic_rsub, _generic_mul, _generic_rmul
cdef object _generic_truediv, _generic_rtruediv, _generic_neg, _generic_array_ufunc, _generic_pow, _generic_rpow
cdef object _np_stack = np.stack
cdef dict _ufunc_functions = None  # the op registry's NumPy ufunc -> public function table
cdef object _np_add = np.add, _np_subtract = np.subtract, _np_multiply = np.multiply
cdef object _np_negative = np.negative
cdef object _np_matmul = np.matmul
cdef object _generic_matmul, _generic_getitem, _generic_transpose, _generic_reshape


cdef int install_generic(dict generic_operators) except -1:
    """The generic Python operators (``{"__add__": fn, ...}``) that the fast paths fall back to."""
    global _generic_add, _generic_radd, _generic_sub, _generic_rsub, _generic_array_ufunc
    global _generic_mul, _generic_rmul, _generic_truediv, _generic_rtruediv, _generic_neg
    global _ufunc_functions, _generic_matmul, _generic_getitem, _generic_transpose, _generic_reshape
    global _generic_pow, _generic_rpow
    from .._registry import UFUNCS  # the dict itself: ops registered later are seen too
    _ufunc_functions = UFUNCS
    _generic_array_ufunc = generic_operators["__array_ufunc__"]
    _generic_add = generic_operators["__add__"]
    _generic_radd = generic_operators["__radd__"]
    _generic_sub = generic_operators["__sub__"]
    _generic_rsub = generic_operators["__rsub__"]
    _generic_mul = generic_operators["__mul__"]
    _generic_rmul = generic_operators["__rmul__"]
    _generic_truediv = generic_operators["__truediv__"]
    _generic_rtruediv = generic_operators["__rtruediv__"]
    _generic_neg = generic_operators["__neg__"]
    _generic_pow = generic_operators["__pow__"]
    _generic_rpow = generic_operators["__rpow__"]
    _generic_matmul = generic_operators["__matmul__"]
    _generic_getitem = generic_operators["__getitem__"]
    _generic_transpose = generic_operators["transpose"]
    _generic_reshape = generic_operators["reshape"]
    return 0


# ----------------------------------------------------------------------------- the operators
cdef object array_ufunc(Node self, object ufunc, object method, tuple inputs, dict kwargs):
    """NumPy's ufunc protocol, with no Python frame for the commonest calls.

    ``np.add``/``np.subtract``/``np.multiply`` of this tensor and one operand are its operators
    (``np.multiply(t, 2.0)`` is ``t * 2.0``; ``a * t`` with an ndarray ``a`` is ``t.__rmul__(a)``),
    ``np.negative(t)`` is ``-t``, and a registered one-input ufunc (``np.exp(t)``) calls the op's
    public function: what the generic protocol (``_numpy_protocol.ufunc``) does for them, which
    answers every other call and words every error.
    """
    cdef Py_ssize_t n = len(inputs)
    if not kwargs and method == "__call__":
        if n == 2:
            a = inputs[0]
            b = inputs[1]
            result = None
            if a is not self and isinstance(a, Node):  # another tensor first: its operator decides
                pass
            elif ufunc is _np_multiply:
                result = mul(self, b) if a is self else rmul(self, a)
            elif ufunc is _np_add:
                result = add(self, b) if a is self else radd(self, a)
            elif ufunc is _np_subtract:
                result = sub(self, b) if a is self else rsub(self, a)
            if result is not None and result is not NotImplemented:
                return result
        elif n == 1 and inputs[0] is self:
            if ufunc is _np_negative:
                return neg(self)
            fn = _ufunc_functions.get(ufunc)
            if fn is not None:
                return fn(self)
    return _generic_array_ufunc(self, ufunc, method, *inputs, **kwargs)


cdef object add(Node self, object other):
    return _scalar_or_same_shape(self, other, L_ADD, ADD, L_ADD_C, ADD_SCALAR, _generic_add)


cdef object radd(Node self, object other):
    return _scalar_or_same_shape(self, other, L_ADD, GENERIC, L_ADD_C, ADD_SCALAR, _generic_radd)


cdef object sub(Node self, object other):
    return _scalar_or_same_shape(self, other, L_SUB, SUB, L_SUB_C, SUB_SCALAR, _generic_sub)


cdef object rsub(Node self, object other):
    return _generic_rsub(self, other)


cdef object mul(Node self, object other):
    return _scalar_or_same_shape(self, other, L_MUL, MUL, L_MUL_C, MUL_SCALAR, _generic_mul)


cdef object rmul(Node self, object other):
    return _scalar_or_same_shape(self, other, L_MUL, GENERIC, L_MUL_C, MUL_SCALAR, _generic_rmul)


cdef object truediv(Node self, object other):
    cdef double c
    if type(other) is float or type(other) is int:
        c = other
        if c != 0.0 and c == c:  # x / c records x * (1 / c); the forward value is the quotient
            result = _fast_unary(self, L_DIV_C, c, MUL_SCALAR, 1.0 / c)
            if result is not None:
                return result
    elif isinstance(other, Node):
        result = _divide(self, <Node> other)
        if result is not None:
            return result
    return _generic_truediv(self, other)


cdef object _divide(Node left, Node right):
    """``left / right`` for two tensors of one float dtype, recorded as the generic operator
    records it (0.2.x's graph): the POWER node ``right ** -1`` (``_reciprocal``: NumPy's power,
    its value and warnings), then ``left * that`` as MUL or MUL_BROADCAST whose value is the
    exact quotient ``np.divide(left, right)``.

    The quotient is computed first, as the generic operator does: by the shared loops for one
    shape, a 0-d divisor, a row of the last axis or a column (``h / h.sum(1, keepdims=True)``),
    else by NumPy (which broadcasts and warns itself).  A loop that raised a floating-point flag
    (a zero divisor, an overflow) is dropped before anything is recorded: None, and the generic
    operator computes again with NumPy's warnings.  None too for anything off this path (mixed
    dtypes, other dtypes, shapes that do not broadcast: the generic operator words the error)."""
    cdef double a, b
    cdef int ta, tb, t
    cdef cnp.ndarray x, y
    cdef bint same
    if _value_of(left, &a, &ta) and _value_of(right, &b, &tb):  # two 0-d values: the scalar chain
        if ta != tb:
            return None
        feclearexcept(_FP_FLAGS)
        a = _compute(L_DIV, a, b, ta)
        if fetestexcept(_FP_FLAGS):
            return None
        inverse = _reciprocal(right)
        return _record_value(a, ta, MUL, (left, inverse), 0.0)
    xd, yd = _data_of(left), _data_of(right)
    if type(xd) is not cnp.ndarray or type(yd) is not cnp.ndarray:
        return None
    x, y = <cnp.ndarray> xd, <cnp.ndarray> yd
    t = cnp.PyArray_TYPE(x)
    if (t != cnp.PyArray_TYPE(y) or (t != cnp.NPY_FLOAT and t != cnp.NPY_DOUBLE)
            or not cnp.PyArray_ISNOTSWAPPED(x) or not cnp.PyArray_ISNOTSWAPPED(y)):
        return None
    same = _same_shape(x, y)
    quotient = None
    if _fast_operand(x) and _fast_operand(y):  # (a 0-d array is one)
        feclearexcept(_FP_FLAGS)
        if same:
            quotient = _apply(L_DIV, x, y, 0.0)
        elif cnp.PyArray_NDIM(y) == 0:
            if _array_value(y, &b, &tb):
                quotient = _apply(L_DIV_C, x, None, b)
        else:
            quotient = _bias_rows(x, y, L_DIV)
            if quotient is None:
                quotient = _columns(x, y)
        if quotient is not None and fetestexcept(_FP_FLAGS):
            return None
    if quotient is None:
        try:
            quotient = PyNumber_TrueDivide(x, y)
        except ValueError:  # shapes that do not broadcast: the generic operator words the error
            return None
        if type(quotient) is not cnp.ndarray:  # two 0-d arrays: a NumPy scalar
            quotient = cnp.PyArray_FROM_O(quotient)
    inverse = _reciprocal(right)
    if same:
        return _make_node(quotient, _vjp_function(MUL), (left, inverse), None, MUL, 0.0)
    return _make_node(quotient, _vjp_function(MUL_BROADCAST), (left, inverse),
                      {"left_shape": (<object> x).shape, "right_shape": (<object> y).shape}, MUL_BROADCAST, 0.0)


cdef object _reciprocal(Node right):
    """The node ``right ** -1`` as the generic operator records it: ``pow_`` (NumPy's
    ``data ** -1.0``, whose values and warnings are the generic operator's; the typed POWER node)
    for an array of at least one dimension; for a 0-d operand what ``_Operators.__pow__`` records
    (NumPy's scalar as a 0-d array, the Python backward - GENERIC, as ``new_node`` records POWER -
    with ``{"power": -1.0}``), without its Python frame."""
    if _power_operand(right):
        return pow_(right, -1)
    data = PyNumber_Power(_data_of(right), -1.0, None)
    if type(data) is not cnp.ndarray:  # a 0-d operand: a NumPy scalar
        data = cnp.PyArray_FROM_O(data)
    return _make_node(data, _vjp_function(POWER), (right,), {"power": -1.0}, GENERIC, 0.0)


cdef object _columns(cnp.ndarray x, cnp.ndarray y):
    """``x / y`` when ``y`` is a column of ``x`` (shape ``x.shape[:-1] + (1,)``: a row sum kept
    with ``keepdims``): each row of ``x`` divided by its element of ``y``.  Both are fast
    operands of one dtype; None when the shapes are not of that form."""
    cdef int k, nd = cnp.PyArray_NDIM(x)
    cdef cnp.ndarray out
    cdef Py_ssize_t rows, width
    cdef bint single = cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT
    cdef char* o
    cdef const char* m
    cdef const char* d
    if nd < 1 or cnp.PyArray_NDIM(y) != nd or cnp.PyArray_DIM(y, nd - 1) != 1:
        return None
    for k in range(nd - 1):
        if cnp.PyArray_DIM(x, k) != cnp.PyArray_DIM(y, k):
            return None
    width = cnp.PyArray_DIM(x, nd - 1)
    out = cnp.PyArray_EMPTY(nd, cnp.PyArray_DIMS(x), cnp.PyArray_TYPE(x), 0)
    rows = cnp.PyArray_SIZE(y)
    o = <char*> cnp.PyArray_DATA(out)
    m = <const char*> cnp.PyArray_DATA(x)
    d = <const char*> cnp.PyArray_DATA(y)
    if rows * width > 4096:  # as _apply: the GIL is released for large arrays only
        with nogil:
            _columns_loop(single, o, m, d, rows, width)
    else:
        _columns_loop(single, o, m, d, rows, width)
    return out


cdef void _columns_loop(bint single, char* o, const char* m, const char* d, Py_ssize_t rows,
                        Py_ssize_t width) noexcept nogil:
    """Row ``i`` of ``m`` divided by the element ``i`` of ``d``, into ``o`` (``width`` per row)."""
    cdef Py_ssize_t i, step = width * (4 if single else 8)
    for i in range(rows):  # (the divisor exact in double; _dispatch's loops are the vectorized ones)
        _dispatch(single, L_DIV_C, o + i * step, m + i * step, NULL,
                  (<const float*> d)[i] if single else (<const double*> d)[i], width)


cdef object rtruediv(Node self, object other):
    """``c / self`` for a Python int or float ``c``: recorded as 0.2.x records it, ``c * self**-1``
    (the POWER node of ``pow_``, then MUL_SCALAR by ``c``) with the exact quotient as its value,
    both nodes in C; anything else by the generic operator."""
    cdef double c
    cdef object reciprocal, value
    if (type(other) is float or type(other) is int) and _power_operand(self):
        c = float(other)
        reciprocal = pow_(self, -1.0)
        value = PyNumber_TrueDivide(c, self.data_)
        if type(value) is cnp.ndarray and cnp.PyArray_TYPE(<cnp.ndarray> value) == cnp.PyArray_TYPE(
                <cnp.ndarray> self.data_):
            return _make_node(value, _vjp_function(MUL_SCALAR), (reciprocal,), None, MUL_SCALAR, c)
    return _generic_rtruediv(self, other)


cdef object neg(Node self):
    result = _fast_unary(self, L_NEG, 0.0, NEGATE, 0.0)
    return result if result is not None else _generic_neg(self)


cdef inline bint _power_operand(Node self):
    """``self``'s data is a float array of at least one dimension (NumPy's power of a 0-d array
    is a NumPy scalar: the generic operator handles those)."""
    cdef int t
    if type(self.data_) is not cnp.ndarray or cnp.PyArray_NDIM(<cnp.ndarray> self.data_) == 0:
        return False
    t = cnp.PyArray_TYPE(<cnp.ndarray> self.data_)
    return t == cnp.NPY_FLOAT or t == cnp.NPY_DOUBLE


cdef object pow_(Node self, object power):
    """``self ** c`` for a Python int or float ``c``: NumPy's power of the data (its exact special
    powers: ``x * x`` for 2, ``1 / x`` for -1...), recorded as the typed POWER node (``c`` a C
    double; ``_extra`` {"power": c} is made when read, as the generic operator records it).
    Anything else by the generic operator."""
    cdef double c
    if (type(power) is float or type(power) is int) and _power_operand(self):
        c = float(power)  # an int too large for a double: OverflowError, as the generic operator
        value = PyNumber_Power(self.data_, c, None)
        if type(value) is cnp.ndarray and cnp.PyArray_TYPE(<cnp.ndarray> value) == cnp.PyArray_TYPE(
                <cnp.ndarray> self.data_):
            return _make_node(value, _vjp_function(POWER), (self,), None, POWER, c)
    return _generic_pow(self, power)


cdef object rpow(Node self, object base):
    return _generic_rpow(self, base)


cdef object matmul(Node self, object other):
    """``self @ other`` for two float arrays of one dtype with two or more dimensions, recorded
    as MATMUL (a 1-D operand by ``np.matmul``).  A 2-D product of C- or Fortran-ordered operands, and a C-ordered ``(..., n, k) @
    (k, m)`` seen as one 2-D product, is ``np.dot`` (the same BLAS call as ``np.matmul``, less
    dispatch); other layouts and batches are ``np.matmul``.  Everything else (0-d operands, arrays, errors) is the generic operator."""
    cdef Node right
    cdef cnp.ndarray a, b
    cdef int nda, ndb, t, i
    cdef cnp.npy_intp k
    cdef cnp.npy_intp dims[2]
    cdef cnp.npy_intp outdims[32]
    cdef cnp.PyArray_Dims shape
    if not isinstance(other, Node):
        return _generic_matmul(self, other)
    right = <Node> other
    if type(self.data_) is not cnp.ndarray or type(right.data_) is not cnp.ndarray:
        return _generic_matmul(self, other)
    a = <cnp.ndarray> self.data_
    b = <cnp.ndarray> right.data_
    nda = cnp.PyArray_NDIM(a)
    ndb = cnp.PyArray_NDIM(b)
    t = cnp.PyArray_TYPE(a)
    if (nda < 1 or ndb < 1 or nda > 32 or t != cnp.PyArray_TYPE(b) or (t != cnp.NPY_FLOAT and t != cnp.NPY_DOUBLE)
            or cnp.PyArray_DIM(a, nda - 1) != cnp.PyArray_DIM(b, ndb - 2 if ndb >= 2 else 0)):
        return _generic_matmul(self, other)
    if nda == 1 or ndb == 1:  # a vector: np.matmul's rules (a dot product gives a NumPy scalar)
        try:
            data = _np_matmul(a, b)
        except ValueError:  # batch axes that do not broadcast: the generic operator words it
            return _generic_matmul(self, other)
        if type(data) is not cnp.ndarray:
            data = cnp.PyArray_FROM_O(data)
        return _make_node(data, _vjp_function(MATMUL), (self, right), None, MATMUL, 0.0)
    k = cnp.PyArray_DIM(a, nda - 1)
    if nda > 2 and cnp.PyArray_SIZE(b) <= 65536 and is_swapped(b):
        # a batch of transposed right operands (``q @ k.transpose(0, 2, 1)``): copied into C
        # order, OpenBLAS's small "nn" kernel beats its transposed one by more than the copy
        b = <cnp.ndarray> swapped_copy(b)
    data = product(a, b, 0, NULL)  # NumPy's matmul loop without the ufunc call (None: not its case)
    if data is not None:
        pass
    elif nda == 2 and ndb == 2 and _blas_layout(a) and _blas_layout(b):
        data = cnp.PyArray_MatrixProduct(a, b)
    elif ndb == 2 and k > 0 and cnp.PyArray_IS_C_CONTIGUOUS(a) and _blas_layout(b):
        dims[0] = cnp.PyArray_SIZE(a) // k
        dims[1] = k
        shape.ptr = dims
        shape.len = 2
        flat = cnp.PyArray_MatrixProduct(cnp.PyArray_Newshape(a, &shape, cnp.NPY_CORDER), b)
        for i in range(nda - 1):
            outdims[i] = cnp.PyArray_DIM(a, i)
        outdims[nda - 1] = cnp.PyArray_DIM(b, 1)
        shape.ptr = outdims
        shape.len = nda
        data = cnp.PyArray_Newshape(<cnp.ndarray> flat, &shape, cnp.NPY_CORDER)
    else:
        try:
            data = _np_matmul(a, b)
        except ValueError:  # batch axes that do not broadcast: the generic operator words it
            return _generic_matmul(self, other)
    return _make_node(data, _vjp_function(MATMUL), (self, right), None, MATMUL, 0.0)


cdef inline bint _blas_layout(cnp.ndarray a) noexcept:
    """C or Fortran order: both np.dot and np.matmul hand it to BLAS as it is (same values)."""
    return cnp.PyArray_IS_C_CONTIGUOUS(a) or cnp.PyArray_IS_F_CONTIGUOUS(a)


cdef object getitem(Node self, object key):
    """``self[key]`` recorded as GETITEM: for a key of ints, slices, None and ``...`` (basic
    indexing: a view of the data, NumPy's own errors), and for a 1-D intp array ``rows`` (an
    embedding lookup) with a read-only copy of ``rows``, checked in C (any out of range, and
    every other key, go to the generic operator, which indexes as NumPy does and words its
    errors)."""
    cdef cnp.ndarray x, rows, kept
    cdef Py_ssize_t i, n, size
    cdef const cnp.npy_intp* idx
    if type(self.data_) is cnp.ndarray and _basic_key(key):
        x = <cnp.ndarray> self.data_
        data = (<object> x)[key]
        if type(data) is not cnp.ndarray:  # every axis indexed by an int: a NumPy scalar
            data = cnp.PyArray_FROM_O(data)
        return _make_node(data, _vjp_function(GETITEM), (self,),
                          {"key": key, "original_shape": (<object> x).shape}, GETITEM, 0.0)
    if type(key) is not cnp.ndarray or type(self.data_) is not cnp.ndarray:
        return _generic_getitem(self, key)
    rows = <cnp.ndarray> key
    x = <cnp.ndarray> self.data_
    if cnp.PyArray_NDIM(rows) != 1 or cnp.PyArray_TYPE(rows) != cnp.NPY_INTP or cnp.PyArray_NDIM(x) < 1:
        return _generic_getitem(self, key)
    kept = cnp.PyArray_NewCopy(rows, cnp.NPY_CORDER)
    n = cnp.PyArray_DIM(kept, 0)
    size = cnp.PyArray_DIM(x, 0)
    idx = <const cnp.npy_intp*> cnp.PyArray_DATA(kept)
    for i in range(n):
        if not (-size <= idx[i] < size):
            return _generic_getitem(self, key)
    cnp.PyArray_CLEARFLAGS(kept, cnp.NPY_ARRAY_WRITEABLE)
    data = _take_rows(x, kept, 0, NULL, cnp.NPY_RAISE)
    return _make_node(data, _vjp_function(GETITEM), (self,),
                      {"key": kept, "original_shape": (<object> x).shape}, GETITEM, 0.0)


cdef object reshape(Node self, object shape, tuple more):
    """``self.reshape(shape)`` or ``self.reshape(*dims)`` recorded in C as RESHAPE with the
    original shape, as ``clumsygrad.shape.reshape`` records it: NumPy's reshape (a view where it
    can be one).  A 0-d value, and any shape NumPy refuses, go to the generic method, which
    words 0.2.x's error."""
    cdef cnp.ndarray x
    if type(self.data_) is not cnp.ndarray:
        return _generic_reshape(self, shape, *more)
    x = <cnp.ndarray> self.data_
    try:
        data = (<object> x).reshape((shape,) + more if more else shape)
    except (ValueError, TypeError):
        return _generic_reshape(self, shape, *more)
    return _make_node(data, _vjp_function(RESHAPE), (self,), {"original_shape": (<object> x).shape}, RESHAPE, 0.0)


cdef object transpose(Node self, tuple args):
    """``self.transpose(*args)`` recorded in C: no arguments (or None, or an empty sequence)
    reverse the axes (TRANSPOSE), a permutation of ints given as arguments or as one
    tuple/list (negatives counted from the end) permutes them (PERMUTE, ``{"axes": ...}``
    with the axes made non-negative), both as views of the data, as
    ``clumsygrad.shape.transpose`` records them.  Anything else (another axes type, a bad
    permutation, a 0-d value) is the generic method, which words the errors."""
    cdef cnp.ndarray x
    cdef int nd, i
    cdef Py_ssize_t a
    cdef cnp.npy_intp perm[32]
    cdef char seen[32]
    cdef cnp.PyArray_Dims dims
    if type(self.data_) is not cnp.ndarray:
        return _generic_transpose(self, *args)
    x = <cnp.ndarray> self.data_
    nd = cnp.PyArray_NDIM(x)
    axes = args
    if len(args) == 1 and (args[0] is None or type(args[0]) is tuple or type(args[0]) is list):
        axes = args[0]
    if axes is None or len(axes) == 0:
        return _make_node(cnp.PyArray_Transpose(x, NULL), _vjp_function(TRANSPOSE), (self,), None, TRANSPOSE, 0.0)
    if len(axes) != nd or nd > 32:
        return _generic_transpose(self, *args)
    for i in range(nd):
        seen[i] = 0
    for i in range(nd):
        item = axes[i]
        if type(item) is not int:
            return _generic_transpose(self, *args)
        a = item
        if a < 0:
            a += nd
        if a < 0 or a >= nd or seen[a]:
            return _generic_transpose(self, *args)
        seen[a] = 1
        perm[i] = a
    dims.ptr = perm
    dims.len = nd
    return _make_node(cnp.PyArray_Transpose(x, &dims), _vjp_function(PERMUTE), (self,),
                      {"axes": tuple([perm[i] for i in range(nd)])}, PERMUTE, 0.0)


cdef object join(object tensors, object axis, bint stacking, object grad_fn, object tensor_class):
    """``concatenate(tensors, axis)`` (``stacking`` False) or ``stack(tensors, axis)`` recorded as
    ``clumsygrad.shape`` records them - the tensors as parents, ``{"axis": axis, "sizes": ...}``
    or ``{"axis": axis}`` with the axis made non-negative, CONCATENATE or STACK - for the common
    call: a list or tuple of ``tensor_class`` instances whose arrays have one float dtype and
    shapes NumPy joins along the int ``axis``.  Inputs that are all non-empty and C-contiguous
    are copied block by block into a C-ordered result (the layout NumPy gives them); other
    layouts and empty inputs are joined by NumPy (``PyArray_Concatenate``, ``np.stack``).
    None for every other call: the Python function makes constants of arrays, promotes dtypes
    and words the errors."""
    cdef tuple parents
    cdef list arrays
    cdef Py_ssize_t n, i, outer, total = 0
    cdef int nd, ndout, ax, k, t
    cdef cnp.ndarray a, first, out
    cdef bint copy = True
    cdef cnp.npy_intp dims[65]
    if type(tensors) is list:
        parents = tuple(<list> tensors)
    elif type(tensors) is tuple:
        parents = <tuple> tensors
    else:
        return None
    n = len(parents)
    if n == 0 or type(axis) is not int:
        return None
    arrays = []
    for i in range(n):
        p = parents[i]
        if not isinstance(p, tensor_class):
            return None
        d = _data_of(<Node> p)
        if type(d) is not cnp.ndarray:
            return None
        arrays.append(d)
    first = <cnp.ndarray> arrays[0]
    t = cnp.PyArray_TYPE(first)
    nd = cnp.PyArray_NDIM(first)
    ndout = nd + 1 if stacking else nd
    if (t != cnp.NPY_FLOAT and t != cnp.NPY_DOUBLE) or ndout == 0 or ndout > cnp.NPY_MAXDIMS:
        return None
    if axis < -ndout or axis >= ndout:
        return None
    ax = axis
    if ax < 0:
        ax += ndout
    for i in range(n):
        a = <cnp.ndarray> arrays[i]
        if cnp.PyArray_TYPE(a) != t or cnp.PyArray_NDIM(a) != nd or not cnp.PyArray_ISNOTSWAPPED(a):
            return None
        for k in range(nd):
            if cnp.PyArray_DIM(a, k) != cnp.PyArray_DIM(first, k) and (stacking or k != ax):
                return None
        if cnp.PyArray_SIZE(a) == 0 or not cnp.PyArray_IS_C_CONTIGUOUS(a) or not cnp.PyArray_ISALIGNED(a):
            copy = False
        if not stacking:
            total += cnp.PyArray_DIM(a, ax)
    # The result's shape: the inputs' with the joined axis (concatenate) or a new axis (stack).
    for k in range(ndout):
        if stacking:
            dims[k] = n if k == ax else cnp.PyArray_DIM(first, k if k < ax else k - 1)
        else:
            dims[k] = total if k == ax else cnp.PyArray_DIM(first, k)
    if copy:
        out = cnp.PyArray_EMPTY(ndout, dims, t, 0)
        outer = 1
        for k in range(ax):
            outer *= dims[k]
        _copy_blocks(out, arrays, outer)
        data = out
    elif stacking:
        data = _np_stack(arrays, axis=ax)
    else:
        data = cnp.PyArray_Concatenate(arrays, ax)
    if stacking:
        return _make_node(data, grad_fn, parents, {"axis": ax}, STACK, 0.0)
    return _make_node(data, grad_fn, parents,
                      {"axis": ax, "sizes": tuple([cnp.PyArray_DIM(<cnp.ndarray> a, ax) for a in arrays])},
                      CONCATENATE, 0.0)


cdef int _copy_blocks(cnp.ndarray out, list arrays, Py_ssize_t outer) except -1:
    """Fill the C-ordered ``out`` from the C-contiguous ``arrays``: for each of the ``outer``
    index tuples before the joined axis, each array's next block in turn (its size over
    ``outer`` elements).  Large copies run without the GIL."""
    cdef Py_ssize_t n = len(arrays), i, item = cnp.PyArray_ITEMSIZE(out)
    cdef const char** sources
    cdef Py_ssize_t* blocks
    cdef char* o = <char*> cnp.PyArray_DATA(out)
    cdef cnp.ndarray a
    sources = <const char**> PyMem_Malloc(n * (sizeof(char*) + sizeof(Py_ssize_t)))
    if sources == NULL:
        raise MemoryError()
    blocks = <Py_ssize_t*> (sources + n)
    for i in range(n):
        a = <cnp.ndarray> arrays[i]
        sources[i] = <const char*> cnp.PyArray_DATA(a)
        blocks[i] = cnp.PyArray_SIZE(a) // outer * item
    if cnp.PyArray_NBYTES(out) > 65536:
        with nogil:
            _copy_loop(o, sources, blocks, n, outer)
    else:
        _copy_loop(o, sources, blocks, n, outer)
    PyMem_Free(sources)
    return 0


cdef void _copy_loop(char* o, const char** sources, const Py_ssize_t* blocks, Py_ssize_t n,
                     Py_ssize_t outer) noexcept nogil:
    cdef Py_ssize_t i, j
    for j in range(outer):
        for i in range(n):
            memcpy(o, sources[i] + j * blocks[i], blocks[i])
            o += blocks[i]


cdef object _scalar_or_same_shape(Node self, object other, int tensor_loop, int tensor_vjp,
                                  int scalar_loop, int scalar_vjp, object generic):
    """``self (op) other`` on the fast path when it applies, else ``generic(self, other)``.

    A tensor ``other`` is computed by ``tensor_loop`` and recorded as ``tensor_vjp`` (GENERIC for
    the reflected operators, whose tensor case is rare); a number by ``scalar_loop``, recorded as
    ``scalar_vjp``; an ndarray of ``self``'s float dtype becomes the INPUT constant the generic
    operators make of it (a copy), recorded as ``self (op) constant`` (``a * t`` is ``t * A``)."""
    cdef double c
    cdef int array_vjp
    if type(other) is float or type(other) is int:
        c = other
        if c == c and -3.4e38 < c < 3.4e38:  # finite in float32 too: no overflow warnings to mimic
            result = _fast_unary(self, scalar_loop, c, scalar_vjp, c)
            if result is not None:
                return result
    elif type(other) is cnp.ndarray:
        if (cnp.PyArray_NDIM(<cnp.ndarray> other) and _fast_operand(self.data_)
                and cnp.PyArray_TYPE(<cnp.ndarray> other) == cnp.PyArray_TYPE(<cnp.ndarray> self.data_)):
            array_vjp = ADD if tensor_loop == L_ADD else SUB if tensor_loop == L_SUB else MUL
            constant = _make_leaf(cnp.PyArray_NewCopy(<cnp.ndarray> other, cnp.NPY_CORDER))
            return _of_tensors(self, <Node> constant, tensor_loop, array_vjp, generic)
    elif tensor_vjp != GENERIC and isinstance(other, Node):
        return _of_tensors(self, <Node> other, tensor_loop, tensor_vjp, generic)
    return generic(self, other)


cdef object _of_tensors(Node self, Node right, int loop, int vjp, object generic):
    """``self (op) right`` for two tensors: two 0-d values, one shape, or a broadcast of one dtype."""
    cdef double a, b
    cdef int ta, tb
    if _value_of(self, &a, &ta) and _value_of(right, &b, &tb):
        if ta == tb:
            return _record_value(_compute(loop, a, b, ta), ta, vjp, (self, right), 0.0)
    elif _fast_operand(self.data_) and _fast_operand(right.data_):
        if _same_layout(self.data_, right.data_):
            return _make_node(_apply(loop, self.data_, right.data_, 0.0), _vjp_function(vjp),
                              (self, right), None, vjp, 0.0)
        if cnp.PyArray_TYPE(<cnp.ndarray> self.data_) == cnp.PyArray_TYPE(<cnp.ndarray> right.data_):
            return _broadcast(self, right, vjp, generic)
    return generic(self, right)


cdef object _broadcast(Node left, Node right, int tensor_vjp, object generic):
    """``left (op) right`` for arrays of one float dtype and different shapes (a bias row, a
    column): NumPy broadcasts, and the node records the op's broadcast VJP with both shapes."""
    cdef int vjp = tensor_vjp + (ADD_BROADCAST - ADD)
    data = _bias_rows(<cnp.ndarray> left.data_, <cnp.ndarray> right.data_,
                      L_ADD if tensor_vjp == ADD else L_SUB if tensor_vjp == SUB else L_MUL)
    if data is not None:
        extra = {"left_shape": (<object> left.data_).shape, "right_shape": (<object> right.data_).shape}
        return _make_node(data, _vjp_function(vjp), (left, right), extra, vjp, 0.0)
    try:
        if tensor_vjp == ADD:
            data = PyNumber_Add(left.data_, right.data_)
        elif tensor_vjp == SUB:
            data = PyNumber_Subtract(left.data_, right.data_)
        else:
            data = PyNumber_Multiply(left.data_, right.data_)
    except ValueError:  # shapes that do not broadcast: the generic operator words the error
        return generic(left, right)
    extra = {"left_shape": (<object> left.data_).shape, "right_shape": (<object> right.data_).shape}
    return _make_node(data, _vjp_function(vjp), (left, right), extra, vjp, 0.0)


cdef object _bias_rows(cnp.ndarray a, cnp.ndarray b, int loop):
    """``a (op) b`` when one operand is a row of the other's last axis (``x + bias``, ``bias -
    x``): the shared loop ``loop`` (L_ADD, L_SUB, L_MUL or L_DIV) per row, no broadcasting
    machinery.  Both are fast operands of one dtype; None when the shapes are not of that form."""
    cdef cnp.ndarray big, out
    cdef int nd
    cdef Py_ssize_t width, rows, item
    cdef bint row_first, single
    cdef char* o
    cdef const char* m
    cdef const char* r
    if cnp.PyArray_NDIM(b) == 1 and cnp.PyArray_NDIM(a) >= 2:
        big, row_first = a, False
        width = cnp.PyArray_DIM(b, 0)
        r = <const char*> cnp.PyArray_DATA(b)
    elif cnp.PyArray_NDIM(a) == 1 and cnp.PyArray_NDIM(b) >= 2:
        big, row_first = b, True
        width = cnp.PyArray_DIM(a, 0)
        r = <const char*> cnp.PyArray_DATA(a)
    else:
        return None
    nd = cnp.PyArray_NDIM(big)
    if cnp.PyArray_DIM(big, nd - 1) != width or width == 0:
        return None
    out = cnp.PyArray_EMPTY(nd, cnp.PyArray_DIMS(big), cnp.PyArray_TYPE(big), 0)
    rows = cnp.PyArray_SIZE(big) // width
    single = cnp.PyArray_TYPE(big) == cnp.NPY_FLOAT
    item = cnp.PyArray_ITEMSIZE(big)
    o = <char*> cnp.PyArray_DATA(out)
    m = <const char*> cnp.PyArray_DATA(big)
    if rows * width > 4096:  # as _apply: the GIL is released for large arrays only
        with nogil:
            _rows_loop(single, loop, row_first, o, m, r, rows, width, item)
    else:
        _rows_loop(single, loop, row_first, o, m, r, rows, width, item)
    return out


cdef void _rows_loop(bint single, int loop, bint row_first, char* o, const char* m, const char* r,
                     Py_ssize_t rows, Py_ssize_t width, Py_ssize_t item) noexcept nogil:
    """``loop`` of each row of ``m`` with the row ``r`` (``r`` first when ``row_first``) into ``o``."""
    cdef Py_ssize_t i
    for i in range(rows):
        if row_first:  # bias (op) row
            _dispatch(single, loop, o, r, m, 0.0, width)
        else:
            _dispatch(single, loop, o, m, r, 0.0, width)
        o += width * item
        m += width * item


cdef object _fast_unary(Node self, int loop, double c, int op, double scalar):
    """``loop`` of ``self`` and the constant ``c``, recorded as the VJP ``op``; None off the fast path."""
    cdef double a
    cdef int t
    if _value_of(self, &a, &t):
        return _record_value(_compute(loop, a, c, t), t, op, (self,), scalar)
    if _fast_operand(self.data_):
        return _make_node(_apply(loop, self.data_, None, c), _vjp_function(op), (self,), None, op, scalar)
    return None


cdef object _record_value(double value, int typenum, int op, tuple parents, double scalar):
    """A 0-d result node whose value stays a C double until ``_data`` is read."""
    cdef Node node = _make_node(None, _vjp_function(op), parents, None, op, scalar)
    node.value_ = value
    node.value_type_ = typenum
    return node


# ----------------------------------------------------------------------------- elementwise loops
cdef object _apply(int loop, object a, object b, double c):
    """A new array of ``a``'s shape and dtype: ``loop`` of ``a`` and ``b`` (or the constant ``c``).

    ``a`` and ``b`` (when given) are fast operands of one dtype and size.  Large arrays are
    computed without the GIL.
    """
    cdef cnp.ndarray x = <cnp.ndarray> a
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(x), cnp.PyArray_DIMS(x),
                                             cnp.PyArray_TYPE(x), 0)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    cdef void* y = cnp.PyArray_DATA(<cnp.ndarray> b) if b is not None else NULL
    cdef bint single = cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT
    if n > 4096:
        with nogil:
            _dispatch(single, loop, cnp.PyArray_DATA(out), cnp.PyArray_DATA(x), y, c, n)
    else:
        _dispatch(single, loop, cnp.PyArray_DATA(out), cnp.PyArray_DATA(x), y, c, n)
    return out


cdef int _apply_add(int loop, object acc, object a, object b, double c) except -1:
    """``acc += loop(a, b or c)`` with no temporary array: each block of ``ADD_BLOCK`` values is
    computed into a stack buffer and added (the values of ``acc + _apply(...)``, bit for bit).

    ``acc`` is a writeable C array of ``a``'s dtype and size that overlaps neither operand.
    """
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray> a)
    cdef bint single = cnp.PyArray_TYPE(<cnp.ndarray> a) == cnp.NPY_FLOAT
    cdef void* out = cnp.PyArray_DATA(<cnp.ndarray> acc)
    cdef const void* x = cnp.PyArray_DATA(<cnp.ndarray> a)
    cdef const void* y = cnp.PyArray_DATA(<cnp.ndarray> b) if b is not None else NULL
    if n > 4096:
        with nogil:
            _dispatch_add(single, loop, out, x, y, c, n)
    else:
        _dispatch_add(single, loop, out, x, y, c, n)
    return 0


cdef enum:
    ADD_BLOCK = 256


cdef void _dispatch_add(bint single, int loop, void* out, const void* x, const void* y, double c,
                        Py_ssize_t n) noexcept nogil:
    cdef float block32[ADD_BLOCK]
    cdef double block64[ADD_BLOCK]
    cdef Py_ssize_t start = 0, k, j, item = 4 if single else 8
    cdef float* o32
    cdef double* o64
    while start < n:
        k = n - start if n - start < ADD_BLOCK else ADD_BLOCK
        if single:
            _dispatch(True, loop, block32, <const char*> x + start * item,
                      <const char*> y + start * item if y != NULL else NULL, c, k)
            o32 = <float*> out + start
            for j in range(k):
                o32[j] += block32[j]
        else:
            _dispatch(False, loop, block64, <const char*> x + start * item,
                      <const char*> y + start * item if y != NULL else NULL, c, k)
            o64 = <double*> out + start
            for j in range(k):
                o64[j] += block64[j]
        start += k


cdef void _dispatch(bint single, int loop, void* out, const void* x, const void* y, double c,
                    Py_ssize_t n) noexcept nogil:
    # The constant in the array's precision, as NumPy casts a Python scalar (c - 1 for POWER
    # is taken in double first, as Python computes it).
    if single:
        _loop(loop, <float*> out, <const float*> x, <const float*> y, <float> c, <float> (c - 1), n)
    else:
        _loop(loop, <double*> out, <const double*> x, <const double*> y, c, c - 1, n)
