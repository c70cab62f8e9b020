"""``__array_ufunc__`` and ``__array_function__`` of Tensor: NumPy's names reach the registered ops.

* A registered op reached through its NumPy name records with gradients (``np.exp(t)``,
  ``np.sum(t, axis=0)``, ``a * t`` with an ndarray ``a``).
* A NumPy callable whose result carries no gradient (comparisons, ``np.isfinite``, ``np.argmax``,
  ``np.shape``...) runs on the values and returns a plain NumPy result.
* Anything else is a ``TypeError`` naming the function: never a silent object array, never a
  silently detached result.  ``out=`` into a Tensor is a ``TypeError`` too.
"""
from __future__ import annotations

import numpy as np

from ._registry import FUNCTIONS, UFUNCS
from .tensor import Tensor, _matmul, _plain

_OPERATORS = {
    np.add: lambda a, b: _pair(a, b, "add"),
    np.subtract: lambda a, b: _pair(a, b, "sub"),
    np.multiply: lambda a, b: _pair(a, b, "mul"),
    np.power: lambda a, b: _pair(a, b, "pow"),
    np.negative: lambda a: -_as_tensor(a),
    np.positive: lambda a: _as_tensor(a),
    np.matmul: lambda a, b: _matmul(*_both(a, b)),
}

# Ufuncs whose results carry no gradient: they run on the values and give arrays.
_GRADIENT_FREE_UFUNCS = {
    np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal,
    np.logical_and, np.logical_or, np.logical_xor, np.logical_not, np.isfinite, np.isnan,
    np.isinf, np.signbit, np.floor, np.ceil, np.rint, np.trunc,
    np.floor_divide, np.remainder, np.bitwise_and, np.bitwise_or, np.invert,
}

# NumPy functions whose results carry no gradient (indices, shapes, tests, sorting orders).
_GRADIENT_FREE_FUNCTIONS = {
    np.shape, np.ndim, np.size, np.argmax, np.argmin, np.argsort, np.argwhere, np.nonzero,
    np.flatnonzero, np.count_nonzero, np.isclose, np.allclose, np.array_equal, np.array_equiv,
    np.any, np.all, np.result_type, np.may_share_memory, np.shares_memory, np.iscomplexobj,
    np.isrealobj, np.searchsorted, np.unique, np.isin, np.array_repr, np.array_str,
    np.array2string, np.round, np.around, np.floor, np.ceil, np.isfinite, np.isnan, np.isinf,
    np.min_scalar_type, np.ndim, np.sort, np.histogram, np.digitize, np.bincount,
}
_GRADIENT_FREE_FUNCTIONS.discard(np.sort)  # sort has a gradient (a permutation): not yet registered

_HINT = "apply it to t.data (a plain array, outside the graph) if no gradient is needed"


def _as_tensor(value):
    return value if isinstance(value, Tensor) else Tensor(value)


def _both(a, b):
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        return a, b
    from ._registry import as_tensors

    return as_tensors((a, b))


def _pair(a, b, name: str):
    """``a (op) b`` through the Tensor operators, which keep a scalar operand a recorded constant."""
    if isinstance(a, Tensor):
        result = getattr(a, f"__{name}__")(b)
    else:
        result = getattr(b, f"__r{name}__")(a)
    if result is NotImplemented:
        raise TypeError(f"unsupported operand types for {name}: {type(a).__name__} and {type(b).__name__}")
    return result


def _no_out(name: str, kwargs: dict) -> None:
    if kwargs.get("out") is not None:
        raise TypeError(
            f"np.{name}(..., out=...) cannot write into or out of a Tensor: call it without out= "
            "(the result is a new Tensor)"
        )
    kwargs.pop("out", None)


def ufunc(uf: np.ufunc, method: str, inputs: tuple, kwargs: dict):
    name = uf.__name__
    if method == "__call__":
        if uf in _GRADIENT_FREE_UFUNCS:
            return getattr(uf, method)(*_plain(inputs), **_plain(kwargs))
        fn = _OPERATORS.get(uf) or UFUNCS.get(uf)
        if fn is not None:
            _no_out(name, kwargs)
            if kwargs:
                raise TypeError(
                    f"np.{name} on a Tensor does not take {sorted(kwargs)}: call it with the operands only"
                )
            return fn(*inputs)
    elif method == "reduce" and uf in _REDUCTIONS:
        _no_out(f"{name}.reduce", kwargs)
        kwargs.setdefault("axis", 0)
        return _REDUCTIONS[uf](*inputs, **kwargs)
    raise TypeError(
        f"np.{name}{'' if method == '__call__' else '.' + method} has no gradient rule in clumsygrad "
        f"and cannot take a Tensor; {_HINT}"
    )


def _qualified(func) -> str:
    """NumPy's public spelling of ``func`` without the ``np.``: ``sort``, ``linalg.inv``, ``fft.fft``."""
    name = getattr(func, "__name__", repr(func))
    module = getattr(func, "__module__", None) or "numpy"
    if module.startswith("numpy.") and not any(part.startswith("_") for part in module.split(".")):
        return module[len("numpy."):] + "." + name
    return name


def function(func, args: tuple, kwargs: dict):
    name = _qualified(func)
    fn = FUNCTIONS.get(func)
    if fn is not None:
        _no_out(name, kwargs)
        return fn(*args, **kwargs)
    if func in _GRADIENT_FREE_FUNCTIONS:
        return func(*_plain(args), **_plain(kwargs))
    raise TypeError(f"np.{name} has no gradient rule in clumsygrad and cannot take a Tensor; {_HINT}")


def _reductions():
    from . import math, selection

    return {np.add: math.sum, np.multiply: math.prod, np.maximum: selection.max, np.minimum: selection.min}


_REDUCTIONS = _reductions()
