"""Every backward function, reached through the operator or function that records it, against
float64 central finite differences (``helpers.gradcheck``, independent of clumsygrad), plus the defects of 0.2.1."""
import sys
import zlib
from typing import Callable, NamedTuple, Optional

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given

from clumsygrad.activation import relu, sigmoid, softmax, tanh
from clumsygrad.loss import mae_loss, mse_loss
from clumsygrad.math import abs, cos, exp, log, mean, sin, sqrt, sum, tan
from clumsygrad.tensor import Tensor, TensorType

from helpers import (
    BACKWARD_FUNCTION_NAMES,
    SHAPE_SETTINGS,
    away_from_zero,
    gradcheck,
    numeric_gradient,
    parameter,
)


class Case(NamedTuple):
    name: str
    backward: Optional[str]  # the backward function the result records (None: not part of the API)
    fn: Callable
    inputs: Callable  # rng -> list of float64 arrays


def normal(*shapes):
    return lambda rng: [rng.standard_normal(s) for s in shapes]


def positive(*shapes):
    return lambda rng: [rng.uniform(0.5, 2.0, s) for s in shapes]


def nonzero(*shapes):
    return lambda rng: [away_from_zero(rng, s) for s in shapes]


def prediction_and_target(shape):
    # |pred - target| >= 0.2 everywhere, so |.| is differentiable at every probe.
    def make(rng):
        target = rng.standard_normal(shape)
        return [target + away_from_zero(rng, shape), target]
    return make


