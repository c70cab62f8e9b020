"""The reverse-mode engine: Tensor.backward, gradient accumulation, graph freeing, aliasing, depth."""
import sys
import time

import numpy as np
import pytest

from clumsygrad.math import exp, mean, sum
from clumsygrad.tensor import Tensor, TensorType, TensorUtils

from helpers import constant, grads_of, memory_overlaps, parameter


# --------------------------------------------------------------------------- error messages
def test_backward_on_tensor_without_gradients_raises():
    x = Tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="Tensor does not require gradients"):
        sum(x * 2.0).backward()


def test_backward_on_freed_graph_raises():
    x = parameter([1.0, 2.0])
    y = sum(x * 2.0)
    y.backward()
    with pytest.raises(RuntimeError, match="No backward graph exists for this tensor"):
        y.backward()


def test_backward_on_non_scalar_without_gradient_raises():
    x = parameter([1.0, 2.0])
    with pytest.raises(RuntimeError, match="Gradient can only be implicitly created for scalar outputs"):
        (x * 2.0).backward()


@pytest.mark.parametrize("seed_shape", [(3,), (2, 1), (1, 2), ()])
def test_backward_with_wrong_shape_gradient_raises_value_error(seed_shape):
    x = parameter([1.0, 2.0])
    with pytest.raises(ValueError):
        (x * 2.0).backward(np.ones(seed_shape))


def test_implicit_seed_is_ones_for_one_element_tensors():
    x = parameter([[3.0]])
    (x * 5.0).backward()
    np.testing.assert_array_equal(x.grad, [[5.0]])


def test_failure_inside_a_backward_function_is_wrapped_with_the_tensor_id():
    def broken_backward(tensor, g):
        raise ArithmeticError("deliberate failure")

    x = parameter([1.0, 2.0])
    node = Tensor._create_node(x.data * 2, broken_backward, (x,))
    y = sum(node)
    with pytest.raises(RuntimeError, match=rf"^Error in backward pass at tensor {node._id}: .*deliberate failure"):
        y.backward()


def test_wrong_shaped_gradient_from_a_backward_function_is_reported():
    def wrong_shape_backward(tensor, g):
        return (np.ones(5),)

    x = parameter([1.0, 2.0])
    node = Tensor._create_node(x.data * 2, wrong_shape_backward, (x,))
    with pytest.raises(RuntimeError, match=rf"^Error in backward pass at tensor {node._id}: "):
        sum(node).backward()


# --------------------------------------------------------------------------- accumulation
def test_gradients_accumulate_across_separate_backward_calls():
    x = parameter([1.0, -2.0])
    sum(x * 2.0).backward()
    sum(x * x).backward()
    np.testing.assert_allclose(x.grad, 2.0 + 2 * x.data)


def test_backward_adds_to_a_gradient_set_by_the_user():
    x = parameter([1.0, -2.0])
    x.grad = np.array([10.0, 20.0])
    sum(x * 3.0).backward()
    np.testing.assert_allclose(x.grad, [13.0, 23.0])


def test_backward_does_not_write_into_an_array_assigned_to_grad():
    x = parameter([1.0, -2.0])
    assigned = np.array([10.0, 20.0])
    x.grad = assigned
    sum(x * 3.0).backward()
    np.testing.assert_array_equal(assigned, [10.0, 20.0])
    assert not np.shares_memory(x.grad, assigned)


def _diamond(x):
    """y = sum(a * a + 3 a) with a = exp(x): every path from y to x passes through a."""
    a = exp(x)
    b = a * a + a * 3.0
    return a, b, sum(b)


def test_keep_graph_twice_gives_exactly_twice_the_gradient_at_leaves():
    x = parameter([0.1, -0.4, 0.7])
    _, _, y = _diamond(x)
    y.backward(keep_graph=True)
    once = x.grad.copy()
    y.backward(keep_graph=True)
    np.testing.assert_array_equal(x.grad, 2 * once)
    expected_once = (2 * np.exp(x.data) + 3.0) * np.exp(x.data)
    np.testing.assert_allclose(once, expected_once, rtol=1e-12)


