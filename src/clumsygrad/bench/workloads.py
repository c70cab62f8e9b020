"""The benchmark workloads: the one place that defines what is timed.

Imported by the CLI (``python -m clumsygrad.bench``) and by the pytest-benchmark suites in
``benchmarks/``.  This module uses only NumPy and the public API that clumsygrad 0.2.1
already had (``tensor``, ``activation``, ``loss``, ``optimizer``) and imports nothing
relative, so ``compare021`` runs this very file under clumsygrad 0.2.1 in another venv.

* MLP training step: ``h = relu(x @ W1 + b1); p = softmax(h @ W2 + b2); mse_loss(p, y)``,
  backward, ``SGD.step()``, ``zero_grad()``; float32, fixed seeds, three sizes.
* :class:`NumpyMLP`: the same step in hand-written NumPy, the zero-overhead yardstick.
* Scalar chain: a PARAMETER scalar pushed through ``n`` alternating ``* c`` and ``+ c``;
  the graph build and the backward pass are timed separately.
* Character RNN step (:class:`ClumsyRNN`, :class:`NumpyRNN`) and small self-attention step
  (:class:`ClumsyAttention`, :class:`NumpyAttention`), issue 15: these use ops 0.2.1 lacks
  (``cross_entropy``), imported when the class is built, so this file still imports there.
* Convolution (issue 16): a 3x3 conv2d layer's forward pass and three gradients at two sizes
  (:class:`ClumsyConv`, :class:`NumpyConv`, the NumPy one by im2col) and one training step of
  the digits CNN (:class:`ClumsyCNN`, :class:`NumpyCNN`), ``clumsygrad.nn`` imported likewise.
"""
from __future__ import annotations

from typing import Dict, NamedTuple, Optional

import numpy as np

from clumsygrad.activation import relu, softmax
from clumsygrad.loss import mse_loss
from clumsygrad.optimizer import SGD
from clumsygrad.tensor import Tensor, TensorType

LR = 0.01


class MLPSize(NamedTuple):
    batch: int
    n_in: int
    hidden: int
    n_out: int


MLP_SIZES: Dict[str, MLPSize] = {
    "tiny": MLPSize(16, 32, 32, 8),
    "medium": MLPSize(64, 256, 256, 10),
    "large": MLPSize(256, 1024, 1024, 10),
}

CHAIN_LENGTHS = (10_000, 1_000_000)

KERNELS = (
    "reduce_to_shape", "mul_reduce_to_shape", "expand_to_shape", "softmax_backward", "matmul_backward",
    "softmax_forward", "mse_forward", "mse_backward", "relu_backward", "sgd_update",
)
# Issue 9: the embedding-lookup backward (m row lookups into a table of m/4 rows) and the fused
# cross-entropy backward (m rows of n logits, class labels, mean reduction).
KERNELS += ("scatter_add", "cross_entropy_backward")
# The fused Adam/AdamW step of an (m, n) parameter (issue 9, optimizers).
KERNELS += ("adam_update",)
KERNEL_SHAPES = ((8, 8), (64, 10), (256, 256), (2048, 2048))

PARAM_NAMES = ("W1", "b1", "W2", "b2")


