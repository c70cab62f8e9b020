"""clumsygrad.profile(): per-op calls and time, forward and backward, on both engines."""
import numpy as np
import pytest

import clumsygrad
from clumsygrad import profiler
from clumsygrad.activation import relu, softmax, tanh
from clumsygrad.loss import mse_loss
from clumsygrad.tensor import Tensor, TensorType


def small_step():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((4, 3)))
    w = Tensor(rng.standard_normal((3, 5)), tensor_type=TensorType.PARAMETER)
    b = Tensor(rng.standard_normal(5), tensor_type=TensorType.PARAMETER)
    y = Tensor(np.eye(5, dtype=np.float32)[[0, 1, 2, 3]])
    loss = mse_loss(softmax(tanh(relu(x @ w + b)), axis=-1), y)
    loss.backward()
    return w


def test_profile_counts_each_ops_forward_and_backward_calls():
    with clumsygrad.profile() as prof:
        for _ in range(3):
            small_step()
    stats = prof.stats()
    for op in ("matmul", "add_broadcast", "relu", "tanh", "softmax", "mse"):
        assert op in stats, (op, sorted(stats))
        assert stats[op]["forward_calls"] == 3, (op, stats[op])
        assert stats[op]["backward_calls"] == 3, (op, stats[op])
        assert stats[op]["backward_s"] > 0
    for op in ("relu", "tanh", "softmax", "mse"):  # registry functions: their forward is timed
        assert stats[op]["forward_s"] > 0, (op, stats[op])
    for op in ("matmul", "add_broadcast"):  # recorded by operators (C fast paths): counted only
        assert stats[op]["forward_s"] is None, (op, stats[op])


def test_the_table_is_sorted_by_total_time_and_names_every_op():
    with clumsygrad.profile() as prof:
        small_step()
    text = str(prof)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["op", "fwd", "calls"]
    rows = [line for line in lines[2:] if line and not line.startswith(("profiled", "fwd time"))]
    names = [r.split()[0] for r in rows]
    totals = [prof.stats()[n]["backward_s"] + (prof.stats()[n]["forward_s"] or 0) for n in names]
    assert totals == sorted(totals, reverse=True)
    assert set(names) == set(prof.stats())


def test_nothing_is_recorded_outside_the_block_and_profiles_do_not_nest():
    with clumsygrad.profile() as prof:
        small_step()
        with pytest.raises(RuntimeError, match="do not nest"):
            with clumsygrad.profile():
                pass
    before = prof.stats()
    small_step()
    assert prof.stats() == before
    assert profiler.active is None


def test_an_exception_inside_the_block_still_turns_recording_off():
    with pytest.raises(ZeroDivisionError):
        with clumsygrad.profile():
            small_step()
            1 / 0
    assert profiler.active is None
    with clumsygrad.profile() as prof:  # a new profile can start
        small_step()
    assert prof.stats()["matmul"]["backward_calls"] == 1


def test_a_failing_backward_function_is_still_timed_and_the_pass_fails_as_before():
    w = Tensor(np.ones((2, 2)), tensor_type=TensorType.PARAMETER)
    out = clumsygrad.math.sum(w @ w)
    w._bump_version()
    with clumsygrad.profile() as prof:
        with pytest.raises(RuntimeError, match="modified in place"):
            out.backward()
    assert w.grad is None
    assert prof.stats()["sum"]["backward_calls"] == 1  # the node that ran before the failing one


def test_forward_begin_end_is_what_the_op_registry_calls():
    with clumsygrad.profile() as prof:
        for _ in range(2):
            start = profiler.forward_begin()
            profiler.forward_end("my_op", start)
    stats = prof.stats()["my_op"]
    assert stats["forward_calls"] == 2 and stats["forward_s"] >= 0
    assert stats["backward_calls"] == 0
    profiler.forward_end("my_op", 0)  # off: ignored, no error
    assert prof.stats()["my_op"]["forward_calls"] == 2


def test_profiled_gradients_equal_unprofiled_ones():
    expected = small_step().grad.copy()
    with clumsygrad.profile():
        got = small_step().grad
    np.testing.assert_array_equal(got, expected)
