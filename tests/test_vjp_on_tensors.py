"""The VJP formulas of issue 14's new ops evaluated on Tensors (the step behind gradients of
gradients): the same values as on arrays, and a recorded graph whose gradients match float64
finite differences of the array formulas."""
from __future__ import annotations

import numpy as np
import pytest

from clumsygrad import _registry
from clumsygrad._registry import OPS, evaluate
from clumsygrad.tensor import Tensor, TensorType

from helpers import numeric_gradient
from op_samples import SAMPLES

NEW_OPS = (
    "einsum", "tensordot", "dot", "outer", "diagonal", "trace", "triu", "tril", "pad", "repeat", "tile",
    "roll", "take", "take_along_axis", "nll_loss", "huber_loss", "smooth_l1_loss", "kl_div",
)
CASES = [(name, i) for name in NEW_OPS for i in range(len(SAMPLES[name]))]


def _params(arrays):
    return [Tensor(a, TensorType.PARAMETER, dtype=np.float64) for a in arrays]


def _node(name, out):
    target = OPS[name].backward
    stack = [out]
    while stack:
        t = stack.pop()
        if t._grad_fn is target:
            return t
        stack.extend(t._parents)
    raise AssertionError(f"{name} not recorded")


def _array_vjp(node, g):
    op, consts = _registry.rule_of(node._grad_fn)
    assert not consts
    params = {k: node._extra[k] for k in op.params if k in node._extra}
    return evaluate(op, g, node._data, [p._data for p in node._parents], params, [True] * len(node._parents))


@pytest.mark.parametrize("name,index", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_vjp_on_tensors_gives_the_array_values(name, index):
    sample = SAMPLES[name][index]
    node = _node(name, sample.fn(*_params(sample.inputs)))
    g = np.random.default_rng(5).standard_normal(node.shape)
    on_tensors = _registry.tensor_vjp(node, Tensor(g, TensorType.PARAMETER, dtype=np.float64),
                                      [True] * len(node._parents))
    for got, want in zip(on_tensors, _array_vjp(node, g)):
        assert isinstance(got, Tensor)
        np.testing.assert_allclose(got.data, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,index", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_vjp_on_tensors_is_differentiable(name, index):
    """d/d(g, inputs) of sum_i <vjp_i(g), w_i>, backpropagated through the recorded VJP, against
    finite differences of the array formula."""
    sample = SAMPLES[name][index]
    rng = np.random.default_rng(11)
    params = _params(sample.inputs)
    node = _node(name, sample.fn(*params))
    g0 = rng.standard_normal(node.shape)
    weights = [rng.standard_normal(p.shape) for p in node._parents]

    g = Tensor(g0, TensorType.PARAMETER, dtype=np.float64)
    grads = _registry.tensor_vjp(node, g, [True] * len(node._parents))
    total = None
    for gi, w in zip(grads, weights):
        term = (gi * Tensor(w, dtype=np.float64)).sum()
        total = term if total is None else total + term
    total.backward()

    def of_arrays(arrays, g_value):
        ps = _params(arrays)
        n = _node(name, sample.fn(*ps))
        return float(sum(np.sum(v * w) for v, w in zip(_array_vjp(n, g_value), weights)))

    expected_g = numeric_gradient(lambda x: of_arrays(sample.inputs, x), g0)
    np.testing.assert_allclose(g.grad, expected_g, rtol=1e-6, atol=1e-6)
    if not sample.second_order:
        return
    for i, (p, a) in enumerate(zip(params, sample.inputs)):
        expected = numeric_gradient(
            lambda x, i=i: of_arrays([x if j == i else b for j, b in enumerate(sample.inputs)], g0), a)
        got = np.zeros_like(a) if p.grad is None else p.grad
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5, err_msg=f"{name} input {i}")
