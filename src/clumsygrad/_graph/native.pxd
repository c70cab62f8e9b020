# cython: language_level=3
"""What the compiled graph modules share: the node's C fields, the enums, the elementwise loops.

``native.pyx`` implements the node (fields, properties, creation, version checks); ``_state.pyx``
the grad mode and ids; ``_operators.pyx`` the fast operators and the array loops; ``_engine.pyx``
the backward pass and its typed VJPs.  All of them cimport this file.
"""
cimport cython
cimport numpy as cnp
from libc.math cimport cos, cosf, pow, powf, sin, sinf, sqrt, sqrtf

ctypedef fused floating:
    float
    double

# TensorType's values (defined once, in clumsygrad._types; install() checks these against it).
cdef enum:
    INPUT = 0
    PARAMETER = 1
    INTERMEDIATE = 2

# The typed VJPs: a node's ``op_`` names the backward function the engine runs as a typed loop
# (GENERIC: call the Python function).  The op registry names each one (``typed="EXP"``).
cpdef enum VJP:
    GENERIC = 0
    ADD
    SUB
    MUL
    ADD_SCALAR
    SUB_SCALAR
    MUL_SCALAR
    NEGATE
    POWER
    EXP
    LOG
    SQRT
    SIN
    COS
    TANH
    SIGMOID
    RESHAPE
    TRANSPOSE
    # Recorded in C by the fast operators; their backward is the Python kernel (reduce to shape).
    ADD_BROADCAST
    SUB_BROADCAST
    MUL_BROADCAST
    # Ops whose backward is a compiled kernel, called by the engine with the node's arrays.
    MATMUL
    RELU
    SOFTMAX
    MSE
    CROSS_ENTROPY
    GETITEM
    PERMUTE          # transpose with axes: a view of the gradient, like RESHAPE and TRANSPOSE
    SUM              # sum and mean over axes: the gradient expanded back (expand_to_shape)
    MEAN
    CONCATENATE      # each input gets its slice of the gradient (a view), any number of inputs
    STACK
    GELU             # compiled kernels of _activation.pyx, called with the input / the output
    LOG_SOFTMAX
    DIVIDE           # tensor / tensor (broadcast or not): NumPy's divide, the sums by reduce_to_shape

# The elementwise loops, shared by the forward fast paths and the typed VJPs.  ``x`` is the
# first operand (the gradient in a VJP), ``y`` the second (an operand or the output), ``c`` a
# constant.
cdef enum Loop:
    L_ADD            # x + y
    L_SUB            # x - y
    L_MUL            # x * y (also exp's VJP: grad * output)
    L_DIV            # x / y (log's VJP: grad / input)
    L_ADD_C          # x + c
    L_SUB_C          # x - c
    L_MUL_C          # x * c
    L_DIV_C          # x / c
    L_NEG            # -x
    L_POWER_VJP      # x * (c * y ** (c - 1))
    L_SQRT_VJP       # x / (2 * y)
    L_SIN_VJP        # x * cos(y)
    L_COS_VJP        # x * -sin(y)
    L_TANH_VJP       # x * (1 - y * y)
    L_SIGMOID_VJP    # x * (y * (1 - y))


cdef class Node:
    cdef object data_            # the ndarray; None while a 0-d value lives in value_
    cdef object grad_
    cdef tuple parents_
    cdef object grad_fn_
    cdef object extra_           # dict, or None until first read (scalar ops keep scalar_ instead)
    cdef object pending_         # this pass's gradient, or None
    cdef tuple saved_many_       # every parent's version when recorded, if it has more than two
    cdef object __weakref__
    cdef double scalar_          # the constant of a scalar op recorded by a fast path
    cdef double value_           # the value of a 0-d result while data_ is None
    cdef double pending_value_   # this pass's gradient of a 0-d node, while pending_type_ is set
    cdef double grad_value_      # the gradient of a 0-d node, while grad_type_ is set
    cdef long long id_
    cdef unsigned int version_   # bumped by every in-place change made through the library
    cdef unsigned int saved0_    # parents_[0]'s version when recorded
    cdef unsigned int saved_rest_  # the sum of the other parents' versions when recorded
    cdef unsigned int mark_      # the number of the last pass that reached this node
    # The 4-byte flags, then the 1-byte fields: no padding between them (node size 176 bytes).
    cdef bint requires_grad_
    cdef bint pending_owned_     # the engine may add into pending_ in place
    cdef bint guarded_           # the memory guard holds arrays for this node
    cdef unsigned char type_
    cdef unsigned char op_       # a VJP member
    cdef unsigned char value_type_  # NPY_FLOAT or NPY_DOUBLE: value_ is the data; 0: data_ is
    cdef unsigned char pending_type_  # NPY_FLOAT/NPY_DOUBLE: the pending gradient is pending_value_
    cdef unsigned char grad_type_     # NPY_FLOAT/NPY_DOUBLE: .grad is grad_value_ (array made on read)


