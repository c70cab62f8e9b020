"""The ``out=`` protocol between the engine and the backward kernels.

A backward kernel given ``out=`` adds its result into that buffer and returns it: the engine hands
a parent's pending gradient when it owns one, so a second gradient arriving at a tensor is added
in place, with no temporary array.  Here: every such kernel of both kernel sets against its own
result without ``out`` (bit for bit) and against its twin, the checks of a bad buffer (the same
error in both twins), and the compiled engine taking that path on fan-out graphs with the
gradients of the pure engine and of finite differences.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clumsygrad
from clumsygrad._kernels import checks
from clumsygrad._kernels import native as compiled
from clumsygrad._kernels import pure
from clumsygrad.activation import gelu, log_softmax, relu, sigmoid, softmax, tanh
from clumsygrad.loss import cross_entropy
from clumsygrad.math import exp, mean, sum
from clumsygrad.tensor import Tensor, TensorType
from helpers import compiled_node_in_use, examples, numeric_gradient

pytestmark = pytest.mark.both_backends

KERNEL_SETS = [pytest.param(compiled, id="compiled"), pytest.param(pure, id="pure")]


def _layout(rng, a, how):
    """``a``'s values in another memory layout."""
    if a.ndim == 0:
        return a
    if how == "F":
        return np.asfortranarray(a)
    if how == "reversed":
        return np.ascontiguousarray(a[::-1])[::-1]
    if how == "sliced":
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        wide[..., ::2] = a
        return wide[..., ::2]
    return a


def _cases(rng, dtype, shape, layout):
    """(kernel name, args) for every kernel with an ``out=``, on inputs of ``shape``."""
    y = _layout(rng, rng.standard_normal(shape).astype(dtype), layout)
    g = _layout(rng, rng.standard_normal(shape).astype(dtype), layout)
    positive = np.abs(y) + dtype(0.1)
    cases = [
        ("relu_backward", (y, g)),
        ("gelu_backward", (y, g)),
        ("gelu_backward", (y, g, "tanh")),
    ]
    if len(shape) >= 1 and shape[-1] > 0:
        cases += [
            ("softmax_backward", (positive, g, -1)),
            ("softmax_backward", (positive, g, 0)),
            ("log_softmax_backward", (-positive, g, -1)),
        ]
    if len(shape) >= 1:
        cases.append(("expand_to_shape", (g.sum(axis=0), shape, 0, False, 0.5)))
        cases.append(("expand_to_shape", (g.sum(axis=-1, keepdims=True), shape, -1, True, 2.0)))
        n = 3
        ids = rng.integers(-n, n, size=shape[0]).astype(np.intp)
        cases.append(("scatter_add", (g, ids, (n,) + tuple(shape[1:]))))
    if len(shape) == 2 and shape[1] > 0:
        n, c = shape
        labels = rng.integers(0, c, size=n).astype(np.intp)
        cases.append(("probs_minus_onehot", (positive, labels, np.array(1.5, dtype), "mean")))
        cases.append(("probs_minus_onehot", (positive, labels, rng.standard_normal(n).astype(dtype), "none")))
    return cases


@settings(max_examples=examples(60), deadline=None)
@given(
    dtype=st.sampled_from([np.float32, np.float64]),
    shape=st.sampled_from([(), (1,), (7,), (0, 3), (3, 0), (4, 5), (2, 3, 4), (6, 65)]),
    layout=st.sampled_from(["C", "F", "reversed", "sliced"]),
    seed=st.integers(0, 2**16),
)
def test_out_adds_the_result_bit_for_bit_in_both_twins(dtype, shape, layout, seed):
    rng = np.random.default_rng(seed)
    for name, args in _cases(rng, dtype, shape, layout):
        results = []
        start = rng.standard_normal(getattr(pure, name)(*args).shape)
        for kernels in (compiled, pure):
            fn = getattr(kernels, name)
            fresh = fn(*args)
            out = start.astype(fresh.dtype)
            before = out.copy()
            returned = fn(*args, out=out)
            assert returned is out, name
            if name == "scatter_add":  # rows added one by one into out, as np.add.at does
                expected = before.copy()
                np.add.at(expected, args[1], args[0].astype(fresh.dtype))
            else:
                expected = before + fresh
            np.testing.assert_array_equal(out, expected, err_msg=f"{name} {kernels.__name__}")
            results.append(out)
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(results[0], results[1], rtol=tol, atol=tol, err_msg=name)


def _bad_outs(fresh, inputs):
    """(description, bad buffer) for a kernel whose result is ``fresh``."""
    other = np.float64 if fresh.dtype == np.float32 else np.float32
    read_only = np.zeros_like(fresh)
    read_only.flags.writeable = False
    bad = [
        ("list", fresh.tolist()),
        ("dtype", np.zeros(fresh.shape, other)),
        ("byte order", np.zeros(fresh.shape, fresh.dtype.newbyteorder())),
        ("shape", np.zeros(fresh.shape + (1,), fresh.dtype)),
        ("read-only", read_only),
    ]
    if fresh.ndim == 2 and min(fresh.shape) > 1:
        bad.append(("F order", np.zeros(fresh.shape, fresh.dtype, order="F")))
    for a in inputs:
        if isinstance(a, np.ndarray) and a.shape == fresh.shape and a.dtype == fresh.dtype:
            bad.append(("an input", a))
    return bad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_bad_out_is_the_same_error_in_both_twins(dtype):
    rng = np.random.default_rng(3)
    for name, args in _cases(rng, dtype, (4, 5), "C"):
        fresh = getattr(pure, name)(*args)
        for what, out in _bad_outs(fresh, args):
            errors = []
            for kernels in (compiled, pure):
                with pytest.raises((TypeError, ValueError)) as info:
                    getattr(kernels, name)(*args, out=out)
                errors.append((type(info.value), str(info.value)))
            assert errors[0] == errors[1], (name, what, errors)
            assert errors[0][1].startswith(f"{name}: out "), errors[0]
            expected_type = TypeError if what in ("list", "dtype", "byte order") else ValueError
            assert errors[0][0] is expected_type, (name, what, errors)


