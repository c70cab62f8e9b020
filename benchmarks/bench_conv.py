"""Convolution benchmarks (issue 16): conv2d forward + both gradients, compiled vs pure vs a
hand-written NumPy im2col step, and one CNN training step on the digits shape.

Sizes: ``small`` N=64, 1x8x8 -> 16 channels, 3x3 (padding 1); ``medium`` N=32, 16x28x28 ->
32 channels, 3x3 (padding 1).  float32 throughout.

* ``conv-kernels-<size>``: ``conv2d_forward`` + ``conv2d_backward_input`` +
  ``conv2d_backward_weight`` of each kernel set, and the hand-written NumPy im2col step doing
  the same three results;
* ``conv-autograd-<size>``: ``nn.functional.conv2d`` + ``backward()`` on each backend (the graph
  recording and the bias gradient included);
* ``cnn-step``: one training step of ``examples/cnn_digits.py``'s model (conv 1->16, conv
  16->32, max pool, linear 512->10; cross-entropy; Adam) on a batch of 32 digits-shaped
  images, on each backend, and the same step written by hand in NumPy.

Run (BLAS single-threaded, one core)::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 taskset -c 1 \\
        pytest benchmarks/bench_conv.py --benchmark-only --benchmark-columns=median,ops
"""
import numpy as np
import pytest

import clumsygrad
from clumsygrad import nn
from clumsygrad._kernels import pure
from clumsygrad.nn import functional as F
from clumsygrad.optimizer import Adam
from clumsygrad.tensor import Tensor, TensorType

try:
    from clumsygrad._kernels import native
except ImportError:  # not built: time the reference alone
    native = None

KERNELS = {"pure": pure, "native": native} if native is not None else {"pure": pure}
SIZES = {"small": (64, 1, 8, 16), "medium": (32, 16, 28, 32)}
ARGS = ((1, 1), (1, 1, 1, 1), (1, 1), 1)


def _data(size):
    n, c, h, f = SIZES[size]
    rng = np.random.default_rng(16)
    x = rng.standard_normal((n, c, h, h)).astype(np.float32)
    w = rng.standard_normal((f, c, 3, 3)).astype(np.float32)
    g = rng.standard_normal((n, f, h, h)).astype(np.float32)
    return x, w, g


