"""Code written for clumsygrad 0.2.1 runs unchanged.

Each test is a small script in the style of the 0.2.1 README and documentation: the same
imports (``from clumsygrad.math import sum`` shadowing the builtin included), float32 tensors,
``backward(gradient)``, optimizers, and custom nodes built with ``Tensor._create_node``.
"""
import numpy as np
import pytest

import clumsygrad.grad as grad
from clumsygrad.activation import relu, sigmoid, softmax, tanh
from clumsygrad.loss import mae_loss, mse_loss
from clumsygrad.math import cos, exp, log, mean, sin, sum
from clumsygrad.optimizer import SGD, Adam
from clumsygrad.random import randn
from clumsygrad.tensor import Tensor, TensorType, TensorUtils


def test_readme_creating_tensors():
    a = Tensor([1.0, 2.0, 3.0])
    b = Tensor([[4.0], [5.0], [6.0]], tensor_type=TensorType.PARAMETER)
    assert repr(a) == f"Tensor(id={a._id}, shape=(3,), tensor_type=INPUT, grad_fn=None, requires_grad=False)"
    assert repr(b) == f"Tensor(id={a._id + 1}, shape=(3, 1), tensor_type=PARAMETER, grad_fn=None, requires_grad=True)"


def test_readme_operations_on_inputs_build_no_graph():
    x = Tensor([1.0, 2.0, 3.0])
    y = exp(x ** 2 + 3 * x + 2)
    z = sin(y)
    assert z._tensor_type == TensorType.INPUT
    assert z._grad_fn is None and z.requires_grad is False
    # The same float32 NumPy expression, evaluated step by step.
    d = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    expected = np.sin(np.exp(d ** 2 + np.float32(3) * d + np.float32(2)))
    np.testing.assert_allclose(z.data, expected, rtol=1e-5)


def test_readme_operations_on_parameters_build_the_graph():
    x = Tensor([1.0, 2.0, 3.0], tensor_type=TensorType.PARAMETER)
    z = sin(exp(x ** 2 + 3 * x + 2))
    assert repr(z) == (
        f"Tensor(id={z._id}, shape=(3,), tensor_type=INTERMEDIATE, grad_fn=sin_backward, requires_grad=True)"
    )


def test_readme_polynomial_backward_with_explicit_gradient():
    t = Tensor([1.0, 2.0, 3.0], tensor_type=TensorType.PARAMETER)
    y = t ** 2 + 3 * t + 2
    gradient = np.ones_like(y.data)
    y.backward(gradient)
    np.testing.assert_allclose(t.grad, 2 * np.array([1.0, 2.0, 3.0]) + 3)
    np.testing.assert_allclose(y.data, [6.0, 12.0, 20.0])


def test_readme_backward_of_exp_sin_squared_plus_cos():
    # z = e^(sin(x)^2 + cos(y)): dz/dx = z * 2 sin(x) cos(x), dz/dy = -z sin(y)
    x = Tensor(1.0, tensor_type=TensorType.PARAMETER)
    y = Tensor(0.5, tensor_type=TensorType.PARAMETER)
    z = exp(sin(x) ** 2 + cos(y))
    z.backward()
    z64 = np.exp(np.sin(1.0) ** 2 + np.cos(0.5))
    np.testing.assert_allclose(x.grad, z64 * 2 * np.sin(1.0) * np.cos(1.0), rtol=1e-5)
    np.testing.assert_allclose(y.grad, -z64 * np.sin(0.5), rtol=1e-5)


def test_backward_accepts_a_list_or_a_python_float_as_gradient():
    t = Tensor([1.0, 2.0], tensor_type=TensorType.PARAMETER)
    (t * 3).backward([1.0, 2.0])
    np.testing.assert_allclose(t.grad, [3.0, 6.0])
    s = Tensor(2.0, tensor_type=TensorType.PARAMETER)
    (s * s).backward(0.5)
    np.testing.assert_allclose(s.grad, 2.0)


def _regression_data():
    rng = np.random.default_rng(2024)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = x @ np.array([[1.5], [-2.0], [0.5]]) + 0.7 + 0.05 * rng.standard_normal((64, 1))
    y = y.astype(np.float32)
    # Least squares with an intercept gives the smallest mean squared error any (W, b) reaches.
    design = np.hstack([x, np.ones((64, 1))]).astype(np.float64)
    coef, *_ = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)
    best_mse = float(np.mean((design @ coef - y) ** 2))
    initial_mse = float(np.mean(y.astype(np.float64) ** 2))  # W = 0, b = 0
    return x, y, coef, best_mse, initial_mse


