"""The function modules (math, activation, loss, optimizer, random), the package metadata,
the backend switch and the gradient checker."""
import importlib.metadata
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import clumsygrad
import clumsygrad.grad as grad
from clumsygrad import GradcheckError, gradcheck
from clumsygrad.activation import relu, sigmoid, softmax, tanh
from clumsygrad.loss import mae_loss, mse_loss
from clumsygrad.math import abs, cos, exp, log, mean, sin, sqrt, sum, tan
from clumsygrad.optimizer import SGD, Adam, Optimizer
from clumsygrad.random import rand, randn
from clumsygrad.tensor import Tensor, TensorType

from helpers import constant, parameter

X = np.array([[0.5, -1.25, 2.0], [-0.1, 0.75, 1.5]], dtype=np.float32)
POSITIVE = np.array([[0.5, 1.25, 2.0], [0.1, 0.75, 9.0]], dtype=np.float32)


# --------------------------------------------------------------------------- math
ELEMENTWISE = [
    (abs, np.abs, X),
    (sqrt, np.sqrt, POSITIVE),
    (exp, np.exp, X),
    (log, np.log, POSITIVE),
    (sin, np.sin, X),
    (cos, np.cos, X),
    (tan, np.tan, X),
    (tanh, np.tanh, X),
    (relu, lambda a: np.maximum(a, 0), X),
    (sigmoid, lambda a: 1 / (1 + np.exp(-a)), X),
]


