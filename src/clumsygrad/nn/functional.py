"""Functional forms of the ``clumsygrad.nn`` layers, PyTorch's ``torch.nn.functional`` names.

Each op is one definition: the forward function, and right after it the backward function it
records (``fn(tensor, grad, *, needs)`` returning one gradient per parent, None for a parent
that needs none).  The hot loops are kernels called through the active backend
(``clumsygrad._backend.active``): ``conv2d_*``, ``max_pool2d_*``, ``avg_pool2d_*``,
``layer_norm_backward``, ``batch_norm_backward``, ``scatter_add``; everything else is NumPy.

Shapes follow PyTorch: images are (N, C, H, W) (or unbatched (C, H, W)), sequences for
``conv1d`` (N, C, L) (or (C, L)).  Wrong shapes are a ``ValueError`` naming the op, the
expected and the given shape.
"""
from __future__ import annotations

import numbers
import operator
from typing import Optional, Tuple, Union

import numpy as np

from .. import _backend
from ..activation import log_softmax, relu, sigmoid, softmax, tanh
from .. import _registry
from .._kernels import checks as _checks
from ..grad import skips_unneeded
from ..loss import binary_cross_entropy_with_logits, cross_entropy, mae_loss, mse_loss
from ..tensor import Tensor, _new_node

__all__ = [
    "linear", "conv1d", "conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "dropout",
    "layer_norm", "batch_norm", "embedding", "gelu", "leaky_relu", "silu",
    "relu", "tanh", "sigmoid", "softmax", "log_softmax",
    "cross_entropy", "binary_cross_entropy_with_logits", "mse_loss", "mae_loss",
]


# --------------------------------------------------------------------------- argument helpers
def _as_tensor(value, name: str) -> Tensor:
    if isinstance(value, Tensor):
        return value
    raise TypeError(f"{name} must be a Tensor, got {type(value).__name__}")