# --------------------------------------------------------------------------- the hand-written NumPy step
def im2col(x, k=3, pad=1):
    """(N, C*k*k, OH*OW) columns of ``x`` (stride 1)."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))  # n c oh ow k k
    return win.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * k * k, oh * ow), (oh, ow)


def col2im(cols, shape, k=3, pad=1):
    n, c, h, w = shape
    oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    cols = cols.reshape(n, c, k, k, oh, ow)
    dxp = np.zeros((n, c, h + 2 * pad, w + 2 * pad), cols.dtype)
    for i in range(k):
        for j in range(k):
            dxp[:, :, i:i + oh, j:j + ow] += cols[:, :, i, j]
    return dxp[:, :, pad:pad + h, pad:pad + w]


def numpy_conv_step(x, w, g):
    """Forward, input gradient and weight gradient of a 3x3 'same' convolution."""
    cols, (oh, ow) = im2col(x)
    wm = w.reshape(w.shape[0], -1)
    y = np.matmul(wm, cols).reshape(x.shape[0], w.shape[0], oh, ow)
    gm = g.reshape(x.shape[0], w.shape[0], -1)
    dw = np.matmul(gm, cols.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
    dx = col2im(np.matmul(wm.T, gm), x.shape)
    return y, dx, dw


# --------------------------------------------------------------------------- conv benchmarks
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("impl", list(KERNELS) + ["numpy-im2col"])
def test_conv_kernels(benchmark, impl, size):
    x, w, g = _data(size)
    benchmark.group = f"conv-kernels-{size}"
    if impl == "numpy-im2col":
        benchmark(numpy_conv_step, x, w, g)
        return
    k = KERNELS[impl]

    def step():
        k.conv2d_forward(x, w, *ARGS)
        k.conv2d_backward_input(g, w, x.shape, *ARGS)
        k.conv2d_backward_weight(g, x, w.shape, *ARGS)

    benchmark(step)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("backend", ["cython", "python"])
def test_conv_autograd(benchmark, use_backend, backend, size):
    use_backend(backend)
    x, w, g = _data(size)
    xt, wt = Tensor(x, TensorType.PARAMETER), Tensor(w, TensorType.PARAMETER)
    bt = Tensor(np.zeros(w.shape[0]), TensorType.PARAMETER)
    benchmark.group = f"conv-autograd-{size}"

    def step():
        F.conv2d(xt, wt, bt, padding=1).backward(g)

    benchmark(step)


# --------------------------------------------------------------------------- one CNN training step
def _digits_batch():
    rng = np.random.default_rng(8)
    return rng.random((32, 1, 8, 8), dtype=np.float32), rng.integers(0, 10, 32)


def _cnn():
    rng = np.random.default_rng(0)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, generator=rng), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1, generator=rng), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(512, 10, generator=rng),
    )


@pytest.mark.parametrize("backend", ["cython", "python"])
def test_cnn_step(benchmark, use_backend, backend):
    use_backend(backend)
    x, y = _digits_batch()
    model = _cnn()
    optimizer = Adam(model.parameters(), lr=1e-3)
    benchmark.group = "cnn-step"

    def step():
        loss = clumsygrad.cross_entropy(model(Tensor(x)), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    benchmark(step)


class NumpyCNN:
    """The same model, forward, backward and Adam written by hand in NumPy (float32)."""

    def __init__(self):
        model = _cnn()
        self.p = [p.data.copy() for p in model.parameters()]  # w1 b1 w2 b2 w3 b3
        self.m = [np.zeros_like(p) for p in self.p]
        self.v = [np.zeros_like(p) for p in self.p]
        self.t = 0

    def step(self, x, y, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
        w1, c1, w2, c2, w3, c3 = self.p
        n = len(x)
        cols1, _ = im2col(x)
        a1 = (np.matmul(w1.reshape(16, -1), cols1) + c1[:, None]).reshape(n, 16, 8, 8)
        h1 = np.maximum(a1, 0)
        cols2, _ = im2col(h1)
        a2 = (np.matmul(w2.reshape(32, -1), cols2) + c2[:, None]).reshape(n, 32, 8, 8)
        h2 = np.maximum(a2, 0)
        win = h2.reshape(n, 32, 4, 2, 4, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, 32, 4, 4, 4)
        arg = win.argmax(axis=-1)
        pooled = np.take_along_axis(win, arg[..., None], -1)[..., 0]
        flat = pooled.reshape(n, -1)
        logits = flat @ w3.T + c3
        z = logits - logits.max(axis=1, keepdims=True)
        prob = np.exp(z)
        prob /= prob.sum(axis=1, keepdims=True)
        dlogits = prob
        dlogits[np.arange(n), y] -= 1
        dlogits /= n
        g3, gc3 = dlogits.T @ flat, dlogits.sum(0)
        dpool = (dlogits @ w3).reshape(n, 32, 4, 4)
        dwin = np.zeros_like(win)
        np.put_along_axis(dwin, arg[..., None], dpool[..., None], -1)
        dh2 = dwin.reshape(n, 32, 4, 4, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, 32, 8, 8)
        da2 = (dh2 * (a2 > 0)).reshape(n, 32, 64)
        g2 = np.matmul(da2, cols2.transpose(0, 2, 1)).sum(0).reshape(w2.shape)
        gc2 = da2.sum(axis=(0, 2))
        dh1 = col2im(np.matmul(w2.reshape(32, -1).T, da2), h1.shape)
        da1 = (dh1 * (a1 > 0)).reshape(n, 16, 64)
        g1 = np.matmul(da1, cols1.transpose(0, 2, 1)).sum(0).reshape(w1.shape)
        gc1 = da1.sum(axis=(0, 2))
        self.t += 1
        for p, g, m, v in zip(self.p, (g1, gc1, g2, gc2, g3, gc3), self.m, self.v):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p -= lr * (m / (1 - b1 ** self.t)) / (np.sqrt(v / (1 - b2 ** self.t)) + eps)


def test_cnn_step_numpy(benchmark):
    x, y = _digits_batch()
    net = NumpyCNN()
    benchmark.group = "cnn-step"
    benchmark(net.step, x, y)


def test_the_numpy_step_matches_clumsygrad():
    """The hand-written step is the same computation (so the comparison is fair)."""
    x, y = _digits_batch()
    model, net = _cnn(), NumpyCNN()
    optimizer = Adam(model.parameters(), lr=1e-3)
    for _ in range(2):
        loss = clumsygrad.cross_entropy(model(Tensor(x)), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        net.step(x, y)
    for a, b in zip(model.parameters(), net.p):
        np.testing.assert_allclose(a.data, b, rtol=1e-3, atol=1e-5)
