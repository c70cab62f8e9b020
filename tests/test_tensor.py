"""Tensor: construction, properties, attributes, repr, and what each operator computes and records."""
import operator
from enum import IntEnum

import numpy as np
import pytest

import clumsygrad.grad as grad
from clumsygrad.tensor import Tensor, TensorType

from helpers import parameter


# --------------------------------------------------------------------------- TensorType
def test_tensor_type_is_an_int_enum_with_the_0_2_1_values():
    assert issubclass(TensorType, IntEnum)
    assert (TensorType.INPUT, TensorType.PARAMETER, TensorType.INTERMEDIATE) == (0, 1, 2)
    assert [t.name for t in TensorType] == ["INPUT", "PARAMETER", "INTERMEDIATE"]


# --------------------------------------------------------------------------- construction
def test_tensor_from_nested_list_stores_float32_array():
    t = Tensor([[1, 2, 3], [4, 5, 6]])
    assert isinstance(t.data, np.ndarray)
    assert t.data.dtype == np.float32
    assert t.shape == (2, 3)
    np.testing.assert_array_equal(t.data, np.arange(1, 7).reshape(2, 3))


def test_tensor_from_python_scalar_is_0d():
    t = Tensor(2.5)
    assert t.shape == ()
    assert t.data.dtype == np.float32
    assert float(t.data) == 2.5


def test_tensor_from_float64_ndarray_defaults_to_float32():
    source = np.array([0.1, 0.2, 0.3], dtype=np.float64)
    t = Tensor(source)
    assert t.dtype == np.float32
    np.testing.assert_array_equal(t.data, source.astype(np.float32))


def test_tensor_copies_the_ndarray_it_is_given():
    source = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    t = Tensor(source)
    assert not np.shares_memory(t.data, source)
    source[0] = 100.0
    assert t.data[0] == 1.0


def test_tensor_accepts_float64_dtype():
    source = np.array([0.1, 0.2], dtype=np.float64)
    t = Tensor(source, dtype=np.float64)
    assert t.dtype == np.float64
    assert t.data.dtype == np.float64
    np.testing.assert_array_equal(t.data, source)
    assert not np.shares_memory(t.data, source)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float16, np.complex128, bool])
def test_tensor_rejects_non_float32_float64_dtype(dtype):
    with pytest.raises(TypeError):
        Tensor([1, 2, 3], dtype=dtype)


def test_input_is_the_default_tensor_type_and_needs_no_gradient():
    t = Tensor([1.0])
    assert t._tensor_type is TensorType.INPUT
    assert t.requires_grad is False
    assert t._requires_grad is False


def test_parameter_tensor_requires_gradients():
    t = Tensor([1.0], tensor_type=TensorType.PARAMETER)
    assert t._tensor_type is TensorType.PARAMETER
    assert t.requires_grad is True


# --------------------------------------------------------------------------- properties
def test_data_property_is_the_stored_array_itself():
    t = Tensor([1.0, 2.0])
    assert t.data is t._data


def test_shape_property_matches_data_shape():
    t = Tensor(np.zeros((2, 3, 4)))
    assert t.shape == (2, 3, 4) == t._shape == t.data.shape


def test_dtype_property_reports_the_data_dtype():
    assert Tensor([1.0]).dtype == np.float32
    assert Tensor([1.0], dtype=np.float64).dtype == np.float64


def test_grad_is_none_before_any_backward():
    t = Tensor([1.0, 2.0], tensor_type=TensorType.PARAMETER)
    assert t.grad is None
    assert t._grad is None


def test_grad_setter_stores_the_values():
    t = Tensor([1.0, 2.0], tensor_type=TensorType.PARAMETER)
    t.grad = np.array([0.5, -0.5])
    np.testing.assert_array_equal(t.grad, [0.5, -0.5])
    t.grad = None
    assert t.grad is None


def test_grad_setter_rejects_wrong_shape():
    t = Tensor([1.0, 2.0], tensor_type=TensorType.PARAMETER)
    with pytest.raises(ValueError):
        t.grad = np.ones(3)


# --------------------------------------------------------------------------- attributes
def test_leaf_tensor_has_the_0_2_1_private_attributes():
    t = Tensor([1.0, 2.0, 3.0], tensor_type=TensorType.PARAMETER)
    assert t._shape == (3,)
    assert isinstance(t._data, np.ndarray)
    assert t._grad_fn is None
    assert t._grad is None
    assert t._parents == () and isinstance(t._parents, tuple)
    assert t._extra == {} and isinstance(t._extra, dict)
    assert t._tensor_type is TensorType.PARAMETER
    assert t._requires_grad is True