def _ints(value, n: int, name: str) -> tuple:
    """``value`` (an int or a sequence of ``n`` ints) as a tuple of ``n`` ints."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int or a tuple of {n} ints, got {value!r}")
    try:
        return (operator.index(value),) * n
    except TypeError:
        pass
    try:
        items = tuple(operator.index(v) for v in value)
    except TypeError:
        raise TypeError(f"{name} must be an int or a tuple of {n} ints, got {value!r}") from None
    if len(items) != n:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {value!r}")
    return items


def _batched(x: Tensor, op: str, spatial: int, expected: str) -> bool:
    """True for a batched input (``spatial + 2`` dims), False for an unbatched one; else ValueError."""
    if len(x._shape) not in (spatial + 1, spatial + 2):
        raise ValueError(f"{op} expects an input of shape {expected}, got {x._shape}")
    return len(x._shape) == spatial + 2


# --------------------------------------------------------------------------- linear
def linear(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """``input @ weight.T + bias``: ``input`` (..., in), ``weight`` (out, in), ``bias`` (out,)."""
    x, w = _as_tensor(input, "input"), _as_tensor(weight, "weight")
    if len(w._shape) != 2:
        raise ValueError(f"linear expects a weight of shape (out_features, in_features), got {w._shape}")
    if not x._shape or x._shape[-1] != w._shape[1]:
        raise ValueError(f"linear expects an input of shape (..., {w._shape[1]}), got {x._shape}")
    data = x._data @ w._data.T
    parents = (x, w)
    if bias is not None:
        b = _as_tensor(bias, "bias")
        if b._shape != (w._shape[0],):
            raise ValueError(f"linear expects a bias of shape ({w._shape[0]},), got {b._shape}")
        data = data + b._data
        parents = (x, w, b)
    return _new_node(data, linear_backward, parents)


def _linear_vjp(g, out, x, w, *bias, needs):
    """y = x W^T + b: dx = g W, dW = g^T x (leading axes folded), db = g summed over them.

    Written with registered ops, so on Tensors it records (gradients of gradients)."""
    n_out, n_in = np.shape(w)
    g2 = np.reshape(g, (-1, n_out))
    dx = np.matmul(g, w) if needs[0] else None
    dw = np.matmul(np.transpose(g2), np.reshape(x, (-1, n_in))) if needs[1] else None
    if not bias:
        return dx, dw
    return dx, dw, (np.sum(g2, axis=0) if needs[2] else None)


def _linear_kernel(tensor: Tensor, grad: np.ndarray, *, needs=None) -> tuple:
    x, w = tensor._parents[0], tensor._parents[1]
    if needs is None:
        needs = (True,) * len(tensor._parents)
    g2 = grad.reshape(-1, w._shape[0])
    dx = (grad @ w._data) if needs[0] else None
    dw = (g2.T @ x._data.reshape(-1, w._shape[1])) if needs[1] else None
    if len(tensor._parents) == 2:
        return dx, dw
    return dx, dw, (g2.sum(axis=0) if needs[2] else None)


linear_backward = _registry.defop("linear", None, _linear_vjp, module="nn.functional", public=False,
                                  kernel=_linear_kernel).backward


# --------------------------------------------------------------------------- convolution
def _conv_padding(padding, kernel: tuple, dilation: tuple, stride: tuple, op: str) -> tuple:
    """``(top, bottom, left, right)`` from an int, a tuple, "valid" or "same" (PyTorch's split:
    the extra cell of an odd total goes to the bottom/right)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * 4
        if padding != "same":
            raise ValueError(f"{op}: padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
        if any(s != 1 for s in stride):
            raise ValueError(f"{op}: padding='same' is not supported for strided convolutions (stride {stride})")
        pads = []
        for k, d in zip(kernel, dilation):
            total = d * (k - 1)
            pads += [total // 2, total - total // 2]
        return tuple(pads)
    pads = _ints(padding, len(kernel), "padding")
    if any(p < 0 for p in pads):
        raise ValueError(f"{op}: padding must not be negative, got {padding!r}")
    return tuple(v for p in pads for v in (p, p))


def _conv(op, input, weight, bias, stride, padding, dilation, groups, spatial):
    """The convolution node of ``conv1d`` (``spatial == 1``: run as a 2-d one of height 1) and ``conv2d``."""
    x, w = _as_tensor(input, "input"), _as_tensor(weight, "weight")
    expected = "(N, C, L) or (C, L)" if spatial == 1 else "(N, C, H, W) or (C, H, W)"
    batched = _batched(x, op, spatial, expected)
    if len(w._shape) != spatial + 2:
        raise ValueError(f"{op} expects a weight of {spatial + 2} dimensions, got {w._shape}")
    stride = _ints(stride, spatial, "stride")
    dilation = _ints(dilation, spatial, "dilation")
    groups = operator.index(groups)
    pads = _conv_padding(padding, w._shape[2:], dilation, stride, op)
    if spatial == 1:
        stride, dilation, pads = (1,) + stride, (1,) + dilation, (0, 0) + pads
    x4 = x._data.reshape(((x._shape[0],) if batched else (1,)) + x._shape[-spatial - 1:-spatial]
                         + (1,) * (2 - spatial) + x._shape[-spatial:])
    w4 = w._data.reshape(w._shape[:2] + (1,) * (2 - spatial) + w._shape[2:])
    if x4.shape[1] != w4.shape[1] * groups:
        raise ValueError(
            f"{op} with a weight of shape {w._shape} and groups={groups} expects an input of "
            f"{w4.shape[1] * groups} channels, got an input of shape {x._shape}"
        )
    parents, b4 = (x, w), None
    if bias is not None:
        b = _as_tensor(bias, "bias")
        if b._shape != (w._shape[0],):
            raise ValueError(f"{op} expects a bias of shape ({w._shape[0]},), got {b._shape}")
        # added by the kernel, in the dtype of the input and the weight (as before the fusion)
        b4 = b._data.astype(np.result_type(x4.dtype, w4.dtype, np.float32), copy=False)
        parents = (x, w, b)
    data = _backend.active.conv2d_forward(x4, w4, stride, pads, dilation, groups, b4)
    out_shape = data.shape[:2] + data.shape[4 - spatial:]
    data = data.reshape(out_shape if batched else out_shape[1:])
    extra = {"stride": stride, "padding": pads, "dilation": dilation, "groups": groups,
             "x4": x4.shape, "w4": w4.shape}
    return _new_node(data, conv_backward, parents, extra)


@skips_unneeded
def conv_backward(tensor: Tensor, grad: np.ndarray, *, needs=(True, True, True)) -> tuple:
    r"""Convolution (1-d or 2-d): dx by ``conv2d_backward_input`` (W^T g, scattered back), dW by
    ``conv2d_backward_weight`` (g cols^T summed over the batch), db = sum of g over N and space."""
    e = tensor._extra
    x, w = tensor._parents[0], tensor._parents[1]
    k = _backend.active
    args = (e["stride"], e["padding"], e["dilation"], e["groups"])
    n, f = e["x4"][0], e["w4"][0]
    g4 = grad.reshape(n, f, -1, grad.shape[-1])  # (N, F, OH, OW); OH = 1 for conv1d
    dx = k.conv2d_backward_input(g4, w._data.reshape(e["w4"]), e["x4"], *args).reshape(x._shape) if needs[0] else None
    dw = k.conv2d_backward_weight(g4, x._data.reshape(e["x4"]), e["w4"], *args).reshape(w._shape) if needs[1] else None
    if len(tensor._parents) == 2:
        return dx, dw
    return dx, dw, (k.conv2d_backward_bias(g4) if needs[2] else None)


def conv1d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """1-d convolution (cross-correlation, as PyTorch): input (N, C_in, L) or (C_in, L), weight
    (C_out, C_in / groups, k), padding an int, "valid" or "same" (stride 1 only)."""
    return _conv("conv1d", input, weight, bias, stride, padding, dilation, groups, 1)


def conv2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """2-d convolution (cross-correlation, as PyTorch): input (N, C_in, H, W) or (C_in, H, W),
    weight (C_out, C_in / groups, kH, kW); ``stride``, ``padding``, ``dilation`` ints or pairs,
    padding also "valid" or "same" (stride 1 only; an odd total puts the extra row/column at
    the bottom/right)."""
    return _conv("conv2d", input, weight, bias, stride, padding, dilation, groups, 2)


# --------------------------------------------------------------------------- pooling
def _pool_args(op, input, kernel_size, stride, padding, dilation=1):
    x = _as_tensor(input, "input")
    batched = _batched(x, op, 2, "(N, C, H, W) or (C, H, W)")
    kernel = _ints(kernel_size, 2, "kernel_size")
    stride = kernel if stride is None or stride == () else _ints(stride, 2, "stride")
    x4 = x._data if batched else x._data[None]
    return x, batched, x4, kernel, stride, _ints(padding, 2, "padding"), _ints(dilation, 2, "dilation")


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False) -> Union[Tensor, Tuple[Tensor, np.ndarray]]:
    """The max over each window (``stride`` defaults to ``kernel_size``; implicit -inf padding
    of at most half the kernel).  A NaN in a window wins.  ``ceil_mode`` as PyTorch: the output
    size rounds up, so windows may run past the bottom/right padding, but a window that would
    start in the right padding is dropped.  With ``return_indices`` also each max's flat index
    ``h * W + w`` in its (H, W) plane, PyTorch's ``return_indices``, as an int64 NumPy array
    (clumsygrad tensors hold floats only)."""
    x, batched, x4, kernel, stride, padding, dilation = _pool_args(
        "max_pool2d", input, kernel_size, stride, padding, dilation)
    data, indices = _backend.active.max_pool2d_forward(x4, kernel, stride, padding, dilation, bool(ceil_mode))
    out = _new_node(data if batched else data[0], max_pool2d_backward, (x,),
                    {"indices": indices, "x4": x4.shape})
    if return_indices:
        return out, (indices if batched else indices[0])
    return out


def max_pool2d_backward(tensor: Tensor, grad: np.ndarray) -> tuple:
    r"""Each window's gradient goes to the input cell that held its max."""
    e = tensor._extra
    dx = _backend.active.max_pool2d_backward(grad.reshape(e["indices"].shape), e["indices"], e["x4"])
    return (dx.reshape(tensor._parents[0]._shape),)


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: Optional[int] = None) -> Tensor:
    """The mean over each window (``stride`` defaults to ``kernel_size``; zero padding of at most
    half the kernel, counted in the divisor when ``count_include_pad``).  ``ceil_mode`` as in
    :func:`max_pool2d`; a window running past the padding divides by its cells inside the padded
    input (PyTorch's divisor).  ``divisor_override``, a non-zero integer, divides every window's
    sum instead."""
    x, batched, x4, kernel, stride, padding, _ = _pool_args("avg_pool2d", input, kernel_size, stride, padding)
    args = (kernel, stride, padding, bool(count_include_pad), bool(ceil_mode),
            _checks.divisor_override(divisor_override))
    data = _backend.active.avg_pool2d_forward(x4, *args)
    return _new_node(data if batched else data[0], avg_pool2d_backward, (x,), {"x4": x4.shape, "args": args})


