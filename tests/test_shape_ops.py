"""Indexing, joins, splits, reshapes and selections: values as NumPy gives them, every gradient
against float64 central differences (``clumsygrad.gradcheck.gradcheck``), on both backends."""
import numpy as np
import pytest

import clumsygrad
from clumsygrad import grad as grad_module
from clumsygrad.math import sum as cg_sum
from clumsygrad.tensor import Tensor, TensorType

from helpers import constant, gradcheck, parameter


def distinct(rng, shape, gap=0.05):
    """Random values at least ``gap`` apart (no ties, so max/min/maximum are differentiable)."""
    n = int(np.prod(shape))
    values = (np.arange(n) - n / 2) * gap * 4 + rng.uniform(-gap, gap, n)
    return rng.permutation(values).reshape(shape)


# --------------------------------------------------------------------------- getitem
GETITEM_KEYS = {
    "int": 1,
    "negative int": -1,
    "slice with step": slice(None, None, 2),
    "reversed slice": slice(None, None, -1),
    "tuple": (1, slice(1, 3)),
    "None and ellipsis": (None, Ellipsis, 0),
    "int array with repeats": np.array([2, 0, 2, 2]),
    "negative int array": np.array([-1, 0, -1]),
    "list with repeats": [0, 0, 1],
    "2-D int array": np.array([[0, 1], [1, 1]]),
    "boolean mask": np.array([True, False, True]),
    "full boolean mask": np.array([[True, False, True, False], [False, False, True, True], [True] * 4]),
    "slice and int array": (slice(None), np.array([3, 3, 0])),
    "two int arrays": (np.array([0, 2, 0]), np.array([1, 1, 1])),
    "empty list": [],
}


@pytest.mark.parametrize("key", GETITEM_KEYS.values(), ids=GETITEM_KEYS.keys())
def test_getitem_values_are_numpys(key, rng):
    x = rng.standard_normal((3, 4))
    assert np.array_equal(parameter(x)[key].data, x[key])


@pytest.mark.parametrize("key", GETITEM_KEYS.values(), ids=GETITEM_KEYS.keys())
def test_getitem_gradient_matches_finite_differences(key, rng):
    assert gradcheck(lambda a: a[key] * a[key], [rng.standard_normal((3, 4))])


def test_getitem_records_the_1_0_0_extra_and_grad_fn():
    x = parameter(np.arange(12.0).reshape(3, 4))
    key = (slice(0, 2), [1, 1])
    y = x[key]
    assert y._grad_fn is grad_module.getitem_backward
    assert y._grad_fn.__name__ == "getitem_backward"
    assert set(y._extra) == {"key", "original_shape"}
    assert y._extra["key"] == key  # the same key, in a copy the graph owns (issue 18)
    assert y._extra["key"][1] is not key[1]
    assert y._extra["original_shape"] == (3, 4)
    assert "getitem_backward" in grad_module.__all__


def test_getitem_backward_called_directly_accumulates_repeated_indices():
    x = parameter(np.zeros((4, 2)))
    y = x[[3, 1, 3, 3]]
    (dx,) = grad_module.getitem_backward(y, np.ones((4, 2)))
    expected = np.zeros((4, 2))
    expected[1] = 1.0
    expected[3] = 3.0  # row 3 was taken three times
    assert np.array_equal(dx, expected)


def test_repeated_elements_receive_the_sum_of_their_gradients_through_backward():
    x = parameter(np.array([1.0, 2.0, 3.0]))
    y = x[np.array([0, 0, 2, 0])]
    y.backward(np.array([1.0, 10.0, 100.0, 1000.0]))
    assert np.array_equal(x.grad, [1011.0, 0.0, 100.0])


def test_embedding_lookup_gradient_matches_a_loop(rng):
    table = parameter(rng.standard_normal((5, 3)), dtype=np.float32)
    ids = rng.integers(0, 5, size=20)
    g = rng.standard_normal((20, 3))
    table[ids].backward(g)
    expected = np.zeros((5, 3))
    for i, row in enumerate(ids):
        expected[row] += g[i]
    np.testing.assert_allclose(table.grad, expected, rtol=1e-5, atol=1e-5)


def test_getitem_of_a_constant_is_a_constant_and_of_a_parameter_records_a_graph():
    x = constant(np.arange(4.0))
    assert x[1:]._tensor_type == TensorType.INPUT and x[1:]._grad_fn is None
    p = parameter(np.arange(4.0))
    assert p[1:]._tensor_type == TensorType.INTERMEDIATE
    assert p[1:].dtype == np.float64