def test_ids_come_from_one_increasing_class_wide_counter():
    a = Tensor([1.0])
    b = Tensor([2.0])
    c = a + b  # results of operations draw from the same counter
    assert b._id == a._id + 1
    assert c._id == b._id + 1
    assert Tensor._id_counter == c._id + 1


# --------------------------------------------------------------------------- repr
def test_repr_of_input_tensor():
    t = Tensor([1.0, 2.0, 3.0])
    assert repr(t) == (
        f"Tensor(id={t._id}, shape=(3,), tensor_type=INPUT, grad_fn=None, requires_grad=False)"
    )


def test_repr_of_parameter_tensor():
    t = Tensor([[4.0], [5.0], [6.0]], tensor_type=TensorType.PARAMETER)
    assert repr(t) == (
        f"Tensor(id={t._id}, shape=(3, 1), tensor_type=PARAMETER, grad_fn=None, requires_grad=True)"
    )


def test_repr_of_intermediate_tensor_names_its_backward_function():
    x = Tensor([1.0, 2.0], tensor_type=TensorType.PARAMETER)
    y = x * x
    assert repr(y) == (
        f"Tensor(id={y._id}, shape=(2,), tensor_type=INTERMEDIATE, grad_fn=mul_backward, requires_grad=True)"
    )


# --------------------------------------------------------------------------- graph recording
def test_operation_on_inputs_only_gives_input_without_graph():
    a = Tensor([1.0, 2.0])
    b = Tensor([3.0, 4.0])
    c = (a + b) * 2.0
    assert c._tensor_type is TensorType.INPUT
    assert c._grad_fn is None
    assert c._parents == ()
    assert c._extra == {}
    assert c.requires_grad is False


def test_operation_with_a_parameter_gives_intermediate_with_graph():
    p = Tensor([1.0, 2.0], tensor_type=TensorType.PARAMETER)
    x = Tensor([3.0, 4.0])
    y = p * x
    assert y._tensor_type is TensorType.INTERMEDIATE
    assert y.requires_grad is True
    assert y._grad_fn is grad.mul_backward
    assert len(y._parents) == 2 and y._parents[0] is p and y._parents[1] is x


def test_operation_on_an_intermediate_operand_gives_intermediate():
    # An INTERMEDIATE operand records the graph even when it does not require gradients.
    i = Tensor([1.0, 2.0], tensor_type=TensorType.INTERMEDIATE)
    y = i + Tensor([3.0, 4.0])
    assert y._tensor_type is TensorType.INTERMEDIATE
    assert y._grad_fn is grad.add_backward
    assert y.requires_grad is False


def _p(shape):
    return Tensor(np.arange(1, 1 + int(np.prod(shape)), dtype=np.float32).reshape(shape),
                  tensor_type=TensorType.PARAMETER)


RECORDED = [
    ("t + u", lambda: _p((3, 4)) + _p((3, 4)), "add_backward", {}),
    ("t + row", lambda: _p((3, 4)) + _p((4,)), "add_broadcast_backward",
     {"left_shape": (3, 4), "right_shape": (4,)}),
    ("t + 2", lambda: _p((3,)) + 2, "add_scalar_backward", {"scalar_value": 2.0}),
    ("2 + t", lambda: 2 + _p((3,)), "add_scalar_backward", {"scalar_value": 2.0}),
    ("t - u", lambda: _p((3,)) - _p((3,)), "sub_backward", {}),
    ("col - t", lambda: _p((3, 1)) - _p((1, 4)), "sub_broadcast_backward",
     {"left_shape": (3, 1), "right_shape": (1, 4)}),
    ("t - 1.5", lambda: _p((3,)) - 1.5, "sub_scalar_backward", {"scalar_value": 1.5}),
    ("t * u", lambda: _p((2, 2)) * _p((2, 2)), "mul_backward", {}),
    ("t * col", lambda: _p((2, 3, 4)) * _p((3, 1)), "mul_broadcast_backward",
     {"left_shape": (2, 3, 4), "right_shape": (3, 1)}),
    ("t * 3", lambda: _p((3,)) * 3, "mul_scalar_backward", {"scalar_value": 3.0}),
    ("3 * t", lambda: 3 * _p((3,)), "mul_scalar_backward", {"scalar_value": 3.0}),
    ("t ** 3", lambda: _p((3,)) ** 3, "power_backward", {"power": 3.0}),
    ("-t", lambda: -_p((3,)), "negate_backward", {}),
    ("t @ u", lambda: _p((2, 3)) @ _p((3, 4)), "matmul_backward", {}),
    ("t.T()", lambda: _p((2, 3)).T(), "transpose_backward", {}),
    ("t.reshape", lambda: _p((2, 3)).reshape((3, 2)), "reshape_backward", {"original_shape": (2, 3)}),
]


