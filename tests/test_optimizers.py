"""Optimizers: PyTorch's update rules, 0.2.x signatures and attributes, validation at
construction, per-parameter Adam steps, gradient clipping and state dicts.

Each rule is checked against the formula of its docstring written out here in float64.
Every test runs on both backends (the conftest fixture), so the fused Adam kernel and its
pure twin each drive the optimizers.
"""
import math
import warnings

import numpy as np
import pytest

import clumsygrad
from clumsygrad import _backend
from clumsygrad.optimizer import SGD, Adam, AdamW, Optimizer, clip_grad_norm
from clumsygrad.tensor import Tensor, TensorType

P = TensorType.PARAMETER


def params_from(arrays, dtype=np.float64):
    return [Tensor(a, tensor_type=P, dtype=dtype) for a in arrays]


START = [np.array([1.0, -2.0, 0.5]), np.array([[0.25, 0.0], [3.0, -1.0]])]
GRADS = [
    [np.array([0.3, -1.0, 2.0]), np.array([[1.0, 0.5], [-0.5, 0.0]])],
    [np.array([0.1, 0.0, -3.0]), np.array([[0.2, -0.1], [0.4, 2.0]])],
    [np.array([-0.7, 2.5, 1.0]), np.array([[-1.0, 0.3], [0.0, -0.2]])],
    [np.array([0.4, 0.4, -0.4]), np.array([[0.1, 0.1], [0.1, 0.1]])],
]


def run(opt, params, grads=GRADS):
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g
        opt.step()


# --------------------------------------------------------------------------- update rules
@pytest.mark.parametrize("momentum, nesterov, wd", [
    (0.0, False, 0.0), (0.9, False, 0.0), (0.9, True, 0.0), (0.5, False, 0.1), (0.8, True, 0.01),
    (0.0, False, 0.2),
])
def test_sgd_follows_pytorchs_rule(momentum, nesterov, wd):
    lr = 0.1
    params = params_from(START)
    run(SGD(params, lr, momentum=momentum, nesterov=nesterov, weight_decay=wd), params)
    for i, start in enumerate(START):
        p, buf = start.copy(), None
        for step_grads in GRADS:
            g = step_grads[i] + wd * p
            if momentum:
                buf = g.copy() if buf is None else momentum * buf + g
                g = g + momentum * buf if nesterov else buf
            p = p - lr * g
        np.testing.assert_allclose(params[i].data, p, rtol=1e-12, atol=1e-12)


def adam_reference(start, grads, lr, beta1, beta2, eps, wd, decoupled):
    p, m, v = start.copy(), np.zeros_like(start), np.zeros_like(start)
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        p = p - lr * (m / (1 - beta1 ** t)) / (np.sqrt(v / (1 - beta2 ** t)) + eps)
    return p, m, v


