"""Property tests of the public API: random programs of tensor operations.

Each generated program starts from a few (3, 4) leaves and applies a random sequence of
operations whose results are (3, 4) again, so any operation can follow any other and
subexpressions are shared: elementwise maths, activations, indexing (slices, integer arrays
with repeats), concatenate, stack, max, where, clip, maximum, matmul, reshape/transpose,
broadcasting, then a reduction or a classification loss.

* Between backends: the same program run with the "python" and the "cython" backend gives
  the same value and the same gradient on every tensor, float32 and float64.
* Against finite differences: in float64, every leaf's gradient matches central differences
  (``clumsygrad.gradcheck.gradcheck``).  Operations with kinks (relu, max, clip, maximum) act
  on the leaves only, whose values are kept away from the kinks.
"""
import copy
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import clumsygrad
from clumsygrad import concatenate, stack, where
from clumsygrad.activation import log_softmax, relu, sigmoid, softmax, tanh
from clumsygrad.loss import cross_entropy, mse_loss
from clumsygrad.math import cos, exp, log, mean, sin, sqrt, sum
from clumsygrad.selection import clip, max, maximum
from clumsygrad.tensor import Tensor, TensorType

from helpers import SHAPE_SETTINGS, away_from_zero, gradcheck, examples

SHAPE = (3, 4)
MASK = np.array([[True, False, True, False], [False, False, True, True], [True, True, False, False]])
LABELS = np.array([2, 0, 3])
ROWS = np.array([2, 0, 0])  # a repeated row: its gradient is a sum (scatter-add)
COLUMNS = np.array([3, 1, 0, 2])

# Smooth operations: any operand, anywhere in a program.
SMOOTH_UNARY = {
    "neg": lambda a: -a,
    "tanh": tanh,
    "sigmoid": sigmoid,
    "exp": lambda a: exp(a * 0.1),
    "log": lambda a: log(a * a + 1.0),
    "sqrt": lambda a: sqrt(a * a + 1.0),
    "sin": sin,
    "cos": cos,
    "softmax": lambda a: softmax(a, axis=-1),
    "log_softmax": lambda a: log_softmax(a, axis=0),
    "square": lambda a: a ** 2,
    "rsub": lambda a: 1.0 - a * 0.5,
    "reverse_rows": lambda a: a[::-1],
    "permute_columns": lambda a: a[:, COLUMNS],
    "gather_rows": lambda a: a[ROWS] + a,
    "reshape_transpose": lambda a: a.reshape((4, 3)).T() * 0.5 + a,
    "row_broadcast": lambda a: a - mean(a, axis=0, keepdims=True),
}
SMOOTH_BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 1.0),
    "matmul": lambda a, b: (a @ b.T()) @ a * 0.1,
    "concatenate": lambda a, b: concatenate([a[:, :2], b[:, 2:]], axis=1),
    "stack": lambda a, b: mean(stack([a, b, a * b], axis=0), axis=0),
    "where": lambda a, b: where(MASK, a, b),
    "column_broadcast": lambda a, b: a * sum(b, axis=1, keepdims=True),
}
# Operations with kinks: applied to leaves (values away from every kink) in the gradcheck test.
KINKED = {
    "relu": lambda a, b: relu(a),
    "clip": lambda a, b: clip(a, -1.0, 1.0),
    "maximum": lambda a, b: maximum(a, b),
    "max_row": lambda a, b: a - max(a, axis=1, keepdims=True),
    "max_all": lambda a, b: a * max(b),
}
REDUCTIONS = {
    "sum": sum,
    "mean": mean,
    "cross_entropy": lambda a: cross_entropy(a, LABELS),
    "cross_entropy_sum": lambda a: cross_entropy(a, LABELS, reduction="sum"),
    "mse": lambda a: mse_loss(a, Tensor(np.ones(SHAPE), dtype=a.dtype)),
    "none": lambda a: a,  # a (3, 4) output: backward with a random cotangent
}


@st.composite
def programs(draw, kinks_anywhere: bool):
    n_leaves = draw(st.integers(2, 3))
    kinked = [(draw(st.sampled_from(sorted(KINKED))), draw(st.integers(0, n_leaves - 1)),
               draw(st.integers(0, n_leaves - 1))) for _ in range(draw(st.integers(0, 2)))]
    steps = []
    for k in range(draw(st.integers(1, 7))):
        available = n_leaves + len(kinked) + k
        names = sorted(SMOOTH_UNARY) + sorted(SMOOTH_BINARY) + (sorted(KINKED) if kinks_anywhere else [])
        steps.append((draw(st.sampled_from(names)), draw(st.integers(0, available - 1)),
                      draw(st.integers(0, available - 1))))
    reduction = draw(st.sampled_from(sorted(REDUCTIONS)))
    return n_leaves, kinked, steps, reduction


def _apply(name, a, b):
    if name in SMOOTH_UNARY:
        return SMOOTH_UNARY[name](a)
    if name in SMOOTH_BINARY:
        return SMOOTH_BINARY[name](a, b)
    return KINKED[name](a, b)


def _evaluate(program, leaves):
    """Run ``program`` on ``leaves``: (every tensor made, the output)."""
    _, kinked, steps, reduction = program
    nodes = list(leaves)
    for name, i, j in kinked:
        nodes.append(KINKED[name](leaves[i], leaves[j]))
    for name, i, j in steps:
        nodes.append(_apply(name, nodes[i], nodes[j]))
    return nodes, REDUCTIONS[reduction](nodes[-1])