def test_keep_graph_twice_gives_exactly_twice_the_gradient_at_intermediates():
    x = parameter([0.1, -0.4, 0.7])
    a, b, y = _diamond(x)
    y.backward(keep_graph=True)
    a_once, b_once, y_once = a.grad.copy(), b.grad.copy(), y.grad.copy()
    y.backward(keep_graph=True)
    np.testing.assert_array_equal(a.grad, 2 * a_once)
    np.testing.assert_array_equal(b.grad, 2 * b_once)
    np.testing.assert_array_equal(y.grad, 2 * y_once)
    np.testing.assert_allclose(a_once, 2 * np.exp(x.data) + 3.0, rtol=1e-12)
    np.testing.assert_array_equal(b_once, np.ones(3))


def test_each_backward_call_propagates_only_its_own_seed():
    x = parameter([1.0, 2.0])
    y = x * 3.0
    y.backward(np.array([1.0, 1.0]), keep_graph=True)
    y.backward(np.array([10.0, 100.0]))
    np.testing.assert_allclose(x.grad, 3.0 * np.array([11.0, 101.0]))
    np.testing.assert_allclose(y.grad, [11.0, 101.0])


# --------------------------------------------------------------------------- graph freeing
def test_graph_is_freed_after_backward():
    w = parameter([[1.0, 2.0], [3.0, 4.0]])
    x = constant([[1.0], [-1.0]])
    h = w @ x
    z = h * h
    y = sum(z)
    y.backward()
    for node in (h, z, y):
        assert node._tensor_type is TensorType.INTERMEDIATE
        assert node._parents == ()


def test_graph_is_kept_with_keep_graph():
    w = parameter([[1.0, 2.0], [3.0, 4.0]])
    x = constant([[1.0], [-1.0]])
    h = w @ x
    z = h * h
    y = sum(z)
    y.backward(keep_graph=True)
    assert h._parents[0] is w and h._parents[1] is x
    assert z._parents[0] is h and z._parents[1] is h
    assert y._parents[0] is z


def test_freed_intermediate_cannot_backpropagate_again():
    x = parameter([1.0, 2.0])
    h = x * 2.0
    y = sum(h)
    y.backward()
    with pytest.raises(RuntimeError, match="No backward graph exists for this tensor"):
        h.backward(np.ones(2))


# --------------------------------------------------------------------------- diamonds
def test_tensor_used_several_times_gets_the_total_gradient():
    data = np.array([0.3, -1.2, 2.0])
    x = parameter(data)
    y = sum(x * x + x * 3.0 + exp(x) * x + x)
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * data + 3.0 + np.exp(data) * (1 + data) + 1.0, rtol=1e-12)


def test_same_tensor_on_both_sides_of_an_operator():
    data = np.array([0.5, -2.0])
    x = parameter(data)
    sum((x + x) * (x - x * 0.5) + x * x).backward()
    # (2x)(x/2) + x^2 = 2 x^2
    np.testing.assert_allclose(x.grad, 4 * data, rtol=1e-12)


def test_constant_operands_receive_no_gradient():
    x = parameter([1.0, 2.0])
    c = constant([3.0, 4.0])
    sum(x * c + c).backward()
    assert c.grad is None
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])


# --------------------------------------------------------------------------- no aliasing
def _graph_x_plus_x():
    x = parameter([1.0, 2.0, 3.0])
    y = x + x
    return y, [x, y]


def _graph_x_times_x():
    x = parameter([1.0, 2.0, 3.0])
    y = x * x
    return y, [x, y]


def _graph_transpose():
    a = parameter(np.arange(6.0).reshape(2, 3))
    y = a.T()
    return y, [a, y]


def _graph_reshape():
    a = parameter(np.arange(6.0).reshape(2, 3))
    y = a.reshape((3, 2))
    return y, [a, y]


def _graph_broadcast_full_shape_operand():
    full = parameter(np.arange(6.0).reshape(2, 3))
    row = parameter([1.0, 2.0, 3.0])
    y = full + row
    return y, [full, row, y]


def _graph_broadcast_full_shape_mul():
    full = parameter(np.arange(6.0).reshape(2, 3))
    col = parameter([[1.0], [2.0]])
    y = col * full
    return y, [full, col, y]


