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


# --------------------------------------------------------------------------- several inputs (issue 18)
# A three-input op a * b * c whose backward is right except, in one chosen input, half the gradient.
def _product_with_wrong_gradient(wrong: int):
    def backward(tensor, grad):
        a, b, c = (p._data for p in tensor._parents)
        grads = [grad * b * c, grad * a * c, grad * a * b]
        grads[wrong] = grads[wrong] * 0.5
        return tuple(grads)

    return lambda a, b, c: _new_node(a._data * b._data * c._data, backward, (a, b, c))


def _correct_product(a, b, c):
    return a * b * c


THREE_INPUTS = [np.array([0.5, -1.5, 2.0]), np.array([1.25, 0.75, -0.5]), np.array([-2.0, 1.0, 0.3])]


@pytest.mark.parametrize("wrong", [0, 1, 2])
def test_gradcheck_finds_a_wrong_gradient_in_any_input(wrong):
    fn = _product_with_wrong_gradient(wrong)
    with pytest.raises(GradcheckError, match=f"gradient of input {wrong} "):
        gradcheck(fn, THREE_INPUTS)
    assert gradcheck(fn, THREE_INPUTS, raise_exception=False) is False
    assert clumsygrad.gradcheck(fn, THREE_INPUTS, raise_exception=False) is False


def test_gradcheck_passes_the_correct_three_input_function():
    assert gradcheck(_correct_product, THREE_INPUTS) is True


@pytest.mark.parametrize("wrong", [0, 1, 2])
def test_check_gradient_finds_a_wrong_gradient_in_the_position_it_checks(wrong):
    # check_gradient checks one tensor: put it at each position of the three-input op in turn.
    fn = _product_with_wrong_gradient(wrong)
    values = [Tensor(v, tensor_type=TensorType.PARAMETER, dtype=np.float64) for v in THREE_INPUTS]
    for position in range(3):
        def at_position(t, position=position):
            args = list(values)
            args[position] = t
            return fn(*args)

        passed, diff = check_gradient(at_position, values[position], eps=1e-4, tol=1e-3)
        assert passed is (position != wrong), (position, wrong, diff)
    for v in values:  # the other operands' .grad are left as they were
        assert v.grad is None


@pytest.mark.parametrize("wrong", [0, 1, 2])
def test_the_suite_oracle_finds_a_wrong_gradient_in_any_input(wrong):
    from helpers import gradcheck as oracle

    with pytest.raises(AssertionError, match=f"^input {wrong}:"):
        oracle(_product_with_wrong_gradient(wrong), THREE_INPUTS)
    assert oracle(_correct_product, THREE_INPUTS) is True