def _leaf_values(n_leaves, seed):
    """Values with |x| in [0.2, 2): relu, clip at +-1 and max are smooth around them (almost surely)."""
    rng = np.random.default_rng(seed)
    return [away_from_zero(rng, SHAPE) for _ in range(n_leaves)]


def _run(program, values, dtype, backend, cotangent):
    clumsygrad.set_backend(backend)
    leaves = [Tensor(v, tensor_type=TensorType.PARAMETER, dtype=dtype) for v in values]
    nodes, out = _evaluate(program, leaves)
    out.backward(None if out.shape == () else cotangent.astype(dtype))
    unique = list({id(t): t for t in nodes + [out]}.values())
    return out.data.copy(), [None if t.grad is None else t.grad.copy() for t in unique]


@pytest.mark.both_backends
@settings(max_examples=examples(300), deadline=None)
@given(programs(kinks_anywhere=True), st.sampled_from([np.float32, np.float64]), st.integers(0, 2**16))
def test_programs_give_the_same_values_and_gradients_on_both_backends(program, dtype, seed):
    values = _leaf_values(program[0], seed)
    cotangent = np.random.default_rng(seed + 1).standard_normal(SHAPE)
    out_py, grads_py = _run(program, values, dtype, "python", cotangent)
    out_c, grads_c = _run(program, values, dtype, "cython", cotangent)
    tol = 2e-4 if dtype == np.float32 else 1e-10
    assert out_py.dtype == out_c.dtype == dtype
    np.testing.assert_allclose(out_c, out_py, rtol=tol, atol=tol)
    assert len(grads_py) == len(grads_c)
    for g_py, g_c in zip(grads_py, grads_c):
        assert (g_py is None) == (g_c is None)
        if g_py is not None:
            assert g_py.dtype == g_c.dtype == dtype and g_py.shape == g_c.shape
            scale = 1.0 + np.max(np.abs(g_py))
            np.testing.assert_allclose(g_c, g_py, rtol=tol, atol=tol * scale)


@settings(SHAPE_SETTINGS, max_examples=examples(60))
@given(programs(kinks_anywhere=False), st.integers(0, 2**16))
def test_program_gradients_match_finite_differences(program, seed):
    values = _leaf_values(program[0], seed)

    def fn(*leaves):
        return _evaluate(program, list(leaves))[1]

    assert gradcheck(fn, values, eps=1e-6, atol=1e-5, rtol=1e-4, seed=seed)


# --------------------------------------------------------------------------- copies and inputs
TENSOR_TYPES = st.sampled_from([TensorType.INPUT, TensorType.PARAMETER])
FLOAT_DTYPES = st.sampled_from([np.float32, np.float64])


@SHAPE_SETTINGS
@given(FLOAT_DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4), TENSOR_TYPES,
       st.booleans(), st.integers(0, 2**16))
def test_copies_and_pickles_keep_values_and_never_alias(dtype, shape, kind, with_grad, seed):
    rng = np.random.default_rng(seed)
    t = Tensor(rng.standard_normal(shape), tensor_type=kind, dtype=dtype)
    if with_grad:
        t.grad = rng.standard_normal(shape).astype(dtype)
    for c in (copy.copy(t), copy.deepcopy(t), pickle.loads(pickle.dumps(t, protocol=2)),
              pickle.loads(pickle.dumps(t))):
        assert c._id != t._id and c.dtype == dtype and c.shape == tuple(shape)
        assert c._tensor_type is kind and c.requires_grad == t.requires_grad
        np.testing.assert_array_equal(c.data, t.data)
        if with_grad:
            np.testing.assert_array_equal(c.grad, t.grad)
            assert not np.shares_memory(c.grad, t.grad)
        else:
            assert c.grad is None


REAL_DTYPES = st.sampled_from(["bool", "int8", "uint8", "int32", "int64", "uint64", "float16",
                               "float32", "float64"])
JUNK_DTYPES = st.sampled_from(["complex64", "complex128", "U3", "S3", "datetime64[s]",
                               "timedelta64[ms]", "object"])


@SHAPE_SETTINGS
@given(REAL_DTYPES.flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=2, max_side=4))),
       FLOAT_DTYPES)
def test_real_arrays_of_every_dtype_are_accepted_as_numpy_would_convert_them(array, dtype):
    with np.errstate(over="ignore", invalid="ignore"):  # float64 beyond float32: inf, as NumPy
        expected = np.array(array, dtype=dtype)
        t = Tensor(array, dtype=dtype)
    np.testing.assert_array_equal(t.data, expected)
    assert t.dtype == dtype and t.data is not array


@SHAPE_SETTINGS
@given(JUNK_DTYPES.flatmap(lambda dt: hnp.arrays(
    dt, hnp.array_shapes(min_dims=0, max_dims=2, max_side=3),
    elements=st.just(1) if dt == "object" else None)))
def test_arrays_of_any_other_dtype_are_refused_naming_the_dtype(array):
    with pytest.raises(TypeError, match=r"real numbers \(bool, int or float\), got ndarray of dtype"):
        Tensor(array)
    p = Tensor(np.zeros(array.shape), tensor_type=TensorType.PARAMETER)
    with pytest.raises(TypeError, match="got ndarray of dtype"):
        (p * 1.0).backward(array)
    with pytest.raises(TypeError, match="got ndarray of dtype"):
        p.grad = array
    assert p.grad is None
