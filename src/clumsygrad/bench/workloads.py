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

    Measured in a fresh interpreter, so no memory freed by earlier work is reused; None where
    ``/proc`` is missing (not Linux).
    """
    import os
    import subprocess
    import sys

    if not os.path.exists("/proc/self/statm"):
        return None
    child = _CHAIN_MEMORY_CHILD.format(page=os.sysconf("SC_PAGE_SIZE"))
    done = subprocess.run(
        [sys.executable, "-c", child, backend, str(n)], capture_output=True, text=True, check=True
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
