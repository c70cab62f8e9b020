"""Values and errors of issue 14's new ops: the losses against PyTorch's definitions written out
element by element here, NumPy's results for the array ops, and clear errors for bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest

import clumsygrad as cg
from clumsygrad.tensor import Tensor, TensorType

LOGP = np.log(np.array([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1], [0.25, 0.25, 0.5]]))
LABELS = np.array([1, 2, -100, 0])
WEIGHT = np.array([2.0, 0.5, 1.0])


def _nll_reference(logp, labels, weight, ignore_index, reduction):
    losses, weights = [], []
    for row, y in zip(logp, labels):
        if y == ignore_index:
            losses.append(0.0)
            weights.append(0.0)
            continue
        w = 1.0 if weight is None else weight[y]
        losses.append(-w * row[y])
        weights.append(w)
    if reduction == "none":
        return np.array(losses)
    if reduction == "sum":
        return sum(losses)
    return sum(losses) / sum(weights)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weight", [None, WEIGHT])
def test_nll_loss_is_pytorchs(reduction, weight):
    got = cg.nll_loss(Tensor(LOGP, dtype=np.float64), LABELS, weight=weight, reduction=reduction)
    np.testing.assert_allclose(got.data, _nll_reference(LOGP, LABELS, weight, -100, reduction), rtol=1e-12)


def test_nll_loss_over_extra_dimensions_and_its_gradient():
    logp = np.log(np.random.default_rng(0).dirichlet(np.ones(3), size=(2, 4))).transpose(0, 2, 1)  # (N, C, d)
    labels = np.array([[0, 2, 1, 1], [2, 2, 0, -100]])
    x = Tensor(logp, TensorType.PARAMETER, dtype=np.float64)
    loss = cg.nll_loss(x, labels)
    flat = logp.transpose(0, 2, 1).reshape(-1, 3)
    np.testing.assert_allclose(loss.data, _nll_reference(flat, labels.reshape(-1), None, -100, "mean"))
    loss.backward()
    expected = np.zeros_like(logp)
    for n in range(2):
        for d in range(4):
            if labels[n, d] != -100:
                expected[n, labels[n, d], d] = -1.0 / 7
    np.testing.assert_allclose(x.grad, expected)


def test_nll_loss_ignores_minus_infinity_it_does_not_pick():
    logp = np.array([[-np.inf, -0.1], [-0.5, -np.inf]])
    got = cg.nll_loss(Tensor(logp, dtype=np.float64), np.array([1, 0]))
    assert got.item() == pytest.approx(0.3)


def test_nll_loss_copies_its_labels():
    labels = np.array([0, 1])
    x = Tensor(np.log(np.full((2, 2), 0.5)), TensorType.PARAMETER, dtype=np.float64)
    loss = cg.nll_loss(x, labels, reduction="sum")
    labels[:] = 1
    loss.backward()
    np.testing.assert_array_equal(x.grad, [[-1.0, 0.0], [0.0, -1.0]])


@pytest.mark.parametrize("labels,error,match", [
    (np.array([0, 3]), ValueError, "label 3 is out of range for 3 classes"),
    (np.array([0]), ValueError, r"target of shape \(2,\) expected"),
    (np.array([0.5, 1.0]), TypeError, "integer class labels"),
])
def test_nll_loss_bad_labels(labels, error, match):
    with pytest.raises(error, match=match):
        cg.nll_loss(Tensor(np.zeros((2, 3))), labels)


def _huber(d, delta):
    return 0.5 * d * d if abs(d) < delta else delta * (abs(d) - 0.5 * delta)


def _smooth_l1(d, beta):
    if beta == 0:
        return abs(d)
    return 0.5 * d * d / beta if abs(d) < beta else abs(d) - 0.5 * beta


D_IN = np.array([0.3, -2.0, 1.1, -0.05, 4.0])
D_TARGET = np.array([0.0, 0.5, -0.4, 0.2, 1.0])


@pytest.mark.parametrize("delta", [0.5, 1.0, 2.5])
def test_huber_loss_is_pytorchs(delta):
    per = [_huber(a - b, delta) for a, b in zip(D_IN, D_TARGET)]
    got = cg.huber_loss(Tensor(D_IN, dtype=np.float64), D_TARGET, delta=delta)
    assert got.item() == pytest.approx(np.mean(per))
    none = cg.huber_loss(Tensor(D_IN, dtype=np.float64), D_TARGET, reduction="none", delta=delta)
    np.testing.assert_allclose(none.data, per)


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
def test_smooth_l1_loss_is_pytorchs(beta):
    per = [_smooth_l1(a - b, beta) for a, b in zip(D_IN, D_TARGET)]
    got = cg.smooth_l1_loss(Tensor(D_IN, dtype=np.float64), D_TARGET, reduction="sum", beta=beta)
    assert got.item() == pytest.approx(np.sum(per))


P = np.array([[0.1, 0.6, 0.3], [0.0, 0.5, 0.5]])  # a zero probability contributes 0
Q_LOG = np.log(np.array([[0.2, 0.5, 0.3], [0.3, 0.3, 0.4]]))


def _kl_elements(logq, p):
    return np.array([[0.0 if t == 0 else t * (math.log(t) - x) for x, t in zip(rx, rt)] for rx, rt in zip(logq, p)])


@pytest.mark.parametrize("reduction,reduce", [
    ("sum", np.sum), ("mean", np.mean), ("batchmean", lambda e: np.sum(e) / 2), ("none", lambda e: e),
])
def test_kl_div_is_pytorchs(reduction, reduce):
    want = reduce(_kl_elements(Q_LOG, P))
    got = cg.kl_div(Tensor(Q_LOG, dtype=np.float64), P, reduction=reduction)
    np.testing.assert_allclose(got.data, want, rtol=1e-12)
    with_log = cg.kl_div(Tensor(Q_LOG, dtype=np.float64), np.log(np.where(P > 0, P, 1e-300)),
                         reduction=reduction, log_target=True)
    np.testing.assert_allclose(with_log.data, want, rtol=1e-9, atol=1e-12)


def test_losses_check_shapes_and_reductions():
    a, b = Tensor(np.zeros(3)), Tensor(np.zeros(2))
    for fn in (cg.huber_loss, cg.smooth_l1_loss, cg.kl_div):
        with pytest.raises(ValueError, match=r"one shape, got \(3,\) and \(2,\)"):
            fn(a, b)
    with pytest.raises(ValueError, match="batchmean"):
        cg.kl_div(a, a, reduction="average")
    with pytest.raises(ValueError, match="reduction"):
        cg.huber_loss(a, a, reduction="batchmean")


# ----------------------------------------------------------------------------- array ops: errors
@pytest.mark.parametrize("call,error,match", [
    (lambda t: cg.einsum("ij,jk", t), ValueError, "names 2 operands, 1 given"),
    (lambda t: cg.einsum("ijk", t), ValueError, "do not fit an operand of shape"),
    (lambda t: cg.einsum("ij,ij", t, np.ones((3, 2))), ValueError, "dimension 'i' has lengths"),
    (lambda t: cg.pad(t, 1, mode="reflect"), ValueError, "mode='constant' only"),
    (lambda t: cg.pad(t, ((1, 2), (3, 4), (5, 6))), ValueError, "does not fit"),
    (lambda t: cg.pad(t, -1), ValueError, "cannot be negative"),
    (lambda t: cg.dot(t, np.ones(2)), ValueError, "not aligned"),
    (lambda t: cg.tensordot(t, np.ones((2, 3)), axes=([0], [1])), ValueError, "shape mismatch"),
    (lambda t: cg.diagonal(t, axis1=1, axis2=-1), ValueError, "cannot be the same"),
    (lambda t: cg.trace(cg.flatten(t)), ValueError, "at least 2 dimensions"),
    (lambda t: cg.take(t, [0.5]), TypeError, "integers"),
])
def test_bad_arguments_are_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(Tensor(np.ones((2, 3)), TensorType.PARAMETER))


def test_einsum_implicit_output_is_numpys():
    a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    for spec, ops in (("ij,jk", (a, b)), ("bA,AC", (a, b)), ("ji", (a,)), ("ii", (a[:, :2],)),
                      ("...j,j", (np.ones((2, 2, 3)), np.arange(3.0))), ("i,i", (np.arange(3.0), np.ones(1)))):
        np.testing.assert_allclose(cg.einsum(spec, *ops).data, np.einsum(spec, *ops))



def _pad(t):
    width = np.array([[1, 2], [1, 1]])
    return cg.pad(t, width), lambda: width.fill(0)


def _tile(t):
    reps = [1, 2]
    return cg.tile(t, reps), lambda: reps.__setitem__(0, 3)


def _roll(t):
    shift = [1, 2]
    return cg.roll(t, shift, axis=(0, 1)), lambda: shift.__setitem__(0, 0)


def _take(t):
    index = np.array([2, 0, 2])
    return cg.take(t, index, axis=1), lambda: index.fill(1)


def _repeat(t):
    repeats = np.array([2, 1])
    return cg.repeat(t, repeats, axis=0), lambda: repeats.__setitem__(0, 1)


def _tensordot(t):
    axes = [[1], [0]]
    return cg.tensordot(t, np.arange(6.0).reshape(3, 2), axes=axes), lambda: axes.__setitem__(1, [1])


@pytest.mark.parametrize("record", [_pad, _tile, _roll, _take, _repeat, _tensordot])
def test_arguments_changed_after_recording_do_not_move_the_gradient(record):
    def grad_of(change: bool):
        t = Tensor(np.arange(6.0).reshape(2, 3), TensorType.PARAMETER, dtype=np.float64)
        out, mutate = record(t)
        if change:
            mutate()
        weight = np.random.default_rng(0).standard_normal(out.shape)
        (out * Tensor(weight, dtype=np.float64)).sum().backward()
        return t.grad

    np.testing.assert_array_equal(grad_of(True), grad_of(False))
