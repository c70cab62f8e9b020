"""The layers of ``clumsygrad.nn``: PyTorch's definitions, shapes and default initialisation.

Every layer takes ``dtype`` (float32, the default, or float64) and ``generator`` (a
``np.random.Generator`` for its initial values; NumPy's global generator when None) as extra
keyword arguments.  A wrong input shape is a ``ValueError`` naming the layer, the expected
and the given shape.
"""
from __future__ import annotations

import math
import numbers
import operator
from typing import Optional, Tuple, Union

import numpy as np

from . import functional as F
from . import init
from ..shape import reshape
from ..tensor import Tensor, TensorType
from .module import Module

__all__ = [
    "Linear", "Embedding", "Dropout", "LayerNorm", "BatchNorm1d", "BatchNorm2d", "Conv1d", "Conv2d",
    "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Flatten", "Identity", "ReLU", "Tanh", "Sigmoid",
    "GELU", "LeakyReLU", "SiLU", "Softmax", "LogSoftmax", "RNNCell", "GRUCell",
]


def _parameter(shape, dtype) -> Tensor:
    return Tensor(np.zeros(shape), TensorType.PARAMETER, dtype=dtype)


def _shape_error(layer: Module, expected: str, given: tuple) -> ValueError:
    return ValueError(f"{layer!r} expects an input of shape {expected}, got {given}")


def _positive(name: str, value) -> int:
    value = operator.index(value)
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


class Identity(Module):
    def forward(self, input):
        return input


# --------------------------------------------------------------------------- linear and embedding
class Linear(Module):
    """``y = x @ weight.T + bias``; weight (out_features, in_features), input (..., in_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, dtype=np.float32,
                 generator: Optional[np.random.Generator] = None) -> None:
        super().__init__()
        self.in_features = _positive("in_features", in_features)
        self.out_features = _positive("out_features", out_features)
        self.weight = _parameter((out_features, in_features), dtype)
        self.bias = _parameter((out_features,), dtype) if bias else None
        if not bias:
            self.register_parameter("bias", None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound, generator=generator)

    def forward(self, input: Tensor) -> Tensor:
        if not isinstance(input, Tensor) or not input.shape or input.shape[-1] != self.in_features:
            raise _shape_error(self, f"(..., {self.in_features})", getattr(input, "shape", type(input).__name__))
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A lookup table: integer indices of any shape -> rows of ``weight`` (num_embeddings, embedding_dim).
    The row ``padding_idx`` starts at zero and is never trained."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: Optional[int] = None, *,
                 dtype=np.float32, generator=None) -> None:
        super().__init__()
        self.num_embeddings = _positive("num_embeddings", num_embeddings)
        self.embedding_dim = _positive("embedding_dim", embedding_dim)
        if padding_idx is not None:
            padding_idx = operator.index(padding_idx)
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"padding_idx {padding_idx} must be within num_embeddings ({num_embeddings})")
            padding_idx %= num_embeddings
        self.padding_idx = padding_idx
        self.weight = _parameter((num_embeddings, embedding_dim), dtype)
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None) -> None:
        init.normal_(self.weight, generator=generator)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, input) -> Tensor:
        return F.embedding(input, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


# --------------------------------------------------------------------------- dropout
class Dropout(Module):
    """Zeroes each element with probability ``p`` in training mode (scaling the rest by
    ``1/(1-p)``); the identity in evaluation mode.  ``seed`` (or ``generator``) makes the masks
    repeatable; the generator's state is part of the module (it pickles with it)."""

    def __init__(self, p: float = 0.5, *, seed: Optional[int] = None,
                 generator: Optional[np.random.Generator] = None) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p!r}")
        self.p = float(p)
        self.generator = generator if generator is not None else np.random.default_rng(seed)

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


