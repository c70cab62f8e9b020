"""The RNN and attention workloads of the bench (issue 15): the hand-written NumPy steps compute
the gradients the library computes, and those gradients are right (finite differences)."""
import numpy as np
import pytest

import clumsygrad
from clumsygrad.bench import workloads

from helpers import numeric_gradient

pytestmark = pytest.mark.both_backends

SMALL_RNN = workloads.RNNSize(batch=3, steps=4, vocab=5, embed=3, hidden=4)
SMALL_ATTENTION = workloads.AttentionSize(batch=2, seq=3, width=4)

CASES = {
    "rnn": (workloads.rnn_data, workloads.ClumsyRNN, workloads.NumpyRNN, workloads.RNN_PARAMS),
    "attention": (workloads.attention_data, workloads.ClumsyAttention, workloads.NumpyAttention,
                  workloads.ATTENTION_PARAMS),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("backend_name", ["cython", "python"])
def test_hand_written_numpy_gradients_equal_the_librarys(backend_name, name):
    clumsygrad.set_backend(backend_name)  # the autouse fixture restores the previous one
    make, Clumsy, Numpy, params = CASES[name]
    data = make()  # the benchmarked size, float32
    ours, hand = Clumsy(data).gradients(), Numpy(data).gradients()
    assert sorted(ours) == sorted(hand) == sorted(params)
    for k in params:
        assert ours[k].shape == hand[k].shape == data[k].shape and ours[k].dtype == hand[k].dtype == np.float32
        scale = np.abs(hand[k]).max()
        assert scale > 1e-6, f"{name} {k}: no gradient reaches it"
        np.testing.assert_allclose(ours[k], hand[k], rtol=1e-4, atol=1e-5 * scale, err_msg=f"{name} {k}")


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("backend_name", ["cython", "python"])
def test_float64_gradients_agree_to_rounding(backend_name, name):
    clumsygrad.set_backend(backend_name)
    make, Clumsy, Numpy, params = CASES[name]
    data = make(dtype=np.float64)
    ours, hand = Clumsy(data).gradients(), Numpy(data).gradients()
    for k in params:
        assert ours[k].dtype == np.float64
        np.testing.assert_allclose(ours[k], hand[k], rtol=1e-9, atol=1e-12, err_msg=f"{name} {k}")


@pytest.mark.parametrize("name", list(CASES))
def test_hand_written_gradients_match_finite_differences(name):
    make, _, Numpy, params = CASES[name]
    data = make(SMALL_RNN if name == "rnn" else SMALL_ATTENTION, seed=3, dtype=np.float64)
    model = Numpy(data)
    hand = {k: v.copy() for k, v in model.gradients().items()}
    for k in params:
        original = model.p[k].copy()

        def loss(value, k=k):
            model.p[k] = value
            return model.loss()

        expected = numeric_gradient(loss, original)
        model.p[k] = original
        np.testing.assert_allclose(hand[k], expected, rtol=1e-6, atol=1e-8, err_msg=f"{name} {k}")


@pytest.mark.parametrize("name", list(CASES))
def test_a_step_lowers_the_loss_the_same_way(name):
    make, Clumsy, Numpy, params = CASES[name]
    data = make(dtype=np.float64)
    ours, hand = Clumsy(data, lr=0.5), Numpy(data, lr=0.5)
    before = hand.loss()
    ours.step()
    hand.step()
    assert hand.loss() < before
    for k in params:
        np.testing.assert_allclose(ours.weights()[k], hand.weights()[k], rtol=1e-9, atol=1e-12, err_msg=k)
