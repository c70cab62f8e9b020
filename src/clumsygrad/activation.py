"""Activation functions, each one registry entry: forward and the VJP formula side by side."""
from __future__ import annotations

import math as _m

import numpy as np

from . import _backend
from ._adjoint import is_array
from ._kernels.checks import normal_cdf_values as _normal_cdf_values
from ._registry import defop, export

_SQRT_2_OVER_PI = _m.sqrt(2.0 / _m.pi)
_INV_SQRT_2PI = 1.0 / _m.sqrt(2.0 * _m.pi)
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _values(x):
    return x if is_array(x) else x._data


# ----------------------------------------------------------------------------- 0.2.x
def relu(tensor):
    """max(0, x) elementwise."""
    return _backend.active.relu_forward(tensor)  # np.maximum(x, 0)'s values, without its dispatch


def sigmoid(tensor):
    """1 / (1 + e^-x) elementwise; saturates to 0 without overflow warnings for very negative x."""
    return _backend.active.sigmoid_forward(tensor)  # the formula's values, in one compiled pass


def _relu_kernel(tensor, grad, *, needs=None):
    return (_backend.active.relu_backward(tensor._data, grad),)


# tanh's forward is the ufunc itself (no wrapper frame), as for the ops of ``math``.
defop("tanh", np.tanh, (lambda g, out, x: g * (1 - out * out),), module="activation",
      numpy=(np.tanh,), method="tanh", typed="TANH", doc="Hyperbolic tangent elementwise.")
defop("relu", relu, (lambda g, out, x: g * (_values(out) > 0),), module="activation",
      method="relu", kernel=_relu_kernel, typed="RELU", forward_kernel="relu_forward")
defop("sigmoid", sigmoid, (lambda g, out, x: g * (out * (1 - out)),), module="activation",
      method="sigmoid", typed="SIGMOID", forward_kernel="sigmoid_forward")


def softmax(tensor, axis: int = -1):
    """exp(x) / sum(exp(x), axis), computed after subtracting the max along ``axis`` (no overflow)."""
    return _backend.active.softmax_forward(tensor, axis)


def _softmax_kernel(tensor, grad, *, needs=None):
    return (_backend.active.softmax_backward(tensor._data, grad, tensor._extra.get("axis", -1)),)


defop("softmax", softmax,
      (lambda g, out, x, axis=-1: out * (g - np.sum(out * g, axis=axis, keepdims=True)),),
      module="activation", method="softmax", kernel=_softmax_kernel, typed="SOFTMAX",
      forward_kernel="softmax_forward")


def log_softmax(tensor, axis: int = -1):
    """``x - logsumexp(x, axis)``, computed as ``(x - max) - log(sum(exp(x - max)))``: no overflow,
    and no ``log(0)`` where the softmax underflows."""
    return _backend.active.log_softmax_forward(tensor, axis)  # it checks the axis


def _log_softmax_kernel(tensor, grad, *, needs=None):
    axis = tensor._extra.get("axis", -1)
    return (_backend.active.log_softmax_backward(tensor._data, grad, axis),)


defop("log_softmax", log_softmax,
      (lambda g, out, x, axis=-1: g - np.exp(out) * np.sum(g, axis=axis, keepdims=True),),
      module="activation", method="log_softmax", kernel=_log_softmax_kernel, typed="LOG_SOFTMAX",
      forward_kernel="log_softmax_forward")


# ----------------------------------------------------------------------------- more activations
def _pdf(x):
    return _INV_SQRT_2PI * np.exp(-0.5 * x * x)


def normal_cdf(x):
    """The standard normal CDF ``Phi(x) = (1 + erf(x / sqrt 2)) / 2``."""
    return _normal_cdf_values(x).astype(np.result_type(x, np.float32), copy=False)


defop("normal_cdf", normal_cdf, (lambda g, out, x: g * _pdf(x),), module="activation")


def gelu(x, approximate: str = "none"):
    """Gaussian error linear unit ``x * Phi(x)``; ``approximate="tanh"`` gives the tanh form."""
    return _backend.active.gelu_forward(x, approximate)