@pytest.mark.parametrize("cls, wd", [(Adam, 0.0), (Adam, 0.1), (AdamW, 0.01), (AdamW, 0.3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_and_adamw_follow_pytorchs_rules(cls, wd, dtype):
    lr, beta1, beta2, eps = 0.05, 0.8, 0.95, 1e-6
    params = params_from(START, dtype)
    opt = cls(params, lr, beta1, beta2, eps, weight_decay=wd)
    run(opt, params)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for i, start in enumerate(START):
        p, m, v = adam_reference(start, [g[i] for g in GRADS], lr, beta1, beta2, eps, wd, cls is AdamW)
        np.testing.assert_allclose(params[i].data, p, rtol=tol, atol=tol)
        np.testing.assert_allclose(opt.biased_first_moment[i], m, rtol=tol, atol=tol)
        np.testing.assert_allclose(opt.biased_second_moment[i], v, rtol=tol, atol=tol)
        assert params[i].data.dtype == dtype and opt.biased_first_moment[i].dtype == dtype
    assert opt.t == len(GRADS) and opt.step_counts == [len(GRADS)] * 2


def test_adamw_decays_weights_even_with_a_zero_gradient():
    # decoupled decay shrinks the weights; Adam's L2 term would instead move them by about lr
    p = Tensor([2.0, -4.0], tensor_type=P, dtype=np.float64)
    opt = AdamW([p], lr=0.1, weight_decay=0.5)
    p.grad = np.zeros(2)
    opt.step()
    np.testing.assert_allclose(p.data, [2.0 * 0.95, -4.0 * 0.95], rtol=1e-12)


def test_defaults_and_positional_order_are_0_2_x():
    p = Tensor([1.0], tensor_type=P)
    sgd = SGD([p])
    assert (sgd.lr, sgd.momentum, sgd.nesterov, sgd.weight_decay) == (0.01, 0, False, 0)
    assert SGD([p], 0.3).lr == 0.3
    adam = Adam([p], 0.01, 0.8, 0.9, 1e-6)
    assert (adam.lr, adam.beta1, adam.beta2, adam.eps, adam.weight_decay) == (0.01, 0.8, 0.9, 1e-6, 0)
    adamw = AdamW([p])
    assert (adamw.lr, adamw.beta1, adamw.beta2, adamw.eps, adamw.weight_decay) == (0.001, 0.9, 0.999, 1e-8, 0.01)


def test_new_arguments_are_keyword_only():
    # SGD(params, lr, momentum, ...) positionally would be PyTorch's order, not ours: refuse it
    p = Tensor([1.0], tensor_type=P)
    with pytest.raises(TypeError):
        SGD([p], 0.1, 0.9)
    with pytest.raises(TypeError):
        Adam([p], 0.1, 0.9, 0.999, 1e-8, 0.01)


def test_adam_counts_steps_per_parameter():
    # b first receives a gradient at the third step: its first update is bias-corrected as a
    # first step (a move of lr against the gradient's sign), not as a third one
    lr = 0.01
    a = Tensor([1.0], tensor_type=P, dtype=np.float64)
    b = Tensor([1.0], tensor_type=P, dtype=np.float64)
    opt = Adam([a, b], lr=lr)
    for _ in range(2):
        a.grad = np.array([1.0])
        b.grad = None
        opt.step()
    np.testing.assert_array_equal(b.data, [1.0])
    a.grad = np.array([1.0])
    b.grad = np.array([3.0])
    opt.step()
    np.testing.assert_allclose(b.data, [1.0 - lr], rtol=1e-9)
    assert opt.step_counts == [3, 1] and opt.t == 3


def test_a_float64_gradient_updates_a_float32_parameter():
    p = Tensor([1.0, 2.0], tensor_type=P)
    opt = Adam([p], lr=0.5)
    p._grad = np.array([1.0, -1.0])  # 0.2.x stored gradients as given
    opt.step()
    assert p.data.dtype == np.float32
    np.testing.assert_allclose(p.data, [0.5, 2.5], rtol=1e-6)


def test_steps_use_the_active_backends_kernels(monkeypatch):
    calls = []
    active = _backend.active

    class Spy:
        def __getattr__(self, name):
            calls.append(name)
            return getattr(active, name)

    monkeypatch.setattr(_backend, "active", Spy())
    p = Tensor([1.0, 2.0], tensor_type=P)
    for opt in (Adam([p]), AdamW([p]), SGD([p], momentum=0.9)):
        p.grad = np.array([1.0, 1.0])
        opt.step()
    assert calls == ["adam_update", "adam_update", "sgd_update"]


def test_sgd_never_writes_into_a_gradient_array_the_user_assigned():
    p = Tensor([1.0, 2.0], tensor_type=P)
    g = np.array([1.0, 1.0], dtype=np.float32)
    opt = SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1)
    p._grad = g
    opt.step()
    opt.step()
    np.testing.assert_array_equal(g, [1.0, 1.0])


# --------------------------------------------------------------------------- validation
BAD = [
    (SGD, {"lr": -0.1}, ValueError, "Invalid learning rate: -0.1"),
    (SGD, {"lr": float("nan")}, ValueError, "Invalid learning rate: nan"),
    (SGD, {"lr": "0.1"}, TypeError, "lr must be a real number, got str"),
    (SGD, {"lr": None}, TypeError, "lr must be a real number, got NoneType"),
    (SGD, {"lr": 1j}, TypeError, "lr must be a real number, got complex"),
    (SGD, {"momentum": -0.5}, ValueError, "Invalid momentum value: -0.5"),
    (SGD, {"weight_decay": -1e-4}, ValueError, "Invalid weight_decay value: -0.0001"),
    (SGD, {"nesterov": True}, ValueError, "Nesterov momentum requires a momentum"),
    (Adam, {"lr": -1e-3}, ValueError, "Invalid learning rate: -0.001"),
    (Adam, {"lr": [0.1]}, TypeError, "lr must be a real number, got list"),
    (Adam, {"beta1": 1.0}, ValueError, r"Invalid beta1 parameter: 1.0 \(it must lie in \[0, 1\)\)"),
    (Adam, {"beta1": -0.1}, ValueError, "Invalid beta1 parameter: -0.1"),
    (Adam, {"beta2": 1.0}, ValueError, "Invalid beta2 parameter: 1.0"),
    (Adam, {"beta2": float("nan")}, ValueError, "Invalid beta2 parameter: nan"),
    (Adam, {"eps": -1e-8}, ValueError, "Invalid epsilon value: -1e-08"),
    (Adam, {"weight_decay": -0.1}, ValueError, "Invalid weight_decay value: -0.1"),
    (AdamW, {"weight_decay": -0.01}, ValueError, "Invalid weight_decay value: -0.01"),
    (AdamW, {"beta1": 2}, ValueError, "Invalid beta1 parameter: 2"),
    (AdamW, {"eps": True}, TypeError, "eps must be a real number, got bool"),
]


@pytest.mark.parametrize("cls, kwargs, exc, message", BAD,
                         ids=[f"{c.__name__}-{k}" for c, k, *_ in BAD])
def test_bad_hyperparameters_raise_at_construction(cls, kwargs, exc, message):
    with pytest.raises(exc, match=f"^{message}"):
        cls([Tensor([1.0], tensor_type=P)], **kwargs)


def test_numpy_scalars_are_accepted():
    p = Tensor([1.0], tensor_type=P)
    adam = Adam([p], lr=np.float32(0.01), beta1=np.float64(0.5))
    sgd = SGD([p], lr=np.float64(0.1), momentum=np.float32(0.9))
    assert adam.lr == np.float32(0.01) and adam.beta1 == 0.5
    assert sgd.lr == 0.1 and sgd.momentum == np.float32(0.9)
    p.grad = np.array([1.0])
    sgd.step()  # first momentum step: the buffer is the gradient
    np.testing.assert_allclose(p.data, [0.9], rtol=1e-6)
    adam.step()  # Adam's first step moves by lr (sign of the gradient)
    np.testing.assert_allclose(p.data, [0.89], rtol=1e-5)


def test_non_parameter_tensors_are_dropped_with_a_warning():
    p = Tensor([1.0], tensor_type=P)
    x = Tensor([2.0])
    y = p * 3.0
    with pytest.warns(UserWarning, match="Adam ignores 2 tensor\\(s\\) that are not PARAMETER") as record:
        opt = Adam([x, p, y])
    assert opt.parameters == [p] and len(opt.biased_first_moment) == 1
    assert record[0].filename == __file__  # points at the caller's line


def test_a_parameter_listed_twice_is_stepped_once():
    p = Tensor([1.0], tensor_type=P, dtype=np.float64)
    with pytest.warns(UserWarning, match="got 1 parameter\\(s\\) more than once"):
        opt = SGD([p, p], lr=0.5)
    assert opt.parameters == [p]
    p.grad = np.array([1.0])
    opt.step()
    np.testing.assert_array_equal(p.data, [0.5])


def test_a_list_of_parameters_only_gives_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SGD([Tensor([1.0], tensor_type=P), Tensor([2.0], tensor_type=P)])
        Adam(t for t in [Tensor([1.0], tensor_type=P)])  # any iterable


@pytest.mark.parametrize("bad, message", [
    (Tensor([1.0], tensor_type=P), "got a single Tensor; pass \\[tensor\\]"),
    (3, "takes an iterable of Tensors, but got int"),
    ([np.ones(2)], "can only optimize Tensors, but one of the parameters is ndarray"),
])
def test_parameters_must_be_an_iterable_of_tensors(bad, message):
    with pytest.raises(TypeError, match=message):
        SGD(bad)


# --------------------------------------------------------------------------- clip_grad_norm
def test_clip_grad_norm_scales_to_max_norm_and_returns_the_norm_before():
    a = Tensor([3.0, 0.0], tensor_type=P)
    b = Tensor([[0.0], [4.0]], tensor_type=P)
    c = Tensor([1.0], tensor_type=P)  # no gradient: ignored
    a.grad = np.array([3.0, 0.0])
    b.grad = np.array([[0.0], [4.0]])
    total = clip_grad_norm([a, b, c], max_norm=1.0)
    assert total == pytest.approx(5.0)
    assert isinstance(total, float)
    np.testing.assert_allclose(a.grad, [0.6, 0.0], rtol=1e-5)
    np.testing.assert_allclose(b.grad, [[0.0], [0.8]], rtol=1e-5)
    assert c.grad is None
    assert math.sqrt(float(np.sum(a.grad ** 2) + np.sum(b.grad ** 2))) == pytest.approx(1.0, rel=1e-5)


def test_clip_grad_norm_below_the_limit_changes_nothing_and_writes_no_user_array():
    a = Tensor([1.0, 1.0], tensor_type=P)
    g = np.array([0.3, 0.4], dtype=np.float32)
    a._grad = g
    assert clip_grad_norm(a, 1.0) == pytest.approx(0.5)
    assert a.grad is g
    assert clip_grad_norm([a], 0.1) == pytest.approx(0.5)
    np.testing.assert_array_equal(g, np.array([0.3, 0.4], dtype=np.float32))  # a new array was made
    np.testing.assert_allclose(a.grad, [0.06, 0.08], rtol=1e-5)
    assert a.grad.dtype == np.float32


def test_clip_grad_norm_divides_by_the_norm_plus_1e_6_as_pytorch():
    # At a tiny norm the +1e-6 shows: 1e-6 / (1e-5 + 1e-6) = 1/11, not 1/10.
    a = Tensor([0.0, 0.0], tensor_type=P, dtype=np.float64)
    a.grad = np.array([6e-6, 8e-6])
    total = clip_grad_norm([a], max_norm=1e-6)
    assert total == pytest.approx(1e-5, rel=1e-12)
    np.testing.assert_allclose(a.grad, np.array([6e-6, 8e-6]) / 11, rtol=1e-12)
    # a norm just below max_norm is still scaled, by max_norm / (norm + 1e-6) < 1, as in PyTorch
    b = Tensor([0.0], tensor_type=P, dtype=np.float64)
    b.grad = np.array([1.0 - 5e-7])
    assert clip_grad_norm([b], max_norm=1.0) == pytest.approx(1.0 - 5e-7, rel=1e-12)
    np.testing.assert_allclose(b.grad, [(1.0 - 5e-7) / (1.0 + 5e-7)], rtol=1e-14)


@pytest.mark.parametrize("max_norm", [0.0, 1e-9, 1.0])
def test_clip_grad_norm_of_all_zero_gradients_stays_zero_and_finite(max_norm):
    a = Tensor([1.0, 2.0], tensor_type=P, dtype=np.float64)
    b = Tensor([[3.0]], tensor_type=P)
    a.grad = np.zeros(2)
    b.grad = np.zeros((1, 1), dtype=np.float32)
    assert clip_grad_norm([a, b], max_norm=max_norm) == 0.0
    for t in (a, b):
        assert np.all(np.isfinite(t.grad)) and not np.any(t.grad)


def test_clip_grad_norm_non_finite():
    a = Tensor([1.0, 1.0], tensor_type=P)
    a.grad = np.array([np.inf, 1.0])
    with pytest.raises(RuntimeError, match="total norm of the gradients is inf"):
        clip_grad_norm([a], 1.0, error_if_nonfinite=True)
    assert clip_grad_norm([a], 1.0) == math.inf
    with pytest.raises(ValueError, match="Invalid max_norm value: -1"):
        clip_grad_norm([a], -1)


# --------------------------------------------------------------------------- state dicts
def _clone(params):
    return [Tensor(p.data.copy(), tensor_type=P, dtype=p.data.dtype) for p in params]


MAKERS = {
    "SGD": lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "Adam": lambda ps: Adam(ps, 0.05, 0.8, 0.95, 1e-7, weight_decay=0.1),
    "AdamW": lambda ps: AdamW(ps, lr=0.05),
}


@pytest.mark.parametrize("name", list(MAKERS))
def test_state_dict_round_trip_gives_identical_subsequent_steps(name):
    params = params_from(START, np.float32)
    opt = MAKERS[name](params)
    run(opt, params, GRADS[:2])
    state = opt.state_dict()
    twins = _clone(params)
    fresh = MAKERS[name](twins)
    fresh.load_state_dict(state)
    run(opt, params, GRADS[2:])
    run(fresh, twins, GRADS[2:])
    for p, q in zip(params, twins):
        np.testing.assert_array_equal(p.data, q.data)


def test_state_dict_is_a_snapshot():
    params = params_from(START)
    opt = Adam(params, lr=0.1)
    run(opt, params, GRADS[:1])
    state = opt.state_dict()
    before = state["state"][0]["exp_avg"].copy()
    run(opt, params, GRADS[1:])
    np.testing.assert_array_equal(state["state"][0]["exp_avg"], before)
    assert state["optimizer"] == "Adam" and state["t"] == 1
    assert state["hyperparameters"] == {"lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                                        "weight_decay": 0}


def test_load_state_dict_restores_hyperparameters_and_step_counts():
    params = params_from(START)
    opt = Adam(params, lr=0.2, beta1=0.5)
    run(opt, params, GRADS[:3])
    fresh = Adam(_clone(params))
    fresh.load_state_dict(opt.state_dict())
    assert (fresh.lr, fresh.beta1, fresh.t, fresh.step_counts) == (0.2, 0.5, 3, [3, 3])


def test_load_state_dict_rejects_mismatches_and_changes_nothing():
    params = params_from(START)
    opt = Adam(params, lr=0.1)
    run(opt, params, GRADS[:1])
    state = opt.state_dict()
    fresh = Adam(_clone(params))
    with pytest.raises(ValueError, match="holds 2 parameter\\(s\\), this optimizer has 1"):
        Adam(_clone(params)[:1]).load_state_dict(state)
    swapped = Adam(_clone(params)[::-1])
    with pytest.raises(ValueError, match=r"'exp_avg' of parameter 0 has shape \(3,\), the parameter has shape \(2, 2\)"):
        swapped.load_state_dict(state)
    assert swapped.step_counts == [0, 0] and swapped.lr == 0.001
    with pytest.raises(ValueError, match="got the state of a Adam optimizer"):
        SGD(_clone(params)).load_state_dict(state)
    bad = dict(state, hyperparameters=dict(state["hyperparameters"], beta2=1.5))
    with pytest.raises(ValueError, match="Invalid beta2 parameter: 1.5"):
        fresh.load_state_dict(bad)
    with pytest.raises(ValueError, match="t must be an integer >= 0, got 'x'"):
        fresh.load_state_dict(dict(state, t="x"))
    with pytest.raises(ValueError, match="step of parameter 1 must be an integer >= 0, got -1"):
        fresh.load_state_dict(dict(state, state=[state["state"][0], dict(state["state"][1], step=-1)]))
    with pytest.raises(ValueError, match="has no 'state' entry"):
        fresh.load_state_dict({"optimizer": "Adam", "hyperparameters": {}})
    assert fresh.lr == 0.001 and fresh.t == 0


def test_base_optimizer_still_raises_on_step():
    with pytest.raises(NotImplementedError):
        Optimizer([Tensor([1.0], tensor_type=P)]).step()
    assert clumsygrad.optimizer.__all__ == ["Optimizer", "SGD", "Adam", "AdamW", "clip_grad_norm"]


# --------------------------------------------------------------------------- version counters
@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.1), lambda ps: SGD(ps, lr=0.1, momentum=0.9),
    lambda ps: Adam(ps), lambda ps: AdamW(ps),
], ids=["SGD", "SGD-momentum", "Adam", "AdamW"])
def test_a_step_between_forward_and_backward_is_caught(make):
    # the step changes w in place; the graph recorded w's old values: backward must refuse
    x = Tensor([1.0, 2.0])
    w = Tensor([0.5, -0.5], tensor_type=P)
    skipped = Tensor([3.0], tensor_type=P)  # no gradient: not stepped, version unchanged
    y = clumsygrad.math.sum(x * w)
    y.backward(keep_graph=True)
    opt = make([w, skipped])
    before = (w._version, skipped._version)
    opt.step()
    assert w._version == before[0] + 1 and skipped._version == before[1]
    with pytest.raises(RuntimeError, match="modified in place after the forward pass"):
        y.backward()


