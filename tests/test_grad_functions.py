"""The public backward functions of ``clumsygrad.grad``, called directly the 0.2.1 way.

A user builds the result tensor with the forward operation and calls ``fn(result, grad)``.
Each function must return a tuple with one gradient per parent, shaped like that parent,
equal to the closed form of the seed (with the 0.2.1 defects corrected).  The closed forms
below are evaluated in float64 from the parents' data.
"""
import inspect
import typing
from typing import Callable, NamedTuple

import numpy as np
import pytest

import clumsygrad.grad as grad
from clumsygrad.activation import relu, sigmoid, softmax, tanh
from clumsygrad.grad import GradientTuple, _reduce_gradient_to_shape
from clumsygrad.loss import mae_loss, mse_loss
from clumsygrad.math import abs, cos, exp, log, mean, sin, sqrt, sum, tan
from clumsygrad.tensor import Tensor, TensorType

from helpers import BACKWARD_FUNCTION_NAMES


class Direct(NamedTuple):
    name: str  # the backward function, also the id
    build: Callable  # (*parents) -> result tensor, by the forward operation
    shapes: tuple  # parent shapes
    closed_form: Callable  # (g, *parents as float64) -> expected gradients
    positive: bool = False  # parents drawn from [0.5, 2) instead of N(0, 1)


def _swap(a):
    return np.swapaxes(a, -1, -2)


