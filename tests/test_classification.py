"""log_softmax, cross_entropy and binary_cross_entropy_with_logits: values against closed forms
written here, gradients against float64 central differences, stability for huge logits, and the
label errors (same type and message on both backends: every test runs on each)."""
import numpy as np
import pytest

import clumsygrad
from clumsygrad.activation import log_softmax, softmax
from clumsygrad.loss import binary_cross_entropy_with_logits, cross_entropy
from clumsygrad.tensor import Tensor, TensorType

from helpers import constant, gradcheck, parameter


def reference_log_softmax(z, axis=-1):
    """log(exp(z) / sum(exp(z))) in float64, via the max-shifted log-sum-exp."""
    z = np.asarray(z, dtype=np.float64)
    m = z.max(axis=axis, keepdims=True)
    return (z - m) - np.log(np.exp(z - m).sum(axis=axis, keepdims=True))


def reference_cross_entropy(z, target, reduction):
    log_p = reference_log_softmax(z)
    target = np.asarray(target)
    if target.ndim == 1:
        per_row = -log_p[np.arange(len(target)), target.astype(int)]
    else:
        per_row = -(target * log_p).sum(axis=1)
    return {"mean": per_row.mean(), "sum": per_row.sum(), "none": per_row}[reduction]


# --------------------------------------------------------------------------- log_softmax
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_log_softmax_values_and_gradient(axis, rng):
    z = rng.standard_normal((3, 4))
    np.testing.assert_allclose(log_softmax(parameter(z), axis=axis).data, reference_log_softmax(z, axis), rtol=1e-12)
    assert gradcheck(lambda a: log_softmax(a, axis=axis), [z])


def test_log_softmax_is_the_log_of_softmax(rng):
    z = rng.standard_normal((2, 5)).astype(np.float32)
    np.testing.assert_allclose(log_softmax(Tensor(z)).data, np.log(softmax(Tensor(z)).data), rtol=1e-5, atol=1e-6)


def test_log_softmax_of_huge_float32_logits_is_finite_and_exact():
    z = np.array([[1e4, -1e4, 0.0], [3e4, 3e4, 3e4 - 1.0]], dtype=np.float32)
    x = parameter(z, dtype=np.float32)
    out = log_softmax(x)
    assert out.dtype == np.float32 and np.isfinite(out.data).all()
    np.testing.assert_allclose(out.data, reference_log_softmax(z), rtol=1e-6)
    out.backward(np.ones_like(z))
    assert np.isfinite(x.grad).all()


def test_log_softmax_gradient_of_huge_logits_is_finite():
    x = parameter(np.array([[1e4, -1e4, 0.0]], dtype=np.float32), dtype=np.float32)
    log_softmax(x).backward(np.array([[1.0, 2.0, 3.0]], dtype=np.float32))
    # d/dz of sum(g * log_softmax(z)) = g - softmax(z) sum(g) = [1 - 6, 2, 3]
    np.testing.assert_allclose(x.grad, [[-5.0, 2.0, 3.0]], rtol=1e-6)


def test_log_softmax_over_an_empty_axis_is_an_error():
    with pytest.raises(ValueError, match="has no elements"):
        log_softmax(parameter(np.zeros((2, 0))))


# --------------------------------------------------------------------------- cross_entropy
REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_with_labels_values(reduction, rng):
    z, y = rng.standard_normal((5, 4)), rng.integers(0, 4, size=5)
    out = cross_entropy(parameter(z), y, reduction=reduction)
    np.testing.assert_allclose(out.data, reference_cross_entropy(z, y, reduction), rtol=1e-12)
    assert out.shape == ((5,) if reduction == "none" else ())


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_with_probability_targets_values(reduction, rng):
    z = rng.standard_normal((3, 4))
    t = rng.random((3, 4))
    t /= t.sum(axis=1, keepdims=True)
    out = cross_entropy(parameter(z), t, reduction=reduction)
    np.testing.assert_allclose(out.data, reference_cross_entropy(z, t, reduction), rtol=1e-12)