def mlp_data(size: MLPSize, seed: int = 0) -> Dict[str, np.ndarray]:
    """Inputs ``x`` (batch, n_in), one-hot targets ``y`` (batch, n_out) and He-initialised
    parameters ``W1 b1 W2 b2``; all float32, the same for every implementation."""
    rng = np.random.default_rng(seed)
    b, n_in, hidden, n_out = size

    def normal(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    return {
        "x": normal(b, n_in),
        "y": np.eye(n_out, dtype=np.float32)[rng.integers(0, n_out, size=b)],
        "W1": normal(n_in, hidden, scale=np.sqrt(2.0 / n_in)),
        "b1": normal(hidden, scale=0.1),  # non-zero so the bias gradient is exercised
        "W2": normal(hidden, n_out, scale=np.sqrt(2.0 / hidden)),
        "b2": normal(n_out, scale=0.1),
    }


class ClumsyMLP:
    """The MLP step written with clumsygrad's public API; it runs on whichever backend is active."""

    def __init__(self, data: Dict[str, np.ndarray], lr: float = LR):
        self.x = Tensor(data["x"])
        self.y = Tensor(data["y"])
        self.params = tuple(Tensor(data[k], tensor_type=TensorType.PARAMETER) for k in PARAM_NAMES)
        self.optimizer = SGD(list(self.params), lr=lr)

    def step(self) -> None:
        W1, b1, W2, b2 = self.params
        h = relu(self.x @ W1 + b1)
        p = softmax(h @ W2 + b2, axis=-1)
        loss = mse_loss(p, self.y)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()

    def weights(self) -> Dict[str, np.ndarray]:
        return {k: t.data for k, t in zip(PARAM_NAMES, self.params)}


class NumpyMLP:
    """The same step in NumPy with the backward pass derived by hand.

    The yardstick: what the step costs with no autograd at all.  Matrix products write into
    buffers allocated once, elementwise work is in place, so nothing is allocated that a
    careful hand-written loop would not allocate.
    """

    def __init__(self, data: Dict[str, np.ndarray], lr: float = LR):
        self.x, self.y = data["x"], data["y"]
        self.W1, self.b1, self.W2, self.b2 = (data[k].copy() for k in PARAM_NAMES)
        self.lr = np.float32(lr)
        batch, hidden, n_out = self.x.shape[0], self.W1.shape[1], self.W2.shape[1]
        self.h = np.empty((batch, hidden), np.float32)  # hidden activations, then their gradient
        self.gh = np.empty((batch, hidden), np.float32)
        self.p = np.empty((batch, n_out), np.float32)  # logits, then softmax, then dL/dlogits
        self.gW1 = np.empty_like(self.W1)
        self.gW2 = np.empty_like(self.W2)

    def step(self) -> None:
        x, y, h, gh, p = self.x, self.y, self.h, self.gh, self.p
        # forward: h = relu(x W1 + b1); p = softmax(h W2 + b2)
        np.matmul(x, self.W1, out=h)
        h += self.b1
        np.maximum(h, 0, out=h)
        np.matmul(h, self.W2, out=p)
        p += self.b2
        p -= p.max(axis=-1, keepdims=True)
        np.exp(p, out=p)
        p /= p.sum(axis=-1, keepdims=True)
        # loss = mean((p - y)^2), so dL/dp = 2 (p - y) / n
        g = p - y
        g *= np.float32(2.0 / g.size)
        # softmax backward: dL/dz = p * (g - sum(p * g, axis=-1))
        g -= (p * g).sum(axis=-1, keepdims=True)
        g *= p
        # layer 2: dW2 = h^T g, db2 = sum_rows(g), dh = g W2^T masked by relu
        np.matmul(h.T, g, out=self.gW2)
        gb2 = g.sum(axis=0)
        np.matmul(g, self.W2.T, out=gh)
        np.multiply(gh, h > 0, out=gh)
        # layer 1
        np.matmul(x.T, gh, out=self.gW1)
        gb1 = gh.sum(axis=0)
        # SGD, in place
        for param, grad in ((self.W1, self.gW1), (self.b1, gb1), (self.W2, self.gW2), (self.b2, gb2)):
            grad *= self.lr
            param -= grad

    def weights(self) -> Dict[str, np.ndarray]:
        return {"W1": self.W1, "b1": self.b1, "W2": self.W2, "b2": self.b2}


def kernel_args(kernel: str, m: int, n: int, seed: int = 0) -> tuple:
    """Arguments for one call of ``kernel`` around an (m, n) float32 gradient, as an MLP's
    step makes them (bias reduction, broadcast product, mean, softmax, linear layer, loss, relu, SGD)."""
    rng = np.random.default_rng(seed)
    g, a = (rng.standard_normal((m, n)).astype(np.float32) for _ in range(2))
    if kernel == "reduce_to_shape":  # d(x + b)/db
        return g, (n,)
    if kernel == "mul_reduce_to_shape":  # d(x * w)/dw
        return g, a, (n,)
    if kernel == "expand_to_shape":  # d mean(x, axis=0)/dx
        return g[0], (m, n), 0, False, 1.0 / m
    if kernel == "softmax_backward":
        s = np.exp(a - a.max(axis=-1, keepdims=True))
        return s / s.sum(axis=-1, keepdims=True), g, -1
    if kernel == "matmul_backward":  # x (m, n) @ W (n, n)
        return a, rng.standard_normal((n, n)).astype(np.float32), g
    if kernel == "softmax_forward":  # the output layer's softmax over logits
        return a, -1
    if kernel == "mse_forward":  # the loss of a prediction against a target
        return a, g
    if kernel == "mse_backward":  # both gradients of the loss, seeded with 1
        return a, g, np.asarray(np.float32(1.0))
    if kernel == "relu_backward":  # a relu output (about half zeros) and its gradient
        return np.maximum(a, 0), g
    if kernel == "sgd_update":  # W -= lr * grad in place (a tiny rate: the timing loop repeats it)
        return a, g, 1e-6
    if kernel == "scatter_add":  # d table[ids] / d table: m int64 ids, repeats included
        return g, rng.integers(0, max(m // 4, 1), size=m), (max(m // 4, 1), n)
    if kernel == "cross_entropy_backward":  # d cross_entropy(logits, labels) / d logits
        return a, rng.integers(0, n, size=m), np.asarray(np.float32(1.0)), "mean"
    if kernel == "adam_update":  # one Adam step of an (m, n) parameter in place (tiny rate, as above)
        moment = (0.1 * rng.standard_normal((m, n))).astype(np.float32)
        return a, g, moment, moment * moment, 1e-6, 0.9, 0.999, 1e-8, 0.0, False, 10
    raise ValueError(f"unknown kernel {kernel!r}; choose one of {KERNELS}")


def build_chain(n: int):
    """A PARAMETER scalar ``x`` pushed through ``n`` ops alternating ``* -1`` and ``+ 0.5``.

    Returns ``(x, out)``.  The values stay bounded and d(out)/dx is exactly +-1, so the
    result is checkable and no denormals slow the backward pass.
    """
    x = Tensor(1.0, tensor_type=TensorType.PARAMETER)
    out = x
    for i in range(n):
        out = out * -1.0 if i % 2 == 0 else out + 0.5
    return x, out


_CHAIN_MEMORY_CHILD = """
import sys
import clumsygrad
from clumsygrad.bench.workloads import build_chain
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * {page}
clumsygrad.set_backend(sys.argv[1])
build_chain(1000)  # warm up: imports, caches
before = rss()
x, out = build_chain(int(sys.argv[2]))
print((rss() - before) / int(sys.argv[2]))
"""


def chain_bytes_per_node(n: int, backend: str) -> Optional[float]:
    """Resident memory one chain node costs: RSS growth over building ``n`` nodes, per node.

    Measured in a fresh interpreter started with ``CLUMSYGRAD_BACKEND=backend`` (so "python"
    measures the pure graph's nodes), where no memory freed by earlier work is reused; None
    where ``/proc`` is missing (not Linux).
    """
    import os
    import subprocess
    import sys

    if not os.path.exists("/proc/self/statm"):
        return None
    child = _CHAIN_MEMORY_CHILD.format(page=os.sysconf("SC_PAGE_SIZE"))
    # The node base is chosen at import: the pure graph's nodes exist only under this variable.
    env = dict(os.environ, CLUMSYGRAD_BACKEND=backend)
    done = subprocess.run(
        [sys.executable, "-c", child, backend, str(n)], capture_output=True, text=True, check=True, env=env
    )
    return float(done.stdout)


class TorchMLP:
    """The MLP step in PyTorch (optional column; PyTorch is never a dependency)."""

    def __init__(self, data: Dict[str, np.ndarray], lr: float = LR):
        import torch  # ImportError when PyTorch is absent: the caller leaves the column out

        torch.set_num_threads(1)
        self.torch = torch
        self.x = torch.from_numpy(data["x"].copy())
        self.y = torch.from_numpy(data["y"].copy())
        self.params = [torch.tensor(data[k], requires_grad=True) for k in PARAM_NAMES]
        self.optimizer = torch.optim.SGD(self.params, lr=lr)

    def step(self) -> None:
        torch = self.torch
        W1, b1, W2, b2 = self.params
        h = torch.relu(self.x @ W1 + b1)
        p = torch.softmax(h @ W2 + b2, dim=-1)
        loss = torch.nn.functional.mse_loss(p, self.y)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()


# --------------------------------------------------------------------------- sequence models (issue 15)
# Each model has a clumsygrad twin and a NumPy twin with the backward pass derived by hand.
# ``gradients()`` runs forward and backward once and returns ``{name: dL/dparam}`` without
# touching the parameters (the test compares the two); ``step()`` is what the bench times:
# forward, backward, SGD, zero_grad.


def _param(array: np.ndarray) -> Tensor:
    return Tensor(array, tensor_type=TensorType.PARAMETER, dtype=array.dtype)


def _input(array: np.ndarray) -> Tensor:
    return Tensor(array, dtype=array.dtype)


class RNNSize(NamedTuple):
    batch: int
    steps: int
    vocab: int  # the embedding table is (vocab, embed)
    embed: int
    hidden: int


RNN_SIZE = RNNSize(batch=8, steps=16, vocab=32, embed=16, hidden=64)
RNN_PARAMS = ("E", "Wx", "Wh", "b", "Wy", "by")


def rnn_data(size: RNNSize = RNN_SIZE, seed: int = 0, dtype=np.float32) -> Dict[str, np.ndarray]:
    """Token ids ``tokens`` (batch, steps + 1) (step t reads column t, predicts column t + 1) and
    the parameters: embedding ``E`` (vocab, embed), ``Wx`` (embed, hidden), ``Wh`` (hidden,
    hidden), ``b`` (hidden), output layer ``Wy`` (hidden, vocab), ``by`` (vocab)."""
    rng = np.random.default_rng(seed)
    b, t, v, e, h = size

    def normal(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    return {
        "tokens": rng.integers(0, v, size=(b, t + 1)),
        "E": normal(v, e, scale=0.5),
        "Wx": normal(e, h, scale=np.sqrt(1.0 / e)),
        "Wh": normal(h, h, scale=np.sqrt(1.0 / h)),
        "b": normal(h, scale=0.1),
        "Wy": normal(h, v, scale=np.sqrt(1.0 / h)),
        "by": normal(v, scale=0.1),
    }


class ClumsyRNN:
    """``h_t = tanh(E[x_t] Wx + h_{t-1} Wh + b)``, ``L = mean_t cross_entropy(h_t Wy + by, x_{t+1})``,
    unrolled over every step with clumsygrad's public ops (embedding rows by integer-array getitem)."""

    def __init__(self, data: Dict[str, np.ndarray], lr: float = LR):
        from clumsygrad.loss import cross_entropy

        self.cross_entropy = cross_entropy
        tokens = data["tokens"]
        self.inputs = [np.ascontiguousarray(tokens[:, t]) for t in range(tokens.shape[1] - 1)]
        self.targets = [np.ascontiguousarray(tokens[:, t + 1]) for t in range(tokens.shape[1] - 1)]
        self.params = tuple(_param(data[k]) for k in RNN_PARAMS)
        self.h0 = _input(np.zeros((tokens.shape[0], data["Wh"].shape[0]), data["Wh"].dtype))
        self.scale = 1.0 / len(self.inputs)
        self.optimizer = SGD(list(self.params), lr=lr)

    def loss(self) -> Tensor:
        from clumsygrad.activation import tanh

        E, Wx, Wh, b, Wy, by = self.params
        h = self.h0
        total = None
        for ids, target in zip(self.inputs, self.targets):
            h = tanh(E[ids] @ Wx + h @ Wh + b)
            step = self.cross_entropy(h @ Wy + by, target)
            total = step if total is None else total + step
        return total * self.scale

    def gradients(self) -> Dict[str, np.ndarray]:
        self.loss().backward()
        grads = {k: np.array(p.grad) for k, p in zip(RNN_PARAMS, self.params)}
        self.optimizer.zero_grad()
        return grads

    def step(self) -> None:
        self.loss().backward()
        self.optimizer.step()
        self.optimizer.zero_grad()

    def weights(self) -> Dict[str, np.ndarray]:
        return {k: t.data for k, t in zip(RNN_PARAMS, self.params)}


class NumpyRNN:
    """The RNN step in NumPy, backward through time derived by hand.

    The same computation as :class:`ClumsyRNN`, step by step (one embedding lookup, two GEMMs,
    a tanh, an output GEMM and a cross-entropy per step; the same per step backwards), so the
    ratio measures what the autograd costs over identical arithmetic.  Buffers that every
    step reuses are allocated once; gradients accumulate in place.
    """

    def __init__(self, data: Dict[str, np.ndarray], lr: float = LR):
        tokens = data["tokens"]
        self.B, T1 = tokens.shape
        self.T = T1 - 1
        self.ids = np.ascontiguousarray(tokens[:, :-1].T)  # (T, B): step t reads ids[t]
        self.targets = np.ascontiguousarray(tokens[:, 1:].T)  # (T, B): and predicts targets[t]
        self.p = {k: data[k].copy() for k in RNN_PARAMS}
        dtype = data["Wh"].dtype
        self.lr = dtype.type(lr)
        H, V = data["Wh"].shape[0], data["Wy"].shape[1]
        self.hs = np.zeros((self.T + 1, self.B, H), dtype)  # hs[0] = h0 = 0, hs[t + 1] = h_t
        self.probs = np.empty((self.T, self.B, V), dtype)  # softmax of each step's logits
        self.xe = np.empty((self.T, self.B, data["Wx"].shape[0]), dtype)  # each step's embeddings
        self.rows = np.arange(self.B)
        self.dh = np.empty((self.B, H), dtype)
        self.g = {k: np.empty_like(v) for k, v in self.p.items()}

    def gradients(self) -> Dict[str, np.ndarray]:
        p, g, T, B, hs, probs, xe = self.p, self.g, self.T, self.B, self.hs, self.probs, self.xe
        E, Wx, Wh, b, Wy, by = (p[k] for k in RNN_PARAMS)
        # forward: h_t = tanh(E[x_t] Wx + h_{t-1} Wh + b); p_t = softmax(h_t Wy + by)
        for t in range(T):
            np.take(E, self.ids[t], axis=0, out=xe[t])
            h = hs[t + 1]
            np.matmul(xe[t], Wx, out=h)
            h += hs[t] @ Wh
            h += b
            np.tanh(h, out=h)
            z = probs[t]
            np.matmul(h, Wy, out=z)
            z += by
            z -= z.max(axis=1, keepdims=True)
            np.exp(z, out=z)
            z /= z.sum(axis=1, keepdims=True)
        # L = (1/T) sum_t mean_b -log p_t[target]: dL/dz_t = (p_t - onehot(target_t)) / (B T)
        for v in g.values():
            v.fill(0)
        dh = self.dh
        dh.fill(0)  # dL/dh_t carried back from step t + 1
        scale = probs.dtype.type(1.0 / (B * T))
        for t in range(T - 1, -1, -1):
            dz = probs[t]
            dz[self.rows, self.targets[t]] -= 1
            dz *= scale
            h = hs[t + 1]
            g["Wy"] += h.T @ dz
            g["by"] += dz.sum(axis=0)
            dh += dz @ Wy.T
            # h_t = tanh(a_t): da_t = dh_t (1 - h_t^2)
            dh *= 1 - h * h
            g["b"] += dh.sum(axis=0)
            g["Wx"] += xe[t].T @ dh
            g["Wh"] += hs[t].T @ dh
            np.add.at(g["E"], self.ids[t], dh @ Wx.T)
            np.matmul(dh, Wh.T, out=dh)  # dL/dh_{t-1} from the recurrence
        return g

    def loss(self) -> float:
        """The loss at the current parameters (float64 arithmetic; for the finite-difference test)."""
        p, T, B = self.p, self.T, self.B
        h = np.zeros((B, p["Wh"].shape[0]))
        total = 0.0
        for t in range(T):
            h = np.tanh(p["E"][self.ids[t]] @ p["Wx"] + h @ p["Wh"] + p["b"])
            z = h @ p["Wy"] + p["by"]
            z = z - z.max(axis=1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            total -= logp[np.arange(B), self.targets[t]].mean()
        return total / T

    def step(self) -> None:
        for k, g in self.gradients().items():
            g *= self.lr
            self.p[k] -= g

    def weights(self) -> Dict[str, np.ndarray]:
        return self.p


class AttentionSize(NamedTuple):
    batch: int
    seq: int
    width: int


ATTENTION_SIZE = AttentionSize(batch=8, seq=16, width=32)
ATTENTION_PARAMS = ("Wq", "Wk", "Wv", "Wo")


def attention_data(size: AttentionSize = ATTENTION_SIZE, seed: int = 0, dtype=np.float32) -> Dict[str, np.ndarray]:
    """Input ``x`` and target ``y`` (batch, seq, width); projections ``Wq Wk Wv Wo`` (width, width)."""
    rng = np.random.default_rng(seed)
    b, s, d = size

    def normal(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    data = {"x": normal(b, s, d), "y": normal(b, s, d, scale=0.5)}
    data.update({k: normal(d, d, scale=np.sqrt(1.0 / d)) for k in ATTENTION_PARAMS})
    return data


class ClumsyAttention:
    """One head of self-attention: ``q = x Wq``, ``k = x Wk``, ``v = x Wv``,
    ``out = softmax(q k^T / sqrt(d)) v Wo``, ``L = mse_loss(out, y)``, with clumsygrad's ops.

    ``k^T`` is ``k.transpose(0, 2, 1)``, a view of the last two axes, as the NumPy step writes it.
    (Before the registry had that transpose, ``k^T`` was computed as ``Wk^T x^T`` with ``x^T`` a
    constant input: the same values and gradients, but a batch of small products and a batch
    reduction in the backward pass where the NumPy step has one GEMM.)
    """

    def __init__(self, data: Dict[str, np.ndarray], lr: float = LR):
        self.x = _input(data["x"])
        self.y = _input(data["y"])
        self.params = tuple(_param(data[k]) for k in ATTENTION_PARAMS)
        self.scale = 1.0 / float(np.sqrt(data["x"].shape[-1]))
        self.optimizer = SGD(list(self.params), lr=lr)

    def loss(self) -> Tensor:
        Wq, Wk, Wv, Wo = self.params
        q = self.x @ Wq
        kT = (self.x @ Wk).transpose(0, 2, 1)  # (batch, width, seq), a view
        v = self.x @ Wv
        attention = softmax((q @ kT) * self.scale, axis=-1)
        return mse_loss((attention @ v) @ Wo, self.y)

    def gradients(self) -> Dict[str, np.ndarray]:
        self.loss().backward()
        grads = {k: np.array(p.grad) for k, p in zip(ATTENTION_PARAMS, self.params)}
        self.optimizer.zero_grad()
        return grads

    def step(self) -> None:
        self.loss().backward()
        self.optimizer.step()
        self.optimizer.zero_grad()

    def weights(self) -> Dict[str, np.ndarray]:
        return {k: t.data for k, t in zip(ATTENTION_PARAMS, self.params)}


class NumpyAttention:
    """The attention step in NumPy, backward derived by hand (projections as one GEMM over all
    batch rows, the (seq, seq) products batched)."""

    def __init__(self, data: Dict[str, np.ndarray], lr: float = LR):
        self.x, self.y = data["x"], data["y"]
        self.x2 = self.x.reshape(-1, self.x.shape[-1])
        self.p = {k: data[k].copy() for k in ATTENTION_PARAMS}
        self.lr = self.x.dtype.type(lr)
        self.scale = self.x.dtype.type(1.0 / np.sqrt(self.x.shape[-1]))

    def _forward(self):
        p, x2 = self.p, self.x2
        shape = self.x.shape
        q = (x2 @ p["Wq"]).reshape(shape)
        k = (x2 @ p["Wk"]).reshape(shape)
        v = (x2 @ p["Wv"]).reshape(shape)
        a = q @ k.transpose(0, 2, 1)
        a *= self.scale
        a -= a.max(axis=-1, keepdims=True)
        np.exp(a, out=a)
        a /= a.sum(axis=-1, keepdims=True)
        o = a @ v
        out = o.reshape(x2.shape) @ p["Wo"]
        return q, k, v, a, o, out

    def loss(self) -> float:
        out = self._forward()[-1]
        return float(np.mean((out.reshape(self.y.shape) - self.y) ** 2))

    def gradients(self) -> Dict[str, np.ndarray]:
        p, x2 = self.p, self.x2
        q, k, v, a, o, out = self._forward()
        # L = mean((out - y)^2): dL/dout = 2 (out - y) / n
        g = out - self.y.reshape(out.shape)
        g *= g.dtype.type(2.0 / g.size)
        o2 = o.reshape(g.shape)
        gWo = o2.T @ g
        go = (g @ p["Wo"].T).reshape(o.shape)
        # o = a v: da = go v^T, dv = a^T go
        ga = go @ v.transpose(0, 2, 1)
        gv = a.transpose(0, 2, 1) @ go
        # softmax backward, then the scale: ds = a (da - sum(a da)) / sqrt(d)
        ga -= (a * ga).sum(axis=-1, keepdims=True)
        ga *= a
        ga *= self.scale
        # s = q k^T: dq = ds k, dk = ds^T q
        gq = ga @ k
        gk = ga.transpose(0, 2, 1) @ q
        width = x2.shape[1]
        return {
            "Wq": x2.T @ gq.reshape(-1, width),
            "Wk": x2.T @ gk.reshape(-1, width),
            "Wv": x2.T @ gv.reshape(-1, width),
            "Wo": gWo,
        }

    def step(self) -> None:
        for k, g in self.gradients().items():
            g *= self.lr
            self.p[k] -= g

    def weights(self) -> Dict[str, np.ndarray]:
        return self.p


SEQUENCE_WORKLOADS = {
    "rnn": (lambda: rnn_data(), lambda d: ClumsyRNN(d), lambda d: NumpyRNN(d)),
    "attention": (lambda: attention_data(), lambda d: ClumsyAttention(d), lambda d: NumpyAttention(d)),
}


# --------------------------------------------------------------------------- convolution (issue 16)
class ConvSize(NamedTuple):
    batch: int
    channels: int  # input channels
    size: int  # square images of size x size
    filters: int  # output channels of the 3x3 "same" convolution


CONV_SIZES: Dict[str, ConvSize] = {
    "small": ConvSize(64, 1, 8, 16),
    "medium": ConvSize(32, 16, 28, 32),
}
CNN_BATCH = 32  # scikit-learn's digits: 1x8x8 images, 10 classes


def conv_data(size: ConvSize, seed: int = 16) -> Dict[str, np.ndarray]:
    """Images ``x`` (N, C, H, W), a 3x3 weight ``W`` (F, C, 3, 3), a bias ``b`` (F,) and the
    gradient ``g`` (N, F, H, W) that the output's consumer hands back; float32."""
    rng = np.random.default_rng(seed)
    n, c, h, f = size

    def normal(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    return {"x": normal(n, c, h, h), "W": normal(f, c, 3, 3, scale=np.sqrt(2.0 / (9 * c))),
            "b": normal(f, scale=0.1), "g": normal(n, f, h, h)}


def im2col(x: np.ndarray, k: int = 3, pad: int = 1) -> np.ndarray:
    """The (N, C*k*k, H*W) columns of a stride-1 "same" k x k convolution of ``x`` (N, C, H, W)."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))  # n c h w k k
    return win.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * k * k, h * w)


def col2im(cols: np.ndarray, shape: tuple, k: int = 3, pad: int = 1) -> np.ndarray:
    """The adjoint of :func:`im2col`: the (N, C, H, W) sums of the columns' entries."""
    n, c, h, w = shape
    cols = cols.reshape(n, c, k, k, h, w)
    dxp = np.zeros((n, c, h + 2 * pad, w + 2 * pad), cols.dtype)
    for i in range(k):
        for j in range(k):
            dxp[:, :, i:i + h, j:j + w] += cols[:, :, i, j]
    return dxp[:, :, pad:pad + h, pad:pad + w]


class ClumsyConv:
    """``y = conv2d(x, W, b, padding=1)`` and ``y.backward(g)``: the layer's forward pass and its
    three gradients (input, weight, bias) through ``clumsygrad.nn.functional``; then zero_grad."""

    def __init__(self, data: Dict[str, np.ndarray]):
        from clumsygrad.nn import functional  # not in 0.2.1, which --compare-0.2.1 runs this file under

        self.conv2d = functional.conv2d
        self.params = tuple(_param(data[k]) for k in ("x", "W", "b"))
        self.g = data["g"]
        self.optimizer = SGD(list(self.params), lr=LR)  # only its zero_grad

    def gradients(self) -> Dict[str, np.ndarray]:
        x, w, b = self.params
        self.conv2d(x, w, b, padding=1).backward(self.g)
        grads = {k: np.array(p.grad) for k, p in zip(("x", "W", "b"), self.params)}
        self.optimizer.zero_grad()
        return grads

    def step(self) -> None:
        x, w, b = self.params
        self.conv2d(x, w, b, padding=1).backward(self.g)
        self.optimizer.zero_grad()


class NumpyConv:
    """The same in hand-written NumPy: im2col (a strided window view copied once), one batched
    GEMM for the output, two for the gradients, col2im by ``k*k`` strided slice additions."""

    def __init__(self, data: Dict[str, np.ndarray]):
        self.x, self.w, self.b, self.g = (data[k] for k in ("x", "W", "b", "g"))

    def gradients(self) -> Dict[str, np.ndarray]:
        x, w, g = self.x, self.w, self.g
        n, f = x.shape[0], w.shape[0]
        cols = im2col(x)
        wm = w.reshape(f, -1)
        y = np.matmul(wm, cols) + self.b[:, None]  # (N, F, H*W)
        gm = g.reshape(n, f, -1)
        dw = np.matmul(gm, cols.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
        dx = col2im(np.matmul(wm.T, gm), x.shape)
        return {"x": dx, "W": dw, "b": gm.sum(axis=(0, 2)), "y": y.reshape(g.shape)}

    def step(self) -> None:
        self.gradients()


CNN_PARAMS = ("w1", "b1", "w2", "b2", "w3", "b3")


def cnn_data(batch: int = CNN_BATCH, seed: int = 8) -> Dict[str, np.ndarray]:
    """A batch of digits-shaped images ``x`` (batch, 1, 8, 8) with labels ``y``, and the
    parameters of ``examples/cnn_digits.py``'s model (conv 1->16, conv 16->32, both 3x3 "same"
    with ReLU, 2x2 max pooling, linear 512->10) drawn as PyTorch's default initialisation; float32."""
    rng = np.random.default_rng(seed)

    def uniform(fan_in, *shape):
        bound = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, shape).astype(np.float32)

    return {
        "x": rng.random((batch, 1, 8, 8), dtype=np.float32), "y": rng.integers(0, 10, batch),
        "w1": uniform(9, 16, 1, 3, 3), "b1": uniform(9, 16),
        "w2": uniform(144, 32, 16, 3, 3), "b2": uniform(144, 32),
        "w3": uniform(512, 10, 512), "b3": uniform(512, 10),
    }


class ClumsyCNN:
    """One training step of the digits CNN with ``clumsygrad.nn`` (``nn.Sequential`` of Conv2d,
    ReLU, MaxPool2d, Flatten, Linear), cross-entropy and Adam."""

    def __init__(self, data: Dict[str, np.ndarray], lr: float = 1e-3):
        from clumsygrad import nn  # not in 0.2.1
        from clumsygrad.loss import cross_entropy
        from clumsygrad.optimizer import Adam

        self.model = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding="same"), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding="same"), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(512, 10),
        )
        names = ("0.weight", "0.bias", "2.weight", "2.bias", "6.weight", "6.bias")
        self.model.load_state_dict({n: data[k] for n, k in zip(names, CNN_PARAMS)})
        self.cross_entropy = cross_entropy
        self.x, self.y = _input(data["x"]), data["y"]
        self.optimizer = Adam(self.model.parameters(), lr=lr)

    def gradients(self) -> Dict[str, np.ndarray]:
        self.cross_entropy(self.model(self.x), self.y).backward()
        grads = {k: np.array(p.grad) for k, p in zip(CNN_PARAMS, self.model.parameters())}
        self.optimizer.zero_grad()
        return grads

    def step(self) -> None:
        loss = self.cross_entropy(self.model(self.x), self.y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

    def weights(self) -> Dict[str, np.ndarray]:
        return {k: p.data for k, p in zip(CNN_PARAMS, self.model.parameters())}


class NumpyCNN:
    """The same step by hand in NumPy: im2col convolutions with batched GEMMs, ReLU masks, the
    2x2 max pooling as a reshape and an argmax, a stable softmax cross-entropy, every gradient
    derived by hand, and Adam (PyTorch's update: bias corrections, ``eps`` outside the root)."""

    def __init__(self, data: Dict[str, np.ndarray], lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        self.x, self.y = data["x"], data["y"]
        self.p = {k: data[k].copy() for k in CNN_PARAMS}
        self.m = {k: np.zeros_like(v) for k, v in self.p.items()}
        self.v = {k: np.zeros_like(v) for k, v in self.p.items()}
        self.lr, self.betas, self.eps, self.t = lr, betas, eps, 0

    def gradients(self) -> Dict[str, np.ndarray]:
        p, x, y = self.p, self.x, self.y
        n = len(x)
        cols1 = im2col(x)
        a1 = (np.matmul(p["w1"].reshape(16, -1), cols1) + p["b1"][:, None]).reshape(n, 16, 8, 8)
        h1 = np.maximum(a1, 0)
        cols2 = im2col(h1)
        a2 = (np.matmul(p["w2"].reshape(32, -1), cols2) + p["b2"][:, None]).reshape(n, 32, 8, 8)
        h2 = np.maximum(a2, 0)
        win = h2.reshape(n, 32, 4, 2, 4, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, 32, 4, 4, 4)
        arg = win.argmax(axis=-1)
        flat = np.take_along_axis(win, arg[..., None], -1).reshape(n, -1)
        logits = flat @ p["w3"].T + p["b3"]
        z = logits - logits.max(axis=1, keepdims=True)
        dlogits = np.exp(z)
        dlogits /= dlogits.sum(axis=1, keepdims=True)
        dlogits[np.arange(n), y] -= 1
        dlogits /= n
        g = {"w3": dlogits.T @ flat, "b3": dlogits.sum(0)}
        dwin = np.zeros_like(win)
        np.put_along_axis(dwin, arg[..., None], (dlogits @ p["w3"]).reshape(n, 32, 4, 4, 1), -1)
        dh2 = dwin.reshape(n, 32, 4, 4, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, 32, 64)
        da2 = dh2 * (a2.reshape(n, 32, 64) > 0)
        g["w2"] = np.matmul(da2, cols2.transpose(0, 2, 1)).sum(0).reshape(p["w2"].shape)
        g["b2"] = da2.sum(axis=(0, 2))
        dh1 = col2im(np.matmul(p["w2"].reshape(32, -1).T, da2), h1.shape)
        da1 = (dh1 * (a1 > 0)).reshape(n, 16, 64)
        g["w1"] = np.matmul(da1, cols1.transpose(0, 2, 1)).sum(0).reshape(p["w1"].shape)
        g["b1"] = da1.sum(axis=(0, 2))
        return g

    def step(self) -> None:
        grads = self.gradients()
        b1, b2 = self.betas
        self.t += 1
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for k, g in grads.items():
            m, v = self.m[k], self.v[k]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            self.p[k] -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)

    def weights(self) -> Dict[str, np.ndarray]:
        return self.p


CONV_WORKLOADS = {
    "conv-small": (lambda: conv_data(CONV_SIZES["small"]), lambda d: ClumsyConv(d), lambda d: NumpyConv(d)),
    "conv-medium": (lambda: conv_data(CONV_SIZES["medium"]), lambda d: ClumsyConv(d), lambda d: NumpyConv(d)),
    "cnn": (lambda: cnn_data(), lambda d: ClumsyCNN(d), lambda d: NumpyCNN(d)),
}
"""``python -m clumsygrad.bench``'s convolution rows: ``(data, clumsygrad step, NumPy step)`` factories."""

STEP_WORKLOADS = {**SEQUENCE_WORKLOADS, **CONV_WORKLOADS}


# --------------------------------------------------------------------------- higher order
FUNC_WORKLOADS = ("grad", "hvp", "hessian")
"""``python -m clumsygrad.bench``'s ``clumsygrad.func`` rows: methods of :class:`FuncMLP`."""


class FuncMLP:
    """The tiny MLP step's loss as a function of its four parameters, and ``clumsygrad.func``'s
    transforms of it: ``grad`` (first order, for scale), ``hvp`` (one Hessian-vector product in
    all 1,320 parameters) and ``hessian`` (the 256 x 256 block of ``W2``: one recorded gradient,
    then one reverse pass per row)."""

    def __init__(self, data):
        from clumsygrad import func  # not in 0.2.1, which --compare-0.2.1 runs this file under

        self.func = func
        self.x, self.y = Tensor(data["x"]), Tensor(data["y"])
        self.params = tuple(data[k] for k in ("W1", "b1", "W2", "b2"))
        rng = np.random.default_rng(1)
        self.tangents = tuple(rng.standard_normal(p.shape).astype(np.float32) for p in self.params)
        self._grad = func.grad(self.loss, argnums=(0, 1, 2, 3))
        self._hessian_w2 = func.hessian(self.loss, argnums=2)

    def loss(self, w1, b1, w2, b2):
        h = relu(self.x @ w1 + b1)
        return mse_loss(softmax(h @ w2 + b2, axis=-1), self.y)

    def grad(self):
        return self._grad(*self.params)

    def hvp(self):
        return self.func.hvp(self.loss, self.params, self.tangents)

    def hessian(self):
        return self._hessian_w2(*self.params)
