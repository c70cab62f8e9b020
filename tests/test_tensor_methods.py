"""Tensor methods and the Python protocol, as a NumPy user writes them (issue 14, item 3).

Each differentiable method is checked against the NumPy method on the values and its gradient
against float64 central finite differences; the Python protocol (``len``, ``float``, ``abs``,
comparisons, iteration, ``@``) against what NumPy does with the same array.
"""
from __future__ import annotations

import numpy as np
import pytest

import clumsygrad as cg
from clumsygrad.tensor import Tensor, TensorType

from helpers import numeric_gradient

X = np.array([[1.3, 0.4, 2.2], [0.9, 1.7, 0.6]])  # positive, distinct (max/min, log, sqrt)


def _param(a):
    return Tensor(np.asarray(a, dtype=np.float64), TensorType.PARAMETER, dtype=np.float64)


def _check(method_call, numpy_call, x0=X):
    """``method_call(tensor)`` equals ``numpy_call(array)`` and its gradient finite differences."""
    t = _param(x0)
    out = method_call(t)
    assert isinstance(out, Tensor)
    expected = np.asarray(numpy_call(np.array(x0)))
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    weight = np.random.default_rng(4).standard_normal(out.shape)
    (out * Tensor(weight, dtype=np.float64)).sum().backward()
    fd = numeric_gradient(lambda x: float(np.sum(np.asarray(numpy_call(x)) * weight)), x0)
    np.testing.assert_allclose(t.grad, fd, rtol=1e-6, atol=1e-7)


METHODS = {
    "sum()": (lambda t: t.sum(), lambda x: x.sum()),
    "sum(axis=0)": (lambda t: t.sum(axis=0), lambda x: x.sum(axis=0)),
    "sum(1, keepdims=True)": (lambda t: t.sum(1, keepdims=True), lambda x: x.sum(1, keepdims=True)),
    "mean()": (lambda t: t.mean(), lambda x: x.mean()),
    "mean(0)": (lambda t: t.mean(0), lambda x: x.mean(0)),
    "max()": (lambda t: t.max(), lambda x: x.max()),
    "max(axis=1)": (lambda t: t.max(axis=1), lambda x: x.max(axis=1)),
    "min(0)": (lambda t: t.min(0), lambda x: x.min(0)),
    "min(keepdims)": (lambda t: t.min(axis=1, keepdims=True), lambda x: x.min(axis=1, keepdims=True)),
    "var()": (lambda t: t.var(), lambda x: x.var()),
    "var(0, ddof=1)": (lambda t: t.var(0, ddof=1), lambda x: x.var(0, ddof=1)),
    "std(axis=1)": (lambda t: t.std(axis=1), lambda x: x.std(axis=1)),
    "prod()": (lambda t: t.prod(), lambda x: x.prod()),
    "prod(axis=0)": (lambda t: t.prod(axis=0), lambda x: x.prod(axis=0)),
    "exp()": (lambda t: t.exp(), np.exp),
    "log()": (lambda t: t.log(), np.log),
    "sqrt()": (lambda t: t.sqrt(), np.sqrt),
    "abs()": (lambda t: (t - 1.0).abs(), lambda x: np.abs(x - 1.0)),
    "clip(lo, hi)": (lambda t: t.clip(0.5, 2.0), lambda x: x.clip(0.5, 2.0)),
    "clip(None, hi)": (lambda t: t.clip(None, 1.0), lambda x: x.clip(None, 1.0)),
    "reshape(3, 2)": (lambda t: t.reshape(3, 2), lambda x: x.reshape(3, 2)),
    "reshape((-1,))": (lambda t: t.reshape((-1,)), lambda x: x.reshape((-1,))),
    "reshape(1, -1, 3)": (lambda t: t.reshape(1, -1, 3), lambda x: x.reshape(1, -1, 3)),
    "transpose()": (lambda t: t.transpose(), lambda x: x.transpose()),
    "transpose(1, 0)": (lambda t: t.transpose(1, 0), lambda x: x.transpose(1, 0)),
    "transpose((1, 0))": (lambda t: t.transpose((1, 0)), lambda x: x.transpose((1, 0))),
    "flatten()": (lambda t: t.flatten(), lambda x: x.flatten()),
    "squeeze()": (lambda t: t.reshape(2, 1, 3).squeeze(), lambda x: x.reshape(2, 1, 3).squeeze()),
    "squeeze(axis)": (lambda t: t.reshape(1, 2, 3).squeeze(0), lambda x: x.reshape(1, 2, 3).squeeze(0)),
    "expand_dims(1)": (lambda t: t.expand_dims(1), lambda x: np.expand_dims(x, 1)),
    "astype(float64)": (lambda t: t.astype(np.float64) * 2.0, lambda x: x.astype(np.float64) * 2.0),
    "+t": (lambda t: +t, lambda x: +x),
    "abs(t)": (lambda t: abs(t - 1.0), lambda x: abs(x - 1.0)),
    "iteration": (lambda t: cg.stack(list(t)) * 1.0, lambda x: np.stack(list(x))),
    "iteration sum": (lambda t: sum(row * float(i + 1) for i, row in enumerate(t)),
                      lambda x: sum(row * float(i + 1) for i, row in enumerate(x))),
}