@pytest.mark.parametrize("expression, build, fn_name, extra", RECORDED, ids=[r[0] for r in RECORDED])
def test_operator_records_its_backward_function_and_extra(expression, build, fn_name, extra):
    y = build()
    assert y._grad_fn is getattr(grad, fn_name)
    assert y._grad_fn.__name__ == fn_name
    for key, value in extra.items():
        assert y._extra[key] == value
    assert all(isinstance(p, Tensor) for p in y._parents)


def test_scalar_value_is_recorded_as_a_float():
    y = _p((3,)) + np.int64(2)
    assert type(y._extra["scalar_value"]) is float


# --------------------------------------------------------------------------- forward values
def test_scalar_on_the_left_of_add_mul_sub_div():
    data = np.array([1.0, 2.0, 4.0], dtype=np.float32)
    t = Tensor(data, tensor_type=TensorType.PARAMETER)
    np.testing.assert_allclose((2 + t).data, 2 + data)
    np.testing.assert_allclose((2 * t).data, 2 * data)
    np.testing.assert_allclose((2 - t).data, 2 - data)
    np.testing.assert_allclose((2 / t).data, 2 / data)


@pytest.mark.parametrize("scalar", [np.float64(2.0), np.float32(2.0), np.int64(2)])
def test_numpy_scalar_on_either_side_keeps_float32(scalar):
    t = Tensor([1.0, 2.0, 3.0])
    for result in (scalar * t, t * scalar, scalar + t, t + scalar, t - scalar, scalar - t,
                   t / scalar, scalar / t):
        assert isinstance(result, Tensor)
        assert result.dtype == np.float32
    np.testing.assert_allclose((scalar * t).data, [2.0, 4.0, 6.0])
    np.testing.assert_allclose((scalar - t).data, [1.0, 0.0, -1.0])
    np.testing.assert_allclose((t / scalar).data, [0.5, 1.0, 1.5])


def test_true_division_of_tensors_and_by_scalar():
    a = np.array([1.0, -3.0, 5.0], dtype=np.float32)
    b = np.array([2.0, 4.0, -8.0], dtype=np.float32)
    ta = Tensor(a, tensor_type=TensorType.PARAMETER)
    tb = Tensor(b, tensor_type=TensorType.PARAMETER)
    np.testing.assert_allclose((ta / tb).data, a / b, rtol=1e-6)
    np.testing.assert_allclose((ta / 4).data, a / 4, rtol=1e-6)
    np.testing.assert_allclose((12 / tb).data, 12 / b, rtol=1e-6)
    assert (ta / tb)._tensor_type is TensorType.INTERMEDIATE


def test_true_division_broadcasts():
    a = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    b = np.array([1.0, 2.0, 4.0], dtype=np.float32)
    np.testing.assert_allclose((Tensor(a) / Tensor(b)).data, a / b, rtol=1e-6)


def test_power_with_scalar_exponent():
    data = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    t = Tensor(data)
    np.testing.assert_allclose((t ** 2).data, data ** 2)
    np.testing.assert_allclose((t ** -1).data, 1 / data, rtol=1e-6)
    np.testing.assert_allclose((t ** 0.5).data, np.sqrt(data), rtol=1e-6)


def test_negation():
    t = Tensor([1.0, -2.0])
    np.testing.assert_array_equal((-t).data, [-1.0, 2.0])