def test_cross_entropy_of_one_hot_targets_equals_that_of_labels(rng):
    z, y = rng.standard_normal((6, 3)), rng.integers(0, 3, size=6)
    a = cross_entropy(parameter(z), y)
    b = cross_entropy(parameter(z), np.eye(3)[y])
    np.testing.assert_allclose(a.data, b.data, rtol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_gradient_with_labels(reduction, rng):
    y = rng.integers(0, 4, size=5)
    assert gradcheck(lambda a: cross_entropy(a, y, reduction=reduction), [rng.standard_normal((5, 4))])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_gradient_with_targets_for_logits_and_targets(reduction, rng):
    t = rng.random((3, 4))
    assert gradcheck(lambda a: cross_entropy(a, t, reduction=reduction), [rng.standard_normal((3, 4))])
    assert gradcheck(lambda a, b: cross_entropy(a, b, reduction=reduction), [rng.standard_normal((3, 4)), t])


def test_cross_entropy_gradient_is_softmax_minus_one_hot_over_n(rng):
    z, y = rng.standard_normal((4, 3)), np.array([2, 0, 0, 1])
    x = parameter(z)
    cross_entropy(x, y).backward()
    p = np.exp(reference_log_softmax(z))
    np.testing.assert_allclose(x.grad, (p - np.eye(3)[y]) / 4, rtol=1e-12, atol=1e-15)


def test_cross_entropy_accepts_labels_as_a_tensor_list_or_integral_floats(rng):
    z = parameter(rng.standard_normal((3, 4)))
    expected = cross_entropy(z, np.array([0, 3, 1])).data
    for labels in (Tensor([0, 3, 1]), [0, 3, 1], np.array([0.0, 3.0, 1.0]), np.array([0, 3, 1], dtype=np.uint8)):
        assert cross_entropy(z, labels).data == expected


def test_cross_entropy_of_huge_float32_logits_is_finite_and_right():
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [5e3, 1e4, -1e4]], dtype=np.float32)
    y = np.array([1, 2, 0])
    x = parameter(z, dtype=np.float32)
    for reduction in REDUCTIONS:
        out = cross_entropy(x, y, reduction=reduction)
        assert out.dtype == np.float32 and np.isfinite(out.data).all()
        np.testing.assert_allclose(out.data, reference_cross_entropy(z, y, reduction), rtol=1e-6)
    cross_entropy(x, y).backward()
    p = np.exp(reference_log_softmax(z))
    assert np.isfinite(x.grad).all()
    np.testing.assert_allclose(x.grad, (p - np.eye(3)[y]) / 3, atol=1e-7)


def test_cross_entropy_of_a_parameter_is_intermediate_and_of_a_constant_is_input(rng):
    z = rng.standard_normal((2, 3))
    assert cross_entropy(parameter(z), [0, 1])._tensor_type == TensorType.INTERMEDIATE
    assert cross_entropy(constant(z), [0, 1])._tensor_type == TensorType.INPUT


@pytest.mark.parametrize("labels, message", [
    ([0, 3], "cross_entropy label 3 at position 1 is out of range for 3 classes"),
    ([-1, 0], "cross_entropy label -1 at position 0 is out of range for 3 classes"),
    (np.array([0.0, 1.5]), "cross_entropy labels must be integer class indices, got 1.5 at position 1"),
    (np.array([np.nan, 1.0]), "cross_entropy labels must be integer class indices, got nan at position 0"),
    (np.array([True, False]), "cross_entropy labels must be integer class indices, got dtype bool"),
    (np.array([0, 1, 2]), r"class labels of shape \(2,\) or targets of shape \(2, 3\), got shape \(3,\)"),
    (np.zeros((2, 4)), r"targets of the logits' shape \(2, 3\), got \(2, 4\)"),
])
def test_cross_entropy_bad_labels_are_value_errors_naming_them(labels, message):
    with pytest.raises(ValueError, match=message):
        cross_entropy(parameter(np.zeros((2, 3))), labels)


def test_cross_entropy_bad_reduction_and_logits():
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        cross_entropy(parameter(np.zeros((2, 3))), [0, 1], reduction="avg")
    with pytest.raises(ValueError, match=r"logits of shape \(N, C\), got shape \(3,\)"):
        cross_entropy(parameter(np.zeros(3)), [0])


# --------------------------------------------------------------------------- binary_cross_entropy_with_logits
def reference_bce(z, t):
    s = 1 / (1 + np.exp(-np.asarray(z, dtype=np.float64)))
    return -(t * np.log(s) + (1 - t) * np.log(1 - s))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_values(reduction, rng):
    z, t = rng.standard_normal((3, 4)) * 3, rng.random((3, 4))
    per = reference_bce(z, t)
    expected = {"mean": per.mean(), "sum": per.sum(), "none": per}[reduction]
    np.testing.assert_allclose(binary_cross_entropy_with_logits(parameter(z), t, reduction=reduction).data,
                               expected, rtol=1e-10)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_gradients(reduction, rng):
    z, t = rng.standard_normal((2, 3)) * 2, rng.random((2, 3))
    assert gradcheck(lambda a: binary_cross_entropy_with_logits(a, t, reduction=reduction), [z])
    assert gradcheck(lambda a, b: binary_cross_entropy_with_logits(a, b, reduction=reduction), [z, t])


def test_bce_with_logits_of_huge_logits_is_finite():
    z = np.array([1e4, -1e4, 1e4, -1e4], dtype=np.float32)
    t = np.array([1.0, 0.0, 0.0, 1.0], dtype=np.float32)
    x = parameter(z, dtype=np.float32)
    out = binary_cross_entropy_with_logits(x, t, reduction="none")
    assert np.array_equal(out.data, [0.0, 0.0, 1e4, 1e4])
    binary_cross_entropy_with_logits(x, t).backward()
    np.testing.assert_allclose(x.grad, np.array([0.0, 0.0, 1.0, -1.0]) / 4)


def test_bce_with_logits_needs_one_shape():
    with pytest.raises(ValueError, match=r"one shape, got \(3,\) and \(2,\)"):
        binary_cross_entropy_with_logits(parameter(np.zeros(3)), np.zeros(2))


@pytest.mark.parametrize("name", ["log_softmax", "cross_entropy", "binary_cross_entropy_with_logits"])
def test_classification_functions_are_reachable_from_the_package(name):
    assert name in clumsygrad.__all__ and callable(getattr(clumsygrad, name))