# Implemented in native.pyx.
cdef object _data_of(Node n)
cdef bint _fits(object g, Node n)
cdef Node _make_node(object data, object grad_fn, tuple parents, object extra, int op, double scalar)
cdef Node _make_leaf(object data)
cdef object _vjp_function(int op)
cdef int _free(Node node) except -1
cdef int _check_versions(Node node) except -1


cdef inline bint _fast_operand(object data):
    """A C-contiguous float32/float64 ndarray: what the fast paths and typed loops take."""
    if type(data) is not cnp.ndarray:
        return False
    cdef int t = cnp.PyArray_TYPE(<cnp.ndarray> data)
    return (t == cnp.NPY_FLOAT or t == cnp.NPY_DOUBLE) and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray> data)


cdef inline bint _basic_part(object part):
    """An index NumPy reads as basic indexing: an int (not a bool), a slice, None or ``...``."""
    return type(part) is int or type(part) is slice or part is None or part is Ellipsis


cdef inline bint _basic_key(object key):
    """A key of basic parts only (alone or in a tuple): ``x[key]`` is a view, no element twice."""
    if type(key) is tuple:
        for part in <tuple> key:
            if not _basic_part(part):
                return False
        return True
    return _basic_part(key)


cdef inline bint _same_shape(cnp.ndarray a, cnp.ndarray b):
    cdef int k, nd = cnp.PyArray_NDIM(a)
    if nd != cnp.PyArray_NDIM(b):
        return False
    for k in range(nd):
        if cnp.PyArray_DIMS(a)[k] != cnp.PyArray_DIMS(b)[k]:
            return False
    return True


cdef inline bint _same_layout(cnp.ndarray a, cnp.ndarray b):
    """Same dtype and shape (both already known to be fast operands)."""
    return cnp.PyArray_TYPE(a) == cnp.PyArray_TYPE(b) and _same_shape(a, b)


cdef inline bint _same_dtype(cnp.ndarray a, cnp.ndarray b):
    cdef cnp.PyArray_Descr* da = cnp.PyArray_DESCR(a)
    cdef cnp.PyArray_Descr* db = cnp.PyArray_DESCR(b)
    return da == db or cnp.PyArray_EquivTypes(<cnp.dtype> da, <cnp.dtype> db)


# ----------------------------------------------------------------------------- 0-d values and loops
# Inline here: the fast paths and the engine call them per node.
cdef inline bint _array_value(object g, double* v, int* t):
    """The value of a 0-d float32/float64 array; False for anything else."""
    cdef cnp.ndarray a
    if type(g) is not cnp.ndarray:
        return False
    a = <cnp.ndarray> g
    if cnp.PyArray_NDIM(a) != 0 or not cnp.PyArray_ISALIGNED(a):
        return False
    t[0] = cnp.PyArray_TYPE(a)
    if t[0] == cnp.NPY_FLOAT:
        v[0] = (<float*> cnp.PyArray_DATA(a))[0]
    elif t[0] == cnp.NPY_DOUBLE:
        v[0] = (<double*> cnp.PyArray_DATA(a))[0]
    else:
        return False
    return True


cdef inline object _scalar_array(double value, int typenum):
    """A new 0-d array of ``typenum`` (float32 or float64) holding ``value``."""
    cdef cnp.ndarray a = cnp.PyArray_EMPTY(0, NULL, typenum, 0)
    if typenum == cnp.NPY_FLOAT:
        (<float*> cnp.PyArray_DATA(a))[0] = <float> value
    else:
        (<double*> cnp.PyArray_DATA(a))[0] = value
    return a