def test_the_training_pattern_forward_backward_step_is_unaffected():
    x = Tensor([1.0, 2.0])
    w = Tensor([0.5, -0.5], tensor_type=P)
    opt = Adam([w], lr=0.1)
    for _ in range(3):
        loss = clumsygrad.math.sum(x * w)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert w._version == 3


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.1), lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
    lambda ps: Adam(ps, lr=0.1), lambda ps: AdamW(ps, lr=0.1),
], ids=["SGD", "SGD-momentum", "Adam", "AdamW"])
def test_steps_go_through_the_memory_guard(make):
    # an evaluation graph kept alive guards w (read-only): the library's own step still
    # updates it, w stays guarded afterwards, and the stale graph refuses to backpropagate
    x = Tensor(np.arange(6.0).reshape(2, 3), dtype=np.float64)
    w = Tensor(np.ones((3, 1)), tensor_type=P, dtype=np.float64)
    opt = make([w])
    with clumsygrad.memory_guard():
        evaluation = clumsygrad.math.sum(x @ w)
        assert not w.data.flags.writeable
        before = w.data.copy()
        for _ in range(2):
            loss = clumsygrad.math.sum((x @ w) * (x @ w))
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert not np.array_equal(w.data, before)
    assert not w.data.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        w.data[0, 0] = 5.0  # a raw write is still refused
    with pytest.raises(RuntimeError, match="modified in place"):
        evaluation.backward()
    del evaluation
    import gc
    gc.collect()
    assert w.data.flags.writeable


def test_a_read_only_parameter_outside_the_guard_is_reported():
    w = Tensor([1.0, 2.0], tensor_type=P)
    w.data.flags.writeable = False  # the user's own choice: the step must not override it
    w.grad = np.ones(2)
    with pytest.raises(ValueError, match="read-only"):
        Adam([w]).step()
    with pytest.raises(ValueError, match="read-only"):
        SGD([w]).step()