def _graph_sum_mean():
    a = parameter(np.arange(6.0).reshape(2, 3))
    s = sum(a, axis=0)
    m = mean(a, axis=1, keepdims=True)
    y = s * 2.0 + sum(m)
    return y, [a, s, m, y]


def _graph_add_scalar_chain():
    x = parameter([1.0, 2.0, 3.0])
    h = x + 1.0
    y = h - 2.0
    return y, [x, h, y]


def _graph_sub_and_negate():
    x = parameter([1.0, 2.0, 3.0])
    z = parameter([4.0, 5.0, 6.0])
    y = -(x - z)
    return y, [x, z, y]


ALIASING_GRAPHS = {
    "x+x": _graph_x_plus_x,
    "x*x": _graph_x_times_x,
    "transpose": _graph_transpose,
    "reshape": _graph_reshape,
    "add broadcast, one operand full shape": _graph_broadcast_full_shape_operand,
    "mul broadcast, one operand full shape": _graph_broadcast_full_shape_mul,
    "sum/mean": _graph_sum_mean,
    "scalar add/sub chain": _graph_add_scalar_chain,
    "sub and negate": _graph_sub_and_negate,
}


def _assert_no_aliasing(tensors, seed):
    arrays = [(f"grad of #{i}", t.grad) for i, t in enumerate(tensors)]
    arrays += [(f"data of #{i}", t.data) for i, t in enumerate(tensors)]
    arrays.append(("seed", seed))
    overlaps = [pair for pair in memory_overlaps(arrays) if "grad" in pair[0] or "grad" in pair[1]]
    assert overlaps == []


@pytest.mark.parametrize("build", ALIASING_GRAPHS.values(), ids=ALIASING_GRAPHS.keys())
def test_no_gradient_shares_memory_with_another_array(build):
    y, tensors = build()
    seed = np.linspace(1.0, 2.0, y.data.size).reshape(y.shape)
    y.backward(seed)
    assert all(t.grad is not None for t in tensors)
    _assert_no_aliasing(tensors, seed)


@pytest.mark.parametrize("build", ALIASING_GRAPHS.values(), ids=ALIASING_GRAPHS.keys())
def test_modifying_the_seed_afterwards_does_not_change_any_gradient(build):
    y, tensors = build()
    seed = np.linspace(1.0, 2.0, y.data.size).reshape(y.shape)
    y.backward(seed)
    before = grads_of(tensors)
    seed[...] = 1e6
    for t, g in zip(tensors, before):
        np.testing.assert_array_equal(t.grad, g)


@pytest.mark.parametrize("build", ALIASING_GRAPHS.values(), ids=ALIASING_GRAPHS.keys())
def test_accumulating_a_second_pass_leaves_the_seed_and_data_untouched(build):
    y, tensors = build()
    seed = np.linspace(1.0, 2.0, y.data.size).reshape(y.shape)
    seed_copy = seed.copy()
    data_copies = [t.data.copy() for t in tensors]
    y.backward(seed, keep_graph=True)
    once = grads_of(tensors)
    y.backward(seed, keep_graph=True)
    np.testing.assert_array_equal(seed, seed_copy)
    for t, data in zip(tensors, data_copies):
        np.testing.assert_array_equal(t.data, data)
    for t, g in zip(tensors, once):
        np.testing.assert_array_equal(t.grad, 2 * g)
    _assert_no_aliasing(tensors, seed)


def test_float32_seed_array_is_not_adopted_as_the_root_gradient():
    x = Tensor([1.0, 2.0], tensor_type=TensorType.PARAMETER)
    y = x * 2.0
    seed = np.array([1.0, 1.0], dtype=np.float32)  # same dtype as y: no conversion copy
    y.backward(seed, keep_graph=True)
    y.backward(seed)
    np.testing.assert_array_equal(seed, [1.0, 1.0])
    assert not np.shares_memory(y.grad, seed)
    np.testing.assert_array_equal(y.grad, [2.0, 2.0])


def test_backward_on_a_leaf_copies_the_seed():
    x = parameter([1.0, 2.0])
    seed = np.array([5.0, 6.0])
    x.backward(seed)
    x.backward(seed)
    np.testing.assert_array_equal(seed, [5.0, 6.0])
    np.testing.assert_array_equal(x.grad, [10.0, 12.0])


