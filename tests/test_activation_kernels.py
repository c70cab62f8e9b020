"""The compiled GELU and log-softmax kernels (``_activation.pyx``) against their pure twins,
their values against independent references (``math.erf``, a loop log-sum-exp), and their
typed backward in the compiled engine against the pure engine; gradients against float64 finite
differences are ``test_registry.py``'s (``op_samples.py``)."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clumsygrad
from clumsygrad._kernels import native, pure
from clumsygrad.activation import gelu, log_softmax
from clumsygrad.tensor import Tensor, TensorType

from helpers import compiled_node_in_use, examples
from test_kernels_equivalence import DTYPES, LAYOUTS, dims, make_array, seeds
from test_typed_vjps import _agree, _Counter

pytestmark = pytest.mark.both_backends

SETTINGS = settings(max_examples=examples(300), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def close(got, want, scale=None):
    """Equal to float rounding of terms whose magnitudes reach ``scale`` (default: the result's)."""
    got, want = np.asarray(got), np.asarray(want)
    assert type(got) is np.ndarray and got.dtype == want.dtype and got.shape == want.shape
    single = want.dtype == np.float32
    if scale is None:
        scale = float(np.abs(want.astype(np.float64)).max(initial=0.0))
    np.testing.assert_allclose(got, want, rtol=2e-6 if single else 1e-13,
                               atol=(2e-6 if single else 1e-13) * (scale + 1.0))


@SETTINGS
@given(dims, DTYPES, LAYOUTS, seeds, st.sampled_from(["none", "tanh"]))
def test_gelu_kernels_match_pure(shape, dtype, layout, seed, approximate):
    x = make_array(shape, dtype, layout, seed, scale=3.0)
    g = make_array(shape, dtype, layout, seed + 1)
    close(native.gelu_forward(x, approximate), pure.gelu_forward(x, approximate))
    close(native.gelu_backward(x, g, approximate), pure.gelu_backward(x, g, approximate))


def _axis_of(data, shape):
    nd = max(len(shape), 1)
    return data.draw(st.integers(-nd, nd - 1))


@SETTINGS
@given(dims, DTYPES, LAYOUTS, seeds, st.data())
def test_log_softmax_kernels_match_pure(shape, dtype, layout, seed, data):
    axis = _axis_of(data, shape)
    x = make_array(shape, dtype, layout, seed, scale=4.0)
    g = make_array(shape, dtype, layout, seed + 1)
    if len(shape) and shape[axis] == 0:
        for module in (native, pure):
            with pytest.raises(ValueError, match="which has no elements"):
                module.log_softmax_forward(x, axis)
        return
    y = pure.log_softmax_forward(x, axis)
    close(native.log_softmax_forward(x, axis), y)
    # g - exp(y) * sum(g) cancels (a gradient constant along the axis gives ~0): the terms' size
    terms = float(np.abs(np.asarray(g, np.float64)).max(initial=0.0)) * (shape[axis] if len(shape) else 1)
    close(native.log_softmax_backward(y, g, axis), pure.log_softmax_backward(y, g, axis), terms)


def test_gelu_values_against_math_erf():
    x = np.linspace(-7.0, 7.0, 561)
    want = np.array([v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x])
    slope = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) + v * math.exp(-v * v / 2) / math.sqrt(2 * math.pi)
                      for v in x])
    for module in (native, pure):
        np.testing.assert_allclose(module.gelu_forward(x), want, rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(module.gelu_backward(x, np.ones_like(x)), slope, rtol=1e-13, atol=1e-15)
        t = np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))
        np.testing.assert_allclose(module.gelu_forward(x, "tanh"), 0.5 * x * (1 + t), rtol=1e-14, atol=1e-15)


def test_log_softmax_values_against_a_loop_and_its_edges():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 5, 4)) * 30
    for axis in (0, 1, 2, -1):
        want = np.empty_like(x)
        for index in np.ndindex(*np.delete(x.shape, axis)):
            line = list(index)
            line.insert(axis % 3, slice(None))
            v = x[tuple(line)]
            want[tuple(line)] = v - (v.max() + math.log(sum(math.exp(t - v.max()) for t in v)))
        for module in (native, pure):
            np.testing.assert_allclose(module.log_softmax_forward(x, axis), want, rtol=1e-13, atol=1e-12)
    big = rng.standard_normal((80, 70))  # above the compiled loop's size: the NumPy passes
    np.testing.assert_allclose(native.log_softmax_forward(big, 1), pure.log_softmax_forward(big, 1), rtol=1e-14)
    with np.errstate(invalid="ignore", over="ignore"):
        edge = np.array([[0.0, np.nan, 1.0], [-np.inf, 0.0, 1.0], [1e308, 1e308, -1e308]])
        np.testing.assert_array_equal(native.log_softmax_forward(edge, 1), pure.log_softmax_forward(edge, 1))
    assert native.log_softmax_forward(np.array(2.5), 0).shape == ()


@pytest.mark.parametrize("module", [native, pure], ids=["native", "pure"])
def test_errors_name_the_problem(module):
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh', got 'fast'"):
        module.gelu_forward(np.ones(3), "fast")
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh', got None"):
        module.gelu_backward(np.ones(3), np.ones(3), None)
    with pytest.raises(ValueError, match="gelu_backward.*shape"):
        module.gelu_backward(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="log_softmax_backward.*shape"):
        module.log_softmax_backward(np.ones(3), np.ones(4), 0)
    with pytest.raises(ValueError):
        module.log_softmax_forward(np.ones((2, 3)), 2)


@settings(SETTINGS, max_examples=examples(60))
@given(st.tuples(st.integers(1, 5), st.integers(1, 5)), st.sampled_from([np.float32, np.float64]),
       st.sampled_from([-1, 0, 1]), st.sampled_from(["none", "tanh"]))
def test_typed_backward_equals_the_python_kernels(shape, dtype, axis, approximate):
    a = np.random.default_rng(sum(shape)).standard_normal(shape) * 2
    _agree(lambda x: log_softmax(x * 1.5, axis=axis) * 2.0, [a], dtype)
    _agree(lambda x: gelu(x, approximate=approximate) * 3.0 + gelu(x), [a], dtype)


def test_the_typed_paths_run_instead_of_the_python_kernels(monkeypatch):
    if not compiled_node_in_use():
        return
    counters = {name: _Counter(monkeypatch, name) for name in ("gelu_backward", "log_softmax_backward")}
    x = Tensor(np.linspace(-2, 2, 12).reshape(3, 4), TensorType.PARAMETER)
    (clumsygrad.sum(log_softmax(x, axis=0) * 2.0) + clumsygrad.sum(gelu(x, "tanh") * gelu(x))).backward()
    assert {name: c.calls for name, c in counters.items()} == {"gelu_backward": 0, "log_softmax_backward": 0}
    assert x.grad.shape == (3, 4)


@pytest.mark.parametrize("module", [native, pure], ids=["native", "pure"])
@pytest.mark.parametrize("bad", [np.array([1 + 2j]), np.array(["a"]), np.array([object()])], ids=["complex", "str", "object"])
def test_non_real_inputs_are_a_type_error_naming_the_dtype(module, bad):
    ok = np.ones(1)
    for call in (lambda: module.relu_forward(bad), lambda: module.gelu_forward(bad),
                 lambda: module.gelu_backward(bad, ok), lambda: module.gelu_backward(ok, bad),
                 lambda: module.log_softmax_forward(bad, 0), lambda: module.log_softmax_backward(ok, bad, 0)):
        with pytest.raises(TypeError, match=f"real numeric arrays, got dtype {bad.dtype}"):
            call()