CASES = [
    Case("transpose 2-D", "transpose_backward", lambda a: a.T(), normal((3, 4))),
    Case("transpose 3-D", "transpose_backward", lambda a: a.T(), normal((2, 3, 4))),
    Case("add", "add_backward", lambda a, b: a + b, normal((3, 4), (3, 4))),
    Case("t + scalar", "add_scalar_backward", lambda a: a + 2.5, normal((3,))),
    Case("scalar + t", "add_scalar_backward", lambda a: 2.5 + a, normal((3,))),
    Case("numpy scalar + t", "add_scalar_backward", lambda a: np.float64(2.5) + a, normal((3,))),
    Case("sub", "sub_backward", lambda a, b: a - b, normal((2, 3), (2, 3))),
    Case("t - scalar", "sub_scalar_backward", lambda a: a - 1.5, normal((4,))),
    Case("mul", "mul_backward", lambda a, b: a * b, normal((3, 4), (3, 4))),
    Case("t * scalar", "mul_scalar_backward", lambda a: a * 3.0, normal((4,))),
    Case("scalar * t", "mul_scalar_backward", lambda a: -3 * a, normal((4,))),
    Case("numpy scalar * t", "mul_scalar_backward", lambda a: np.float64(-3) * a, normal((4,))),
    Case("matmul 2-D", "matmul_backward", lambda a, b: a @ b, normal((3, 4), (4, 2))),
    Case("matmul 3-D @ 3-D", "matmul_backward", lambda a, b: a @ b, normal((2, 3, 4), (2, 4, 5))),
    Case("matmul 4-D @ 2-D", "matmul_backward", lambda a, b: a @ b, normal((2, 2, 3, 4), (4, 3))),
    Case("matmul 2-D @ 3-D", "matmul_backward", lambda a, b: a @ b, normal((3, 4), (2, 4, 2))),
    Case("matmul batch broadcast", "matmul_backward", lambda a, b: a @ b, normal((5, 1, 3, 4), (2, 4, 3))),
    Case("power 2", "power_backward", lambda a: a ** 2, normal((5,))),
    Case("power 3", "power_backward", lambda a: a ** 3, normal((5,))),
    Case("power -1", "power_backward", lambda a: a ** -1, nonzero((5,))),
    Case("power -2", "power_backward", lambda a: a ** -2, nonzero((5,))),
    Case("power 0.5", "power_backward", lambda a: a ** 0.5, positive((5,))),
    Case("power 1.5", "power_backward", lambda a: a ** 1.5, positive((5,))),
    Case("power -0.5", "power_backward", lambda a: a ** -0.5, positive((5,))),
    Case("negate", "negate_backward", lambda a: -a, normal((2, 3))),
    Case("abs", "abs_backward", abs, nonzero((2, 3))),
    Case("reshape (2,3,4) -> (4,-1)", "reshape_backward", lambda a: a.reshape((4, -1)), normal((2, 3, 4))),
    Case("reshape (6,) -> (2,3)", "reshape_backward", lambda a: a.reshape((2, 3)), normal((6,))),
    Case("sum", "sum_backward", lambda a: sum(a), normal((2, 3))),
    Case("mean", "mean_backward", lambda a: mean(a), normal((2, 3))),
    Case("exp", "exp_backward", exp, normal((2, 3))),
    Case("log", "log_backward", log, positive((2, 3))),
    Case("sqrt", "sqrt_backward", sqrt, positive((2, 3))),
    Case("sin", "sin_backward", sin, normal((2, 3))),
    Case("cos", "cos_backward", cos, normal((2, 3))),
    Case("tan", "tan_backward", tan, lambda rng: [rng.uniform(-1.2, 1.2, (2, 3))]),
    Case("relu", "relu_backward", relu, nonzero((3, 4))),
    Case("sigmoid", "sigmoid_backward", sigmoid, lambda rng: [3 * rng.standard_normal((3, 4))]),
    Case("tanh", "tanh_backward", tanh, normal((3, 4))),
    Case("softmax axis 0", "softmax_backward", lambda a: softmax(a, axis=0), normal((2, 3, 4))),
    Case("softmax axis 1", "softmax_backward", lambda a: softmax(a, axis=1), normal((2, 3, 4))),
    Case("softmax axis 2", "softmax_backward", lambda a: softmax(a, axis=2), normal((2, 3, 4))),
    Case("softmax axis -1", "softmax_backward", lambda a: softmax(a), normal((2, 3, 4))),
    Case("softmax axis -3", "softmax_backward", lambda a: softmax(a, axis=-3), normal((2, 3, 4))),
    Case("mse_loss", "mse_backward", mse_loss, normal((3, 4), (3, 4))),
    Case("mae_loss", "mae_backward", mae_loss, prediction_and_target((3, 4))),
    Case("add (3,4)+(4,)", "add_broadcast_backward", lambda a, b: a + b, normal((3, 4), (4,))),
    Case("add ()+(3,)", "add_broadcast_backward", lambda a, b: a + b, normal((), (3,))),
    Case("add (3,4)+(1,1)", "add_broadcast_backward", lambda a, b: a + b, normal((3, 4), (1, 1))),
    Case("sub (2,3,4)-(3,1)", "sub_broadcast_backward", lambda a, b: a - b, normal((2, 3, 4), (3, 1))),
    Case("sub (1,)-(2,3)", "sub_broadcast_backward", lambda a, b: a - b, normal((1,), (2, 3))),
    Case("mul (3,1)*(1,4)", "mul_broadcast_backward", lambda a, b: a * b, normal((3, 1), (1, 4))),
    Case("mul (1,)*(2,3)", "mul_broadcast_backward", lambda a, b: a * b, normal((1,), (2, 3))),
    Case("mul (2,3)*()", "mul_broadcast_backward", lambda a, b: a * b, normal((2, 3), ())),
    Case("t / u", None, lambda a, b: a / b, lambda rng: [rng.standard_normal((2, 3)), rng.uniform(0.5, 2, (2, 3))]),
    Case("t / u broadcast", None, lambda a, b: a / b, lambda rng: [rng.standard_normal((2, 3)), rng.uniform(0.5, 2, (3,))]),
    Case("t / scalar", None, lambda a: a / 2.5, normal((2, 3))),
    Case("scalar / t", None, lambda a: 2.5 / a, nonzero((2, 3))),
    Case("scalar - t", None, lambda a: 2.5 - a, normal((2, 3))),
]


