"""``clumsygrad.gradcheck`` is a module (as in clumsygrad 1.0.0) holding ``check_gradient`` and this
project's float64 checker; calling the module still runs the checker."""
import numpy as np
import pytest

import clumsygrad
import clumsygrad.gradcheck as gradcheck_module
from clumsygrad.gradcheck import GradcheckError, check_gradient, gradcheck
from clumsygrad.math import sin, sum as cg_sum
from clumsygrad.tensor import Tensor, TensorType, _new_node


def _half_gradient_backward(tensor, grad):
    return (grad * tensor._parents[0]._data,)  # the true gradient of x*x is 2x


def square_with_half_gradient(t):
    return _new_node(t._data * t._data, _half_gradient_backward, (t,))


def test_gradcheck_is_a_module_of_the_package():
    import types

    assert isinstance(clumsygrad.gradcheck, types.ModuleType)
    assert clumsygrad.gradcheck is gradcheck_module
    assert clumsygrad.gradcheck.check_gradient is check_gradient
    assert clumsygrad.check_gradient is check_gradient


def test_the_module_called_like_the_old_function_runs_the_float64_checker():
    assert clumsygrad.gradcheck(lambda a: a * a, [np.array([0.5, -1.0])]) is True
    assert clumsygrad.gradcheck(square_with_half_gradient, [np.array([0.5, -1.0])], raise_exception=False) is False


def test_the_float64_checker_and_its_error_live_in_the_module():
    assert clumsygrad.GradcheckError is GradcheckError
    with pytest.raises(GradcheckError, match="disagrees with finite differences"):
        gradcheck(square_with_half_gradient, [np.array([0.5, -1.0, 2.0])])


def test_check_gradient_passes_a_correct_gradient_and_returns_a_small_difference():
    x = Tensor([0.3, -1.2, 2.0], tensor_type=TensorType.PARAMETER)
    passed, diff = check_gradient(lambda t: sin(t) * t, x)
    assert passed is True
    assert isinstance(diff, float) and 0.0 <= diff < 1e-2


def test_check_gradient_reports_the_largest_difference_of_a_wrong_gradient():
    values = np.array([0.5, -1.0, 2.0])
    x = Tensor(values, tensor_type=TensorType.PARAMETER, dtype=np.float64)
    passed, diff = check_gradient(square_with_half_gradient, x, eps=1e-4)
    # analytic x against numeric 2x: the difference is |x|, largest at 2.0
    assert passed is False
    assert diff == pytest.approx(2.0, abs=1e-6)


def test_check_gradient_seeds_a_non_scalar_output_with_ones():
    x = Tensor(np.arange(6.0).reshape(2, 3), tensor_type=TensorType.PARAMETER)
    assert check_gradient(lambda t: t * 3.0, x)[0]
    assert check_gradient(lambda t: cg_sum(t * t, axis=0), x)[0]


def test_check_gradient_respects_tol():
    x = Tensor(np.array([1.0]), tensor_type=TensorType.PARAMETER, dtype=np.float64)
    passed, diff = check_gradient(square_with_half_gradient, x, tol=1.5)
    assert passed is True and diff == pytest.approx(1.0, abs=1e-6)


def test_check_gradient_leaves_data_and_grad_as_they_were():
    x = Tensor([0.3, -1.2, 2.0], tensor_type=TensorType.PARAMETER)
    before = x.data.copy()
    x.grad = np.array([7.0, 8.0, 9.0], dtype=np.float32)
    check_gradient(lambda t: t * t, x)
    assert np.array_equal(x.data, before)
    assert np.array_equal(x.grad, [7.0, 8.0, 9.0])


def test_check_gradient_of_a_function_that_ignores_its_input_raises_as_in_1_0_0():
    # 1.0.0 backpropagated fn's output, and backward() refused a constant
    x = Tensor([1.0, 2.0], tensor_type=TensorType.PARAMETER)
    with pytest.raises(RuntimeError, match="^Tensor does not require gradients"):
        check_gradient(lambda t: Tensor([3.0]), x)
    assert x.grad is None


def test_check_gradient_of_a_function_of_other_parameters_only_raises_as_in_1_0_0():
    x = Tensor([1.0, 2.0], tensor_type=TensorType.PARAMETER)
    w = Tensor([3.0], tensor_type=TensorType.PARAMETER)
    with pytest.raises(ValueError, match="^backward\\(\\) did not populate a gradient for tensor"):
        check_gradient(lambda t: w * 2.0, x)


def test_check_gradient_needs_a_tensor_that_requires_gradients():
    with pytest.raises(ValueError, match="requires gradients"):
        check_gradient(lambda t: t * t, Tensor([1.0]))


def test_check_gradient_needs_fn_to_return_a_tensor():
    with pytest.raises(TypeError, match="return a Tensor, got ndarray"):
        check_gradient(lambda t: t.data * 2, Tensor([1.0], tensor_type=TensorType.PARAMETER))