# --------------------------------------------------------------------------- matmul
def test_matmul_values_2d_and_batched():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 3, 4)).astype(np.float32)
    b = rng.standard_normal((4, 5)).astype(np.float32)
    np.testing.assert_allclose((Tensor(a) @ Tensor(b)).data, a @ b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose((Tensor(a[0]) @ Tensor(b)).data, a[0] @ b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("other", [2.0, [[1.0]], "x"])
def test_matmul_with_a_non_tensor_raises_type_error(other):
    # 1.0.0's message, verbatim, as the start (a user's pytest.raises(match=...) keeps matching)
    with pytest.raises(TypeError, match=rf"^Right operand must be a Tensor, got {type(other).__name__}"):
        Tensor(np.ones((2, 3))) @ other


def test_matmul_with_an_ndarray_on_either_side_records():
    a = np.arange(6.0).reshape(3, 2)
    t = Tensor(np.ones((2, 3)), TensorType.PARAMETER, dtype=np.float64)
    np.testing.assert_allclose((t @ a).data, np.ones((2, 3)) @ a)
    np.testing.assert_allclose((a @ t).data, a @ np.ones((2, 3)))
    (a @ t).sum().backward()
    np.testing.assert_allclose(t.grad, a.sum(axis=0)[:, None] * np.ones((2, 3)))


@pytest.mark.parametrize("left, right", [((3,), (3, 2)), ((2, 3), (3,)), ((3,), (3,)), ((4,), (2, 4, 3))])
def test_matmul_with_1d_operands_follows_numpy(left, right, rng):
    # 0.2.x raised below 2-D; NumPy's rules are the contract now (a 1-D operand is a vector)
    a, b = rng.standard_normal(left), rng.standard_normal(right)
    out = Tensor(a, dtype=np.float64) @ Tensor(b, dtype=np.float64)
    assert out.shape == np.matmul(a, b).shape
    np.testing.assert_allclose(out.data, np.matmul(a, b))


def test_matmul_of_0d_tensors_raises_value_error():
    with pytest.raises(ValueError, match="Matrix multiplication requires at least 1-D"):
        Tensor(np.ones(())) @ Tensor(np.ones(()))


def test_matmul_with_misaligned_inner_dimensions_raises_value_error():
    with pytest.raises(ValueError, match="Matrix shapes not aligned"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 2)))


# --------------------------------------------------------------------------- broadcasting
@pytest.mark.parametrize("op", [operator.add, operator.sub, operator.mul, operator.truediv],
                         ids=["+", "-", "*", "/"])
def test_incompatible_shapes_raise_cannot_broadcast(op):
    a = Tensor(np.ones((3, 4)), tensor_type=TensorType.PARAMETER)
    b = Tensor(np.ones((3,)), tensor_type=TensorType.PARAMETER)
    with pytest.raises(ValueError, match="Cannot broadcast shapes"):
        op(a, b)


def test_broadcast_result_shape_and_values():
    a = np.arange(6, dtype=np.float32).reshape(3, 1, 2)
    b = np.arange(4, dtype=np.float32).reshape(4, 1)
    np.testing.assert_array_equal((Tensor(a) + Tensor(b)).data, a + b)
    np.testing.assert_array_equal((Tensor(a) * Tensor(b)).shape, (3, 4, 2))


# --------------------------------------------------------------------------- transpose and reshape
def test_transpose_reverses_all_axes():
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    t = Tensor(data)
    assert t.T().shape == (4, 3, 2)
    np.testing.assert_array_equal(t.T().data, data.T)


def test_transpose_of_transpose_is_the_original_parameter():
    a = Tensor(np.ones((2, 3)), tensor_type=TensorType.PARAMETER)
    assert a.T().T() is a


@pytest.mark.parametrize("new_shape, expected", [((3, 4), (3, 4)), ((-1,), (12,)), ((2, -1, 3), (2, 2, 3))])
def test_reshape_to_a_compatible_shape(new_shape, expected):
    data = np.arange(12, dtype=np.float32).reshape(4, 3)
    t = Tensor(data, tensor_type=TensorType.PARAMETER)
    r = t.reshape(new_shape)
    assert r.shape == expected
    np.testing.assert_array_equal(r.data, data.reshape(expected))


def test_reshape_with_different_element_count_raises_value_error():
    t = Tensor(np.arange(12), tensor_type=TensorType.PARAMETER)
    with pytest.raises(ValueError):
        t.reshape((5, 2))


# --------------------------------------------------------------------------- dtype promotion
def test_float32_with_float64_promotes_to_float64():
    a = Tensor([1.0, 2.0], tensor_type=TensorType.PARAMETER)
    b = Tensor([3.0, 4.0], dtype=np.float64)
    for result in (a + b, b + a, a * b, a - b, a / b):
        assert result.dtype == np.float64
        assert result.data.dtype == np.float64


def test_gradient_reaching_a_float32_parameter_is_float32():
    a = Tensor([1.0, 2.0], tensor_type=TensorType.PARAMETER)
    b = parameter([3.0, 4.0])  # float64
    (a * b).backward(np.ones(2))
    assert a.grad.dtype == np.float32
    assert b.grad.dtype == np.float64
    np.testing.assert_allclose(a.grad, [3.0, 4.0])
    np.testing.assert_allclose(b.grad, [1.0, 2.0])