# --------------------------------------------------------------------------- normalisation
class LayerNorm(Module):
    """Normalises over the last ``len(normalized_shape)`` axes, then ``* weight + bias`` (ones, zeros)."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True, *,
                 dtype=np.float32) -> None:
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(_positive("normalized_shape", d) for d in normalized_shape)
        self.eps = float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        self.weight = _parameter(self.normalized_shape, dtype) if elementwise_affine else None
        self.bias = _parameter(self.normalized_shape, dtype) if elementwise_affine and bias else None
        for name in ("weight", "bias"):
            if getattr(self, name) is None:
                self.register_parameter(name, None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        k = len(self.normalized_shape)
        if not isinstance(input, Tensor) or input.shape[len(input.shape) - k:] != self.normalized_shape \
                or len(input.shape) < k:
            expected = "(*, " + ", ".join(map(str, self.normalized_shape)) + ")"
            raise _shape_error(self, expected, getattr(input, "shape", type(input).__name__))
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class _BatchNorm(Module):
    _dims: tuple = ()
    _expected = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1, affine: bool = True,
                 track_running_stats: bool = True, *, dtype=np.float32) -> None:
        super().__init__()
        self.num_features = _positive("num_features", num_features)
        self.eps = float(eps)
        self.momentum = momentum
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.weight = _parameter((num_features,), dtype) if affine else None
        self.bias = _parameter((num_features,), dtype) if affine else None
        if not affine:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype))
            self.register_buffer("num_batches_tracked", np.array(0, np.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        shape = getattr(input, "shape", None)
        if not isinstance(input, Tensor) or len(shape) not in self._dims or shape[1] != self.num_features:
            raise _shape_error(self, self._expected.format(c=self.num_features), shape if shape is not None
                               else type(input).__name__)
        use_batch = self.training or not self.track_running_stats
        momentum = self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
            if momentum is None:  # a cumulative moving average, as PyTorch
                momentum = 1.0 / float(self.num_batches_tracked)
        return F.batch_norm(
            input,
            self.running_mean if (self.training or not use_batch) else None,
            self.running_var if (self.training or not use_batch) else None,
            self.weight, self.bias, use_batch, 0.0 if momentum is None else momentum, self.eps,
        )

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) inputs, per channel C."""
    _dims = (2, 3)
    _expected = "(N, {c}) or (N, {c}, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs, per channel C."""
    _dims = (4,)
    _expected = "(N, {c}, H, W)"


