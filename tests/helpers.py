"""Utilities shared by the core test modules.

Expected gradients are computed here independently of clumsygrad: central finite
differences in float64 (``numeric_gradient``) or closed forms written in the tests.
"""
from __future__ import annotations

import itertools
from typing import Callable, Iterable, Sequence

import numpy as np
from hypothesis import HealthCheck, settings

from clumsygrad.tensor import Tensor, TensorType

# The autouse ``backend`` fixture is function-scoped; it only selects the kernel set, so it is
# safe to share between the examples hypothesis draws inside one test run.
SHAPE_SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

BACKWARD_FUNCTION_NAMES = (
    "transpose_backward",
    "add_backward",
    "add_scalar_backward",
    "sub_backward",
    "sub_scalar_backward",
    "mul_backward",
    "mul_scalar_backward",
    "matmul_backward",
    "power_backward",
    "negate_backward",
    "abs_backward",
    "reshape_backward",
    "sum_backward",
    "mean_backward",
    "exp_backward",
    "log_backward",
    "sqrt_backward",
    "sin_backward",
    "cos_backward",
    "tan_backward",
    "relu_backward",
    "sigmoid_backward",
    "tanh_backward",
    "softmax_backward",
    "mse_backward",
    "mae_backward",
    "add_broadcast_backward",
    "sub_broadcast_backward",
    "mul_broadcast_backward",
)


def parameter(data, dtype=np.float64) -> Tensor:
    """A PARAMETER tensor (float64 unless told otherwise, so finite differences are accurate)."""
    return Tensor(data, tensor_type=TensorType.PARAMETER, dtype=dtype)


def constant(data, dtype=np.float64) -> Tensor:
    """An INPUT tensor."""
    return Tensor(data, tensor_type=TensorType.INPUT, dtype=dtype)


def away_from_zero(rng: np.random.Generator, shape, low: float = 0.2, high: float = 2.0) -> np.ndarray:
    """Values with |x| in [low, high) and random signs: safe for relu/abs finite differences."""
    magnitude = rng.uniform(low, high, size=shape)
    sign = np.where(rng.random(size=shape) < 0.5, -1.0, 1.0)
    return magnitude * sign


def numeric_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of the scalar function ``f`` at the float64 array ``x``."""
    x = np.array(x, dtype=np.float64)
    out = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        shifted = x.copy()
        shifted[index] += eps
        upper = f(shifted)
        shifted[index] -= 2 * eps
        lower = f(shifted)
        out[index] = (upper - lower) / (2 * eps)
    return out


def sum_to_shape(array: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``array`` over the leading axes it has beyond ``shape`` and the axes where ``shape`` is 1.

    The textbook definition of broadcasting's adjoint, written out axis by axis.
    """
    result = np.asarray(array, dtype=np.float64)
    while result.ndim > len(shape):
        result = result.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and result.shape[axis] != 1:
            result = result.sum(axis=axis, keepdims=True)
    return result


def memory_overlaps(named_arrays: Iterable[tuple]) -> list:
    """Names of the pairs among ``(name, array)`` whose memory overlaps (``np.shares_memory``)."""
    pairs = []
    for (name_a, a), (name_b, b) in itertools.combinations(list(named_arrays), 2):
        if a is not None and b is not None and np.shares_memory(a, b):
            pairs.append((name_a, name_b))
    return pairs


def grads_of(tensors: Sequence[Tensor]) -> list:
    """Copies of the tensors' gradients (None stays None)."""
    return [None if t.grad is None else np.array(t.grad) for t in tensors]
