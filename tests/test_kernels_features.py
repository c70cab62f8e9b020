"""The scatter-add and cross-entropy kernels: compiled (``native``) against the NumPy twin (``pure``)
and against loops written here, on every layout; errors of the same type and message on both."""
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clumsygrad._kernels import native, pure

from helpers import requires_compiled_share, examples

pytestmark = pytest.mark.both_backends

TWINS = {"native": native, "pure": pure}
SETTINGS = settings(max_examples=examples(300), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LAYOUTS = st.sampled_from(["C", "F", "sliced", "reversed"])


def laid_out(values: np.ndarray, layout: str) -> np.ndarray:
    """``values`` (any shape) in memory laid out as ``layout``, with the same contents."""
    if layout == "F":
        return np.asfortranarray(values)
    if layout == "sliced":  # every other element of a twice-as-long first axis
        if values.ndim == 0:
            return values
        wide = np.zeros((2 * values.shape[0],) + values.shape[1:], dtype=values.dtype)
        wide[::2] = values
        return wide[::2]
    if layout == "reversed":  # negative strides on every axis
        flipped = np.ascontiguousarray(values[(slice(None, None, -1),) * values.ndim])
        return flipped[(slice(None, None, -1),) * values.ndim]
    return np.ascontiguousarray(values)


# --------------------------------------------------------------------------- scatter_add
def loop_scatter(grad, indices, shape):
    """out[indices[i]] += grad[i] one row at a time, in float64."""
    out = np.zeros(shape)
    for i, j in enumerate(indices):
        out[j] += grad[i]
    return out


@st.composite
def scatter_cases(draw):
    size = draw(st.integers(1, 6))
    tail = tuple(draw(st.lists(st.integers(0, 4), max_size=2)))
    # a quarter of the cases above the kernel's 1,024-row blocks
    n = draw(st.integers(0, 12)) if draw(st.integers(0, 3)) else draw(st.integers(1025, 2500))
    indices = np.array(draw(st.lists(st.integers(-size, size - 1), min_size=n, max_size=n)), dtype=np.int64)
    index_dtype = draw(st.sampled_from([np.int64, np.int32, np.int8, np.intp, np.uint8, np.uint64]))
    if np.dtype(index_dtype).kind == "u":
        indices = indices % size
    indices = laid_out(indices.astype(index_dtype), draw(st.sampled_from(["C", "sliced", "reversed"])))
    dtype = draw(st.sampled_from([np.float32, np.float32, np.float64, np.float64, np.int64, np.float16]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    grad = (rng.standard_normal((n,) + tail) * 4).astype(dtype)
    return laid_out(grad, draw(LAYOUTS)), indices, (size,) + tail


@requires_compiled_share("scatter_add", 0.75)
@SETTINGS
@given(scatter_cases())
def test_scatter_add_twins_agree_with_each_other_and_a_loop(case):
    grad, indices, shape = case
    expected = loop_scatter(grad, indices, shape)
    ref = pure.scatter_add(grad, indices, shape)
    out = native.scatter_add(grad, indices, shape)
    assert out.dtype == ref.dtype == np.result_type(grad, np.float32)
    assert out.shape == ref.shape == shape
    # rows are added in index order by both: the same rounding, bit for bit
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name", TWINS)
def test_scatter_add_accumulates_repeated_indices(name):
    out = TWINS[name].scatter_add(np.ones((5, 2), np.float32), np.array([1, 1, -1, 1, 2]), (3, 2))
    assert np.array_equal(out, [[0, 0], [3, 3], [2, 2]]) and out.dtype == np.float32


@pytest.mark.parametrize("name", TWINS)
def test_scatter_add_of_zero_size_inputs(name):
    scatter = TWINS[name].scatter_add
    assert np.array_equal(scatter(np.zeros((0, 3)), np.zeros(0, np.int64), (4, 3)), np.zeros((4, 3)))
    assert scatter(np.zeros((0,)), np.zeros(0, np.intp), (0,)).shape == (0,)
    assert np.array_equal(scatter(np.zeros((2, 0)), np.array([0, 1]), (2, 0)), np.zeros((2, 0)))


@pytest.mark.parametrize("name", TWINS)
def test_scatter_add_leaves_its_inputs_alone_and_returns_a_new_array(name):
    grad, indices = np.ones((3, 2)), np.array([0, 2, 0])
    out = TWINS[name].scatter_add(grad, indices, (3, 2))
    assert np.array_equal(grad, np.ones((3, 2))) and np.array_equal(indices, [0, 2, 0])
    assert not np.shares_memory(out, grad) and out.flags.c_contiguous


SCATTER_ERRORS = [
    ((np.ones((2, 3)), np.array([0, 4]), (4, 3)), IndexError, "index 4 is out of bounds for axis 0 with size 4"),
    ((np.ones((2, 3)), np.array([0, -5]), (4, 3)), IndexError, "index -5 is out of bounds for axis 0 with size 4"),
    ((np.ones((1, 3)), np.array([2**63 - 1], np.uint64), (4, 3)), IndexError,
     "index 9223372036854775807 is out of bounds for axis 0 with size 4"),
    ((np.ones((1, 3)), np.array([0]), (0, 3)), IndexError, "index 0 is out of bounds for axis 0 with size 0"),
    ((np.ones((2, 3)), np.array([0.0, 1.0]), (4, 3)), TypeError, "scatter_add needs integer indices, got dtype float64"),
    ((np.ones((2, 3)), np.array([True, False]), (4, 3)), TypeError, "scatter_add needs integer indices, got dtype bool"),
    ((np.ones((2, 3)), np.array([[0, 1]]), (4, 3)), ValueError, r"scatter_add needs 1-D indices, got shape \(1, 2\)"),
    ((np.ones((2, 4)), np.array([0, 1]), (4, 3)), ValueError,
     r"scatter_add needs a gradient of shape \(2, 3\) for 2 indices into shape \(4, 3\), got \(2, 4\)"),
    ((np.ones((3, 3)), np.array([0, 1]), (4, 3)), ValueError, r"needs a gradient of shape \(2, 3\)"),
    ((np.ones(()), np.array([0]), ()), ValueError, r"scatter_add needs a shape of at least one dimension, got \(\)"),
    ((np.ones((1, 3), dtype=complex), np.array([0]), (4, 3)), TypeError, "need real numeric arrays, got dtype complex128"),
    ((np.ones((1, 3)), np.array([0]), (4, -3)), ValueError, "negative dimension"),
]


@pytest.mark.parametrize("args, error, message", SCATTER_ERRORS)
def test_scatter_add_errors_are_the_same_on_both_twins(args, error, message):
    messages = []
    for twin in TWINS.values():
        with pytest.raises(error, match=message) as info:
            twin.scatter_add(*args)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def test_kernels_read_broadcast_read_only_views():
    grad = np.broadcast_to(np.arange(3, dtype=np.float32), (4, 3))
    indices = np.broadcast_to(np.array([1]), (4,))
    np.testing.assert_array_equal(native.scatter_add(grad, indices, (2, 3)), pure.scatter_add(grad, indices, (2, 3)))
    logits = np.broadcast_to(np.array([0.5, -1.0, 2.0]), (4, 3))
    per_row = np.broadcast_to(np.float32(2.0), (4,))
    for target in (np.broadcast_to(np.array([2]), (4,)), np.broadcast_to(np.full(3, 1 / 3), (4, 3))):
        np.testing.assert_allclose(native.cross_entropy_backward(logits, target, per_row, "none"),
                                   pure.cross_entropy_backward(logits, target, per_row, "none"), rtol=1e-12)


def test_scatter_add_of_uint64_indices_in_range_matches():
    grad, indices = np.arange(6.0).reshape(3, 2), np.array([2, 0, 2], np.uint64)
    np.testing.assert_array_equal(native.scatter_add(grad, indices, (3, 2)), pure.scatter_add(grad, indices, (3, 2)))


def test_scatter_add_embedding_workload_matches():
    rng = np.random.default_rng(3)
    grad = rng.standard_normal((5000, 64), dtype=np.float32)
    indices = rng.integers(0, 700, size=5000)
    np.testing.assert_array_equal(native.scatter_add(grad, indices, (700, 64)), pure.scatter_add(grad, indices, (700, 64)))


# --------------------------------------------------------------------------- cross_entropy_backward
def reference_ce_grad(z, target, grad, reduction):
    """(softmax(z) sum(t) - t) * s in float64, written out."""
    z = np.asarray(z, dtype=np.float64)
    n, c = z.shape
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    t = np.eye(c)[np.asarray(target, dtype=int)] if np.ndim(target) == 1 else np.asarray(target, dtype=np.float64)
    g = np.asarray(grad, dtype=np.float64)
    s = g.reshape(n, 1) if reduction == "none" else np.full((n, 1), g.reshape(()) / (max(n, 1) if reduction == "mean" else 1))
    return (p * t.sum(axis=1, keepdims=True) - t) * s


@st.composite
def ce_cases(draw):
    n = draw(st.integers(0, 7))
    c = draw(st.integers(1, 7))
    if draw(st.booleans()):  # a large case, past the compiled kernel's libc-exp threshold
        n, c = draw(st.sampled_from([(70, 64), (5, 1000)]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = draw(st.sampled_from([np.float32, np.float32, np.float64, np.float64, np.float16, np.int64]))
    scale = draw(st.sampled_from([1.0, 30.0, 1e4]))
    logits = laid_out((rng.standard_normal((n, c)) * scale).astype(dtype), draw(LAYOUTS))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    if draw(st.booleans()):
        target = rng.integers(0, c, size=n).astype(draw(st.sampled_from([np.int64, np.int32, np.uint8, np.float64])))
        target = laid_out(target, draw(st.sampled_from(["C", "sliced", "reversed"])))
    else:
        target = laid_out(rng.random((n, c)).astype(draw(st.sampled_from([np.float32, np.float64]))), draw(LAYOUTS))
    grad_dtype = draw(st.sampled_from([np.float32, np.float64]))
    grad = rng.standard_normal(n).astype(grad_dtype) if reduction == "none" else np.asarray(
        rng.standard_normal(), dtype=grad_dtype).reshape(draw(st.sampled_from([(), (1,)])))
    return logits, target, grad, reduction


@requires_compiled_share("cross_entropy_backward", 0.9)
@SETTINGS
@given(ce_cases())
def test_cross_entropy_backward_twins_agree_with_each_other_and_the_formula(case):
    logits, target, grad, reduction = case
    ref = pure.cross_entropy_backward(logits, target, grad, reduction)
    out = native.cross_entropy_backward(logits, target, grad, reduction)
    assert out.dtype == ref.dtype and out.shape == ref.shape == logits.shape
    tol = 1e-5 if out.dtype == np.float32 else 1e-12
    bound = np.abs(np.asarray(grad, dtype=np.float64)).max(initial=0) * (1 + np.abs(np.asarray(target, dtype=np.float64)).max(initial=0)) * max(logits.shape[1], 1)
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol * bound)
    np.testing.assert_allclose(ref, reference_ce_grad(logits, target, grad, reduction), rtol=tol, atol=tol * bound)
    assert np.isfinite(out).all()


@pytest.mark.parametrize("name", TWINS)
def test_cross_entropy_backward_is_softmax_minus_one_hot(name):
    z = np.array([[0.0, np.log(3.0)], [10.0, 10.0]])
    out = TWINS[name].cross_entropy_backward(z, np.array([1, 0]), np.array(2.0), "sum")
    np.testing.assert_allclose(out, 2 * (np.array([[0.25, 0.75], [0.5, 0.5]]) - np.eye(2)[[1, 0]]), rtol=1e-14)


CE_ERRORS = [
    ((np.zeros((2, 3)), np.array([0, 3]), np.array(1.0), "mean"), "cross_entropy label 3 at position 1 is out of range for 3 classes"),
    ((np.zeros((2, 3)), np.array([0.5, 1]), np.array(1.0), "mean"), "got 0.5 at position 0"),
    ((np.zeros((2, 3)), np.array([0, 1]), np.array(1.0), "avg"), "reduction must be 'mean', 'sum' or 'none', got 'avg'"),
    ((np.zeros((2, 3)), np.array([0, 1]), np.ones(2), "mean"),
     r"needs a one-element gradient for reduction='mean', got shape \(2,\)"),
    ((np.zeros((2, 3)), np.array([0, 1]), np.ones(3), "none"),
     r"needs a gradient of shape \(2,\) for reduction='none', got \(3,\)"),
    ((np.zeros(3), np.array([0]), np.array(1.0), "sum"), r"logits of shape \(N, C\), got shape \(3,\)"),
    ((np.zeros((2, 0)), np.array([0, 0]), np.array(1.0), "sum"), "at least one class"),
]


@pytest.mark.parametrize("args, message", CE_ERRORS)
def test_cross_entropy_backward_errors_are_the_same_on_both_twins(args, message):
    messages = []
    for twin in TWINS.values():
        with pytest.raises(ValueError, match=message) as info:
            twin.cross_entropy_backward(*args)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


# --------------------------------------------------------------------------- cross_entropy_forward
def reference_ce_loss(z, labels, reduction):
    """Per-row logsumexp(z) - z[label] in float64, reduced."""
    z = np.asarray(z, dtype=np.float64)
    m = z.max(axis=1, keepdims=True) if z.shape[0] else np.zeros((0, 1))
    rows = np.log(np.exp(z - m).sum(axis=1)) + m[:, 0] - z[np.arange(z.shape[0]), np.asarray(labels, dtype=int)]
    if reduction == "none":
        return rows
    return rows.sum() if reduction == "sum" else (rows.mean() if rows.size else np.nan)


@st.composite
def ce_label_cases(draw):
    logits, target, grad, reduction = draw(ce_cases())
    n, c = logits.shape
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    labels = rng.integers(0, c, size=n).astype(draw(st.sampled_from([np.int64, np.int64, np.int32, np.uint8, np.float64])))
    return logits, laid_out(labels, draw(st.sampled_from(["C", "sliced", "reversed"]))), grad, reduction


@requires_compiled_share("cross_entropy_forward", 0.9)
@SETTINGS
@given(ce_label_cases())
def test_cross_entropy_forward_twins_agree_with_each_other_and_the_formula(case):
    logits, labels, grad, reduction = case
    ref_loss, ref_probs, ref_kept = pure.cross_entropy_forward(logits, labels, reduction)
    loss, probs, kept = native.cross_entropy_forward(logits, labels, reduction)
    assert loss.dtype == ref_loss.dtype == probs.dtype == ref_probs.dtype
    assert loss.shape == ref_loss.shape and probs.shape == ref_probs.shape == logits.shape
    assert kept.dtype == np.intp and not kept.flags.writeable and not np.shares_memory(kept, labels)
    np.testing.assert_array_equal(kept, ref_kept)
    np.testing.assert_array_equal(kept, labels.astype(np.intp))
    tol = 1e-5 if loss.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(probs, ref_probs, rtol=tol, atol=tol)
    expected = reference_ce_loss(logits, labels, reduction)
    scale = max(1.0, float(np.abs(np.asarray(logits, dtype=np.float64)).max(initial=0))) * (logits.shape[0] if reduction == "sum" else 1)
    np.testing.assert_allclose(loss, ref_loss, rtol=tol, atol=tol * scale * 4)
    np.testing.assert_allclose(ref_loss, expected, rtol=tol, atol=tol * scale * 4)
    # the backward from the kept softmax is the fused backward from the logits
    back = native.probs_minus_onehot(probs, kept, grad, reduction)
    ref_back = pure.probs_minus_onehot(ref_probs, ref_kept, grad, reduction)
    full = pure.cross_entropy_backward(logits, labels, grad, reduction)
    assert back.dtype == ref_back.dtype == full.dtype
    bound = np.abs(np.asarray(grad, dtype=np.float64)).max(initial=0) * 2
    np.testing.assert_allclose(back, ref_back, rtol=tol, atol=tol * bound)
    np.testing.assert_allclose(back, full, rtol=tol, atol=tol * bound)


@pytest.mark.parametrize("name", TWINS)
def test_cross_entropy_forward_of_targets_is_left_to_the_caller(name):
    assert TWINS[name].cross_entropy_forward(np.zeros((2, 3)), np.full((2, 3), 1 / 3), "mean") is None


@pytest.mark.parametrize("args, message", [args for args in CE_ERRORS if args[0][2].size == 1])
def test_cross_entropy_forward_errors_are_the_same_on_both_twins(args, message):
    logits, labels, _, reduction = args
    messages = []
    for twin in TWINS.values():
        with pytest.raises(ValueError, match=message) as info:
            twin.cross_entropy_forward(logits, labels, reduction)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


@pytest.mark.parametrize("name", TWINS)
def test_cross_entropy_forward_names_the_first_label_out_of_range(name):
    labels = np.array([1, 2, -1, 7, 0])
    with pytest.raises(ValueError, match="label -1 at position 2 is out of range for 3 classes"):
        TWINS[name].cross_entropy_forward(np.zeros((5, 3), np.float32), labels, "mean")


@pytest.mark.parametrize("name", TWINS)
def test_probs_minus_onehot_errors_are_the_same_on_both_twins(name):
    probs, kept = np.full((2, 3), 1 / 3), np.array([0, 2], dtype=np.intp)
    with pytest.raises(ValueError, match=r"one-element gradient for reduction='sum', got shape \(2,\)"):
        TWINS[name].probs_minus_onehot(probs, kept, np.ones(2), "sum")
    with pytest.raises(ValueError, match=r"gradient of shape \(2,\) for reduction='none', got \(3,\)"):
        TWINS[name].probs_minus_onehot(probs, kept, np.ones(3), "none")
    with pytest.raises(ValueError, match=r"needs labels in \[0, 3\), got \[0, 3\]"):
        TWINS[name].probs_minus_onehot(probs, np.array([0, 3], dtype=np.intp), np.ones(()), "sum")


# --------------------------------------------------------------------------- references
def _reference_cases():
    z = np.ones((3, 4), np.float32)
    labels, targets = np.array([0, 3, 1]), np.full((3, 4), 0.25, np.float32)
    one, per_row = np.array(1.0, np.float32), np.ones(3, np.float32)
    bad = np.array([0, 9, 1])
    return {
        "scatter_add": (native.scatter_add, (z, labels, (5, 4))),
        "scatter_add converting": (native.scatter_add, (z.astype(np.float64).T.T[::-1], labels.astype(np.int32), (5, 4))),
        "scatter_add error": (native.scatter_add, (z, bad, (5, 4))),
        "cross_entropy_backward labels": (native.cross_entropy_backward, (z, labels, one, "mean")),
        "cross_entropy_backward targets": (native.cross_entropy_backward, (z[::-1], targets, per_row, "none")),
        "cross_entropy_backward error": (native.cross_entropy_backward, (z, bad, one, "sum")),
        "cross_entropy_forward labels": (native.cross_entropy_forward, (z[::-1], labels, "mean")),
        "cross_entropy_forward int32 labels": (native.cross_entropy_forward, (z, labels.astype(np.int32), "none")),
        "cross_entropy_forward error": (native.cross_entropy_forward, (z, bad, "sum")),
        "probs_minus_onehot": (native.probs_minus_onehot, (z, labels, one, "mean")),
    }


@pytest.mark.parametrize("case", list(_reference_cases()))
def test_native_kernels_keep_no_reference_to_inputs(case):
    fn, args = _reference_cases()[case]
    arrays = [a for a in args if isinstance(a, np.ndarray)]

    def call():
        try:
            return fn(*args)
        except (ValueError, IndexError):
            return None

    call()
    counts = [sys.getrefcount(a) for a in arrays]
    for _ in range(20):
        result = call()
    del result
    assert [sys.getrefcount(a) for a in arrays] == counts