cdef inline int _scalar_type(Node n):
    """NPY_FLOAT or NPY_DOUBLE for a 0-d float node (its gradient can be a double), else 0."""
    cdef cnp.ndarray a
    if n.data_ is None:
        return n.value_type_
    if type(n.data_) is not cnp.ndarray:
        return 0
    a = <cnp.ndarray> n.data_
    if cnp.PyArray_NDIM(a) == 0 and (cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT or cnp.PyArray_TYPE(a) == cnp.NPY_DOUBLE):
        return cnp.PyArray_TYPE(a)
    return 0


cdef inline bint _value_of(Node n, double* value, int* typenum):
    """The value of a 0-d float tensor (kept as a double, or in a 0-d array); False otherwise."""
    if n.data_ is None:
        if not n.value_type_:
            return False
        value[0] = n.value_
        typenum[0] = n.value_type_
        return True
    return _array_value(n.data_, value, typenum)


cdef inline double _compute(int loop, double a, double b, int typenum) noexcept:
    """One element of ``_loop``, in the precision of ``typenum`` (the same arithmetic as arrays)."""
    cdef float fa = <float> a, fb = <float> b, fout
    cdef double out
    if typenum == cnp.NPY_FLOAT:
        _loop(loop, &fout, &fa, &fb, fb, fb, 1)
        return fout
    _loop(loop, &out, &a, &b, b, b, 1)
    return out


# C division (IEEE: x / 0 is inf or nan, no Python check): the .pyx files' cdivision=True does not
# reach the inline functions of this .pxd, whose zero checks raised ZeroDivisionError inside the
# noexcept loops (an unraisable error and a half-written result: log's VJP at 0, t / u by 0).
@cython.cdivision(True)
cdef inline void _loop(int loop, floating* out, const floating* x, const floating* y, floating c,
                floating c_minus_1, Py_ssize_t n) noexcept nogil:
    """One contiguous loop per ``Loop`` member (see native.pxd).

    The VJP loops read the gradient as ``x`` and an operand or output as ``y``, written exactly
    as the op registry's formulas write them (same operations, same order, same precision).
    """
    cdef Py_ssize_t i
    cdef floating one = 1, two = 2
    if loop == L_ADD:
        for i in range(n):
            out[i] = x[i] + y[i]
    elif loop == L_SUB:
        for i in range(n):
            out[i] = x[i] - y[i]
    elif loop == L_MUL:
        for i in range(n):
            out[i] = x[i] * y[i]
    elif loop == L_DIV:
        for i in range(n):
            out[i] = x[i] / y[i]
    elif loop == L_ADD_C:
        for i in range(n):
            out[i] = x[i] + c
    elif loop == L_SUB_C:
        for i in range(n):
            out[i] = x[i] - c
    elif loop == L_MUL_C:
        for i in range(n):
            out[i] = x[i] * c
    elif loop == L_DIV_C:
        for i in range(n):
            out[i] = x[i] / c
    elif loop == L_NEG:
        for i in range(n):
            out[i] = -x[i]
    elif loop == L_POWER_VJP:  # NumPy's exact special powers
        for i in range(n):
            out[i] = x[i] * (c * _power(y[i], c_minus_1))
    elif loop == L_SQRT_VJP:
        for i in range(n):
            out[i] = x[i] / (two * y[i])
    elif loop == L_SIN_VJP:
        for i in range(n):
            out[i] = x[i] * _cos(y[i])
    elif loop == L_COS_VJP:
        for i in range(n):
            out[i] = x[i] * -_sin(y[i])
    elif loop == L_TANH_VJP:
        for i in range(n):
            out[i] = x[i] * (one - y[i] * y[i])
    elif loop == L_SIGMOID_VJP:
        for i in range(n):
            out[i] = x[i] * (y[i] * (one - y[i]))


cdef inline floating _cos(floating x) noexcept nogil:
    if floating is float:
        return cosf(x)
    else:
        return cos(x)


cdef inline floating _sin(floating x) noexcept nogil:
    if floating is float:
        return sinf(x)
    else:
        return sin(x)


@cython.cdivision(True)
cdef inline floating _power(floating x, floating e) noexcept nogil:
    if e == 1:
        return x
    if e == 2:
        return x * x
    if e == 0:
        return 1
    if e == -1:
        return 1 / x
    if e == 0.5:
        if floating is float:
            return sqrtf(x)
        else:
            return sqrt(x)
    if floating is float:
        return powf(x, e)
    else:
        return pow(x, e)
