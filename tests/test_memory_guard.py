"""The memory guard (opt-in): arrays a live graph reads are read-only; flags come back when it is freed."""
import gc

import numpy as np
import pytest

import clumsygrad
from clumsygrad._graph import guard
from clumsygrad.activation import sigmoid, tanh
from clumsygrad.math import exp, sum
from clumsygrad.optimizer import SGD, Adam
from clumsygrad.tensor import Tensor, TensorType


@pytest.fixture(autouse=True)
def guard_off_after():
    yield
    clumsygrad.set_memory_guard(False)
    gc.collect()
    assert guard.guarded_count() == 0, "a test left arrays guarded"


def param(values):
    return Tensor(values, tensor_type=TensorType.PARAMETER, dtype=np.float64)


def test_off_by_default_and_context_restores():
    assert not clumsygrad.is_memory_guard_enabled()
    with clumsygrad.memory_guard():
        assert clumsygrad.is_memory_guard_enabled()
        with clumsygrad.memory_guard(False):
            assert not clumsygrad.is_memory_guard_enabled()
        assert clumsygrad.is_memory_guard_enabled()
    assert not clumsygrad.is_memory_guard_enabled()
    with pytest.raises(KeyError):
        with clumsygrad.memory_guard():
            raise KeyError("inside")
    assert not clumsygrad.is_memory_guard_enabled()


@pytest.mark.parametrize("op", [lambda x, w: x * w, lambda x, w: exp(x * w), lambda x, w: sigmoid(x + w),
                                lambda x, w: tanh(x) * w])
def test_raw_write_into_a_saved_array_raises_instead_of_a_wrong_gradient(op):
    x, w = param([1.0, 2.0]), param([3.0, 4.0])
    with clumsygrad.memory_guard():
        y = sum(op(x, w))
    with pytest.raises(ValueError, match="read-only"):
        w.data[:] = 0
    with pytest.raises(ValueError, match="read-only"):
        x.data[0] = 5
    y.backward()  # the values are the recorded ones: the gradient is right
    assert x.grad is not None and np.all(np.isfinite(x.grad))
    assert w.data.flags.writeable and x.data.flags.writeable  # backward freed the graph
    w.data[:] = 0


def test_flags_come_back_when_the_graph_dies_unbackpropagated():
    w = param([1.0, 2.0])
    with clumsygrad.memory_guard():
        y = sum(w * w + 1.0)
    assert not w.data.flags.writeable
    del y
    gc.collect()
    assert w.data.flags.writeable


def test_keep_graph_keeps_the_guard_until_the_freeing_backward():
    w = param([1.0, 2.0])
    with clumsygrad.memory_guard():
        y = sum(w * 3.0)
    y.backward(keep_graph=True)
    assert not w.data.flags.writeable
    y.backward()
    assert w.data.flags.writeable
    np.testing.assert_array_equal(w.grad, [6.0, 6.0])


def test_two_graphs_share_an_array_and_release_it_after_the_last():
    w = param([1.0, 2.0])
    with clumsygrad.memory_guard():
        a = sum(w * 2.0)
        b = sum(w * 3.0)
    a.backward()
    assert not w.data.flags.writeable
    b.backward()
    assert w.data.flags.writeable


def test_read_only_arrays_of_the_user_stay_read_only():
    data = np.array([1.0, 2.0])
    w = param(data)
    w.data.flags.writeable = False
    with clumsygrad.memory_guard():
        y = sum(w * 2.0)
    y.backward()
    assert not w.data.flags.writeable


@pytest.mark.parametrize("make_optimizer", [lambda ps: SGD(ps, lr=0.1), lambda ps: Adam(ps, lr=0.1)])
def test_training_loop_and_an_evaluation_graph_kept_across_steps(make_optimizer):
    """The 0.2.1 pattern (forward, backward, step, zero_grad) with a live evaluation graph."""
    rng = np.random.default_rng(0)
    w = param(rng.standard_normal((3, 2)))
    x = Tensor(rng.standard_normal((4, 3)), dtype=np.float64)
    opt = make_optimizer([w])
    with clumsygrad.memory_guard():
        evaluation = sum(x @ w)  # kept alive, never backpropagated
        for _ in range(3):
            loss = sum((x @ w) * (x @ w))
            loss.backward()
            opt.step()
            opt.zero_grad()
    assert not w.data.flags.writeable  # the evaluation graph still guards it
    with pytest.raises(RuntimeError, match="modified in place"):
        evaluation.backward()  # the step changed w: a clear error, not a wrong gradient
    del evaluation
    gc.collect()
    assert w.data.flags.writeable


def test_views_are_as_the_readme_says():
    """The guard locks arrays that own their memory.  A view taken after that is read-only too
    (NumPy copies the flag); a view made before, such as the result of basic indexing in the
    forward pass, keeps its own flag and writes through, and ``backward()`` then uses the
    changed values: the documented gap (README, Guarantees)."""
    with clumsygrad.memory_guard():
        w = param([1.0, 2.0, 3.0])
        early = w.data[0:2]  # a view made before any graph
        v = w[0:2]  # basic indexing: v.data is a view of w.data, made in the forward pass
        loss = sum(v * w[0:2])
        late = w.data[1:]
        assert not w.data.flags.writeable
        assert not late.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            late[:] = 0.0
        assert v.data.base is not None and v.data.flags.writeable
        assert early.flags.writeable
        v.data[:] = 10.0  # goes through, into w's buffer
        assert w.data.tolist() == [10.0, 10.0, 3.0]
        loss.backward()
    np.testing.assert_array_equal(w.grad, [20.0, 20.0, 0.0])  # d sum(v*v)/dw at the changed values
    assert w.data.flags.writeable