def _gelu_kernel(tensor, grad, *, needs=None):
    approximate = tensor._extra.get("approximate", "none")
    return (_backend.active.gelu_backward(tensor._parents[0]._data, grad, approximate),)


def _gelu_vjp(g, out, x, approximate="none"):
    if approximate == "tanh":
        inner = _SQRT_2_OVER_PI * (x + 0.044715 * x ** 3)
        t = np.tanh(inner)
        d_inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
        return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner)
    cdf = _normal_cdf_values(x).astype(x.dtype) if is_array(x) else normal_cdf_fn(x)
    return g * (cdf + x * _pdf(x))


defop("gelu", gelu, (_gelu_vjp,), module="activation", method="gelu", kernel=_gelu_kernel, typed="GELU",
      forward_kernel="gelu_forward")


def leaky_relu(x, negative_slope: float = 0.01):
    """x where x > 0, else ``negative_slope * x``."""
    return np.where(x > 0, x, x * negative_slope)


defop("leaky_relu", leaky_relu,
      (lambda g, out, x, negative_slope=0.01: g * np.where(_values(x) > 0, 1.0, negative_slope).astype(_values(x).dtype),),
      module="activation", method="leaky_relu")


def elu(x, alpha: float = 1.0):
    """x where x > 0, else ``alpha * (exp(x) - 1)``."""
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


defop("elu", elu, (lambda g, out, x, alpha=1.0: g * np.where(_values(x) > 0, 1.0, out + alpha),),
      module="activation", method="elu")


def selu(x):
    """``scale * elu(x, alpha)`` with the self-normalising constants."""
    return _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0)))


defop("selu", selu,
      (lambda g, out, x: g * np.where(_values(x) > 0, _SELU_SCALE, out + _SELU_SCALE * _SELU_ALPHA),),
      module="activation", method="selu")


def _softplus_values(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def softplus(x):
    """``log(1 + exp(x))`` without overflow."""
    return _softplus_values(x)


def _sigmoid_values(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


defop("softplus", softplus, (lambda g, out, x: g * _stable_sigmoid(x),), module="activation",
      method="softplus")


def _stable_sigmoid(x):
    """sigmoid(x) without overflow: an array for arrays, a recorded op for tensors."""
    if is_array(x):
        return _sigmoid_values(x)
    return sigmoid_fn(x)


def silu(x):
    """``x * sigmoid(x)`` (swish)."""
    return x * _sigmoid_values(x)


defop("silu", silu,
      (lambda g, out, x: g * (_stable_sigmoid(x) * (1 + x * (1 - _stable_sigmoid(x)))),),
      module="activation", method="silu")


def mish(x):
    """``x * tanh(softplus(x))``."""
    return x * np.tanh(_softplus_values(x))


def _mish_vjp(g, out, x):
    t = np.tanh(_softplus_any(x))
    return g * (t + x * (1 - t * t) * _stable_sigmoid(x))


def _softplus_any(x):
    return _softplus_values(x) if is_array(x) else softplus_fn(x)


defop("mish", mish, (_mish_vjp,), module="activation", method="mish")


def hardtanh(x, min_val: float = -1.0, max_val: float = 1.0):
    """``x`` limited to ``[min_val, max_val]``; the gradient passes strictly inside."""
    return np.clip(x, min_val, max_val)


defop("hardtanh", hardtanh,
      (lambda g, out, x, min_val=-1.0, max_val=1.0:
       g * ((_values(x) > min_val) & (_values(x) < max_val)),),
      module="activation", method="hardtanh")


def log_sigmoid(x):
    """``log(sigmoid(x)) = -softplus(-x)`` without overflow."""
    return -(np.maximum(-x, 0) + np.log1p(np.exp(-np.abs(x))))


defop("log_sigmoid", log_sigmoid, (lambda g, out, x: g * _stable_sigmoid(-x),), module="activation",
      method="log_sigmoid")

__all__ = export(globals(), "activation")
sigmoid_fn, softplus_fn, normal_cdf_fn = sigmoid, softplus, normal_cdf  # the recorded ops