def _softmax64(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _sigmoid64(x):
    return 1 / (1 + np.exp(-x))


DIRECT = [
    Direct("transpose_backward", lambda a: a.T(), ((2, 3, 4),), lambda g, a: (g.T,)),
    Direct("add_backward", lambda a, b: a + b, ((3, 4), (3, 4)), lambda g, a, b: (g, g)),
    Direct("add_scalar_backward", lambda a: a + 2.5, ((3, 4),), lambda g, a: (g,)),
    Direct("sub_backward", lambda a, b: a - b, ((3, 4), (3, 4)), lambda g, a, b: (g, -g)),
    Direct("sub_scalar_backward", lambda a: a - 2.5, ((3, 4),), lambda g, a: (g,)),
    Direct("mul_backward", lambda a, b: a * b, ((3, 4), (3, 4)), lambda g, a, b: (g * b, g * a)),
    Direct("mul_scalar_backward", lambda a: a * -2.5, ((3, 4),), lambda g, a: (-2.5 * g,)),
    Direct("matmul_backward", lambda a, b: a @ b, ((3, 4), (4, 2)),
           lambda g, a, b: (g @ b.T, a.T @ g)),
    Direct("matmul_backward[batched]", lambda a, b: a @ b, ((2, 3, 4), (2, 4, 5)),
           lambda g, a, b: (g @ _swap(b), _swap(a) @ g)),
    Direct("matmul_backward[batch broadcast]", lambda a, b: a @ b, ((3, 1, 2, 4), (5, 4, 3)),
           lambda g, a, b: ((g @ _swap(b)).sum(axis=1, keepdims=True), (_swap(a) @ g).sum(axis=0))),
    Direct("power_backward", lambda a: a ** 3, ((3, 4),), lambda g, a: (g * 3 * a ** 2,)),
    Direct("power_backward[-0.5]", lambda a: a ** -0.5, ((3, 4),),
           lambda g, a: (g * -0.5 * a ** -1.5,), positive=True),
    Direct("negate_backward", lambda a: -a, ((3, 4),), lambda g, a: (-g,)),
    Direct("abs_backward", abs, ((3, 4),), lambda g, a: (g * np.sign(a),)),
    Direct("reshape_backward", lambda a: a.reshape((4, -1)), ((2, 3, 4),), lambda g, a: (g.reshape(a.shape),)),
    Direct("sum_backward", lambda a: sum(a), ((2, 3, 4),), lambda g, a: (np.broadcast_to(g, a.shape),)),
    Direct("sum_backward[axis=(-2,-1)]", lambda a: sum(a, axis=(-2, -1)), ((2, 3, 4),),
           lambda g, a: (np.broadcast_to(g[:, None, None], a.shape),)),
    Direct("sum_backward[axis=1, keepdims]", lambda a: sum(a, axis=1, keepdims=True), ((2, 3, 4),),
           lambda g, a: (np.broadcast_to(g, a.shape),)),
    Direct("mean_backward", lambda a: mean(a), ((2, 3, 4),), lambda g, a: (np.broadcast_to(g / 24, a.shape),)),
    Direct("mean_backward[axis=(0,2)]", lambda a: mean(a, axis=(0, 2)), ((2, 3, 4),),
           lambda g, a: (np.broadcast_to(g[None, :, None] / 8, a.shape),)),
    Direct("mean_backward[axis=-1, keepdims]", lambda a: mean(a, axis=-1, keepdims=True), ((2, 3, 4),),
           lambda g, a: (np.broadcast_to(g / 4, a.shape),)),
    Direct("exp_backward", exp, ((3, 4),), lambda g, a: (g * np.exp(a),)),
    Direct("log_backward", log, ((3, 4),), lambda g, a: (g / a,), positive=True),
    Direct("sqrt_backward", sqrt, ((3, 4),), lambda g, a: (g / (2 * np.sqrt(a)),), positive=True),
    Direct("sin_backward", sin, ((3, 4),), lambda g, a: (g * np.cos(a),)),
    Direct("cos_backward", cos, ((3, 4),), lambda g, a: (-g * np.sin(a),)),
    Direct("tan_backward", tan, ((3, 4),), lambda g, a: (g / np.cos(a) ** 2,)),
    Direct("relu_backward", relu, ((3, 4),), lambda g, a: (g * (a > 0),)),
    Direct("sigmoid_backward", sigmoid, ((3, 4),),
           lambda g, a: (g * _sigmoid64(a) * (1 - _sigmoid64(a)),)),
    Direct("tanh_backward", tanh, ((3, 4),), lambda g, a: (g * (1 - np.tanh(a) ** 2),)),
    Direct("softmax_backward", lambda a: softmax(a, axis=1), ((2, 3, 4),),
           lambda g, a: (_softmax64(a, 1) * (g - np.sum(_softmax64(a, 1) * g, axis=1, keepdims=True)),)),
    Direct("softmax_backward[axis=-1]", softmax, ((3, 4),),
           lambda g, a: (_softmax64(a, -1) * (g - np.sum(_softmax64(a, -1) * g, axis=-1, keepdims=True)),)),
    Direct("mse_backward", mse_loss, ((3, 4), (3, 4)),
           lambda g, p, t: (2 * (p - t) * g / p.size, -2 * (p - t) * g / p.size)),
    Direct("mae_backward", mae_loss, ((3, 4), (3, 4)),
           lambda g, p, t: (np.sign(p - t) * g / p.size, -np.sign(p - t) * g / p.size)),
    Direct("add_broadcast_backward", lambda a, b: a + b, ((3, 4), (4,)), lambda g, a, b: (g, g.sum(axis=0))),
    Direct("add_broadcast_backward[(2,3,4)+(3,1)]", lambda a, b: a + b, ((2, 3, 4), (3, 1)),
           lambda g, a, b: (g, g.sum(axis=(0, 2))[:, None])),
    Direct("sub_broadcast_backward", lambda a, b: a - b, ((3, 1), (1, 4)),
           lambda g, a, b: (g.sum(axis=1, keepdims=True), -g.sum(axis=0, keepdims=True))),
    Direct("mul_broadcast_backward", lambda a, b: a * b, ((3, 1), (1, 4)),
           lambda g, a, b: ((g * b).sum(axis=1, keepdims=True), (g * a).sum(axis=0, keepdims=True))),
    Direct("mul_broadcast_backward[(2,3)*()]", lambda a, b: a * b, ((2, 3), ()),
           lambda g, a, b: (g * b, np.sum(g * a))),
]


def _function(case: Direct):
    return getattr(grad, case.name.split("[")[0])


def _build(case: Direct, seed: int = 0):
    """The parents (float32 PARAMETERs) and the result of the forward operation on them."""
    rng = np.random.default_rng(seed)
    if case.positive:
        arrays = [rng.uniform(0.5, 2.0, s) for s in case.shapes]
    else:
        arrays = [rng.standard_normal(s) for s in case.shapes]
    parents = [Tensor(a, tensor_type=TensorType.PARAMETER) for a in arrays]
    return parents, case.build(*parents)


def _incoming(result: Tensor, dtype) -> np.ndarray:
    return np.random.default_rng(99).standard_normal(result.shape).astype(dtype)


IDS = [c.name for c in DIRECT]
GRAD_DTYPES = pytest.mark.parametrize("grad_dtype", [np.float64, np.float32], ids=["float64", "float32"])


def test_every_seed_backward_function_is_public_with_the_tensor_grad_signature():
    for name in BACKWARD_FUNCTION_NAMES:
        fn = getattr(grad, name)
        assert fn.__name__ == name
        assert list(inspect.signature(fn).parameters)[:2] == ["tensor", "grad"]


def test_direct_cases_cover_every_seed_backward_function():
    assert {_function(c).__name__ for c in DIRECT} == set(BACKWARD_FUNCTION_NAMES)


@pytest.mark.parametrize("case", DIRECT, ids=IDS)
def test_forward_operation_records_the_function(case):
    parents, result = _build(case)
    assert result._grad_fn is _function(case)
    assert list(result._parents) == parents


@GRAD_DTYPES
@pytest.mark.parametrize("case", DIRECT, ids=IDS)
def test_direct_call_returns_one_gradient_per_parent_shaped_like_it(case, grad_dtype):
    parents, result = _build(case)
    out = _function(case)(result, _incoming(result, grad_dtype))
    assert isinstance(out, tuple)
    assert len(out) == len(parents)
    for g, parent in zip(out, parents):
        assert np.shape(g) == parent.shape


@GRAD_DTYPES
@pytest.mark.parametrize("case", DIRECT, ids=IDS)
def test_direct_call_matches_the_closed_form(case, grad_dtype):
    parents, result = _build(case)
    incoming = _incoming(result, grad_dtype)
    out = _function(case)(result, incoming)
    expected = case.closed_form(incoming.astype(np.float64), *(p.data.astype(np.float64) for p in parents))
    assert len(out) == len(expected)
    for got, want in zip(out, expected):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


@GRAD_DTYPES
@pytest.mark.parametrize("case", DIRECT, ids=IDS)
def test_direct_call_result_dtype_follows_numpy_promotion(case, grad_dtype):
    # float32 parents and output: the seed's NumPy expressions give the incoming grad's dtype.
    parents, result = _build(case)
    out = _function(case)(result, _incoming(result, grad_dtype))
    for g in out:
        assert np.asarray(g).dtype == grad_dtype


@pytest.mark.parametrize("case", [c for c in DIRECT if len(c.shapes) == 2], ids=[c.name for c in DIRECT if len(c.shapes) == 2])
def test_direct_call_gives_a_gradient_for_a_constant_operand_too(case):
    rng = np.random.default_rng(1)
    left = Tensor(rng.standard_normal(case.shapes[0]), tensor_type=TensorType.PARAMETER)
    right = Tensor(rng.standard_normal(case.shapes[1]))  # INPUT
    result = case.build(left, right)
    incoming = _incoming(result, np.float64)
    out = _function(case)(result, incoming)
    expected = case.closed_form(incoming, left.data.astype(np.float64), right.data.astype(np.float64))
    for got, want in zip(out, expected):
        assert got is not None
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


def test_direct_call_accepts_a_non_contiguous_incoming_gradient():
    a = Tensor(np.arange(12.0).reshape(3, 4), tensor_type=TensorType.PARAMETER)
    b = Tensor(np.arange(4.0), tensor_type=TensorType.PARAMETER)
    result = a * b
    incoming = np.asfortranarray(np.linspace(-1, 1, 24).reshape(3, 8)[:, ::2])
    assert not incoming.flags.c_contiguous
    ga, gb = grad.mul_broadcast_backward(result, incoming)
    np.testing.assert_allclose(ga, incoming * np.arange(4.0), rtol=1e-6)
    np.testing.assert_allclose(gb, (incoming * np.arange(12.0).reshape(3, 4)).sum(axis=0), rtol=1e-6)


def test_direct_call_does_not_modify_the_incoming_gradient_or_the_tensors():
    for case in DIRECT:
        parents, result = _build(case)
        incoming = _incoming(result, np.float32)
        before = [incoming.copy(), result.data.copy()] + [p.data.copy() for p in parents]
        _function(case)(result, incoming)
        after = [incoming, result.data] + [p.data for p in parents]
        for x, y in zip(before, after):
            np.testing.assert_array_equal(x, y, err_msg=case.name)


# --------------------------------------------------------------------------- helpers of the module
def test_gradient_tuple_is_a_tuple_of_arrays_alias():
    assert GradientTuple == typing.Tuple[np.ndarray, ...]


REDUCTIONS = {
    "leading axis added": ((2, 3, 4), (3, 4), lambda g: g.sum(axis=0)),
    "stretched axis": ((2, 3, 4), (2, 1, 4), lambda g: g.sum(axis=1, keepdims=True)),
    "added and stretched": ((2, 3, 4), (3, 1), lambda g: g.sum(axis=(0, 2))[:, None]),
    "to a scalar": ((2, 3), (), lambda g: g.sum()),
    "to (1,)": ((2, 3), (1,), lambda g: g.sum().reshape(1)),
    "same shape": ((2, 3), (2, 3), lambda g: g),
}


@pytest.mark.parametrize("case", REDUCTIONS.values(), ids=REDUCTIONS.keys())
def test_reduce_gradient_to_shape(case):
    grad_shape, target_shape, closed_form = case
    g = np.random.default_rng(2).standard_normal(grad_shape)
    reduced = _reduce_gradient_to_shape(g, target_shape)
    assert np.shape(reduced) == target_shape
    np.testing.assert_allclose(reduced, closed_form(g), rtol=1e-12)