@pytest.mark.parametrize("fn, reference, data", ELEMENTWISE, ids=[e[0].__name__ for e in ELEMENTWISE])
def test_elementwise_function_matches_numpy(fn, reference, data):
    out = fn(Tensor(data))
    assert out.dtype == np.float32
    assert out.shape == data.shape
    np.testing.assert_allclose(out.data, reference(data.astype(np.float64)), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("fn, reference, data", ELEMENTWISE, ids=[e[0].__name__ for e in ELEMENTWISE])
def test_elementwise_function_records_its_backward_function(fn, reference, data):
    p = Tensor(data, tensor_type=TensorType.PARAMETER)
    out = fn(p)
    assert out._grad_fn is getattr(grad, f"{fn.__name__}_backward")
    assert out._parents[0] is p
    assert fn(Tensor(data))._grad_fn is None  # INPUT only: no graph


@pytest.mark.parametrize("axis", [None, 0, -1, (0, 1)], ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("fn, reference", [(sum, np.sum), (mean, np.mean)], ids=["sum", "mean"])
def test_reduction_matches_numpy(fn, reference, axis, keepdims):
    out = fn(Tensor(X), axis=axis, keepdims=keepdims)
    expected = reference(X.astype(np.float64), axis=axis, keepdims=keepdims)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.data, expected, rtol=1e-6)


@pytest.mark.parametrize("fn", [sum, mean], ids=["sum", "mean"])
def test_reduction_records_axis_keepdims_and_input_shape(fn):
    p = Tensor(np.ones((2, 3, 4)), tensor_type=TensorType.PARAMETER)
    out = fn(p, axis=(0, 2), keepdims=True)
    assert out._grad_fn is getattr(grad, f"{fn.__name__}_backward")
    assert out._extra["axis"] == (0, 2)
    assert out._extra["keepdims"] is True
    assert out._extra["input_shape"] == (2, 3, 4)


# --------------------------------------------------------------------------- activation
def test_sigmoid_of_very_negative_input_saturates_without_overflow_warning():
    x = Tensor([-1000.0, -100.0, 0.0, 100.0, 1000.0])
    with warnings.catch_warnings(), np.errstate(over="warn"):
        warnings.simplefilter("error")
        out = sigmoid(x)
    expected = 1 / (1 + np.exp(-np.array([-700.0, -100.0, 0.0, 100.0, 700.0])))  # float64: no overflow
    np.testing.assert_allclose(out.data, expected, rtol=1e-6, atol=1e-30)
    assert out.data[0] == 0.0 and out.data[-1] == 1.0


def test_softmax_over_last_axis_by_default_rows_sum_to_one():
    data = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    out = softmax(Tensor(data))
    np.testing.assert_allclose(out.data.sum(axis=-1), np.ones(4), rtol=1e-6)
    e = np.exp(data.astype(np.float64))
    np.testing.assert_allclose(out.data, e / e.sum(axis=-1, keepdims=True), rtol=1e-6)


def test_softmax_along_a_given_axis():
    data = np.random.default_rng(1).standard_normal((3, 4, 2)).astype(np.float32)
    p = Tensor(data, tensor_type=TensorType.PARAMETER)
    out = softmax(p, axis=1)
    assert out._extra["axis"] == 1
    assert out._grad_fn is grad.softmax_backward
    np.testing.assert_allclose(out.data.sum(axis=1), np.ones((3, 2)), rtol=1e-6)


def test_softmax_is_stable_for_large_inputs():
    shift = 1000.0
    small = np.array([[0.0, 1.0, 2.0]], dtype=np.float32)
    with warnings.catch_warnings(), np.errstate(over="warn", invalid="warn"):
        warnings.simplefilter("error")
        out = softmax(Tensor(small + shift))
    assert np.all(np.isfinite(out.data))
    e = np.exp(small.astype(np.float64))
    np.testing.assert_allclose(out.data, e / e.sum(), rtol=1e-6)


# --------------------------------------------------------------------------- loss
def test_mse_loss_value_is_mean_squared_difference():
    p, t = X, X[::-1] * 0.5
    out = mse_loss(Tensor(p), Tensor(t))
    assert out.shape == ()
    np.testing.assert_allclose(out.data, np.mean((p.astype(np.float64) - t) ** 2), rtol=1e-6)


def test_mae_loss_value_is_mean_absolute_difference():
    p, t = X, X[::-1] * 0.5
    out = mae_loss(Tensor(p), Tensor(t))
    assert out.shape == ()
    np.testing.assert_allclose(out.data, np.mean(np.abs(p.astype(np.float64) - t)), rtol=1e-6)


@pytest.mark.parametrize("loss", [mse_loss, mae_loss])
def test_loss_with_mismatched_shapes_raises_value_error(loss):
    with pytest.raises(ValueError):
        loss(Tensor(np.ones((2, 3))), Tensor(np.ones((3, 2))))


@pytest.mark.parametrize("loss, fn_name", [(mse_loss, "mse_backward"), (mae_loss, "mae_backward")])
def test_loss_records_its_backward_function(loss, fn_name):
    pred = Tensor(X, tensor_type=TensorType.PARAMETER)
    target = Tensor(POSITIVE)
    out = loss(pred, target)
    assert out._grad_fn is getattr(grad, fn_name)
    assert out._parents[0] is pred and out._parents[1] is target


# --------------------------------------------------------------------------- optimizer
def test_optimizer_keeps_only_parameter_tensors():
    p1 = Tensor([1.0], tensor_type=TensorType.PARAMETER)
    p2 = Tensor([2.0], tensor_type=TensorType.PARAMETER)
    x = Tensor([3.0])
    y = p1 * 2.0
    # The INPUT and the INTERMEDIATE tensor are dropped, and the user is told so.
    with pytest.warns(UserWarning, match=r"Optimizer ignores 2 tensor\(s\) that are not PARAMETER"):
        opt = Optimizer([p1, x, y, p2])
    assert len(opt.parameters) == 2
    assert opt.parameters[0] is p1 and opt.parameters[1] is p2


def test_optimizer_base_step_is_not_implemented():
    with pytest.raises(NotImplementedError):
        Optimizer([Tensor([1.0], tensor_type=TensorType.PARAMETER)]).step()


def test_zero_grad_sets_every_gradient_to_none():
    params = [Tensor([1.0, 2.0], tensor_type=TensorType.PARAMETER) for _ in range(2)]
    sum(params[0] * params[1]).backward()
    assert all(p.grad is not None for p in params)
    SGD(params).zero_grad()
    assert all(p.grad is None for p in params)


def test_sgd_updates_data_in_place():
    p = Tensor([1.0, -2.0, 3.0], tensor_type=TensorType.PARAMETER)
    array = p.data
    before = array.copy()
    p.grad = np.array([0.5, 1.0, -2.0])
    SGD([p], lr=0.1).step()
    assert p.data is array
    np.testing.assert_allclose(p.data, before - 0.1 * np.array([0.5, 1.0, -2.0]), rtol=1e-6)


def test_sgd_default_learning_rate_and_skips_parameters_without_gradient():
    with_grad = Tensor([1.0], tensor_type=TensorType.PARAMETER)
    without_grad = Tensor([1.0], tensor_type=TensorType.PARAMETER)
    with_grad.grad = np.array([1.0])
    opt = SGD([with_grad, without_grad])
    assert opt.lr == 0.01
    opt.step()
    np.testing.assert_allclose(with_grad.data, [0.99], rtol=1e-6)
    np.testing.assert_array_equal(without_grad.data, [1.0])


def test_adam_defaults():
    opt = Adam([Tensor([1.0], tensor_type=TensorType.PARAMETER)])
    assert (opt.lr, opt.beta1, opt.beta2, opt.eps) == (0.001, 0.9, 0.999, 1e-8)
    assert opt.t == 0


def test_adam_matches_bias_corrected_adam_over_three_steps():
    lr, beta1, beta2, eps = 0.1, 0.8, 0.95, 1e-8
    start = [np.array([1.0, -2.0, 0.5]), np.array([[0.25], [3.0]])]
    gradients = [
        [np.array([0.3, -1.0, 2.0]), np.array([[1.0], [-0.5]])],
        [np.array([0.1, 0.0, -3.0]), np.array([[0.2], [0.4]])],
        [np.array([-0.7, 2.5, 1.0]), np.array([[-1.0], [0.0]])],
    ]
    params = [Tensor(s, tensor_type=TensorType.PARAMETER) for s in start]
    opt = Adam(params, lr=lr, beta1=beta1, beta2=beta2, eps=eps)

    theta = [s.copy() for s in start]
    m = [np.zeros_like(s) for s in start]
    v = [np.zeros_like(s) for s in start]
    for t, step_grads in enumerate(gradients, start=1):
        for p, g in zip(params, step_grads):
            p.grad = g
        opt.step()
        for i, g in enumerate(step_grads):
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g ** 2
            m_hat = m[i] / (1 - beta1 ** t)
            v_hat = v[i] / (1 - beta2 ** t)
            theta[i] = theta[i] - lr * m_hat / (np.sqrt(v_hat) + eps)

    assert opt.t == 3
    for i, p in enumerate(params):
        np.testing.assert_allclose(p.data, theta[i], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(opt.biased_first_moment[i], m[i], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(opt.biased_second_moment[i], v[i], rtol=1e-5, atol=1e-7)


def test_adam_updates_data_in_place():
    p = Tensor([1.0, 2.0], tensor_type=TensorType.PARAMETER)
    array = p.data
    p.grad = np.array([1.0, -1.0])
    Adam([p], lr=0.5).step()
    assert p.data is array
    # The first bias-corrected step moves each coordinate by lr against the gradient's sign.
    np.testing.assert_allclose(p.data, [0.5, 2.5], rtol=1e-6)


# --------------------------------------------------------------------------- random
@pytest.mark.parametrize("make", [rand, randn])
def test_random_tensor_shape_type_and_dtype(make):
    t = make((2, 3, 4))
    assert t.shape == (2, 3, 4)
    assert t.dtype == np.float32
    assert t._tensor_type is TensorType.INPUT
    p = make((5,), tensor_type=TensorType.PARAMETER)
    assert p._tensor_type is TensorType.PARAMETER and p.requires_grad


def test_rand_values_lie_in_the_unit_interval():
    data = rand((1000,)).data
    assert data.min() >= 0.0 and data.max() < 1.0


@pytest.mark.parametrize("make, draw", [(rand, np.random.rand), (randn, np.random.randn)])
def test_random_tensors_repeat_with_numpy_global_seed(make, draw):
    np.random.seed(1234)
    first = make((3, 2)).data.copy()
    np.random.seed(1234)
    second = make((3, 2)).data
    np.random.seed(1234)
    reference = draw(3, 2).astype(np.float32)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, reference)


# --------------------------------------------------------------------------- package metadata
def test_version_matches_the_installed_distribution():
    assert isinstance(clumsygrad.__version__, str)
    assert clumsygrad.__version__ == importlib.metadata.version("clumsygrad")


# --------------------------------------------------------------------------- backend switch
def _python(code: str, backend_env=None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (outside the source tree), with CLUMSYGRAD_BACKEND as given."""
    env = {k: v for k, v in os.environ.items() if k != "CLUMSYGRAD_BACKEND"}
    if backend_env is not None:
        env["CLUMSYGRAD_BACKEND"] = backend_env
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=os.path.dirname(sys.executable),
        capture_output=True, text=True, timeout=120,
    )


@pytest.mark.both_backends
def test_installed_package_defaults_to_the_cython_backend():
    result = _python("import clumsygrad; print(clumsygrad.get_backend())")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "cython"


@pytest.mark.both_backends
@pytest.mark.parametrize("name", ["python", "cython"])
def test_backend_environment_variable_is_read_at_import(name):
    result = _python("import clumsygrad; print(clumsygrad.get_backend())", backend_env=name)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == name


@pytest.mark.both_backends
def test_unknown_backend_environment_variable_raises_value_error_at_import():
    result = _python("import clumsygrad", backend_env="fortran")
    assert result.returncode != 0
    assert "ValueError" in result.stderr


@pytest.mark.both_backends
def test_set_backend_switches_between_python_and_cython():
    clumsygrad.set_backend("python")
    assert clumsygrad.get_backend() == "python"
    clumsygrad.set_backend("cython")
    assert clumsygrad.get_backend() == "cython"


@pytest.mark.both_backends
def test_set_backend_with_unknown_name_raises_value_error_and_keeps_the_backend():
    clumsygrad.set_backend("python")
    with pytest.raises(ValueError):
        clumsygrad.set_backend("fortran")
    assert clumsygrad.get_backend() == "python"


def test_backend_fixture_activates_the_requested_backend(backend):
    assert clumsygrad.get_backend() == backend


# --------------------------------------------------------------------------- gradcheck
def test_gradcheck_returns_true_for_a_correct_gradient():
    rng = np.random.default_rng(0)
    assert gradcheck(lambda a, b: tanh(a @ b) * a @ b, [rng.standard_normal((2, 3)), rng.standard_normal((3, 3))]) is True


def _square_with_wrong_gradient(x: Tensor) -> Tensor:
    def wrong_square_backward(tensor, g):
        return (3 * tensor._parents[0]._data * g,)  # d(x^2)/dx is 2x, not 3x

    return Tensor._create_node(x._data ** 2, wrong_square_backward, (x,))


def test_gradcheck_raises_on_a_wrong_custom_backward_function():
    with pytest.raises(GradcheckError):
        gradcheck(_square_with_wrong_gradient, [np.array([0.5, -1.0, 2.0])])


def test_gradcheck_returns_false_on_a_wrong_gradient_when_asked_not_to_raise():
    assert gradcheck(_square_with_wrong_gradient, [np.array([0.5, -1.0, 2.0])], raise_exception=False) is False


def test_gradcheck_accepts_the_correct_custom_backward_function():
    def square_backward(tensor, g):
        return (2 * tensor._parents[0]._data * g,)

    def square(x):
        return Tensor._create_node(x._data ** 2, square_backward, (x,))

    assert gradcheck(square, [np.array([0.5, -1.0, 2.0])]) is True


def test_gradcheck_detects_a_gradient_wrong_in_one_element_only():
    def almost_identity_backward(tensor, g):
        out = g.copy()
        out[..., -1] *= 1.01
        return (out,)

    def almost_identity(x):
        return Tensor._create_node(x._data.copy(), almost_identity_backward, (x,))

    assert gradcheck(almost_identity, [np.ones((2, 3))], raise_exception=False) is False


def test_gradcheck_leaves_its_float64_inputs_unchanged():
    x = np.array([0.5, -1.0, 2.0])
    copy = x.copy()
    gradcheck(lambda a: a * a, [x])
    np.testing.assert_array_equal(x, copy)


def test_gradcheck_works_with_a_constant_inside_fn():
    c = constant([1.0, 2.0, 3.0])
    assert gradcheck(lambda a: a * c + sum(a), [np.array([0.5, -1.0, 2.0])])
    assert parameter([1.0]).dtype == np.float64