def test_getitem_out_of_range_is_numpys_index_error():
    with pytest.raises(IndexError, match="out of bounds"):
        parameter(np.zeros(3))[3]


def test_getitem_function_is_the_operator():
    x = parameter(np.arange(6.0).reshape(2, 3))
    assert np.array_equal(clumsygrad.getitem(x, (1, [0, 2])).data, x[1, [0, 2]].data)


# --------------------------------------------------------------------------- concatenate, stack, split
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concatenate_gradient(axis, rng):
    shapes = [(2, 3), (2, 1), (2, 2)] if axis else [(1, 3), (2, 3), (3, 3)]
    assert gradcheck(lambda a, b, c: clumsygrad.concatenate([a, b, c], axis=axis) ** 2,
                     [rng.standard_normal(s) for s in shapes])


def test_concatenate_values_and_plain_arrays_become_constants(rng):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((1, 3))
    p = parameter(a)
    out = clumsygrad.concatenate([p, b])
    assert np.array_equal(out.data, np.concatenate([a, b]))
    assert out._tensor_type == TensorType.INTERMEDIATE
    assert out._parents[1]._tensor_type == TensorType.INPUT
    cg_sum(out * out).backward()
    assert np.allclose(p.grad, 2 * a)


def test_concatenate_of_constants_is_a_constant():
    out = clumsygrad.concatenate([constant([1.0]), constant([2.0, 3.0])])
    assert out._tensor_type == TensorType.INPUT and out._grad_fn is None


def test_concatenate_errors_are_numpys():
    with pytest.raises(ValueError):
        clumsygrad.concatenate([parameter(np.zeros((2, 3))), parameter(np.zeros((2, 4)))], axis=0)
    with pytest.raises(ValueError, match="at least one"):
        clumsygrad.concatenate([])


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_stack_gradient(axis, rng):
    assert gradcheck(lambda a, b: clumsygrad.stack([a, b * b, a], axis=axis) * 1.5,
                     [rng.standard_normal((2, 3)), rng.standard_normal((2, 3))])


def test_stack_values(rng):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    assert np.array_equal(clumsygrad.stack([parameter(a), b], axis=1).data, np.stack([a, b], axis=1))


@pytest.mark.parametrize("sections", [3, [1, 4], [2, 2]])
def test_split_values_and_gradient(sections, rng):
    x = rng.standard_normal((2, 6))
    pieces = clumsygrad.split(parameter(x), sections, axis=1)
    expected = np.split(x, sections, axis=1)
    assert isinstance(pieces, list) and len(pieces) == len(expected)
    assert all(np.array_equal(p.data, e) for p, e in zip(pieces, expected))

    def fn(a):
        parts = clumsygrad.split(a, sections, axis=1)
        total = cg_sum(parts[0] * parts[0])
        for k, part in enumerate(parts[1:], start=2):
            total = total + cg_sum(part) * float(k)
        return total

    assert gradcheck(fn, [x])


def test_split_into_unequal_sections_is_numpys_error():
    with pytest.raises(ValueError, match="equal division"):
        clumsygrad.split(parameter(np.zeros(5)), 2)


# --------------------------------------------------------------------------- reshapes
def test_expand_squeeze_flatten_reshape_values_and_gradients(rng):
    x = rng.standard_normal((2, 1, 3))
    assert clumsygrad.expand_dims(parameter(x), 0).shape == (1, 2, 1, 3)
    assert clumsygrad.expand_dims(parameter(x), (0, -1)).shape == (1, 2, 1, 3, 1)
    assert clumsygrad.squeeze(parameter(x)).shape == (2, 3)
    assert clumsygrad.squeeze(parameter(x), axis=1).shape == (2, 3)
    assert clumsygrad.flatten(parameter(x)).shape == (6,)
    assert clumsygrad.reshape(parameter(x), (3, -1)).shape == (3, 2)
    w = rng.standard_normal(6)
    for op in (lambda a: clumsygrad.expand_dims(a, 1), lambda a: clumsygrad.squeeze(a, 1),
               clumsygrad.flatten, lambda a: clumsygrad.reshape(a, (-1, 2))):
        assert gradcheck(lambda a: clumsygrad.flatten(op(a)) * constant(w), [x])


def test_squeeze_of_a_longer_axis_is_numpys_error():
    with pytest.raises(ValueError, match="size not equal to one"):
        clumsygrad.squeeze(parameter(np.zeros((2, 3))), axis=0)


@pytest.mark.parametrize("shape", [-1, (-1,), (3, -1), (-1, 2, 1)])
def test_tensor_reshape_accepts_minus_one(shape, rng):
    x = rng.standard_normal((2, 3))
    assert parameter(x).reshape(shape).shape == x.reshape(shape).shape
    w = rng.standard_normal(x.reshape(shape).shape)
    assert gradcheck(lambda a: a.reshape(shape) * constant(w), [x])