@pytest.mark.parametrize("label", list(METHODS))
def test_method_matches_numpy_and_finite_differences(label):
    _check(*METHODS[label])


def test_astype_float32_and_back_carries_the_gradient_in_the_original_dtype():
    t = _param(X)
    low = t.astype(np.float32)
    assert low.dtype == np.float32 and t.astype("float64") is t
    (low * 3.0).sum().backward()
    assert t.grad.dtype == np.float64
    np.testing.assert_allclose(t.grad, np.full(X.shape, 3.0))
    with pytest.raises(TypeError, match="float32 or float64"):
        t.astype(np.int32)


# ----------------------------------------------------------------------------- matmul
MATMUL_SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)),
                 ((5, 2, 3), (5, 3, 4)), ((1, 2, 3), (4, 3, 2)), ((3,), (5, 3, 2)), ((5, 2, 3), (3,))]


@pytest.mark.parametrize("left,right", MATMUL_SHAPES, ids=[f"{a}@{b}" for a, b in MATMUL_SHAPES])
def test_matmul_follows_numpys_rules_with_gradients(left, right):
    rng = np.random.default_rng(len(left) * 10 + len(right))
    a0, b0 = rng.standard_normal(left), rng.standard_normal(right)
    a, b = _param(a0), _param(b0)
    out = a @ b
    expected = a0 @ b0
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)
    weight = rng.standard_normal(out.shape)
    (out * Tensor(weight, dtype=np.float64)).sum().backward()
    np.testing.assert_allclose(a.grad, numeric_gradient(lambda x: float(np.sum((x @ b0) * weight)), a0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(b.grad, numeric_gradient(lambda y: float(np.sum((a0 @ y) * weight)), b0), rtol=1e-6, atol=1e-7)


def test_matmul_of_misaligned_shapes_is_a_value_error():
    with pytest.raises(ValueError, match=r"Matrix shapes not aligned: \(3,\) @ \(4,\)"):
        _param(np.ones(3)) @ _param(np.ones(4))
    with pytest.raises(ValueError, match="0-d"):
        _param(np.ones(())) @ _param(np.ones(3))


# ----------------------------------------------------------------------------- values out
def test_item_tolist_numpy_ndim_size_len():
    t = _param(X)
    assert t.ndim == 2 and t.size == 6 and len(t) == 2
    assert t.tolist() == X.tolist()
    assert t.numpy() is t.data
    one = _param([[2.5]])
    assert one.item() == 2.5 and isinstance(one.item(), float)
    assert float(one) == 2.5 and int(_param(3.9)) == 3
    assert float(cg.sum(t)) == pytest.approx(X.sum())


def test_one_value_conversions_of_several_elements_are_clear_errors():
    t = _param(X)
    with pytest.raises(TypeError, match=r"float\(\) needs a tensor of one element, got shape \(2, 3\)"):
        float(t)
    with pytest.raises(TypeError, match=r"int\(\) needs a tensor of one element"):
        int(t)
    with pytest.raises(ValueError, match=r"item\(\) needs a tensor of one element"):
        t.item()
    with pytest.raises(TypeError, match="0-d"):
        len(_param(1.0))
    with pytest.raises(TypeError, match="0-d"):
        iter(_param(1.0))


def test_iteration_yields_the_rows_as_tensors():
    t = _param(X)
    rows = list(t)
    assert len(rows) == 2 and all(isinstance(r, Tensor) for r in rows)
    np.testing.assert_array_equal(rows[1].data, X[1])


# ----------------------------------------------------------------------------- comparisons, identity
@pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
def test_comparisons_give_boolean_arrays(op):
    t = _param(X)
    other = np.array([1.3, 1.0, 2.5])
    for rhs in (other, 1.3, _param(other)):
        got = eval(f"t {op} rhs")
        want = eval(f"X {op} np.asarray(rhs.data if isinstance(rhs, Tensor) else rhs)")
        assert type(got) is np.ndarray and got.dtype == bool
        np.testing.assert_array_equal(got, want)


def test_equality_and_hash_are_identity():
    a, b = _param(X), _param(X)
    assert a == a and not (a == b) and a != b
    assert hash(a) == hash(a) and len({a, b}) == 2
    assert [a, b].index(b) == 1 and b in [a, b] and _param(X) not in [a, b]
    np.testing.assert_array_equal(np.equal(a, b), np.ones(X.shape, dtype=bool))
    assert "np.equal" in Tensor.__doc__