# --------------------------------------------------------------------------- convolution
class _ConvNd(Module):
    _spatial = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", *, dtype=np.float32,
                 generator=None) -> None:
        super().__init__()
        n = self._spatial
        if padding_mode != "zeros":
            raise ValueError(f"padding_mode {padding_mode!r} is not supported (only 'zeros')")
        self.in_channels = _positive("in_channels", in_channels)
        self.out_channels = _positive("out_channels", out_channels)
        self.groups = _positive("groups", groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels ({in_channels}) and out_channels ({out_channels}) must be divisible by groups ({groups})")
        self.kernel_size = F._ints(kernel_size, n, "kernel_size")
        self.stride = F._ints(stride, n, "stride")
        self.dilation = F._ints(dilation, n, "dilation")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = F._ints(padding, n, "padding")
        self.weight = _parameter((out_channels, in_channels // groups) + self.kernel_size, dtype)
        self.bias = _parameter((out_channels,), dtype) if bias else None
        if not bias:
            self.register_parameter("bias", None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            fan_in = self.weight.shape[1] * int(np.prod(self.kernel_size))
            bound = 1 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound, generator=generator)

    def forward(self, input: Tensor) -> Tensor:
        shape = getattr(input, "shape", None)
        n = self._spatial
        if not isinstance(input, Tensor) or len(shape) not in (n + 1, n + 2) or shape[-n - 1] != self.in_channels:
            dims = ", ".join("LHW"[-n:] if n == 1 else "HW")
            raise _shape_error(self, f"(N, {self.in_channels}, {dims}) or ({self.in_channels}, {dims})",
                               shape if shape is not None else type(input).__name__)
        op = F.conv1d if n == 1 else F.conv2d
        return op(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self._spatial:
            text += f", padding={self.padding!r}"
        if self.dilation != (1,) * self._spatial:
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


class Conv1d(_ConvNd):
    """1-d convolution of (N, C_in, L) inputs; weight (C_out, C_in / groups, k)."""
    _spatial = 1


class Conv2d(_ConvNd):
    """2-d convolution of (N, C_in, H, W) inputs; weight (C_out, C_in / groups, kH, kW)."""
    _spatial = 2


# --------------------------------------------------------------------------- pooling and reshaping
def _image_check(layer, input):
    shape = getattr(input, "shape", None)
    if not isinstance(input, Tensor) or len(shape) not in (3, 4):
        raise _shape_error(layer, "(N, C, H, W) or (C, H, W)", shape if shape is not None else type(input).__name__)


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride or kernel_size, padding, dilation
        self.return_indices, self.ceil_mode = bool(return_indices), bool(ceil_mode)

    def forward(self, input: Tensor) -> Union[Tensor, Tuple[Tensor, np.ndarray]]:
        _image_check(self, input)
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: Optional[int] = None) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding
        self.ceil_mode, self.count_include_pad = bool(ceil_mode), bool(count_include_pad)
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        _image_check(self, input)
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode,
                            count_include_pad=self.count_include_pad, divisor_override=self.divisor_override)

    def extra_repr(self) -> str:
        text = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        return text if self.divisor_override is None else f"{text}, divisor_override={self.divisor_override}"


class AdaptiveAvgPool2d(Module):
    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        _image_check(self, input)
        return F.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class Flatten(Module):
    """Merges the axes ``start_dim`` .. ``end_dim`` (default: all but the batch axis) into one."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = operator.index(start_dim), operator.index(end_dim)

    def forward(self, input: Tensor) -> Tensor:
        shape = input.shape
        nd = max(len(shape), 1)
        start, end = self.start_dim % nd, self.end_dim % nd
        if not -nd <= self.start_dim < nd or not -nd <= self.end_dim < nd or start > end:
            raise _shape_error(self, f"at least {max(self.start_dim, self.end_dim) + 1} dimensions", shape)
        merged = int(np.prod(shape[start:end + 1]))
        return reshape(input, shape[:start] + (merged,) + shape[end + 1:])

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


# --------------------------------------------------------------------------- activations
class ReLU(Module):
    def forward(self, input):
        return F.relu(input)


class Tanh(Module):
    def forward(self, input):
        return F.tanh(input)


class Sigmoid(Module):
    def forward(self, input):
        return F.sigmoid(input)


class SiLU(Module):
    def forward(self, input):
        return F.silu(input)


class GELU(Module):
    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Softmax(Module):
    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    def forward(self, input):
        return F.log_softmax(input, self.dim)


# --------------------------------------------------------------------------- recurrent cells
class _Cell(Module):
    _gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *, dtype=np.float32,
                 generator=None) -> None:
        super().__init__()
        self.input_size = _positive("input_size", input_size)
        self.hidden_size = _positive("hidden_size", hidden_size)
        g = self._gates * hidden_size
        self.weight_ih = _parameter((g, input_size), dtype)
        self.weight_hh = _parameter((g, hidden_size), dtype)
        self.bias_ih = _parameter((g,), dtype) if bias else None
        self.bias_hh = _parameter((g,), dtype) if bias else None
        if not bias:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for param in self.parameters():
            init.uniform_(param, -bound, bound, generator=generator)

    def _inputs(self, input, hx):
        shape = getattr(input, "shape", None)
        if not isinstance(input, Tensor) or len(shape) not in (1, 2) or shape[-1] != self.input_size:
            raise _shape_error(self, f"(N, {self.input_size}) or ({self.input_size},)",
                               shape if shape is not None else type(input).__name__)
        batch = shape[:-1]
        if hx is None:
            hx = Tensor(np.zeros(batch + (self.hidden_size,)), dtype=input.dtype)
        elif not isinstance(hx, Tensor) or hx.shape != batch + (self.hidden_size,):
            raise ValueError(f"{self!r} expects a hidden state of shape {batch + (self.hidden_size,)}, "
                             f"got {getattr(hx, 'shape', type(hx).__name__)}")
        return input, hx

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class RNNCell(_Cell):
    """``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or relu with ``nonlinearity="relu"``)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh", **kw) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"unknown nonlinearity {nonlinearity!r} (use 'tanh' or 'relu')")
        super().__init__(input_size, hidden_size, bias, **kw)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tensor:
        input, hx = self._inputs(input, hx)
        pre = F.linear(input, self.weight_ih, self.bias_ih) + F.linear(hx, self.weight_hh, self.bias_hh)
        return F.tanh(pre) if self.nonlinearity == "tanh" else F.relu(pre)


class GRUCell(_Cell):
    """PyTorch's GRU cell: gates (r, z, n) stacked in that order in the weights;
    ``r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)``, ``z`` likewise,
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h' = (1 - z) * n + z * h``."""
    _gates = 3

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tensor:
        input, hx = self._inputs(input, hx)
        gi = F.linear(input, self.weight_ih, self.bias_ih)
        gh = F.linear(hx, self.weight_hh, self.bias_hh)
        h = self.hidden_size
        r = F.sigmoid(gi[..., :h] + gh[..., :h])
        z = F.sigmoid(gi[..., h:2 * h] + gh[..., h:2 * h])
        n = F.tanh(gi[..., 2 * h:] + r * gh[..., 2 * h:])
        return (1 - z) * n + z * hx
