"""clumsygrad.nn modules: registration, traversal, modes, state dicts, layers against NumPy references."""
import copy
import math
import pickle

import numpy as np
import pytest

import clumsygrad
from clumsygrad import nn
from clumsygrad.nn import functional as F
from clumsygrad.tensor import Tensor, TensorType, no_grad
from helpers import numeric_gradient


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1, generator=np.random.default_rng(0))
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 4 * 4, 3, generator=np.random.default_rng(1)))
        self.scale = Tensor(2.0, TensorType.PARAMETER)
        self.note = "not registered"

    def forward(self, x):
        return self.head(F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)) * self.scale


def test_registration_and_traversal():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["scale", "conv.weight", "conv.bias", "bn.weight", "bn.bias", "head.1.weight", "head.1.bias"]
    assert all(p._tensor_type is TensorType.PARAMETER for p in net.parameters())
    assert [type(m).__name__ for m in net.children()] == ["Conv2d", "BatchNorm2d", "Sequential"]
    assert [type(m).__name__ for m in net.modules()] == ["Net", "Conv2d", "BatchNorm2d", "Sequential", "Flatten", "Linear"]
    assert net.note == "not registered" and "note" not in net._parameters
    assert [n for n, _ in net.named_buffers()] == ["bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]
    shared = nn.Linear(2, 2)
    seq = nn.Sequential(shared, shared)
    assert len(list(seq.parameters())) == 2
    del net.scale
    assert "scale" not in [n for n, _ in net.named_parameters()]
    with pytest.raises(TypeError, match="cannot assign ndarray to parameter 'weight'"):
        net.conv.weight = np.zeros((4, 1, 3, 3))
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        net.missing


def test_forward_backward_zero_grad_train_eval():
    net = Net()
    x = Tensor(np.random.default_rng(2).random((5, 1, 8, 8)))
    loss = clumsygrad.cross_entropy(net(x), np.array([0, 1, 2, 0, 1]))
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    assert net.training and net.bn.training
    assert net.eval() is net and not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_repr_is_a_tree():
    text = repr(Net())
    assert text.splitlines()[0] == "Net("
    assert "  (conv): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))" in text
    assert "  (head): Sequential(\n    (0): Flatten(start_dim=1, end_dim=-1)" in text
    assert "(1): Linear(in_features=64, out_features=3, bias=True)" in text


def test_state_dict_round_trip_through_save(tmp_path):
    net, other = Net(), Net()
    with no_grad():
        net(Tensor(np.random.default_rng(3).random((4, 1, 8, 8))))  # moves the running statistics
    for p in other.parameters():
        p.data[...] = 0
    state = net.state_dict()
    assert list(state) == ["scale", "conv.weight", "conv.bias", "bn.weight", "bn.bias", "bn.running_mean",
                           "bn.running_var", "bn.num_batches_tracked", "head.1.weight", "head.1.bias"]
    clumsygrad.save(state, tmp_path / "net.npz")
    params_before = list(other.parameters())
    result = other.load_state_dict(clumsygrad.load(tmp_path / "net.npz"))
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert list(other.parameters()) == params_before  # same objects, new values
    for (name, a), (_, b) in zip(net.named_parameters(), other.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
    np.testing.assert_array_equal(net.bn.running_mean, other.bn.running_mean)
    assert int(other.bn.num_batches_tracked) == 1
    state["conv.weight"].data[...] = 99  # a copy: the model is untouched
    assert not (net.conv.weight.data == 99).any()


def test_load_state_dict_checks_everything_before_changing_anything():
    net = Net()
    before = {k: np.array(v.data if isinstance(v, Tensor) else v) for k, v in net.state_dict().items()}
    bad = {k: (np.zeros_like(v.data) if isinstance(v, Tensor) else np.zeros_like(v)) for k, v in net.state_dict().items()}
    bad["head.1.weight"] = np.zeros((3, 65))
    with pytest.raises(ValueError, match=r"size mismatch for 'head.1.weight'.*\(3, 65\).*\(3, 64\)"):
        net.load_state_dict(bad)
    missing = dict(bad)
    del missing["conv.bias"]
    missing["extra"] = np.zeros(1)
    with pytest.raises(KeyError, match=r"missing keys \['conv.bias'\], unexpected keys \['extra'\]"):
        net.load_state_dict(missing)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v.data if isinstance(v, Tensor) else v, before[k], err_msg=k)
    del missing["extra"]
    result = nn.Sequential(nn.Linear(2, 2)).load_state_dict({"0.weight": np.ones((2, 2))}, strict=False)
    assert result.missing_keys == ["0.bias"]


def test_modules_pickle_and_deepcopy_with_values_not_graphs():
    net = Net()
    x = Tensor(np.random.default_rng(4).random((2, 1, 8, 8)))
    y = net(x)
    clumsygrad.math.sum(y).backward()
    for clone in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        assert [n for n, _ in clone.named_parameters()] == [n for n, _ in net.named_parameters()]
        for a, b in zip(net.parameters(), clone.parameters()):
            np.testing.assert_array_equal(a.data, b.data)
            np.testing.assert_array_equal(a.grad, b.grad)
            assert a is not b and b._parents == ()
        with no_grad():
            np.testing.assert_array_equal(clone.eval()(x).data, net.eval()(x).data)
        net.train()


def test_containers():
    layers = nn.ModuleList([nn.Linear(2, 3), nn.ReLU()])
    layers.append(nn.Linear(3, 1))
    assert len(layers) == 3 and isinstance(layers[-1], nn.Linear) and len(list(layers.parameters())) == 4
    d = nn.ModuleDict({"a": nn.Linear(2, 2)})
    d["b"] = nn.Tanh()
    assert list(d) == ["a", "b"] and "a" in d and len(list(d.parameters())) == 2
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert isinstance(seq[1:], nn.Sequential) and len(seq[1:]) == 2
    with pytest.raises(TypeError, match="Sequential takes Modules, argument 1 is int"):
        nn.Sequential(nn.ReLU(), 3)


@pytest.mark.parametrize("layer,bound", [
    (nn.Linear(50, 7), 1 / math.sqrt(50)), (nn.Conv2d(4, 6, 3, groups=2), 1 / math.sqrt(2 * 9)),
    (nn.Conv1d(3, 2, 5), 1 / math.sqrt(15)),
])
def test_default_initialisation_is_pytorchs(layer, bound):
    w, b = layer.weight.data, layer.bias.data
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    assert np.abs(b).max() <= bound
    assert w.dtype == np.float32


def test_init_functions():
    t = Tensor(np.zeros((200, 100)), TensorType.PARAMETER)
    nn.init.xavier_uniform_(t, generator=np.random.default_rng(0))
    assert abs(np.abs(t.data).max() - math.sqrt(6 / 300)) < 1e-3
    nn.init.kaiming_normal_(t, nonlinearity="relu", generator=np.random.default_rng(0))
    assert abs(t.data.std() - math.sqrt(2 / 100)) < 0.01
    assert nn.init.calculate_gain("tanh") == 5 / 3
    nn.init.zeros_(t)
    assert not t.data.any()


@pytest.mark.parametrize("layer,x,pattern", [
    (nn.Linear(4, 2), np.zeros((3, 5)), r"Linear\(in_features=4, out_features=2, bias=True\) expects an input of shape \(\.\.\., 4\), got \(3, 5\)"),
    (nn.Conv2d(3, 2, 3), np.zeros((1, 2, 5, 5)), r"Conv2d\(3, 2.*\) expects an input of shape \(N, 3, H, W\) or \(3, H, W\), got \(1, 2, 5, 5\)"),
    (nn.BatchNorm1d(3), np.zeros((4, 2)), r"BatchNorm1d\(3.*\) expects an input of shape \(N, 3\) or \(N, 3, L\), got \(4, 2\)"),
    (nn.MaxPool2d(2), np.zeros((4, 4)), r"MaxPool2d\(.*\) expects an input of shape \(N, C, H, W\) or \(C, H, W\), got \(4, 4\)"),
    (nn.LayerNorm(4), np.zeros((2, 3)), r"LayerNorm\(\(4,\).*\) expects an input of shape \(\*, 4\), got \(2, 3\)"),
    (nn.GRUCell(3, 2), np.zeros((2, 4)), r"GRUCell\(3, 2\) expects an input of shape \(N, 3\) or \(3,\), got \(2, 4\)"),
])
def test_wrong_input_shapes_name_the_layer_and_both_shapes(layer, x, pattern):
    with pytest.raises(ValueError, match=pattern):
        layer(Tensor(x))


def test_batchnorm_running_stats_and_eval():
    bn = nn.BatchNorm1d(3, momentum=0.5)
    x = np.random.default_rng(5).standard_normal((8, 3)) * 3 + 2
    bn(Tensor(x))
    np.testing.assert_allclose(bn.running_mean, 0.5 * x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var, 0.5 + 0.5 * x.var(0, ddof=1), rtol=1e-5)
    bn.eval()
    y = bn(Tensor(x)).data
    np.testing.assert_allclose(y, (x - bn.running_mean) / np.sqrt(bn.running_var + 1e-5), rtol=1e-5, atol=1e-6)
    cumulative = nn.BatchNorm1d(3, momentum=None)
    cumulative(Tensor(x))
    cumulative(Tensor(x * 2))
    np.testing.assert_allclose(cumulative.running_mean, (x.mean(0) + 2 * x.mean(0)) / 2, rtol=1e-5)


def test_dropout_module_modes_and_seed():
    a, b = nn.Dropout(0.5, seed=3), nn.Dropout(0.5, seed=3)
    x = Tensor(np.ones((10, 10)))
    np.testing.assert_array_equal(a(x).data, b(x).data)
    a.eval()
    assert a(x) is x


def test_embedding_layer_padding_row():
    emb = nn.Embedding(6, 3, padding_idx=2, generator=np.random.default_rng(0))
    assert not emb.weight.data[2].any()
    out = emb(np.array([2, 1, 2]))
    clumsygrad.math.sum(out).backward()
    assert not emb.weight.grad[2].any() and emb.weight.grad[1].sum() == 3


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


@pytest.mark.parametrize("cell_type", ["rnn", "gru"])
def test_recurrent_cells_match_numpy_and_finite_differences(cell_type, rng):
    cell = (nn.RNNCell if cell_type == "rnn" else nn.GRUCell)(3, 4, dtype=np.float64, generator=np.random.default_rng(0))
    x, h = rng.standard_normal((2, 3)), rng.standard_normal((2, 4))
    p = {n: t.data for n, t in cell.named_parameters()}

    def reference(x, h, p=p):
        gi = x @ p["weight_ih"].T + p["bias_ih"]
        gh = h @ p["weight_hh"].T + p["bias_hh"]
        if cell_type == "rnn":
            return np.tanh(gi + gh)
        r = _sigmoid(gi[:, :4] + gh[:, :4])
        z = _sigmoid(gi[:, 4:8] + gh[:, 4:8])
        n = np.tanh(gi[:, 8:] + r * gh[:, 8:])
        return (1 - z) * n + z * h

    out = cell(Tensor(x, dtype=np.float64), Tensor(h, dtype=np.float64))
    np.testing.assert_allclose(out.data, reference(x, h), rtol=1e-12)
    g = rng.standard_normal(out.shape)
    clumsygrad.math.sum(out * Tensor(g, dtype=np.float64)).backward()
    for name, param in cell.named_parameters():
        def f(v, name=name):
            return float(np.sum(reference(x, h, {**p, name: v}) * g))
        np.testing.assert_allclose(param.grad, numeric_gradient(f, p[name]), rtol=1e-5, atol=1e-7, err_msg=name)
    assert cell(Tensor(x)).shape == (2, 4)  # zero initial state


def test_requires_grad_freezes_and_unfreezes_parameters():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    model[0].requires_grad_(False)
    clumsygrad.math.sum(model(Tensor(np.ones((4, 3))))).backward()
    assert model[0].weight.grad is None and model[1].weight.grad is not None
    model.requires_grad_(True)
    clumsygrad.math.sum(model(Tensor(np.ones((4, 3))))).backward()
    assert model[0].weight.grad.shape == (2, 3)
