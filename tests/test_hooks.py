"""Tensor.register_hook and retain_grad, on both engines (the ``backend`` fixture) and in func."""
from __future__ import annotations

import gc
import threading

import numpy as np
import pytest

import clumsygrad as cg
from clumsygrad import func
from clumsygrad._graph import hooks
from clumsygrad.tensor import Tensor, TensorType


def param(values, dtype=np.float64):
    return Tensor(np.asarray(values, dtype=float), TensorType.PARAMETER, dtype=dtype)


@pytest.fixture(autouse=True)
def no_hooks_left():
    yield
    gc.collect()
    assert not hooks.active(), "a test left a hook registered"


def test_hook_sees_the_gradient_of_a_leaf_and_an_intermediate():
    x = param([1.0, 2.0])
    y = x * x
    seen = {}
    hy = y.register_hook(lambda g: seen.setdefault("y", g.copy()))
    hx = x.register_hook(lambda g: seen.setdefault("x", g.copy()))
    cg.sum(y * 3.0).backward()
    np.testing.assert_allclose(seen["y"], [3.0, 3.0])
    np.testing.assert_allclose(seen["x"], [6.0, 12.0])
    assert isinstance(seen["x"], np.ndarray)
    hx.remove()
    hy.remove()


def test_hook_replacement_flows_to_parents_and_into_grad():
    x = param([1.0, 2.0])
    y = x * 2.0
    with y.register_hook(lambda g: g * 10.0):
        cg.sum(y).backward()
    np.testing.assert_allclose(y.grad, [10.0, 10.0])
    np.testing.assert_allclose(x.grad, [20.0, 20.0])
    x.grad = None
    with x.register_hook(lambda g: np.zeros_like(g) + 7.0):
        cg.sum(x * 2.0).backward()
    np.testing.assert_allclose(x.grad, [7.0, 7.0])


def test_hooks_run_in_order_and_remove_is_idempotent():
    x = param([1.0])
    calls = []
    h1 = x.register_hook(lambda g: calls.append(1) or g + 1.0)
    h2 = x.register_hook(lambda g: calls.append(2) or g * 2.0)
    cg.sum(x * 1.0).backward()
    assert calls == [1, 2]
    np.testing.assert_allclose(x.grad, [4.0])
    h1.remove()
    h1.remove()
    calls.clear()
    x.grad = None
    cg.sum(x * 1.0).backward()
    assert calls == [2]
    np.testing.assert_allclose(x.grad, [2.0])
    h2.remove()
    x.grad = None
    cg.sum(x * 1.0).backward()
    np.testing.assert_allclose(x.grad, [1.0])


def test_raising_hook_leaves_every_grad_unchanged():
    a, b = param([1.0, 2.0]), param([3.0, 4.0])
    a.grad = np.array([0.5, 0.5])

    def boom(g):
        raise KeyError("boom")

    with b.register_hook(boom):
        loss = cg.sum(a * b)
        with pytest.raises(KeyError, match="boom"):
            loss.backward()
    np.testing.assert_array_equal(a.grad, [0.5, 0.5])
    assert b.grad is None


def test_hook_returning_wrong_shape_is_a_clear_error():
    x = param([1.0, 2.0])
    with x.register_hook(lambda g: np.ones(3)):
        with pytest.raises(ValueError, match=r"shape \(3,\), expected \(2,\)"):
            cg.sum(x * 1.0).backward()
    assert x.grad is None


def test_kept_gradient_is_not_aliased_by_grad():
    x = param([1.0, 2.0])
    kept = []
    with x.register_hook(lambda g: kept.append(g)):
        cg.sum(x * 3.0).backward()
        cg.sum(x * 3.0).backward()
    np.testing.assert_allclose(x.grad, [6.0, 6.0])
    np.testing.assert_allclose(kept[0], [3.0, 3.0])  # not accumulated into by the second pass


def test_hook_on_a_scalar_graph_and_float32():
    x = Tensor(2.0, TensorType.PARAMETER)  # 0-d float32: the compiled engine's double path
    y = x * x + 1.0
    seen = []
    with y.register_hook(lambda g: seen.append(g) or g * 3.0):
        y.backward()
    assert seen[0].shape == () and seen[0].dtype == np.float32
    assert x.grad == pytest.approx(12.0)


def test_hook_in_create_graph_mode_gets_a_tensor():
    x = param([1.0, 2.0])
    y = x * x
    seen = []

    def hook(g):
        seen.append(g)
        return g * 2.0

    with y.register_hook(hook):
        (g,) = func.gradients(cg.sum(y), [x], create_graph=True)
        assert isinstance(seen[0], Tensor)
        np.testing.assert_allclose(g.data, 4 * x.data)
        (g1,) = func.gradients(cg.sum(y), [x])
        assert isinstance(seen[1], np.ndarray)
        np.testing.assert_allclose(g1.data, 4 * x.data)
    (h,) = func.gradients(cg.sum(g), [x])
    np.testing.assert_allclose(h.data, [4.0, 4.0])


def test_hook_registration_errors():
    with pytest.raises(RuntimeError, match="does not require gradients"):
        Tensor([1.0]).register_hook(lambda g: g)
    with pytest.raises(TypeError, match="callable"):
        param([1.0]).register_hook(3)


def test_hooks_die_with_their_tensor():
    x = param([1.0])
    x.register_hook(lambda g: g)
    assert hooks.active()
    del x
    gc.collect()
    assert not hooks.active()


def test_retain_grad_is_a_documented_no_op():
    x = param([1.0, 2.0])
    y = x * 2.0
    assert y.retain_grad() is None
    cg.sum(y).backward()
    np.testing.assert_allclose(y.grad, [1.0, 1.0])


def test_backward_inside_a_hook_does_not_deadlock():
    w = param([1.0, 2.0])
    other = param([3.0])
    x = param([0.5, 0.5])

    def hook(g):
        cg.sum(other * other).backward()  # a nested pass from inside the running one
        func.grad(lambda t: cg.sum(t ** 3))(np.ones(2))  # and a transform
        return g

    with x.register_hook(hook):
        done = []
        t = threading.Thread(target=lambda: (cg.sum(x * w).backward(), done.append(True)))
        t.start()
        t.join(30)
    assert done, "backward with a hook that runs a nested pass did not finish"
    np.testing.assert_allclose(x.grad, w.data)
    np.testing.assert_allclose(other.grad, [6.0])


def test_hooks_with_threads():
    x = param([1.0, 2.0])
    count = []
    lock = threading.Lock()

    def hook(g):
        with lock:
            count.append(1)

    with x.register_hook(hook):
        def work():
            for _ in range(20):
                cg.sum(x * 2.0).backward()

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert len(count) == 80
    np.testing.assert_allclose(x.grad, [160.0, 160.0])