def _inputs(case: Case):
    rng = np.random.default_rng(zlib.crc32(case.name.encode()))
    return case.inputs(rng)


def test_cases_cover_all_29_backward_functions():
    assert len(BACKWARD_FUNCTION_NAMES) == 29
    assert {c.backward for c in CASES if c.backward} == set(BACKWARD_FUNCTION_NAMES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_gradient_matches_finite_differences(case):
    inputs = _inputs(case)
    out = case.fn(*(parameter(a) for a in inputs))
    if case.backward is not None:
        assert out._grad_fn.__name__ == case.backward
    assert gradcheck(case.fn, inputs)


# --------------------------------------------------------------------------- reductions over axes
AXES = [None, 0, 1, -1, (0, 2), (-2, -1), (0, -1), (0, 1, 2)]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("reduce", [sum, mean], ids=["sum", "mean"])
def test_reduction_gradient_over_axes_of_3d_tensor(reduce, axis, keepdims):
    x = np.random.default_rng(7).standard_normal((2, 3, 4))
    fn = lambda a: reduce(a, axis=axis, keepdims=keepdims) ** 2  # noqa: E731
    assert fn(parameter(x)).shape == np.sum(x, axis=axis, keepdims=keepdims).shape
    assert gradcheck(fn, [x])


@st.composite
def shape_and_axes(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=3))
    chosen = draw(st.lists(st.integers(0, len(shape) - 1), unique=True, max_size=len(shape)))
    # Each chosen axis is written either as itself or as its negative twin.
    axes = tuple(a - len(shape) if draw(st.booleans()) else a for a in chosen)
    axis = draw(st.sampled_from([None, axes, axes[0] if len(axes) == 1 else axes]))
    return shape, axis, draw(st.booleans())


@SHAPE_SETTINGS
@given(spec=shape_and_axes(), use_mean=st.booleans())
def test_reduction_gradient_for_any_axes(spec, use_mean):
    shape, axis, keepdims = spec
    reduce = mean if use_mean else sum
    x = np.random.default_rng(len(shape)).standard_normal(shape)
    assert gradcheck(lambda a: reduce(a, axis=axis, keepdims=keepdims) * 1.5, [x])


# --------------------------------------------------------------------------- broadcasting
BINARY = {
    "+": (lambda a, b: a + b, "add"),
    "-": (lambda a, b: a - b, "sub"),
    "*": (lambda a, b: a * b, "mul"),
    "/": (lambda a, b: a / b, None),
}


@SHAPE_SETTINGS
@given(
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
    op=st.sampled_from(sorted(BINARY)),
)
def test_broadcast_binary_operator_gradients(shapes, op):
    left, right = shapes.input_shapes
    fn, prefix = BINARY[op]
    rng = np.random.default_rng(0)
    a = rng.standard_normal(left)
    b = rng.uniform(0.5, 2.0, right)  # keeps division away from 0
    out = fn(parameter(a), parameter(b))
    assert out.shape == shapes.result_shape
    if prefix is not None:
        expected = f"{prefix}_backward" if left == right else f"{prefix}_broadcast_backward"
        assert out._grad_fn.__name__ == expected
    assert gradcheck(fn, [a, b])


@SHAPE_SETTINGS
@given(
    batch=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3),
    n=st.integers(1, 3),
    k=st.integers(1, 3),
    m=st.integers(1, 3),
)
def test_batched_matmul_gradients(batch, n, k, m):
    left, right = batch.input_shapes
    rng = np.random.default_rng(1)
    a = rng.standard_normal(left + (n, k))
    b = rng.standard_normal(right + (k, m))
    assert gradcheck(lambda x, y: x @ y, [a, b])