def test_tensor_reshape_with_two_minus_ones_is_an_error():
    with pytest.raises(ValueError, match="cannot reshape"):
        parameter(np.zeros(6)).reshape((-1, -1))


# --------------------------------------------------------------------------- max and min
REDUCE_AXES = [(None, False), (0, False), (1, True), (-1, False), ((0, 2), False), ((-1, 0), True)]


@pytest.mark.parametrize("reduce", [clumsygrad.max, clumsygrad.min], ids=["max", "min"])
@pytest.mark.parametrize("axis, keepdims", REDUCE_AXES)
def test_max_min_values_and_gradients(reduce, axis, keepdims, rng):
    x = distinct(rng, (3, 4, 2))
    reference = np.max if reduce is clumsygrad.max else np.min
    assert np.array_equal(reduce(parameter(x), axis=axis, keepdims=keepdims).data,
                          reference(x, axis=axis, keepdims=keepdims))
    assert gradcheck(lambda a: reduce(a, axis=axis, keepdims=keepdims) * 2.0, [x])


def test_max_sends_the_gradient_to_the_first_maximal_element_only():
    x = parameter(np.array([1.0, 3.0, 3.0, 2.0]))
    clumsygrad.max(x).backward()
    assert np.array_equal(x.grad, [0.0, 1.0, 0.0, 0.0])