@pytest.mark.parametrize("make_optimizer", [
    lambda params: SGD(params, lr=0.1),
    lambda params: Adam(params, lr=0.05),
], ids=["SGD", "Adam"])
def test_linear_regression_training_loop_converges(make_optimizer):
    x_data, y_data, coef, best_mse, initial_mse = _regression_data()
    X = Tensor(x_data)
    Y = Tensor(y_data)
    W = Tensor(np.zeros((3, 1)), tensor_type=TensorType.PARAMETER)
    b = Tensor(np.zeros((1,)), tensor_type=TensorType.PARAMETER)
    optimizer = make_optimizer([W, b])

    for step in range(200):
        pred = X @ W + b
        loss = mse_loss(pred, Y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    final = float(mse_loss(X @ W + b, Y).data)
    assert final < best_mse + 1e-3 * initial_mse
    np.testing.assert_allclose(W.data.ravel(), coef[:3, 0], atol=0.02)
    np.testing.assert_allclose(b.data, coef[3], atol=0.02)


def test_two_layer_network_with_parameters_found_by_tensor_utils():
    np.random.seed(0)
    x = Tensor(np.random.randn(32, 4))
    target = Tensor((np.random.randn(32, 1) > 0).astype(np.float32))
    w1 = randn((4, 8), tensor_type=TensorType.PARAMETER)
    b1 = Tensor(np.zeros(8), tensor_type=TensorType.PARAMETER)
    w2 = randn((8, 1), tensor_type=TensorType.PARAMETER)

    def forward():
        hidden = relu(x @ w1 + b1)
        return mse_loss(sigmoid(hidden @ w2), target)

    loss = forward()
    params = TensorUtils.get_parameters(loss)
    assert {p._id for p in params} == {w1._id, b1._id, w2._id}
    optimizer = Adam(params, lr=0.01)
    first = float(loss.data)
    for _ in range(100):
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss = forward()
    assert float(loss.data) < 0.8 * first


def test_custom_node_with_a_user_backward_function():
    def cube_backward(tensor, gradient):
        (x,) = tensor._parents
        return (3 * x._data ** 2 * gradient,)

    def cube(t):
        return Tensor._create_node(data=t._data ** 3, grad_fn=cube_backward, parents=(t,))

    x = Tensor([1.0, -2.0, 0.5], tensor_type=TensorType.PARAMETER)
    y = sum(cube(x) * 2)
    assert cube(x)._tensor_type == TensorType.INTERMEDIATE
    assert cube(Tensor([1.0]))._tensor_type == TensorType.INPUT
    y.backward()
    np.testing.assert_allclose(x.grad, 6 * np.array([1.0, -2.0, 0.5]) ** 2)


def test_custom_node_reusing_a_library_backward_function():
    def softplus(t):
        # log(1 + e^x) from library nodes, plus a hand-made exp node that reuses grad.exp_backward.
        e = Tensor._create_node(data=np.exp(t._data), grad_fn=grad.exp_backward, parents=(t,))
        return log(e + 1)

    data = np.array([-1.0, 0.0, 2.0])
    x = Tensor(data, tensor_type=TensorType.PARAMETER)
    sum(softplus(x)).backward()
    np.testing.assert_allclose(x.grad, 1 / (1 + np.exp(-data)), rtol=1e-6)


def test_custom_node_with_extra_metadata():
    def scale_backward(tensor, gradient):
        return (gradient * tensor._extra["factor"],)

    x = Tensor([[1.0, 2.0]], tensor_type=TensorType.PARAMETER)
    y = Tensor._create_node(data=x._data * 4.0, grad_fn=scale_backward, parents=(x,), extra={"factor": 4.0})
    assert y._extra["factor"] == 4.0
    y.backward(np.array([[1.0, -1.0]]))
    np.testing.assert_array_equal(x.grad, [[4.0, -4.0]])


def test_backward_functions_called_by_hand_on_a_built_graph():
    x = Tensor([[1.0, 2.0], [3.0, 4.0]], tensor_type=TensorType.PARAMETER)
    w = Tensor([[0.5], [-1.0]], tensor_type=TensorType.PARAMETER)
    out = x @ w
    dx, dw = out._grad_fn(out, np.ones_like(out.data))
    np.testing.assert_allclose(dx, np.ones((2, 1)) @ w.data.T)
    np.testing.assert_allclose(dw, x.data.T @ np.ones((2, 1)))


def test_training_script_catches_the_freed_graph_error():
    x = Tensor([1.0, 2.0], tensor_type=TensorType.PARAMETER)
    loss = mean(tanh(x) * 2)
    loss.backward()
    try:
        loss.backward()
    except RuntimeError as error:
        assert "No backward graph exists" in str(error)
    else:
        pytest.fail("a second backward() on a freed graph must raise RuntimeError")


def test_graph_inspection_with_count_by_type():
    x = Tensor(np.ones((2, 3)))
    w = Tensor(np.ones((3, 3)), tensor_type=TensorType.PARAMETER)
    probs = softmax(x @ w)
    loss = mae_loss(probs, Tensor(np.full((2, 3), 1 / 3)))
    counts = TensorUtils.count_by_type(loss)
    assert counts[TensorType.INPUT] == 2
    assert counts[TensorType.PARAMETER] == 1
    assert counts[TensorType.INTERMEDIATE] == 3


def test_module_level_imports_of_0_2_1():
    import clumsygrad
    from clumsygrad import activation, loss, math, optimizer, random, tensor

    for module in (activation, grad, loss, math, optimizer, random, tensor):
        assert module.__name__.startswith("clumsygrad.")
    assert set(clumsygrad.__all__) >= {"tensor", "random", "activation", "grad", "loss", "math", "optimizer"}