def test_array_returned_by_a_custom_backward_function_is_not_accumulated_into():
    # A 0.2.1-style custom node whose backward returns an array it keeps (a constant Jacobian).
    slope = np.array([2.0, 3.0])

    def scale_backward(tensor, g):
        return (tensor._extra["slope"],)  # valid only for an all-ones seed, as used below

    x = parameter([1.0, 1.0])
    for _ in range(3):
        node = Tensor._create_node(x.data * slope, scale_backward, (x,), {"slope": slope})
        node.backward(np.ones(2))
    np.testing.assert_array_equal(slope, [2.0, 3.0])
    np.testing.assert_array_equal(x.grad, [6.0, 9.0])
    assert not np.shares_memory(x.grad, slope)


def test_custom_backward_returning_another_tensors_data_does_not_alias_it():
    # z = sum(x * c) for a constant c: with the implicit seed 1, dz/dx is c's data itself.
    def dot_backward(tensor, g):
        return (tensor._extra["c"].data,)

    c = constant([2.0, 3.0])
    x = parameter([1.0, 1.0])
    for _ in range(2):
        z = Tensor._create_node(np.sum(x.data * c.data), dot_backward, (x,), {"c": c})
        z.backward()
    np.testing.assert_array_equal(c.data, [2.0, 3.0])
    np.testing.assert_array_equal(x.grad, [4.0, 6.0])
    assert not np.shares_memory(x.grad, c.data)


# --------------------------------------------------------------------------- depth
CHAIN_LENGTH = 1_000_000


@pytest.mark.slow
def test_million_operation_chain_backpropagates_without_recursion_error():
    # Alternating *2 and *0.5 is exact in floating point: d(y)/d(x) is exactly 1, and any
    # node skipped or visited twice would show as a power of 2.
    assert CHAIN_LENGTH > 100 * sys.getrecursionlimit()
    x = Tensor(3.0, tensor_type=TensorType.PARAMETER)
    y = x
    for _ in range(CHAIN_LENGTH // 2):
        y = y * 2.0
        y = y * 0.5
    start = time.perf_counter()
    y.backward()
    elapsed = time.perf_counter() - start
    print(f"backward through {CHAIN_LENGTH} operations: {elapsed:.2f} s")
    assert float(y.data) == 3.0
    assert float(x.grad) == 1.0
    assert y._parents == ()


def test_deep_chain_with_mixed_operations_has_the_closed_form_gradient():
    depth = 5 * sys.getrecursionlimit()
    x = parameter([0.5, -0.25])
    y = x
    for _ in range(depth):
        y = (y + 1.0) - 1.0
    y = sum(y * y)
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * x.data, rtol=1e-12)


# --------------------------------------------------------------------------- TensorUtils
def _linear_model():
    x = constant(np.ones((4, 3)))
    w = parameter(np.ones((3, 2)))
    b = parameter(np.zeros(2))
    y = x @ w + b
    loss = sum(y * y) + sum(w * w)  # w is reached along two paths
    return x, w, b, y, loss


def test_get_parameters_lists_each_reachable_parameter_once():
    x, w, b, y, loss = _linear_model()
    params = TensorUtils.get_parameters(loss)
    assert sorted(p._id for p in params) == sorted([w._id, b._id])


def test_get_parameters_excludes_inputs_and_intermediates():
    x, w, b, y, loss = _linear_model()
    assert all(p._tensor_type is TensorType.PARAMETER for p in TensorUtils.get_parameters(y))


def test_count_by_type_counts_each_reachable_tensor_once():
    x, w, b, y, loss = _linear_model()
    counts = TensorUtils.count_by_type(y)
    # y = (x @ w) + b: one INPUT, two PARAMETERs, the matmul and the add
    assert counts == {TensorType.INPUT: 1, TensorType.PARAMETER: 2, TensorType.INTERMEDIATE: 2}
    # loss adds y*y, sum, w*w, sum, + : five more intermediates, nothing else new
    assert TensorUtils.count_by_type(loss) == {
        TensorType.INPUT: 1, TensorType.PARAMETER: 2, TensorType.INTERMEDIATE: 7,
    }