def test_min_over_axis_0_ties_go_to_the_first_row():
    x = parameter(np.array([[0.0, 5.0], [0.0, 1.0], [4.0, 1.0]]))
    clumsygrad.min(x, axis=0).backward(np.array([1.0, 2.0]))
    assert np.array_equal(x.grad, [[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])


def test_max_over_several_axes_picks_the_first_in_c_order():
    x = np.zeros((2, 2, 2))
    x[0, 0, 1] = x[1, 0, 0] = 5.0  # block j=0 over (i, k): (0, 1) comes before (1, 0)
    x[1, 1, 0] = x[1, 1, 1] = 9.0  # block j=1: (1, 0) comes before (1, 1)
    p = parameter(x)
    clumsygrad.max(p, axis=(0, 2)).backward(np.array([1.0, 2.0]))
    expected = np.zeros((2, 2, 2))
    expected[0, 0, 1] = 1.0
    expected[1, 1, 0] = 2.0
    assert np.array_equal(p.grad, expected)


def test_max_of_an_empty_axis_is_numpys_error():
    with pytest.raises(ValueError, match="zero-size array"):
        clumsygrad.max(parameter(np.zeros((0, 3))), axis=0)


# --------------------------------------------------------------------------- maximum, minimum, where, clip
@pytest.mark.parametrize("op, reference", [(clumsygrad.maximum, np.maximum), (clumsygrad.minimum, np.minimum)],
                         ids=["maximum", "minimum"])
def test_maximum_minimum_broadcast_values_and_gradients(op, reference, rng):
    a, b = distinct(rng, (2, 3)), distinct(rng, (3,)) + 0.013
    assert np.array_equal(op(parameter(a), parameter(b)).data, reference(a, b))
    assert gradcheck(lambda x, y: op(x, y) * op(y, x), [a, b])


def test_maximum_with_a_scalar_or_array_keeps_the_tensor_dtype(rng):
    x = parameter(rng.standard_normal(4), dtype=np.float32)
    assert clumsygrad.maximum(x, 0).dtype == np.float32
    assert clumsygrad.minimum([0.0, 1.0, 2.0, 3.0], x).dtype == np.float32
    assert gradcheck(lambda a: clumsygrad.maximum(a, 0.1) + clumsygrad.minimum(0.2, a), [np.array([-1.0, 0.5, 2.0])])


def test_maximum_ties_go_to_the_first_operand():
    a, b = parameter(np.array([1.0, 2.0])), parameter(np.array([1.0, 3.0]))
    cg_sum(clumsygrad.maximum(a, b)).backward()
    assert np.array_equal(a.grad, [1.0, 0.0]) and np.array_equal(b.grad, [0.0, 1.0])


def test_maximum_of_constants_is_a_constant():
    out = clumsygrad.maximum(constant([1.0]), 0.5)
    assert out._tensor_type == TensorType.INPUT


def test_maximum_of_shapes_that_do_not_broadcast():
    with pytest.raises(ValueError, match=r"Cannot broadcast shapes \(2,\) and \(3,\)"):
        clumsygrad.maximum(parameter(np.zeros(2)), parameter(np.zeros(3)))


def test_where_values_and_gradients(rng):
    cond = rng.random((2, 3)) < 0.5
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((3,))
    assert np.array_equal(clumsygrad.where(cond, parameter(a), parameter(b)).data, np.where(cond, a, b))
    assert gradcheck(lambda x, y: clumsygrad.where(cond, x * x, y) * 3.0, [a, b])
    assert gradcheck(lambda x: clumsygrad.where(Tensor(cond.astype(float)), x, 0.0), [a])


def test_where_condition_broadcasts_against_the_operands(rng):
    cond = np.array([True, False, True])
    a = rng.standard_normal((2, 1))
    assert gradcheck(lambda x: clumsygrad.where(cond, x, -x) * np.arange(6.0).reshape(2, 3).sum(), [a])


@pytest.mark.parametrize("lo, hi", [(-0.5, 0.5), (None, 0.3), (-0.2, None), (np.array([-1.0, 0.0, 0.1]), 0.7)])
def test_clip_values_and_gradients(lo, hi, rng):
    x = np.array([[-0.9, 0.21, 0.35], [0.55, -0.31, 1.2]])
    assert np.array_equal(clumsygrad.clip(parameter(x), lo, hi).data, np.clip(x, lo, hi))
    assert gradcheck(lambda a: clumsygrad.clip(a, lo, hi) * a, [x])


def test_clip_passes_the_gradient_at_the_bounds():
    x = parameter(np.array([-1.0, 0.0, 1.0, 2.0]))
    cg_sum(clumsygrad.clip(x, -1.0, 1.0)).backward()
    assert np.array_equal(x.grad, [1.0, 1.0, 1.0, 0.0])


def test_clip_sends_the_gradient_to_tensor_bounds():
    x = parameter(np.array([-2.0, 0.0, 3.0]))
    lo, hi = parameter(np.array(-1.0)), parameter(np.array(1.0))
    cg_sum(clumsygrad.clip(x, lo, hi)).backward()
    assert np.array_equal(x.grad, [0.0, 1.0, 0.0]) and lo.grad == 1.0 and hi.grad == 1.0


def test_clip_needs_a_bound():
    with pytest.raises(ValueError, match="at least one of lo and hi"):
        clumsygrad.clip(parameter(np.zeros(2)), None, None)


# --------------------------------------------------------------------------- names
@pytest.mark.parametrize("name", ["getitem", "concatenate", "stack", "split", "expand_dims", "squeeze",
                                  "flatten", "reshape", "maximum", "minimum", "where", "clip"])
def test_every_op_is_reachable_from_the_package(name):
    assert callable(getattr(clumsygrad, name)) and name in clumsygrad.__all__


def test_max_and_min_are_reachable_but_a_star_import_keeps_the_builtins():
    assert clumsygrad.max is clumsygrad.selection.max and clumsygrad.min is clumsygrad.selection.min
    namespace = {}
    exec("from clumsygrad import *", namespace)
    assert "max" not in namespace and "min" not in namespace


@pytest.mark.parametrize("key", [np.array([2, 0, 2]), [1, 1], (np.array([0, 2]),)], ids=["array", "list", "tuple"])
def test_row_lookups_go_through_the_active_scatter_add_kernel(key, monkeypatch, backend):
    from clumsygrad import _backend

    calls = []
    kernel = _backend.active.scatter_add
    monkeypatch.setattr(_backend.active, "scatter_add", lambda *args: calls.append(args) or kernel(*args))
    x = parameter(np.arange(12.0).reshape(3, 4))
    (dx,) = grad_module.getitem_backward(x[key], np.ones_like(x.data[key]))
    expected = np.zeros((3, 4))
    np.add.at(expected, key, 1.0)
    assert len(calls) == 1 and np.array_equal(dx, expected)


def test_ops_inside_no_grad_record_no_graph(rng):
    from clumsygrad.tensor import no_grad

    x = parameter(rng.standard_normal((3, 4)))
    with no_grad():
        results = [x[[0, 0]], clumsygrad.concatenate([x, x]), clumsygrad.stack([x, x]), clumsygrad.max(x, axis=0),
                   clumsygrad.maximum(x, 0.0), clumsygrad.where(x.data > 0, x, 0.0), clumsygrad.split(x, 3, axis=0)[1],
                   clumsygrad.cross_entropy(x, [0, 1, 2]), clumsygrad.log_softmax(x)]
    for out in results:
        assert out._tensor_type == TensorType.INPUT and not out.requires_grad and out._grad_fn is None
    assert x[[0, 0]]._tensor_type == TensorType.INTERMEDIATE