def avg_pool2d_backward(tensor: Tensor, grad: np.ndarray) -> tuple:
    r"""Each window's gradient spread evenly (1/divisor) over its cells."""
    e = tensor._extra
    g4 = grad.reshape((e["x4"][0], e["x4"][1]) + grad.shape[-2:])
    dx = _backend.active.avg_pool2d_backward(g4, e["x4"], *e["args"])
    return (dx.reshape(tensor._parents[0]._shape),)


def _adaptive_bins(size: int, out: int) -> list:
    """PyTorch's bins: ``[floor(i*size/out), ceil((i+1)*size/out))``."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average pooling to a fixed (OH, OW) (an int for a square; None keeps that input size)."""
    x = _as_tensor(input, "input")
    _batched(x, "adaptive_avg_pool2d", 2, "(N, C, H, W) or (C, H, W)")
    h, w = x._shape[-2:]
    if isinstance(output_size, (tuple, list)):
        output_size = tuple(s if s is not None else d for s, d in zip(output_size, (h, w)))
    oh, ow = _ints(output_size, 2, "output_size")
    if oh < 1 or ow < 1:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be positive, got {output_size!r}")
    rows, cols = _adaptive_bins(h, oh), _adaptive_bins(w, ow)
    data = np.empty(x._shape[:-2] + (oh, ow), x._data.dtype)
    for i, (h0, h1) in enumerate(rows):
        for j, (w0, w1) in enumerate(cols):
            data[..., i, j] = x._data[..., h0:h1, w0:w1].mean(axis=(-2, -1))
    return _new_node(data, adaptive_avg_pool2d_backward, (x,), {"bins": (rows, cols)})


