"""Parameter initialisation, PyTorch's ``torch.nn.init`` formulas; each fills a tensor in place and returns it.

Random draws come from ``generator`` (a ``np.random.Generator``) when given, else from NumPy's
global generator (``np.random.seed`` makes them repeatable, like ``clumsygrad.random``).

The layers' defaults (as PyTorch's ``reset_parameters``): ``Linear`` and ``Conv*`` weights
``kaiming_uniform_(w, a=sqrt(5))`` (uniform in ``±1/sqrt(fan_in)``) and biases uniform in
``±1/sqrt(fan_in)``; ``Embedding`` ``normal_(0, 1)``; norms ones and zeros; ``RNNCell`` and
``GRUCell`` every parameter uniform in ``±1/sqrt(hidden_size)``.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from ..tensor import Tensor

__all__ = [
    "calculate_gain", "uniform_", "normal_", "constant_", "ones_", "zeros_", "xavier_uniform_",
    "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
]


def _fill(tensor: Tensor, values) -> Tensor:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"nn.init fills a Tensor, got {type(tensor).__name__}")
    tensor._data[...] = values
    tensor._bump_version()
    return tensor


def _uniform(generator, low, high, shape):
    if generator is not None:
        return generator.uniform(low, high, shape)
    return np.random.uniform(low, high, shape)


def _normal(generator, mean, std, shape):
    if generator is not None:
        return generator.normal(mean, std, shape)
    return np.random.normal(mean, std, shape)


def calculate_gain(nonlinearity: str, param: Optional[float] = None) -> float:
    """PyTorch's recommended gains: 1 for linear/conv/sigmoid, 5/3 tanh, sqrt(2) relu,
    sqrt(2 / (1 + slope^2)) leaky_relu (slope ``param``, default 0.01), 3/4 selu."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")


def _fans(tensor: Tensor) -> tuple:
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a tensor of at least 2 dimensions, got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    return _fill(tensor, _uniform(generator, a, b, tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    return _fill(tensor, _normal(generator, mean, std, tensor.shape))


def constant_(tensor: Tensor, val: float) -> Tensor:
    return _fill(tensor, val)


def ones_(tensor: Tensor) -> Tensor:
    return _fill(tensor, 1.0)


def zeros_(tensor: Tensor) -> Tensor:
    return _fill(tensor, 0.0)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Uniform in ``±gain * sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = _fans(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _fill(tensor, _uniform(generator, -bound, bound, tensor.shape))


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Normal with std ``gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = _fans(tensor)
    return _fill(tensor, _normal(generator, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), tensor.shape))


def _kaiming_std(tensor, a, mode, nonlinearity):
    fan_in, fan_out = _fans(tensor)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan) if fan else 0.0


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator=None) -> Tensor:
    """Uniform in ``±gain * sqrt(3 / fan)``."""
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return _fill(tensor, _uniform(generator, -bound, bound, tensor.shape))


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator=None) -> Tensor:
    """Normal with std ``gain / sqrt(fan)``."""
    return _fill(tensor, _normal(generator, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), tensor.shape))