# --------------------------------------------------------------------------- 0-d and zero-size
ZERO_D = {
    "x * y": lambda x, y: x * y,
    "x + 2": lambda x, y: (x + 2.0) * y,
    "exp(x) / y": lambda x, y: exp(x) / y,
    "sum(x) - y": lambda x, y: sum(x) - y,
    "x ** 3 + mean(y)": lambda x, y: x ** 3 + mean(y),
    "sigmoid(x) * tanh(y)": lambda x, y: sigmoid(x) * tanh(y),
}


@pytest.mark.parametrize("fn", ZERO_D.values(), ids=ZERO_D.keys())
def test_gradients_of_0d_tensors(fn):
    x, y = np.array(0.7), np.array(1.3)
    assert fn(parameter(x), parameter(y)).shape == ()
    assert gradcheck(fn, [x, y])
    px, py = parameter(x), parameter(y)
    fn(px, py).backward()
    assert px.grad.shape == () and py.grad.shape == ()


# (shape of a, shape of b, fn, gradient of sum(fn(a, b)) with respect to b): a is empty, so
# b's gradient sums over nothing (zeros) unless b reaches the output on its own (ones).
ZERO_SIZE = {
    "(0,3) * (3,)": ((0, 3), (3,), lambda a, b: sum(a * b), np.zeros(3)),
    "(0,3) + (1,3)": ((0, 3), (1, 3), lambda a, b: a + b, np.zeros((1, 3))),
    "sum axis 0 of (0,3) + (3,)": ((0, 3), (3,), lambda a, b: sum(a, axis=0) + b, np.ones(3)),
    "(2,0) @ (0,3)": ((2, 0), (0, 3), lambda a, b: a @ b, np.zeros((0, 3))),
    "exp((0,)) - (0,)": ((0,), (0,), lambda a, b: exp(a) - b, np.zeros(0)),
    "(0,4).T() reshape": ((0, 4), (4,), lambda a, b: a.T().reshape((4, 0)) * b.reshape((4, 1)), np.zeros(4)),
}


@pytest.mark.parametrize("case", ZERO_SIZE.values(), ids=ZERO_SIZE.keys())
def test_gradients_of_zero_size_tensors_are_empty_arrays_of_the_right_shape(case):
    left, right, fn, expected_b_grad = case
    a = parameter(np.ones(left))
    b = parameter(np.full(right, 2.0))
    out = fn(a, b)
    out.backward(np.ones(out.shape))
    for t in (a, b):
        assert isinstance(t.grad, np.ndarray)
        assert t.grad.shape == t.shape
        assert t.grad.dtype == np.float64
    np.testing.assert_array_equal(b.grad, expected_b_grad)


