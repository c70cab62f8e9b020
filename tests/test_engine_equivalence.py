"""The compiled engine (_graph.native.backward_pass) against the pure one on generated graphs.

Each generated program builds a random DAG: operations pick earlier nodes as operands
(so subexpressions are shared), mix PARAMETER and INPUT tensors, broadcast, and reduce.
Running it once per backend must give the same gradient on every tensor, with no two
``.grad`` arrays sharing memory.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clumsygrad
from clumsygrad.activation import relu, sigmoid, softmax, tanh
from clumsygrad.math import exp, mean, sum
from clumsygrad.tensor import Tensor, TensorType
from helpers import examples

pytestmark = pytest.mark.both_backends

SHAPES = [(3, 4), (4,), (1, 4), (3, 1), ()]
BINARY = ["add", "sub", "mul", "div"]
UNARY = ["neg", "tanh", "sigmoid", "relu", "exp_small", "softmax", "square", "scale", "rsub"]


def _apply(op, a, b):
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "mul":
        return a * b
    if op == "div":
        return a / (b * b + 1.0)
    if op == "neg":
        return -a
    if op == "tanh":
        return tanh(a)
    if op == "sigmoid":
        return sigmoid(a)
    if op == "relu":
        return relu(a)
    if op == "exp_small":
        return exp(a * 0.1)
    if op == "softmax":
        return softmax(a, axis=-1) if a.shape else a
    if op == "square":
        return a ** 2
    if op == "scale":
        return 0.5 * a
    if op == "rsub":
        return 1.0 - a
    raise AssertionError(op)


@st.composite
def programs(draw):
    leaves = [
        (draw(st.sampled_from(SHAPES)), draw(st.booleans()))  # (shape, is_parameter)
        for _ in range(draw(st.integers(2, 4)))
    ]
    steps = []
    for k in range(draw(st.integers(1, 12))):
        available = len(leaves) + k
        op = draw(st.sampled_from(BINARY + UNARY))
        steps.append((op, draw(st.integers(0, available - 1)), draw(st.integers(0, available - 1))))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**16))
    reduce_last = draw(st.sampled_from(["sum", "mean", "sum_axis"]))
    keep_graph_twice = draw(st.booleans())
    return leaves, steps, dtype, seed, reduce_last, keep_graph_twice


def _run(program, backend):
    leaves_spec, steps, dtype, seed, reduce_last, twice = program
    clumsygrad.set_backend(backend)
    rng = np.random.default_rng(seed)
    leaves = [
        Tensor(
            rng.standard_normal(shape),
            tensor_type=TensorType.PARAMETER if is_param else TensorType.INPUT,
            dtype=dtype,
        )
        for shape, is_param in leaves_spec
    ]
    nodes = list(leaves)
    for op, i, j in steps:
        a, b = nodes[i], nodes[j]
        try:
            np.broadcast_shapes(a.shape, b.shape)
        except ValueError:  # operands that do not broadcast: use the first one alone
            op, b = "neg", a
        nodes.append(_apply(op, a, b))  # any error of the op itself fails the test
    out = nodes[-1]
    if reduce_last == "sum":
        out = sum(out)
    elif reduce_last == "mean":
        out = mean(out)
    else:
        out = sum(sum(out, axis=-1) if out.shape else out)
    out = out + sum(leaves[0]) * 0.0 + sum(leaves[1] * 1.0)  # at least one parameter path
    if not out.requires_grad:
        return None
    out.backward(keep_graph=twice)
    if twice:
        out.backward()
    unique = list({id(t): t for t in nodes}.values())
    return unique, [t.grad for t in unique]


@settings(max_examples=examples(300), deadline=None)
@given(programs())
def test_compiled_engine_matches_pure_engine(program):
    pure = _run(program, "python")
    native = _run(program, "cython")
    assert (pure is None) == (native is None)
    if pure is None:
        return
    for g_pure, g_native in zip(pure[1], native[1]):
        assert (g_pure is None) == (g_native is None)
        if g_pure is not None:
            assert g_pure.dtype == g_native.dtype
            assert g_pure.shape == g_native.shape
            tol = 1e-4 if g_pure.dtype == np.float32 else 1e-10
            np.testing.assert_allclose(g_native, g_pure, rtol=tol, atol=tol)
    for nodes, grads in (pure, native):
        owned = [(t, g) for t, g in zip(nodes, grads) if g is not None]
        for k, (t, g) in enumerate(owned):
            for u, h in owned[k + 1:]:
                assert not np.shares_memory(g, h), (t, u)
            for u in nodes:
                assert not np.shares_memory(g, u.data)


def test_cython_backend_runs_the_compiled_engine():
    from clumsygrad import _backend

    clumsygrad.set_backend("cython")
    if _backend.graph.__name__ == "clumsygrad._graph.native":
        assert type(_backend.engine.backward_pass).__name__ == "cython_function_or_method"
        assert _backend.engine.__name__ == "clumsygrad._graph.native"
    else:  # pure nodes (CLUMSYGRAD_BACKEND=python at import): only the pure engine walks them
        assert _backend.engine.__name__ == "clumsygrad._graph.pure"
        assert _backend.active.__name__ == "clumsygrad._kernels.native"
    clumsygrad.set_backend("python")
    assert _backend.engine.backward_pass.__module__ == "clumsygrad._graph.pure"


@pytest.mark.parametrize("engine", ["python", "cython"])
def test_fresh_gradient_is_adopted_without_a_copy(engine):
    import weakref

    clumsygrad.set_backend(engine)
    returned = []

    def double_backward(tensor, grad):
        fresh = grad * 2.0
        returned.append(weakref.ref(fresh))
        return (fresh,)

    x = Tensor([1.0, 2.0], tensor_type=TensorType.PARAMETER)
    y = Tensor._create_node(x.data * 2.0, double_backward, (x,))
    y.backward(np.ones(2, dtype=np.float32))
    assert x.grad is returned[0]()  # adopted: the engine made no copy
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


@pytest.mark.parametrize("engine", ["python", "cython"])
def test_kept_gradient_is_copied_not_adopted(engine):
    clumsygrad.set_backend(engine)
    kept = np.array([3.0, 4.0], dtype=np.float32)
    x = Tensor([1.0, 2.0], tensor_type=TensorType.PARAMETER)
    for _ in range(2):
        y = Tensor._create_node(x.data * kept, lambda tensor, grad: (kept,), (x,))
        y.backward(np.ones(2, dtype=np.float32))
    np.testing.assert_array_equal(kept, [3.0, 4.0])
    np.testing.assert_array_equal(x.grad, [6.0, 8.0])
