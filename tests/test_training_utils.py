"""Learning-rate schedulers, the DataLoader, optimizer argument errors, and pickling of whole
training states (modules, optimizers, schedulers) across processes."""
import concurrent.futures
import math
import multiprocessing
import pickle

import numpy as np
import pytest

import clumsygrad
from clumsygrad import nn
from clumsygrad.data import DataLoader
from clumsygrad.lr_scheduler import CosineAnnealingLR, ExponentialLR, LinearLR, OneCycleLR, StepLR
from clumsygrad.optimizer import SGD, Adam
from clumsygrad.tensor import Tensor, TensorType


def rates(scheduler, steps):
    out = [scheduler.get_last_lr()[0]]
    for _ in range(steps):
        scheduler.optimizer.step()
        scheduler.step()
        out.append(scheduler.optimizer.lr)
    return out


def opt(lr=0.1, kind=SGD, **kw):
    return kind([Tensor([1.0], TensorType.PARAMETER)], lr=lr, **kw)


def test_step_exponential_linear_follow_pytorchs_formulas():
    assert rates(StepLR(opt(), step_size=3, gamma=0.5), 7) == pytest.approx(
        [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025])
    assert rates(ExponentialLR(opt(), gamma=0.9), 3) == pytest.approx([0.1, 0.09, 0.081, 0.0729])
    # PyTorch's LinearLR recursion: factor (1 + (end - start) / (total * start + (t - 1) * (end - start)))
    got = rates(LinearLR(opt(), start_factor=0.25, total_iters=4), 6)
    expected = [0.025]
    for t in range(1, 7):
        expected.append(expected[-1] * (1 + 0.75 / (4 * 0.25 + (t - 1) * 0.75)) if t <= 4 else expected[-1])
    assert got == pytest.approx(expected)


def test_cosine_matches_pytorchs_recursive_form():
    got = rates(CosineAnnealingLR(opt(), T_max=8, eta_min=0.01), 8)
    expected = [0.1]
    for t in range(1, 9):
        expected.append(0.01 + (expected[-1] - 0.01) * (1 + math.cos(math.pi * t / 8)) / (1 + math.cos(math.pi * (t - 1) / 8)))
    assert got == pytest.approx(expected)
    assert got[-1] == pytest.approx(0.01)


def test_one_cycle_phases_and_momentum():
    optimizer = opt(kind=Adam)
    sched = OneCycleLR(optimizer, max_lr=1.0, total_steps=10)
    lrs = rates(sched, 9)
    assert lrs[0] == pytest.approx(0.04) and optimizer.beta1 == pytest.approx(0.95)  # back up at the end
    assert lrs[2] == pytest.approx(1.0) and max(lrs) == pytest.approx(1.0)
    assert lrs[1] == pytest.approx(1.0 + (0.04 - 1.0) / 2 * (math.cos(math.pi * 0.5) + 1))
    assert lrs[9] == pytest.approx(0.04 / 1e4)
    sched.step()  # PyTorch allows one step past the last (last_epoch == total_steps)
    with pytest.raises(ValueError, match="Tried to step 11 times"):
        sched.step()
    linear = OneCycleLR(opt(momentum=0.9), max_lr=1.0, total_steps=10, anneal_strategy="linear", three_phase=True)
    assert rates(linear, 4)[:4] == pytest.approx([0.04, 0.52, 1.0, 0.52])


def test_scheduler_state_dict_round_trip_and_pickle():
    a = CosineAnnealingLR(opt(), T_max=10)
    for _ in range(3):
        a.step()
    b = CosineAnnealingLR(opt(), T_max=10)
    b.load_state_dict(a.state_dict())
    assert b.last_epoch == 3 and b.optimizer.lr == a.optimizer.lr
    a.step(), b.step()
    assert a.get_last_lr() == b.get_last_lr()
    c = pickle.loads(pickle.dumps(a))
    c.step(), a.step()
    assert c.get_last_lr() == a.get_last_lr() and c.optimizer.lr == a.optimizer.lr
    assert "optimizer" not in a.state_dict()
    with pytest.raises(TypeError, match="needs an Optimizer, got list"):
        StepLR([], 2)


def test_optim_alias():
    import clumsygrad.optim.lr_scheduler as alias

    assert alias is clumsygrad.lr_scheduler and clumsygrad.optim.Adam is Adam


