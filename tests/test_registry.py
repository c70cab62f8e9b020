"""Every registered op, driven by its samples (tests/op_samples.py): float64 finite differences on
both backends, the array kernels against the formulas, and the derived names."""
from __future__ import annotations

import numpy as np
import pytest

import clumsygrad as cg
from clumsygrad import _registry, grad
from clumsygrad._registry import OPS, evaluate
from clumsygrad.tensor import Tensor, TensorType

from helpers import numeric_gradient
from op_samples import SAMPLES

CASES = [(name, i) for name in sorted(SAMPLES) for i in range(len(SAMPLES[name]))]


def _params(arrays):
    return [Tensor(a, TensorType.PARAMETER, dtype=np.float64) for a in arrays]


def test_every_registered_op_has_samples():
    missing = sorted(set(OPS) - set(SAMPLES))
    assert not missing, f"registered ops without samples in tests/op_samples.py: {missing}"
    stale = sorted(set(SAMPLES) - set(OPS))
    assert not stale, f"samples for ops that are not registered: {stale}"


def _records(name, out) -> bool:
    """Whether ``out``'s graph contains a node recorded by op ``name``."""
    target = OPS[name].backward
    seen, stack = set(), [out]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        if t._grad_fn is target:
            return True
        stack.extend(t._parents)
    return False


@pytest.mark.parametrize("name,index", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_op_gradient_matches_finite_differences(name, index):
    sample = SAMPLES[name][index]
    params = _params(sample.inputs)
    out = sample.fn(*params)
    assert isinstance(out, Tensor)
    assert _records(name, out), f"the sample of {name} does not record it"
    weight = np.random.default_rng(7).standard_normal(out.shape)
    (out * Tensor(weight, dtype=np.float64)).sum().backward()
    tol = sample.tol
    for i, (p, a) in enumerate(zip(params, sample.inputs)):
        def f(x, i=i):
            arrays = [x if j == i else b for j, b in enumerate(sample.inputs)]
            with cg.no_grad():
                value = sample.fn(*[Tensor(b, dtype=np.float64) for b in arrays])
            return float(np.sum(value.data * weight))

        expected = numeric_gradient(f, a, eps=sample.eps)
        np.testing.assert_allclose(p.grad, expected, rtol=tol, atol=tol, err_msg=f"{name} input {i}")


@pytest.mark.parametrize("name,index", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_array_kernels_agree_with_the_formulas(name, index):
    """An op's backward function (its kernel or typed loop, when it has one) gives what its
    NumPy-spelled formulas give on the same arrays."""
    sample = SAMPLES[name][index]
    params = _params(sample.inputs)
    out = sample.fn(*params)
    node = _find(name, out)
    g = np.random.default_rng(3).standard_normal(node.shape)
    fast = node._grad_fn(node, g)
    rule = _registry.rule_of(node._grad_fn)
    op, consts = rule
    inputs = [p._data for p in node._parents]
    needs = [True] * len(inputs)
    for pos, key in consts:
        inputs.insert(pos, node._extra[key])
        needs[pos:pos] = [False]
    params_ = {k: node._extra[k] for k in op.params if k in node._extra}
    slow = [r for i, r in enumerate(evaluate(op, g, node._data, inputs, params_, needs))
            if i not in {p for p, _ in consts}]
    for a, b in zip(fast, slow):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def _find(name, out):
    target = OPS[name].backward
    stack = [out]
    while stack:
        t = stack.pop()
        if t._grad_fn is target:
            return t
        stack.extend(t._parents)
    raise AssertionError(name)


def test_grad_module_names_every_backward_function():
    for op in OPS.values():
        assert getattr(grad, op.backward.__name__) is op.backward
    for name in ("add_backward", "mul_scalar_backward", "power_backward", "getitem_backward",
                 "transpose_backward", "reshape_backward", "mse_backward", "mae_backward"):
        assert name in grad.__all__


def test_module_functions_and_methods_are_derived():
    for op in OPS.values():
        if op.function is None or op.module == "internal":
            continue
        module = getattr(cg, op.module)
        assert getattr(module, op.name) is op.function
        assert getattr(cg, op.name) is op.function
        for method in op.methods:
            assert getattr(Tensor, method) is op.function


def test_star_import_does_not_shadow_builtins():
    import builtins

    assert not [n for n in cg.__all__ if hasattr(builtins, n)]
    assert cg.sum is cg.math.sum and cg.max is cg.selection.max


def test_compiled_engine_table_comes_from_the_registry():
    typed = _registry.typed_vjps()
    assert typed[grad.exp_backward] == "EXP" and typed[grad.add_backward] == "ADD"
    assert typed[grad.matmul_backward] == "MATMUL" and typed[grad.getitem_backward] == "GETITEM"
    assert typed[grad.cross_entropy_backward] == "CROSS_ENTROPY"
    assert typed[grad.log_softmax_backward] == "LOG_SOFTMAX" and typed[grad.gelu_backward] == "GELU"
    assert grad.leaky_relu_backward not in typed  # no typed loop: the Python function runs
    if cg.get_backend() == "cython":
        from clumsygrad._graph.native import VJP

        for fn, name in typed.items():  # every name the registry gives is a member of the enum
            assert hasattr(VJP, name), (fn, name)