# --------------------------------------------------------------------------- float32
def test_float32_gradients_agree_with_float64_finite_differences():
    rng = np.random.default_rng(3)
    w0 = rng.standard_normal((3, 2))
    x = rng.standard_normal((4, 3)).astype(np.float32)

    def loss64(w):
        return float(np.sum(np.tanh(x.astype(np.float64) @ w) ** 2))

    w = Tensor(w0, tensor_type=TensorType.PARAMETER)  # float32
    sum(tanh(Tensor(x) @ w) ** 2).backward()
    assert w.grad.dtype == np.float32
    np.testing.assert_allclose(w.grad, numeric_gradient(loss64, w0), rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- the defects of 0.2.1
def test_defect1_sigmoid_gradient_is_s_times_one_minus_s_of_its_output():
    x = np.array([-2.0, -0.5, 0.0, 1.0, 3.0])
    s = 1 / (1 + np.exp(-x))
    t = parameter(x)
    sum(sigmoid(t)).backward()
    np.testing.assert_allclose(t.grad, s * (1 - s), rtol=1e-12)
    # 0.2.1 applied the sigmoid to the stored output once more: sigma(s) (1 - sigma(s)).
    s_again = 1 / (1 + np.exp(-s))
    assert not np.allclose(t.grad, s_again * (1 - s_again), rtol=1e-3)


def test_defect2_mse_gradient_includes_the_one_over_n_of_the_mean():
    rng = np.random.default_rng(4)
    p, q = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    pred, target = parameter(p), parameter(q)
    mse_loss(pred, target).backward()
    n = p.size
    np.testing.assert_allclose(pred.grad, 2 * (p - q) / n, rtol=1e-12)
    np.testing.assert_allclose(target.grad, -2 * (p - q) / n, rtol=1e-12)


@pytest.mark.parametrize("axis", [(-2, -1), (-1, -2), (-3, -1), -2, (0, -1)], ids=str)
def test_defect3_sum_over_negative_axes_of_a_3d_tensor(axis):
    x = np.random.default_rng(5).standard_normal((2, 3, 4))
    t = parameter(x)
    out = sum(t, axis=axis)
    assert out.shape == np.sum(x, axis=axis).shape
    seed = np.arange(1.0, 1.0 + out.data.size).reshape(out.shape)
    out.backward(seed)
    # d/dx <sum(x, axis), seed> is the seed repeated along the summed axes.
    np.testing.assert_array_equal(t.grad, np.broadcast_to(np.expand_dims(seed, axis), x.shape))


def test_defect4_batched_matmul_gradient():
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((4, 2, 3)), rng.standard_normal((4, 3, 5))
    seed = rng.standard_normal((4, 2, 5))
    ta, tb = parameter(a), parameter(b)
    (ta @ tb).backward(seed)
    np.testing.assert_allclose(ta.grad, np.einsum("bij,bkj->bik", seed, b), rtol=1e-12)
    np.testing.assert_allclose(tb.grad, np.einsum("bki,bkj->bij", a, seed), rtol=1e-12)


def test_defect4_batch_broadcast_matmul_gradient_sums_the_broadcast_batch_axes():
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((5, 1, 3, 4)), rng.standard_normal((2, 4, 3))
    seed = rng.standard_normal((5, 2, 3, 3))
    ta, tb = parameter(a), parameter(b)
    (ta @ tb).backward(seed)
    # a is shared by the 2 batches of b; b by the 5 batches of a.
    np.testing.assert_allclose(ta.grad, np.einsum("pqij,qkj->pik", seed, b)[:, None], rtol=1e-12)
    np.testing.assert_allclose(tb.grad, np.einsum("pki,pqkj->qij", a[:, 0], seed), rtol=1e-12)


def test_defect5_graph_deeper_than_the_recursion_limit():
    depth = 3 * sys.getrecursionlimit()
    x = parameter([0.2, -0.3])
    y = x
    for _ in range(depth):
        y = y * 1.001
    sum(y).backward()
    np.testing.assert_allclose(x.grad, np.full(2, 1.001 ** depth), rtol=1e-9)


def test_defect6_true_division_gradient():
    a, b = np.array([1.0, -2.0, 3.0]), np.array([0.5, 4.0, -1.5])
    ta, tb = parameter(a), parameter(b)
    sum(ta / tb).backward()
    np.testing.assert_allclose(ta.grad, 1 / b, rtol=1e-12)
    np.testing.assert_allclose(tb.grad, -a / b ** 2, rtol=1e-12)


def test_defect6_scalar_minus_tensor_gradient():
    t = parameter([1.0, -2.0])
    out = 5 - t
    np.testing.assert_array_equal(out.data, [4.0, 7.0])
    sum(out).backward()
    np.testing.assert_array_equal(t.grad, [-1.0, -1.0])


def test_defect6_scalar_divided_by_tensor_gradient():
    x = np.array([0.5, -2.0, 4.0])
    t = parameter(x)
    out = 3 / t
    np.testing.assert_allclose(out.data, 3 / x, rtol=1e-15)
    sum(out).backward()
    np.testing.assert_allclose(t.grad, -3 / x ** 2, rtol=1e-12)