def adaptive_avg_pool2d_backward(tensor: Tensor, grad: np.ndarray) -> tuple:
    r"""Each output cell's gradient spread evenly over its bin."""
    rows, cols = tensor._extra["bins"]
    dx = np.zeros(tensor._parents[0]._shape, grad.dtype)
    for i, (h0, h1) in enumerate(rows):
        for j, (w0, w1) in enumerate(cols):
            dx[..., h0:h1, w0:w1] += (grad[..., i, j] / ((h1 - h0) * (w1 - w0)))[..., None, None]
    return (dx,)


# --------------------------------------------------------------------------- dropout
def dropout(input: Tensor, p: float = 0.5, training: bool = True,
            generator: Optional[np.random.Generator] = None) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1/(1-p)`` (training);
    the input itself when not training or ``p == 0``.  The mask comes from ``generator`` (a
    ``np.random.Generator``; NumPy's global generator when None)."""
    x = _as_tensor(input, "input")
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p!r}")
    if not training or p == 0:
        return x
    draw = generator.random(x._shape) if generator is not None else np.random.random_sample(x._shape)
    if p == 1:
        mask = np.zeros(x._shape, x._data.dtype)
    else:
        mask = (draw >= p).astype(x._data.dtype) * x._data.dtype.type(1.0 / (1.0 - p))
    return _new_node(x._data * mask, dropout_backward, (x,), {"mask": mask})


def dropout_backward(tensor: Tensor, grad: np.ndarray) -> tuple:
    r"""y = x * mask: dx = grad * mask."""
    return (grad * tensor._extra["mask"],)


# --------------------------------------------------------------------------- normalisation
def _affine(op, value, shape, name):
    if value is None:
        return None
    t = _as_tensor(value, name)
    if t._shape != shape:
        raise ValueError(f"{op} expects a {name} of shape {shape}, got {t._shape}")
    return t