def test_check_out_names_what_is_wrong():
    good = np.zeros((2, 3), np.float32)
    assert checks.check_out("k", good, (2, 3), np.float32) is good
    with pytest.raises(ValueError, match=r"k: out has shape \(3, 2\), the result has shape \(2, 3\)"):
        checks.check_out("k", np.zeros((3, 2), np.float32), (2, 3), np.float32)
    with pytest.raises(TypeError, match="k: out has dtype float64, the result has dtype float32"):
        checks.check_out("k", np.zeros((2, 3)), (2, 3), np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        checks.check_out("k", np.zeros((3, 2), np.float32).T, (2, 3), np.float32)
    with pytest.raises(ValueError, match="shares memory with an input"):
        checks.check_out("k", good, (2, 3), np.float32, good[0])
    checks.check_out("k", np.zeros((0, 3), np.float32), (0, 3), np.float32, good)  # empty: no overlap


# ----------------------------------------------------------------------------- the engine
def _fan_out_losses():
    """Each a loss of ``h = x @ W`` where a gradient reaches ``h`` from a matmul (a fresh array)
    and from the op under test: whichever comes second is added into the first."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=4).astype(np.intp)
    return {
        "relu": lambda h: sum(relu(h)),
        "softmax": lambda h: sum(softmax(h, axis=-1) * h),
        "log_softmax": lambda h: sum(log_softmax(h, axis=-1) * 0.5),
        "gelu": lambda h: sum(gelu(h)),
        "cross_entropy": lambda h: cross_entropy(h, labels),
        "sum_axis": lambda h: sum(sum(h, axis=0) * sum(h, axis=0)),
        "mean_axis": lambda h: sum(mean(h, axis=1) ** 2),
        "tanh": lambda h: sum(tanh(h)),
        "sigmoid": lambda h: sum(sigmoid(h)),
        "exp": lambda h: sum(exp(h * 0.1)),
        "mul": lambda h: sum(h * h),
        "sub": lambda h: sum(1.0 - h),
        "neg": lambda h: sum(-h),
    }


def _grads(loss_fn, first, dtype, x0, w0, v0):
    x = Tensor(x0, tensor_type=TensorType.PARAMETER, dtype=dtype)
    W = Tensor(w0, tensor_type=TensorType.PARAMETER, dtype=dtype)
    V = Tensor(v0, tensor_type=TensorType.INPUT, dtype=dtype)
    h = x @ W
    other = sum(h @ V)
    loss = loss_fn(h) + other if first else other + loss_fn(h)
    loss.backward()
    return x.grad, W.grad


@pytest.mark.parametrize("name", sorted(_fan_out_losses()))
def test_compiled_engine_adds_in_place_with_the_pure_engines_gradients(name):
    from clumsygrad._graph import _engine

    loss_fn = _fan_out_losses()[name]
    rng = np.random.default_rng(1)
    x0, w0, v0 = rng.standard_normal((4, 3)), rng.standard_normal((3, 5)), rng.standard_normal((5, 2))
    in_place = 0
    try:
        for dtype in (np.float32, np.float64):
            for first in (True, False):
                clumsygrad.set_backend("python")
                reference = _grads(loss_fn, first, dtype, x0, w0, v0)
                clumsygrad.set_backend("cython")
                before = _engine._in_place_count()
                got = _grads(loss_fn, first, dtype, x0, w0, v0)
                in_place += _engine._in_place_count() - before
                tol = 1e-5 if dtype == np.float32 else 1e-12
                for a, b in zip(got, reference):
                    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    finally:
        clumsygrad.set_backend("cython")
    if compiled_node_in_use():  # the compiled engine walks compiled nodes only
        assert in_place >= 1, f"{name}: no gradient was added into an owned pending one"

    def loss_of_x(values):
        clumsygrad.set_backend("cython")
        x = Tensor(values, dtype=np.float64)
        W = Tensor(w0, dtype=np.float64)
        V = Tensor(v0, dtype=np.float64)
        h = x @ W
        return float(np.asarray((loss_fn(h) + sum(h @ V)).data))

    expected = numeric_gradient(loss_of_x, x0)
    got = _grads(loss_fn, True, np.float64, x0, w0, v0)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_embedding_rows_are_added_into_the_owned_gradient():
    from clumsygrad._graph import _engine

    rng = np.random.default_rng(2)
    table0 = rng.standard_normal((6, 4))
    steps = [rng.integers(-6, 6, size=5).astype(np.intp) for _ in range(4)]

    def grads(backend):
        clumsygrad.set_backend(backend)
        table = Tensor(table0, tensor_type=TensorType.PARAMETER, dtype=np.float64)
        loss = None
        for k, ids in enumerate(steps):
            term = sum(tanh(table[ids]) * float(k + 1))
            loss = term if loss is None else loss + term
        loss.backward()
        return table.grad

    try:
        reference = grads("python")
        before = _engine._in_place_count()
        got = grads("cython")
        added = _engine._in_place_count() - before
    finally:
        clumsygrad.set_backend("cython")
    np.testing.assert_allclose(got, reference, rtol=1e-12, atol=1e-12)
    if compiled_node_in_use():
        assert added >= len(steps) - 1