def test_optimizer_arguments_that_are_not_tensor_iterables():
    model = nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"got a Linear; pass model.parameters\(\)"):
        SGD(model)
    with pytest.raises(TypeError, match=r"got a dict; pass list\(params.values\(\)\)"):
        Adam(dict(model.named_parameters()))
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        Adam([])
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        SGD(iter([]))
    assert len(Adam(model.parameters()).parameters) == 2


def test_data_loader_batches_shuffle_and_drop_last():
    x, y = np.arange(10 * 2).reshape(10, 2), np.arange(10)
    loader = DataLoader(x, y, batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [len(b[1]) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)
    dropped = DataLoader(x, y, batch_size=4, drop_last=True)
    assert len(dropped) == 2 and [len(b[1]) for b in dropped] == [4, 4]
    a, b = DataLoader(x, y, batch_size=3, shuffle=True, seed=5), DataLoader(x, y, batch_size=3, shuffle=True, seed=5)
    first = [yb.tolist() for _, yb in a]
    assert first == [yb.tolist() for _, yb in b]
    assert sorted(sum(first, [])) == list(range(10)) and sum(first, []) != list(range(10))
    second = [yb.tolist() for _, yb in a]
    assert second != first  # a new order each pass
    for xb, yb in a:
        np.testing.assert_array_equal(xb, x[yb])
    tensors = DataLoader(Tensor(x, dtype=np.float64), batch_size=5)
    assert all(isinstance(t, Tensor) and t.dtype == np.float64 for t in tensors)
    with pytest.raises(ValueError, match=r"same first dimension, got shapes \[\(10, 2\), \(9,\)\]"):
        DataLoader(x, y[:9])
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(x, batch_size=0)


# --------------------------------------------------------------------------- process pools
def train_model(seed, backend, epochs=2):
    """Train a small CNN from ``seed``; everything it returns is plain values."""
    clumsygrad.set_backend(backend)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((32, 1, 6, 6)).astype(np.float32)
    y = rng.integers(0, 3, 32)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, generator=np.random.default_rng(seed)), nn.BatchNorm2d(4), nn.ReLU(),
        nn.MaxPool2d(2), nn.Dropout(0.2, seed=seed), nn.Flatten(),
        nn.Linear(36, 3, generator=np.random.default_rng(seed + 1)),
    )
    optimizer = Adam(model.parameters(), lr=0.01)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.5)
    loader = DataLoader(x, y, batch_size=8, shuffle=True, seed=seed)
    for _ in range(epochs):
        for xb, yb in loader:
            loss = clumsygrad.cross_entropy(model(Tensor(xb)), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
    return model, optimizer, scheduler, loader


def train_and_pickle(seed, backend):
    return pickle.dumps(train_model(seed, backend))


def resume(blob, backend):
    model, optimizer, scheduler, loader = pickle.loads(blob)
    clumsygrad.set_backend(backend)
    for xb, yb in loader:
        loss = clumsygrad.cross_entropy(model(Tensor(xb)), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    scheduler.step()
    return {k: (v.data if isinstance(v, Tensor) else v) for k, v in model.state_dict().items()}, optimizer.lr


def state_of(model):
    return {k: (v.data if isinstance(v, Tensor) else v) for k, v in model.state_dict().items()}


def test_training_in_a_process_pool_is_bit_identical(backend):
    local = [state_of(train_model(seed, backend)[0]) for seed in (1, 2)]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        blobs = list(pool.map(train_and_pickle, (1, 2), (backend, backend)))
        remote = [state_of(pickle.loads(b)[0]) for b in blobs]
        # the pickled (model, optimizer, scheduler, loader) resumes in another process exactly as here
        resumed_remote = list(pool.map(resume, blobs[:1], (backend,)))
    for a, b in zip(local, remote):
        assert list(a) == list(b)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    resumed_local = resume(blobs[0], backend)
    assert resumed_local[1] == resumed_remote[0][1]
    for key in resumed_local[0]:
        np.testing.assert_array_equal(resumed_local[0][key], resumed_remote[0][0][key], err_msg=key)
    assert not all(np.array_equal(local[0][k], local[1][k]) for k in local[0])  # seeds matter
