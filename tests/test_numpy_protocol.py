"""The NumPy protocol of Tensor (``__array_ufunc__``, ``__array_function__``, ``__array__``).

* Every registered op reached through its NumPy name records the same op as the direct call:
  same values, same gradients (driven by the registry's ``UFUNCS``/``FUNCTIONS`` tables and the
  samples of tests/op_samples.py; a NumPy name without a case here fails the coverage test).
* ndarrays, lists and NumPy scalars on either side of an operator.
* Comparisons and gradient-free functions give plain NumPy results; a NumPy function without a
  gradient rule is a TypeError naming it and pointing to ``t.data``; ``out=`` into or out of a
  Tensor is a TypeError; ``np.asarray(t)`` gives the values.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import clumsygrad as cg
from clumsygrad import _registry
from clumsygrad._registry import FUNCTIONS, OPS, UFUNCS
from clumsygrad.tensor import Tensor, TensorType

from helpers import numeric_gradient
from op_samples import SAMPLES


def _param(a):
    return Tensor(np.asarray(a, dtype=np.float64), TensorType.PARAMETER, dtype=np.float64)


def _find(op, out):
    stack = [out]
    while stack:
        t = stack.pop()
        if t._grad_fn is op.backward:
            return t
        stack.extend(t._parents)
    return None


def _gradients(fn, arrays, weight_seed=0):
    """Values and input gradients of ``fn(*params)`` contracted with a fixed random weight."""
    params = [_param(a) for a in arrays]
    out = fn(*params)
    assert isinstance(out, Tensor), type(out)
    weight = np.random.default_rng(weight_seed).standard_normal(out.shape)
    (out * Tensor(weight, dtype=np.float64)).sum().backward()
    return out.data, [np.zeros(p.shape) if p.grad is None else p.grad for p in params]


# ----------------------------------------------------------------------------- registered NumPy names
def _numpy_name_cases():
    """(op, numpy callable, parents' arrays, params) from the first sample of each op that records it."""
    cases = []
    for op in OPS.values():
        if not op.numpy or op.function is None:
            continue
        for sample in SAMPLES[op.name]:
            node = _find(op, sample.fn(*[_param(a) for a in sample.inputs]))
            if node is not None:
                break
        arrays = [np.array(p.data) for p in node._parents]
        params = {k: node._extra[k] for k in op.params if k in node._extra}
        for f in op.numpy:
            cases.append((op.name, f, arrays, params))
    return cases


NUMPY_NAME_CASES = _numpy_name_cases()


@pytest.mark.parametrize(
    "name,f,arrays,params", NUMPY_NAME_CASES,
    ids=[f"{c[0]}-np.{getattr(c[1], '__name__', c[1])}" for c in NUMPY_NAME_CASES],
)
def test_numpy_name_records_the_op_with_the_direct_calls_gradients(name, f, arrays, params):
    op = OPS[name]
    table = UFUNCS if isinstance(f, np.ufunc) else FUNCTIONS
    assert table[f] is op.function
    direct_value, direct_grads = _gradients(lambda *ts: op.function(*ts, **params), arrays)
    params_ = [_param(a) for a in arrays]
    out = f(*params_, **params)
    assert isinstance(out, Tensor) and _find(op, out) is not None, f"np.{f.__name__} did not record {name}"
    value, grads = _gradients(lambda *ts: f(*ts, **params), arrays)
    np.testing.assert_allclose(value, direct_value, rtol=1e-12, atol=1e-12)
    for got, want in zip(grads, direct_grads):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def _v(*shape, seed=0):
    return np.random.default_rng(seed + sum(shape)).uniform(0.5, 1.5, shape)


MASK = np.array([True, False, True])

# NumPy names mapped by hand (operators and variadic ops): the NumPy call and the direct one.
OTHER_CASES = {
    np.add: (lambda a, b: np.add(a, b), lambda a, b: a + b, [_v(2, 3), _v(3)]),
    np.subtract: (lambda a, b: np.subtract(a, b), lambda a, b: a - b, [_v(2, 3), _v(2, 3, seed=1)]),
    np.multiply: (lambda a, b: np.multiply(a, b), lambda a, b: a * b, [_v(2, 3), _v(2, 1)]),
    np.true_divide: (lambda a, b: np.true_divide(a, b), lambda a, b: cg.math.divide(a, b), [_v(2, 3), _v(3)]),
    np.power: (lambda a, b: np.power(a, b), lambda a, b: a ** b, [_v(2, 3), _v(3)]),
    np.negative: (lambda a: np.negative(a), lambda a: -a, [_v(2, 3)]),
    np.positive: (lambda a: np.positive(a), lambda a: a * 1.0, [_v(2, 3)]),
    np.matmul: (lambda a, b: np.matmul(a, b), lambda a, b: a @ b, [_v(2, 3), _v(3, 4)]),
    np.concatenate: (lambda a, b: np.concatenate([a, b], axis=1), lambda a, b: cg.concatenate([a, b], axis=1),
                     [_v(2, 3), _v(2, 2)]),
    np.stack: (lambda a, b: np.stack([a, b]), lambda a, b: cg.stack([a, b]), [_v(2, 3), _v(2, 3, seed=1)]),
    np.split: (lambda a: np.split(a, [1], axis=1)[1], lambda a: cg.split(a, [1], axis=1)[1], [_v(2, 3)]),
    np.reshape: (lambda a: np.reshape(a, (3, 2)), lambda a: a.reshape(3, 2), [_v(2, 3)]),
    np.expand_dims: (lambda a: np.expand_dims(a, 0), lambda a: cg.expand_dims(a, 0), [_v(2, 3)]),
    np.squeeze: (lambda a: np.squeeze(a), lambda a: cg.squeeze(a), [_v(2, 1, 3)]),
    np.ravel: (lambda a: np.ravel(a), lambda a: a.flatten(), [_v(2, 3)]),
    np.transpose: (lambda a: np.transpose(a, (1, 0, 2)), lambda a: a.transpose(1, 0, 2), [_v(2, 3, 4)]),
    np.swapaxes: (lambda a: np.swapaxes(a, 0, 2), lambda a: cg.swapaxes(a, 0, 2), [_v(2, 3, 4)]),
    np.moveaxis: (lambda a: np.moveaxis(a, 0, -1), lambda a: cg.moveaxis(a, 0, -1), [_v(2, 3, 4)]),
    np.where: (lambda a, b: np.where(MASK, a, b), lambda a, b: cg.where(MASK, a, b), [_v(2, 3), _v(3)]),
    np.clip: (lambda a: np.clip(a, 0.7, 1.2), lambda a: a.clip(0.7, 1.2), [_v(2, 3)]),
    np.einsum: (lambda a, b: np.einsum("ij,jk->ik", a, b), lambda a, b: cg.einsum("ij,jk->ik", a, b),
                [_v(2, 3), _v(3, 4)]),
}


@pytest.mark.parametrize("f", list(OTHER_CASES), ids=[f.__name__ for f in OTHER_CASES])
def test_hand_mapped_numpy_name_gives_the_direct_calls_gradients(f):
    via_numpy, direct, arrays = OTHER_CASES[f]
    value, grads = _gradients(via_numpy, arrays)
    want_value, want_grads = _gradients(direct, arrays)
    np.testing.assert_allclose(value, want_value, rtol=1e-12)
    for got, want in zip(grads, want_grads):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_every_numpy_name_in_the_tables_has_a_case():
    covered = {c[1] for c in NUMPY_NAME_CASES} | set(OTHER_CASES)
    missing = [getattr(f, "__name__", f) for f in list(UFUNCS) + list(FUNCTIONS) if f not in covered]
    assert not missing, f"NumPy names without a protocol test: {missing}"


def test_reductions_through_ufunc_reduce_record_with_gradients():
    x = np.arange(1.0, 7.0).reshape(2, 3)
    for ufunc, direct in ((np.add, cg.sum), (np.multiply, cg.prod), (np.maximum, cg.max), (np.minimum, cg.min)):
        value, (grad,) = _gradients(lambda t: ufunc.reduce(t, axis=1), [x])
        want_value, (want_grad,) = _gradients(lambda t: direct(t, axis=1), [x])
        np.testing.assert_allclose(value, want_value)
        np.testing.assert_allclose(grad, want_grad)


# ----------------------------------------------------------------------------- mixed operands
A23 = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
MIXED = {
    "ndarray * t": (lambda t: A23 * t, lambda x: A23 * x),
    "t * ndarray": (lambda t: t * A23, lambda x: x * A23),
    "ndarray + t": (lambda t: A23 + t, lambda x: A23 + x),
    "ndarray - t": (lambda t: A23 - t, lambda x: A23 - x),
    "ndarray / t": (lambda t: A23 / t, lambda x: A23 / x),
    "t / ndarray": (lambda t: t / A23, lambda x: x / A23),
    "ndarray @ t": (lambda t: A23.T @ t, lambda x: A23.T @ x),
    "t @ ndarray": (lambda t: t @ A23.T, lambda x: x @ A23.T),
    "np.float64 ** t": (lambda t: np.float64(2) ** t, lambda x: np.float64(2) ** x),
    "t ** np.float64": (lambda t: t ** np.float64(3), lambda x: x ** np.float64(3)),
    "np.float32 * t": (lambda t: np.float32(3) * t, lambda x: np.float32(3) * x),
    "np.int64 - t": (lambda t: np.int64(4) - t, lambda x: np.int64(4) - x),
    "list - t": (lambda t: [1.0, 2.0, 3.0] - t, lambda x: np.array([1.0, 2.0, 3.0]) - x),
    "t + list": (lambda t: t + [1.0, 2.0, 3.0], lambda x: x + np.array([1.0, 2.0, 3.0])),
    "list * t": (lambda t: [[2.0], [3.0]] * t, lambda x: np.array([[2.0], [3.0]]) * x),
    "ndarray ** t": (lambda t: np.abs(A23) ** t, lambda x: np.abs(A23) ** x),
    "np.maximum(t, 0)": (lambda t: np.maximum(t, 0), lambda x: np.maximum(x, 0)),
    "np.add(list, t)": (lambda t: np.add([1.0, 2.0, 3.0], t), lambda x: np.add([1.0, 2.0, 3.0], x)),
    "np.multiply(ndarray, t)": (lambda t: np.multiply(A23, t), lambda x: np.multiply(A23, x)),
    "np.sum(t, axis=0, keepdims=True)": (lambda t: np.sum(t, axis=0, keepdims=True),
                                         lambda x: np.sum(x, axis=0, keepdims=True)),
    "np.concatenate([t, ndarray])": (lambda t: np.concatenate([t, A23]), lambda x: np.concatenate([x, A23])),
    "np.where(mask, t, 0)": (lambda t: np.where(A23 > 0, t, 0), lambda x: np.where(A23 > 0, x, 0)),
}


@pytest.mark.parametrize("label", list(MIXED))
def test_mixed_operands_record_with_gradients(label):
    with_tensor, with_arrays = MIXED[label]
    x0 = np.array([[1.2, 0.7, -0.4], [0.3, -1.1, 0.9]])
    if label == "ndarray @ t":  # A23.T (3, 2) @ t (2, 2)
        x0 = np.array([[1.2, 0.7], [-0.4, 0.3]])
    t = _param(x0)
    out = with_tensor(t)
    assert isinstance(out, Tensor), f"{label} gave {type(out).__name__}"
    np.testing.assert_allclose(out.data, with_arrays(x0), rtol=1e-12)
    weight = np.random.default_rng(1).standard_normal(out.shape)
    (out * Tensor(weight, dtype=np.float64)).sum().backward()
    expected = numeric_gradient(lambda x: float(np.sum(np.asarray(with_arrays(x)) * weight)), x0)
    np.testing.assert_allclose(t.grad, expected, rtol=1e-6, atol=1e-6)


def test_array_operand_of_the_tensors_dtype_keeps_float32():
    t = Tensor([1.0, 2.0], TensorType.PARAMETER)
    assert (np.array([1, 2]) * t).dtype == np.float32
    assert (np.float64(2.0) * t).dtype == np.float32  # a scalar never widens
    assert (np.array([1.0, 2.0]) * t).dtype == np.float64  # a float64 array asks for float64


ARRAY_OPERATORS = {
    "a * t": (lambda a, t: a * t, lambda A, t: t * A),
    "t * a": (lambda a, t: t * a, lambda A, t: t * A),
    "a + t": (lambda a, t: a + t, lambda A, t: t + A),
    "t + a": (lambda a, t: t + a, lambda A, t: t + A),
    "t - a": (lambda a, t: t - a, lambda A, t: t - A),
    "a - t": (lambda a, t: a - t, lambda A, t: A - t),
    "np.multiply(a, t)": (lambda a, t: np.multiply(a, t), lambda A, t: t * A),
    "np.add(t, a)": (lambda a, t: np.add(t, a), lambda A, t: t + A),
    "np.subtract(t, a)": (lambda a, t: np.subtract(t, a), lambda A, t: t - A),
}
LAYOUTS = {
    "same shape": lambda a: a,
    "transposed": lambda a: np.ascontiguousarray(a.T).T,
    "reversed rows": lambda a: a[::-1].copy()[::-1],
    "row": lambda a: a[:1],
    "column": lambda a: a[:, :1],
    "1-d": lambda a: a[0],
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("label", list(ARRAY_OPERATORS))
def test_an_array_operand_is_the_constant_tensor_the_operators_make_of_it(label, layout, dtype):
    # The compiled node computes ``a (op) t`` itself when ``a`` has t's dtype: the result, its
    # graph and its gradient are those of the same op with the INPUT constant Tensor(a).
    with_array, with_constant = ARRAY_OPERATORS[label]
    rng = np.random.default_rng(3)
    a = LAYOUTS[layout](rng.standard_normal((3, 4)).astype(dtype))
    t = Tensor(rng.standard_normal((3, 4)), TensorType.PARAMETER, dtype=dtype)
    out = with_array(a, t)
    kept = a.copy()
    a *= 100.0  # the operand is copied when recorded: changing it later changes nothing
    expected = with_constant(Tensor(kept, dtype=dtype), t)
    assert out.dtype == expected.dtype == dtype
    np.testing.assert_array_equal(out.data, expected.data)
    assert out._grad_fn.__name__ == expected._grad_fn.__name__
    constants = [p for p in out._parents if p is not t]
    assert all(p._tensor_type is TensorType.INPUT and not p.requires_grad for p in constants)
    weight = rng.standard_normal(out.shape)
    (out * Tensor(weight, dtype=dtype)).sum().backward()
    grad = t.grad.copy()
    t.grad = None
    (expected * Tensor(weight, dtype=dtype)).sum().backward()
    np.testing.assert_array_equal(grad, t.grad)


# ----------------------------------------------------------------------------- plain NumPy results
X = np.array([[0.5, -2.0, 3.0], [np.inf, 1.0, -0.25]])
PLAIN = {
    "t < a": (lambda t: t < A23, lambda x: x < A23),
    "a < t": (lambda t: A23 < t, lambda x: A23 < x),
    "t >= 0": (lambda t: t >= 0, lambda x: x >= 0),
    "np.less_equal": (lambda t: np.less_equal(t, 1.0), lambda x: np.less_equal(x, 1.0)),
    "np.equal": (lambda t: np.equal(t, t), lambda x: np.equal(x, x)),
    "np.isfinite": (np.isfinite, np.isfinite),
    "np.isnan": (np.isnan, np.isnan),
    "np.argmax": (np.argmax, np.argmax),
    "np.argmax axis": (lambda t: np.argmax(t, axis=1), lambda x: np.argmax(x, axis=1)),
    "np.argsort": (np.argsort, np.argsort),
    "np.shape": (np.shape, np.shape),
    "np.ndim": (np.ndim, np.ndim),
    "np.nonzero": (np.nonzero, np.nonzero),
    "np.allclose": (lambda t: np.allclose(t, X), lambda x: np.allclose(x, X)),
    "np.floor": (np.floor, np.floor),
}


@pytest.mark.parametrize("label", list(PLAIN))
def test_gradient_free_results_are_plain_numpy(label):
    with_tensor, with_arrays = PLAIN[label]
    t = _param(X)
    got, want = with_tensor(t), with_arrays(X)

    def check(g, w):
        assert not isinstance(g, Tensor)
        assert type(g) is type(w), (type(g), type(w))
        np.testing.assert_array_equal(g, w)

    if isinstance(want, tuple):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            check(g, w)
    else:
        check(got, want)


def test_equality_operators_keep_identity():
    t = _param(X)
    u = _param(X)
    assert (t == t) is True and (t == u) is False and (t != u) is True
    assert len({t, u, t}) == 2


# ----------------------------------------------------------------------------- refused
REFUSED = {
    "np.fft.fft": lambda t: np.fft.fft(t),
    "np.sort": lambda t: np.sort(t),
    "np.linalg.inv": lambda t: np.linalg.inv(t),
    "np.add.accumulate": lambda t: np.add.accumulate(t),
    "np.arctan2": lambda t: np.arctan2(t, t),
    "np.median": lambda t: np.median(t),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_function_without_gradient_rule_is_a_type_error_naming_it(name):
    t = _param(np.eye(2) + 1.0)
    with pytest.raises(TypeError, match=re.escape(name) + r" has no gradient rule.*t\.data"):
        REFUSED[name](t)


def test_array_is_the_values():
    t = _param(X)
    values = np.asarray(t)
    assert type(values) is np.ndarray and values.dtype == np.float64
    np.testing.assert_array_equal(values, X)
    f32 = Tensor([1.0, 2.0])
    assert np.asarray(f32, dtype=np.float64).dtype == np.float64
    assert np.array(f32).dtype == np.float32 and np.array(f32) is not f32.data


OUT_CASES = {
    "ufunc out=Tensor": lambda t, a: np.exp(a, out=t),
    "ufunc of Tensor out=array": lambda t, a: np.exp(t, out=a),
    "operator ufunc out=Tensor": lambda t, a: np.add(a, 1.0, out=t),
    "function out=array": lambda t, a: np.sum(t, axis=0, out=a[0]),
    "function out=Tensor": lambda t, a: np.sum(a, axis=0, out=t[0]),
}


@pytest.mark.parametrize("label", list(OUT_CASES))
def test_out_into_or_out_of_a_tensor_is_a_type_error(label):
    t = _param(np.ones((2, 3)))
    a = np.ones((2, 3))
    with pytest.raises(TypeError, match="out="):
        OUT_CASES[label](t, a)
    np.testing.assert_array_equal(t.data, np.ones((2, 3)))
    np.testing.assert_array_equal(a, np.ones((2, 3)))


def test_registry_tables_hold_callables_of_registered_ops():
    functions = {op.function for op in OPS.values() if op.function is not None}
    for f, fn in list(UFUNCS.items()) + list(FUNCTIONS.items()):
        assert callable(fn)
        if fn in functions:
            assert f in _registry.OPS[fn.__name__].numpy
