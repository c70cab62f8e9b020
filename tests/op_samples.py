"""Sample inputs for every registered op (the OpInfo of this project).

``SAMPLES[name]`` lists ``Sample``s: a function of PARAMETER tensors that reaches the op through
the public API, and the float64 arrays to call it with.  The generic tests (finite differences on
both backends, second derivatives, NumPy names) read this table; a registered op without an entry
fails ``test_every_registered_op_has_samples``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List

import numpy as np

import clumsygrad as cg

_rng = np.random.default_rng(2024)


def normal(*shape):
    return _rng.standard_normal(shape)


def positive(*shape):
    return _rng.uniform(0.5, 2.0, shape)


def away(*shape):
    """|x| in [0.2, 2): no kinks of relu/abs/max within a finite-difference step."""
    return _rng.uniform(0.2, 2.0, shape) * np.where(_rng.random(shape) < 0.5, -1.0, 1.0)


def distinct(*shape):
    """Well-separated values (max/min/sort are differentiable there)."""
    n = int(np.prod(shape))
    return (_rng.permutation(n).astype(float) * 0.37 + 0.1).reshape(shape)


@dataclass
class Sample:
    fn: Callable
    inputs: List[np.ndarray]
    second_order: bool = True  # whether second derivatives exist (piecewise-linear ops: zero)
    note: str = ""
    eps: float = 1e-6  # the finite-difference step
    tol: float = 1e-6


S = Sample
LABELS = np.array([2, 0, 1, 2])

SAMPLES = {
    # arithmetic (the operators record the named variants)
    "add": [S(lambda a, b: a + b, [normal(3, 4), normal(4)]), S(lambda a, b: np.add(a, b), [normal(2, 3), normal(2, 1)])],
    "add_backward": [S(lambda a, b: a + b, [normal(3, 4), normal(3, 4)])],
    "add_scalar_backward": [S(lambda a: a + 2.5, [normal(3)]), S(lambda a: np.float64(2) + a, [normal(2, 2)])],
    "subtract": [S(lambda a, b: a - b, [normal(3, 4), normal(3, 1)]), S(lambda a, b: a - b, [normal(4), normal(3, 4)])],
    "sub_backward": [S(lambda a, b: a - b, [normal(2, 3), normal(2, 3)])],
    "sub_scalar_backward": [S(lambda a: a - 1.5, [normal(3)])],
    "multiply": [S(lambda a, b: a * b, [normal(3, 4), normal(4)]), S(lambda a, b: a * b, [normal(3, 1), normal(1, 4)])],
    "mul_backward": [S(lambda a, b: a * b, [normal(2, 3), normal(2, 3)])],
    "mul_scalar_backward": [S(lambda a: a * 3.0, [normal(3)]), S(lambda a: a / 4.0, [normal(3)])],
    "divide": [S(lambda a, b: cg.math.divide(a, b), [normal(3, 2), positive(2)])],
    "negative": [S(lambda a: -a, [normal(3)])],
    "power": [S(lambda a, b: a ** b, [positive(3, 2), normal(2)]), S(lambda a: 2.0 ** a, [normal(3)])],
    "power_backward": [S(lambda a: a ** 3, [normal(2, 3)]), S(lambda a: a ** 0.5, [positive(4)])],
    "matmul": [
        S(lambda a, b: a @ b, [normal(3, 4), normal(4, 2)]),
        S(lambda a, b: a @ b, [normal(2, 3, 4), normal(4, 5)]),
        S(lambda a, b: a @ b, [normal(4), normal(4)]),
        S(lambda a, b: a @ b, [normal(4), normal(2, 4, 3)]),
        S(lambda a, b: a @ b, [normal(2, 3, 4), normal(4)]),
        S(lambda a, b: a @ b, [normal(2, 3, 4), normal(2, 4, 5)]),
        S(lambda a, b: a @ b, [normal(1, 3, 4), normal(2, 4, 2)]),
        S(lambda a, b: a.T() @ b, [normal(4, 3), normal(4, 2)]),
    ],
    # elementwise
    "abs": [S(cg.abs, [away(3, 4)], second_order=False)],
    "sqrt": [S(cg.sqrt, [positive(3, 4)])],
    "exp": [S(cg.exp, [normal(3, 4)])],
    "log": [S(cg.log, [positive(3, 4)])],
    "sin": [S(cg.sin, [normal(5)])],
    "cos": [S(cg.cos, [normal(5)])],
    "tan": [S(cg.tan, [normal(5) * 0.5])],
    "sign": [S(cg.sign, [away(5)], second_order=False)],
    "square": [S(cg.square, [normal(5)])],
    "reciprocal": [S(cg.reciprocal, [positive(5)])],
    "log1p": [S(cg.log1p, [positive(5)])],
    "expm1": [S(cg.expm1, [normal(5)])],
    "log2": [S(cg.log2, [positive(5)])],
    "log10": [S(cg.log10, [positive(5)])],
    # reductions
    "sum": [S(lambda a: cg.sum(a, axis=(0, -1)), [normal(2, 3, 4)]), S(lambda a: a.sum(), [normal(3)])],
    "mean": [S(lambda a: cg.mean(a, axis=1, keepdims=True), [normal(2, 3, 4)])],
    "var": [S(lambda a: cg.var(a, axis=0), [normal(4, 3)]), S(lambda a: a.var(ddof=1), [normal(5)])],
    "std": [S(lambda a: cg.std(a, axis=1, ddof=1), [normal(3, 4)])],
    "prod": [S(lambda a: cg.prod(a, axis=1), [normal(3, 4)]), S(lambda a: a.prod(), [normal(2, 2)])],
    "cumsum": [S(lambda a: cg.cumsum(a, axis=1), [normal(3, 4)]), S(cg.cumsum, [normal(2, 3)])],
    "cumprod": [S(lambda a: cg.cumprod(a, axis=0), [positive(3, 2)])],
    "logsumexp": [S(lambda a: cg.logsumexp(a, axis=1), [normal(3, 4)]), S(cg.logsumexp, [normal(5)])],
    "norm": [
        S(cg.norm, [normal(5)]), S(lambda a: cg.norm(a, ord=1), [away(5)], second_order=False),
        S(lambda a: cg.norm(a, ord=np.inf, axis=1), [distinct(3, 4)], second_order=False),
        S(lambda a: cg.norm(a, axis=(0, 1)), [normal(3, 4)]),
    ],
    "max": [S(lambda a: cg.max(a, axis=1), [distinct(3, 4)], second_order=False), S(lambda a: a.max(), [distinct(5)], second_order=False)],
    "min": [S(lambda a: cg.min(a, axis=0, keepdims=True), [distinct(3, 4)], second_order=False)],
    # choices
    "maximum": [S(cg.maximum, [distinct(3, 4), distinct(4) + 0.05], second_order=False)],
    "minimum": [S(cg.minimum, [distinct(3, 4), distinct(3, 1) + 0.05], second_order=False)],
    "where": [S(lambda a, b: cg.where(np.array([True, False, True]), a, b), [normal(2, 3), normal(3)])],
    # activations
    "tanh": [S(cg.tanh, [normal(3, 4)])],
    "relu": [S(cg.relu, [away(3, 4)], second_order=False)],
    "sigmoid": [S(cg.sigmoid, [normal(3, 4)])],
    "softmax": [S(lambda a: cg.activation.softmax(a, axis=0), [normal(3, 4)]),
                S(lambda a: cg.activation.softmax(a * 2.0, axis=-1), [normal(2, 3, 4)])],
    "log_softmax": [S(lambda a: cg.log_softmax(a, axis=-1), [normal(3, 4)])],
    "normal_cdf": [S(cg.activation.normal_cdf, [normal(5)])],
    "gelu": [S(cg.gelu, [normal(6)]), S(lambda a: cg.gelu(a, approximate="tanh"), [normal(6)])],
    "leaky_relu": [S(lambda a: cg.leaky_relu(a, 0.1), [away(6)], second_order=False)],
    "elu": [S(cg.elu, [away(6)])],
    "selu": [S(cg.selu, [away(6)])],
    "softplus": [S(cg.softplus, [normal(6)])],
    "silu": [S(cg.silu, [normal(6)])],
    "mish": [S(cg.mish, [normal(6)])],
    "hardtanh": [S(cg.hardtanh, [away(6) * 0.6], second_order=False)],
    "log_sigmoid": [S(cg.log_sigmoid, [normal(6)])],
    # losses
    "mse_loss": [S(cg.loss.mse_loss, [normal(3, 4), normal(3, 4)])],
    "mae_loss": [S(cg.loss.mae_loss, [normal(3, 4), normal(3, 4) + 5.0], second_order=False)],
    "cross_entropy": [
        S(lambda z: cg.cross_entropy(z, LABELS), [normal(4, 3)]),
        S(lambda z, t: cg.cross_entropy(z, t, reduction="sum"), [normal(4, 3), positive(4, 3)]),
        S(lambda z: cg.cross_entropy(z, LABELS, reduction="none"), [normal(4, 3)]),
    ],
    "binary_cross_entropy_with_logits": [
        S(cg.binary_cross_entropy_with_logits, [normal(3, 4), _rng.uniform(0, 1, (3, 4))]),
    ],
    # shape
    "getitem": [
        S(lambda a: a[1:, ::2], [normal(3, 4)]), S(lambda a: a[[0, 2, 0]], [normal(3, 4)]),
        S(lambda a: a[np.array([[True, False], [False, True]])], [normal(2, 2)]),
        # embedding rows: repeats, negatives, and a second lookup added into the first's gradient
        S(lambda a: a[np.array([2, -1, 0, 2])], [normal(4, 3)]),
        S(lambda a: a[np.array([0, 3])] + a[np.array([3, 3])] * 2.0, [normal(4, 3)]),
    ],
    "index_add": [S(lambda a: cg.shape.index_add(a, np.array([0, 2, 0]), (3, 2)), [normal(3, 2)])],
    "reshape": [S(lambda a: a.reshape(4, -1), [normal(2, 2, 3)]), S(cg.flatten, [normal(2, 3)]),
                S(lambda a: cg.expand_dims(a, 1), [normal(3)]), S(lambda a: cg.squeeze(a), [normal(3, 1)])],
    "transpose": [S(lambda a: a.T(), [normal(2, 3)]), S(np.transpose, [normal(2, 3, 4)])],
    "permute": [S(lambda a: a.transpose(1, 2, 0), [normal(2, 3, 4)]), S(lambda a: cg.swapaxes(a, 0, 2), [normal(2, 3, 4)]),
                S(lambda a: cg.moveaxis(a, 0, -1), [normal(2, 3, 4)])],
    "broadcast_to": [S(lambda a: cg.broadcast_to(a, (2, 3, 4)), [normal(3, 1)])],
    "flip": [S(lambda a: cg.flip(a, axis=1), [normal(2, 3)])],
    "concatenate": [S(lambda a, b: cg.concatenate([a, b], axis=1), [normal(2, 3), normal(2, 1)])],
    "stack": [S(lambda a, b: cg.stack([a, b], axis=1), [normal(2, 3), normal(2, 3)])],
    # a float32 round trip: linear, so a wide step is exact up to float32 rounding
    # nn.functional
    "linear": [S(lambda x, w, b: cg.nn.functional.linear(x, w, b), [normal(4, 3), normal(2, 3), normal(2)]),
               S(lambda x, w: cg.nn.functional.linear(x, w), [normal(2, 5, 3), normal(4, 3)])],
    "astype": [S(lambda a: a.astype(np.float32).astype(np.float64) * 1.0, [normal(3)], eps=1e-2, tol=1e-4)],
    # products and diagonals (clumsygrad.linalg)
    "einsum": [
        S(lambda a, b: cg.einsum("ij,jk->ik", a, b), [normal(2, 3), normal(3, 4)]),
        S(lambda a: cg.einsum("ii->i", a), [normal(3, 3)]),
        S(lambda a: cg.einsum("ii", a), [normal(3, 3)]),
        S(lambda a, b: cg.einsum("...ij,...jk", a, b), [normal(2, 1, 2, 3), normal(4, 3, 2)]),
        S(lambda a, b: np.einsum("bij,j->bi", a, b), [normal(2, 3, 4), normal(4)]),
        S(lambda a, b, c: cg.einsum("i,ij,iik->jk", a, b, c), [normal(2), normal(2, 3), normal(2, 2, 3)]),
        S(lambda a: cg.einsum("ij->", a), [normal(2, 3)]),
        S(lambda a, b: cg.einsum("i,i->i", a, b), [normal(1), normal(3)]),
    ],
    "tensordot": [
        S(lambda a, b: cg.tensordot(a, b), [normal(2, 3, 4), normal(3, 4, 2)]),
        S(lambda a, b: np.tensordot(a, b, axes=([0, 2], [2, 0])), [normal(2, 3, 4), normal(4, 5, 2)]),
        S(lambda a, b: cg.tensordot(a, b, axes=0), [normal(2), normal(3)]),
    ],
    "dot": [
        S(lambda a, b: cg.dot(a, b), [normal(4), normal(4)]),
        S(lambda a, b: a.dot(b), [normal(2, 3), normal(3, 4)]),
        S(lambda a, b: np.dot(a, b), [normal(2, 3, 4), normal(5, 4, 2)]),
        S(lambda a, b: cg.dot(a, b), [normal(2, 3, 4), normal(4)]),
        S(lambda a, b: cg.dot(a, b), [np.array(0.7), normal(2, 3)]),
    ],
    "outer": [S(cg.outer, [normal(3), normal(2, 2)]), S(lambda a, b: np.outer(a, b), [normal(2), normal(4)])],
    "diagonal": [
        S(lambda a: a.diagonal(), [normal(3, 4)]),
        S(lambda a: cg.diagonal(a, offset=1, axis1=2, axis2=0), [normal(3, 2, 4)]),
        S(lambda a: np.diagonal(a, -1), [normal(4, 3)]),
    ],
    "trace": [S(lambda a: a.trace(), [normal(3, 3)]), S(lambda a: cg.trace(a, 1, 1, 2), [normal(2, 3, 4)])],
    "triu": [S(cg.triu, [normal(3, 4)]), S(lambda a: np.triu(a, -1), [normal(2, 3, 3)]), S(lambda a: cg.triu(a, 1), [normal(3)])],
    "tril": [S(cg.tril, [normal(4, 3)]), S(lambda a: np.tril(a, 1), [normal(2, 3, 3)])],
    # padding, repeating, rolling, taking (clumsygrad.shape)
    "pad": [
        S(lambda a: cg.pad(a, 1), [normal(2, 3)]),
        S(lambda a: np.pad(a, ((1, 0), (0, 2)), constant_values=3.0), [normal(2, 3)]),
        S(lambda a: cg.pad(a, (2, 1)), [normal(3)]),
        S(lambda a: cg.pad(a, [[0, 1]]), [normal(2, 2)]),
    ],
    "repeat": [
        S(lambda a: a.repeat(2, axis=1), [normal(2, 3)]),
        S(lambda a: cg.repeat(a, [1, 0, 3], axis=0), [normal(3, 2)]),
        S(lambda a: np.repeat(a, 2), [normal(2, 2)]),
    ],
    "tile": [S(lambda a: cg.tile(a, (2, 1, 3)), [normal(2, 3)]), S(lambda a: np.tile(a, 2), [normal(2, 3)])],
    "roll": [
        S(lambda a: cg.roll(a, 1, axis=1), [normal(2, 3)]),
        S(lambda a: np.roll(a, (1, -2), axis=(0, 1)), [normal(3, 4)]),
        S(lambda a: cg.roll(a, 5), [normal(2, 3)]),
    ],
    "take": [
        S(lambda a: a.take([0, 2, 2, -1], axis=1), [normal(2, 4)]),
        S(lambda a: np.take(a, np.array([[1, 5], [5, 0]])), [normal(2, 3)]),
        S(lambda a: cg.take(a, [4, -5], axis=0, mode="wrap"), [normal(3, 2)]),
    ],
    "take_along_axis": [
        S(lambda a: cg.take_along_axis(a, np.array([[0, 0], [2, 1]]), axis=1), [normal(2, 3)]),
        S(lambda a: np.take_along_axis(a, np.argsort(a, axis=0), axis=0), [distinct(3, 2)]),
        S(lambda a: cg.take_along_axis(a, np.array([[1, 0, 1]]), axis=0), [normal(2, 3)]),
    ],
    # PyTorch's losses
    "nll_loss": [
        S(lambda a: cg.nll_loss(a, LABELS), [normal(4, 3)]),
        S(lambda a: cg.nll_loss(a, np.array([1, -100, 0, 1]), weight=np.array([0.5, 2.0, 1.0]), reduction="sum"), [normal(4, 3)]),
        S(lambda a: cg.nll_loss(a, np.array([[0, 2], [1, 1]]), reduction="none"), [normal(2, 3, 2)]),
        S(lambda a: cg.nll_loss(cg.log_softmax(a, axis=1), LABELS, weight=np.array([1.0, 3.0, 0.5])), [normal(4, 3)]),
    ],
    "huber_loss": [
        S(lambda a, b: cg.huber_loss(a, b, delta=0.8), [away(3, 4), away(3, 4) * 0.1], second_order=False),
        S(lambda a, b: cg.huber_loss(a, b, reduction="none"), [away(5) * 3, normal(5) * 0.05], second_order=False),
    ],
    "smooth_l1_loss": [
        S(lambda a, b: cg.smooth_l1_loss(a, b, beta=0.5), [away(3, 4), away(3, 4) * 0.05], second_order=False),
        S(lambda a, b: cg.smooth_l1_loss(a, b, reduction="sum", beta=0.0), [away(4), away(4) * 0.05], second_order=False),
    ],
    "kl_div": [
        S(lambda a, b: cg.kl_div(a, b), [normal(3, 4), positive(3, 4)]),
        S(lambda a, b: cg.kl_div(a, b, reduction="batchmean", log_target=True), [normal(3, 4), normal(3, 4)]),
        S(lambda a, b: cg.kl_div(a, b, reduction="none"), [normal(2, 3), positive(2, 3)]),
        S(lambda a, b: cg.kl_div(a, b, reduction="sum"), [normal(4), positive(4)]),
    ],
}