def layer_norm(input: Tensor, normalized_shape, weight: Optional[Tensor] = None,
               bias: Optional[Tensor] = None, eps: float = 1e-5) -> Tensor:
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over the last ``len(normalized_shape)``
    axes (biased variance, as PyTorch)."""
    x = _as_tensor(input, "input")
    shape = _ints(normalized_shape, 1, "normalized_shape") if isinstance(normalized_shape, numbers.Integral) \
        else tuple(operator.index(d) for d in normalized_shape)
    if not shape or len(x._shape) < len(shape) or x._shape[len(x._shape) - len(shape):] != shape:
        raise ValueError(f"layer_norm expects an input of shape (*, {', '.join(map(str, shape))}), got {x._shape}")
    w, b = _affine("layer_norm", weight, shape, "weight"), _affine("layer_norm", bias, shape, "bias")
    d = int(np.prod(shape))
    rows = x._data.reshape(-1, d)
    mean = rows.mean(axis=1, keepdims=True)
    centred = rows - mean
    rstd = 1.0 / np.sqrt((centred * centred).mean(axis=1) + x._data.dtype.type(eps))
    xhat = centred * rstd[:, None]
    data = xhat
    if w is not None:
        data = data * w._data.reshape(-1)
    if b is not None:
        data = data + b._data.reshape(-1)
    parents = tuple(t for t in (x, w, b) if t is not None)
    extra = {"xhat": xhat, "rstd": rstd, "affine": (w is not None, b is not None)}
    return _new_node(data.reshape(x._shape), layer_norm_backward, parents, extra)


@skips_unneeded
def layer_norm_backward(tensor: Tensor, grad: np.ndarray, *, needs=(True, True, True)) -> tuple:
    r"""dx = rstd (g' - mean(g') - xhat mean(g' xhat)) per row, g' = g * weight;
    dweight = sum of g xhat over the rows, dbias = sum of g."""
    return _norm_grads(tensor, grad, needs, _backend.active.layer_norm_backward,
                       grad.reshape(tensor._extra["xhat"].shape), axes=(0,))


def _norm_grads(tensor, grad, needs, kernel, g, axes):
    e = tensor._extra
    parents = tensor._parents
    has_w, has_b = e["affine"]
    w = parents[1]._data.reshape(-1) if has_w else None
    dx, dw, db = kernel(g, e["xhat"], e["rstd"], w if w is not None else None)
    if w is None and has_b:  # the kernel skipped them without a weight
        db = g.sum(axis=axes)
    out = [dx.reshape(parents[0]._shape) if needs[0] else None]
    if has_w:
        out.append(dw.reshape(parents[1]._shape) if needs[1] else None)
    if has_b:
        out.append(db.reshape(parents[-1]._shape) if needs[len(out)] else None)
    return tuple(out)


def batch_norm(input: Tensor, running_mean, running_var, weight: Optional[Tensor] = None,
               bias: Optional[Tensor] = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Batch normalisation over the channel axis 1 of (N, C), (N, C, L) or (N, C, H, W).

    Training: the batch's statistics (biased variance) normalise; ``running_mean`` and
    ``running_var`` (NumPy arrays of shape (C,), or None) are updated in place as
    ``(1 - momentum) * running + momentum * batch`` with the unbiased batch variance.
    Evaluation: the running statistics normalise.
    """
    x = _as_tensor(input, "input")
    if len(x._shape) not in (2, 3, 4):
        raise ValueError(f"batch_norm expects an input of shape (N, C), (N, C, L) or (N, C, H, W), got {x._shape}")
    n, c = x._shape[:2]
    w, b = _affine("batch_norm", weight, (c,), "weight"), _affine("batch_norm", bias, (c,), "bias")
    x3 = x._data.reshape(n, c, -1)
    dtype = x._data.dtype.type
    if training:
        count = n * x3.shape[2]
        if count <= 1:
            raise ValueError(f"batch_norm expects more than 1 value per channel when training, got input of shape {x._shape}")
        mean = x3.mean(axis=(0, 2))
        centred = x3 - mean[None, :, None]
        var = (centred * centred).mean(axis=(0, 2))
        for running, value in ((running_mean, mean), (running_var, var * count / (count - 1))):
            if running is not None:
                r = running._data if isinstance(running, Tensor) else running
                r *= 1 - momentum
                r += momentum * value
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm in evaluation mode needs running_mean and running_var")
        rm = running_mean._data if isinstance(running_mean, Tensor) else np.asarray(running_mean)
        rv = running_var._data if isinstance(running_var, Tensor) else np.asarray(running_var)
        mean, var = rm.astype(x._data.dtype), rv.astype(x._data.dtype)
        centred = x3 - mean[None, :, None]
    rstd = (1.0 / np.sqrt(var + dtype(eps))).astype(x._data.dtype)
    xhat = centred * rstd[None, :, None]
    data = xhat
    if w is not None:
        data = data * w._data[None, :, None]
    if b is not None:
        data = data + b._data[None, :, None]
    parents = tuple(t for t in (x, w, b) if t is not None)
    extra = {"xhat": xhat, "rstd": rstd, "affine": (w is not None, b is not None), "training": bool(training)}
    return _new_node(data.reshape(x._shape), batch_norm_backward, parents, extra)


@skips_unneeded
def batch_norm_backward(tensor: Tensor, grad: np.ndarray, *, needs=(True, True, True)) -> tuple:
    r"""Training: dx = rstd w (g - mean(g) - xhat mean(g xhat)) per channel (means over N and
    space); evaluation: dx = g w rstd (the statistics are constants).  dweight = sum g xhat,
    dbias = sum g."""
    e = tensor._extra
    g = grad.reshape(e["xhat"].shape)
    if e["training"]:
        return _norm_grads(tensor, grad, needs, _backend.active.batch_norm_backward, g, axes=(0, 2))
    return _norm_grads(tensor, grad, needs, _eval_batch_norm_backward, g, axes=(0, 2))


def _eval_batch_norm_backward(g, xhat, rstd, weight):
    scale = rstd if weight is None else rstd * weight
    dx = g * scale[None, :, None]
    if weight is None:
        return dx, None, None
    return dx, (g * xhat).sum(axis=(0, 2)), g.sum(axis=(0, 2))


# --------------------------------------------------------------------------- embedding
def embedding(input, weight: Tensor, padding_idx: Optional[int] = None) -> Tensor:
    """Rows of ``weight`` (num_embeddings, dim) picked by the integer indices ``input`` (any
    shape): result ``input.shape + (dim,)``.  The row ``padding_idx`` receives no gradient."""
    w = _as_tensor(weight, "weight")
    if len(w._shape) != 2:
        raise ValueError(f"embedding expects a weight of shape (num_embeddings, embedding_dim), got {w._shape}")
    raw = input._data if isinstance(input, Tensor) else np.asarray(input)
    if raw.dtype.kind not in "iu":
        if raw.dtype.kind != "f" or not np.array_equal(raw, np.round(raw)):
            raise TypeError(f"embedding expects integer indices, got dtype {raw.dtype}")
    indices = raw.astype(np.int64)
    num = w._shape[0]
    bad = (indices < 0) | (indices >= num)
    if bad.any():
        raise ValueError(f"embedding index {indices[bad].flat[0]} is out of range for {num} embeddings")
    if padding_idx is not None:
        padding_idx = operator.index(padding_idx)
        if not -num <= padding_idx < num:
            raise ValueError(f"padding_idx {padding_idx} is out of range for {num} embeddings")
        padding_idx %= num
    return _new_node(w._data[indices], embedding_backward, (w,),
                     {"indices": indices, "padding_idx": padding_idx})


def embedding_backward(tensor: Tensor, grad: np.ndarray) -> tuple:
    r"""dW[i] = sum of the gradient rows that looked up row i (``scatter_add``); none for padding_idx."""
    e = tensor._extra
    w = tensor._parents[0]
    dw = _backend.active.scatter_add(grad.reshape(-1, w._shape[1]), e["indices"].reshape(-1), w._shape)
    if e["padding_idx"] is not None:
        dw[e["padding_idx"]] = 0
    return (dw,)


# --------------------------------------------------------------------------- activations
# The activations are the op registry's (one definition each, differentiable to any order).
from ..activation import gelu, leaky_relu, silu  # noqa: E402,F401

