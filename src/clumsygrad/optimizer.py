"""Optimizers that update PARAMETER tensors in place from their ``.grad``.

The update rules are PyTorch's (``torch.optim.SGD``, ``Adam``, ``AdamW``), written out in each
class's docstring.  The 0.2.x signatures and defaults are kept (``SGD(parameters, lr=0.01)``,
``Adam(parameters, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8)``); the newer arguments
(``momentum``, ``nesterov``, ``weight_decay``) are keyword-only, so a PyTorch-style positional
call cannot silently put a value in the wrong place.

What the constructors accept
----------------------------
* ``parameters``: an iterable of tensors (a list, a tuple, a generator).  Hyperparameters are
  checked at construction as PyTorch does: a negative or NaN rate, a beta outside ``[0, 1)``,
  a negative ``eps`` or ``weight_decay``, Nesterov without momentum raise ``ValueError``; a
  value that is not a real number raises ``TypeError``.
* INPUT and INTERMEDIATE tensors are not trained.  As in 0.2.x they are left out of
  ``optimizer.parameters`` (so 0.2.x code keeps running), but now with a ``UserWarning``
  naming how many were dropped: passing one is almost always a mistake (a tensor built
  without ``tensor_type=TensorType.PARAMETER``).
* A parameter listed twice is kept once (the first occurrence), with a ``UserWarning``:
  it is stepped once per ``step()``, not twice.

Adam and AdamW count steps per parameter: a parameter whose gradient is None is skipped and
its count does not advance, so a parameter that first receives a gradient late gets the
bias correction of its own first step.  ``Adam.t`` still counts the ``step()`` calls, for
0.2.x code that reads it.

The Adam/AdamW update is one fused kernel per parameter (``adam_update``: compiled in
``_kernels/_optim.pyx``, NumPy reference in ``_kernels/pure.py``), called through the active
backend.
"""
from __future__ import annotations

import contextlib
import math
import numbers
import sys
import warnings
from abc import ABC
from typing import Any, Dict, Iterable, List, Optional

import numpy as np

from . import _backend
from ._graph import guard as _guard
from .tensor import Tensor, TensorType

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "clip_grad_norm"]


# --------------------------------------------------------------------------- validation
def _real(name: str, value) -> float:
    """``value`` as a float; ``TypeError`` unless it is a real number (bools excluded)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    return float(value)


def _non_negative(name: str, value, label: str) -> float:
    """PyTorch's check ``0.0 <= value`` (which NaN fails)."""
    x = _real(name, value)
    if not 0.0 <= x:
        raise ValueError(f"Invalid {label}: {value}")
    return x


def _beta(name: str, value) -> float:
    x = _real(name, value)
    if not 0.0 <= x < 1.0:
        raise ValueError(f"Invalid {name} parameter: {value} (it must lie in [0, 1))")
    return x


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning raised by this module's caller's caller at
    the first frame outside this module (the user's ``SGD(...)`` line, however deep the
    constructors chain)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame, level = frame.f_back, level + 1
    return level


def _collect_parameters(parameters, owner: str) -> List[Tensor]:
    """The PARAMETER tensors of ``parameters``, each once, in order (see the module docstring)."""
    if isinstance(parameters, Tensor):
        raise TypeError(
            f"{owner} takes an iterable of Tensors (e.g. a list), but got a single Tensor; "
            f"pass [tensor]"
        )
    if isinstance(parameters, dict) or callable(getattr(parameters, "parameters", None)):
        # a dict iterates over its keys, a module is not iterable: name what was given
        hint = "model.parameters()" if not isinstance(parameters, dict) else "list(params.values())"
        raise TypeError(
            f"{owner} takes an iterable of Tensors, but got a {type(parameters).__name__}; pass {hint}"
        )
    try:
        items = list(parameters)
    except TypeError:
        raise TypeError(
            f"{owner} takes an iterable of Tensors, but got {type(parameters).__name__}"
        ) from None
    if not items:
        raise ValueError(f"optimizer got an empty parameter list ({owner})")
    kept: List[Tensor] = []
    seen = set()
    dropped = duplicates = 0
    for item in items:
        if not isinstance(item, Tensor):
            raise TypeError(f"{owner} can only optimize Tensors, but one of the parameters is {type(item).__name__}")
        if item._tensor_type != TensorType.PARAMETER:
            dropped += 1
        elif id(item) in seen:
            duplicates += 1
        else:
            seen.add(id(item))
            kept.append(item)
    if dropped:
        warnings.warn(
            f"{owner} ignores {dropped} tensor(s) that are not PARAMETER tensors (INPUT or "
            f"INTERMEDIATE tensors are never updated); build trainable tensors with "
            f"tensor_type=TensorType.PARAMETER",
            UserWarning,
            stacklevel=_user_stacklevel(),
        )
    if duplicates:
        warnings.warn(
            f"{owner} got {duplicates} parameter(s) more than once; each is kept once and "
            f"updated once per step()",
            UserWarning,
            stacklevel=_user_stacklevel(),
        )
    return kept


_NOT_GUARDED = contextlib.nullcontext()


def _writable(data: np.ndarray):
    """A context in which the step may write into ``data``: the memory guard (opt-in) keeps
    arrays that live graphs read read-only, and lets the library's own updates through."""
    return _NOT_GUARDED if data.flags.writeable else _guard.writable(data)


def _updated_in_place(param: Tensor) -> None:
    """Called after every in-place update of a parameter's data by the optimizers' Python
    loops (the plain SGD step's loop in the graph core, ``sgd_step``, bumps the version
    itself).  Bumping the version counter makes a backward pass through a
    graph recorded before this step raise instead of using the new values."""
    param._bump_version()


def _sgd_update_guarded(param: Tensor, grad, lr) -> None:
    """``sgd_update`` of a parameter whose data the memory guard holds read-only."""
    data = param._data
    with _writable(data):
        _backend.active.sgd_update(data, grad, lr)


def _grad_array(param: Tensor) -> Optional[np.ndarray]:
    """``param``'s gradient as an array, or None.  (0.2.x stored gradients as given, so it
    may have another dtype than the data; the kernels cast it.)"""
    return param._grad


# --------------------------------------------------------------------------- base class
class Optimizer(ABC):
    """Base class: keeps the PARAMETER tensors among ``parameters`` (each once).

    Subclasses implement :meth:`step`; :meth:`state_dict` and :meth:`load_state_dict` save
    and restore the hyperparameters named in ``_HYPERPARAMETERS`` and the per-parameter
    state returned by ``_param_state`` / accepted by ``_load_param_state``.
    """

    _HYPERPARAMETERS: tuple = ()

    def __init__(self, parameters: Iterable[Tensor]):
        self.parameters = _collect_parameters(parameters, type(self).__name__)

    def step(self) -> None:
        """Update the parameters from their gradients."""
        raise NotImplementedError("Optimizer subclasses must implement the step method.")

    def zero_grad(self) -> None:
        """Forget the accumulated gradients (sets each ``grad`` to None)."""
        _backend.graph.clear_grads(self.parameters)

    # ------------------------------------------------------------------ state
    def _param_state(self, index: int) -> Dict[str, object]:
        return {}

    def _load_param_state(self, index: int, state: Dict[str, object]) -> None:
        pass

    def _extra_state(self) -> Dict[str, object]:
        return {}

    def _check_extra_state(self, state: Dict[str, object]) -> Dict[str, object]:
        return state

    def _load_extra_state(self, state: Dict[str, object]) -> None:
        pass

    def state_dict(self) -> Dict[str, Any]:
        """A snapshot of the optimizer: its class name, hyperparameters and, per parameter
        (in the order of ``self.parameters``), its state as NumPy arrays and numbers.

        The arrays are copies: later steps do not change a snapshot.  The parameters'
        values are not included (save the tensors themselves); ``clumsygrad.save`` writes a
        state dict together with them.
        """
        state = {
            "optimizer": type(self).__name__,
            "hyperparameters": {name: getattr(self, name) for name in self._HYPERPARAMETERS},
            "state": [self._param_state(i) for i in range(len(self.parameters))],
        }
        state.update(self._extra_state())
        return state

    def load_state_dict(self, state_dict: Dict[str, object]) -> None:
        """Restore a :meth:`state_dict` taken from an optimizer of the same class over
        parameters of the same shapes, in the same order.

        Everything is checked before anything changes: a state dict of another optimizer
        class, another number of parameters or a state array whose shape differs from its
        parameter raises ``ValueError``.  Each per-parameter state array (SGD's
        ``momentum_buffer``, which may also be None; Adam's ``exp_avg`` and ``exp_avg_sq``) must
        be a NumPy array of a float dtype: anything else (None, a number, an integer array) raises
        ``TypeError`` naming the key.  Arrays are copied in the parameters' dtype.
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict):
            raise TypeError(f"{name}.load_state_dict takes a dict, got {type(state_dict).__name__}")
        missing = [k for k in ("optimizer", "hyperparameters", "state") if k not in state_dict]
        if missing:
            raise ValueError(f"{name}.load_state_dict: the state dict has no {missing[0]!r} entry")
        if state_dict["optimizer"] != name:
            raise ValueError(
                f"{name}.load_state_dict got the state of a {state_dict['optimizer']} optimizer"
            )
        states = list(state_dict["state"])
        if len(states) != len(self.parameters):
            raise ValueError(
                f"{name}.load_state_dict: the state dict holds {len(states)} parameter(s), "
                f"this optimizer has {len(self.parameters)}"
            )
        hyper = dict(state_dict["hyperparameters"])
        unknown = set(hyper) ^ set(self._HYPERPARAMETERS)
        if unknown:
            raise ValueError(
                f"{name}.load_state_dict: hyperparameters {sorted(hyper)} do not match "
                f"{sorted(self._HYPERPARAMETERS)}"
            )
        # Check everything first, so that a bad entry leaves the optimizer as it was.
        self._validate_hyperparameters(hyper)
        converted = [self._check_param_state(i, s) for i, s in enumerate(states)]
        extra = self._check_extra_state(
            {k: v for k, v in state_dict.items() if k not in ("optimizer", "hyperparameters", "state")}
        )
        for key, value in hyper.items():
            setattr(self, key, value)
        self._load_extra_state(extra)
        for i, s in enumerate(converted):
            self._load_param_state(i, s)

    def _validate_hyperparameters(self, hyper: Dict[str, object]) -> None:
        pass

    # The per-parameter state entries that are arrays of the parameter's shape (float dtype),
    # each mapped to whether it may be None.
    _STATE_ARRAYS: Dict[str, bool] = {}

    def _check_param_state(self, index: int, state) -> Dict[str, object]:
        """``state`` of parameter ``index`` with its arrays checked and copied."""
        name = type(self).__name__
        if not isinstance(state, dict):
            raise ValueError(f"{name}.load_state_dict: the state of parameter {index} is not a dict")
        param = self.parameters[index]
        out = {}
        for key, value in state.items():
            if key not in self._STATE_ARRAYS:
                out[key] = value
                continue
            if value is None and self._STATE_ARRAYS[key]:
                out[key] = None  # e.g. no momentum buffer yet
                continue
            if not isinstance(value, np.ndarray):
                raise TypeError(
                    f"{name}.load_state_dict: {key!r} of parameter {index} must be an array of the "
                    f"parameter's shape {param._shape}, got {type(value).__name__}"
                )
            array = value
            if array.shape != param._shape:
                raise ValueError(
                    f"{name}.load_state_dict: {key!r} of parameter {index} has shape {array.shape}, "
                    f"the parameter has shape {param._shape}"
                )
            if array.dtype.kind != "f":
                raise TypeError(
                    f"{name}.load_state_dict: {key!r} of parameter {index} has dtype {array.dtype}"
                )
            out[key] = np.array(array, dtype=param._data.dtype, order="K")
        return out


# --------------------------------------------------------------------------- SGD
class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and L2 decay.

    PyTorch's rule (with no dampening); for each parameter ``p`` with gradient ``g``::

        g = g + weight_decay * p                      # if weight_decay != 0
        if momentum != 0:
            b = g                  on the first step  # the momentum buffer
            b = momentum * b + g   afterwards
            g = g + momentum * b   if nesterov else b
        p = p - lr * g

    With the defaults (``momentum=0``, ``weight_decay=0``) this is 0.2.x's
    ``data -= lr * grad``.  Parameters whose ``grad`` is None are skipped (their momentum
    buffer is left as it was).
    """

    _HYPERPARAMETERS = ("lr", "momentum", "nesterov", "weight_decay")
    _STATE_ARRAYS = {"momentum_buffer": True}

    def __init__(
        self,
        parameters: Iterable[Tensor],
        lr: float = 0.01,
        *,
        momentum: float = 0,
        nesterov: bool = False,
        weight_decay: float = 0,
    ):
        self._validate_hyperparameters(
            {"lr": lr, "momentum": momentum, "nesterov": nesterov, "weight_decay": weight_decay}
        )
        super().__init__(parameters)
        self.lr = lr
        self.momentum = momentum
        self.nesterov = bool(nesterov)
        self.weight_decay = weight_decay
        self.momentum_buffers: List[Optional[np.ndarray]] = [None] * len(self.parameters)

    @staticmethod
    def _validate_hyperparameters(hyper: Dict[str, object]) -> None:
        _non_negative("lr", hyper["lr"], "learning rate")
        momentum = _non_negative("momentum", hyper["momentum"], "momentum value")
        _non_negative("weight_decay", hyper["weight_decay"], "weight_decay value")
        if hyper["nesterov"] and momentum <= 0:
            raise ValueError("Nesterov momentum requires a momentum")

    def step(self) -> None:
        sgd_update = _backend.active.sgd_update  # param._data -= lr * g, in place
        lr, momentum, weight_decay = self.lr, self.momentum, self.weight_decay
        if momentum == 0 and weight_decay == 0:  # the plain step: one loop in the graph core
            _backend.graph.sgd_step(self.parameters, lr, sgd_update, _sgd_update_guarded)
            return
        for i, param in enumerate(self.parameters):
            grad = param._grad  # _grad_array, inlined: this loop runs once per parameter per step
            if grad is None:
                continue
            if weight_decay != 0 or momentum != 0:
                data = param._data
                g = np.array(grad, dtype=data.dtype)  # a private copy: the user's array stays
                if weight_decay != 0:
                    g += data.dtype.type(weight_decay) * data
                if momentum != 0:
                    buf = self.momentum_buffers[i]
                    if buf is None:
                        buf = self.momentum_buffers[i] = g.copy()
                    else:
                        buf *= data.dtype.type(momentum)
                        buf += g
                    if self.nesterov:
                        g += data.dtype.type(momentum) * buf
                    else:
                        g = buf
                grad = g
            data = param._data
            if data.flags.writeable:  # _writable without a context when the guard holds nothing
                sgd_update(data, grad, lr)
            else:
                with _guard.writable(data):
                    sgd_update(data, grad, lr)
            _updated_in_place(param)

    def _param_state(self, index: int) -> Dict[str, object]:
        buf = self.momentum_buffers[index]
        return {"momentum_buffer": None if buf is None else buf.copy()}

    def _load_param_state(self, index: int, state: Dict[str, object]) -> None:
        self.momentum_buffers[index] = state.get("momentum_buffer")


# --------------------------------------------------------------------------- Adam, AdamW
class Adam(Optimizer):
    """Adam (Kingma & Ba, 2014) with bias-corrected moments and optional L2 weight decay.

    PyTorch's rule; for each parameter ``p`` with gradient ``g`` and its own step count
    ``t`` (1 on its first update)::

        g = g + weight_decay * p                      # if weight_decay != 0 (L2, coupled)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    i.e. ``p -= lr * m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - beta1**t)`` and
    ``v_hat = v / (1 - beta2**t)``.  Parameters whose ``grad`` is None are skipped and their
    ``t`` does not advance.  ``biased_first_moment`` / ``biased_second_moment`` are the
    lists of ``m`` / ``v`` arrays (as in 0.2.x), ``step_counts`` the per-parameter ``t``,
    and ``t`` the number of ``step()`` calls.
    """

    _HYPERPARAMETERS = ("lr", "beta1", "beta2", "eps", "weight_decay")
    _STATE_ARRAYS = {"exp_avg": False, "exp_avg_sq": False}
    _DECOUPLED = False

    def __init__(
        self,
        parameters: Iterable[Tensor],
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        *,
        weight_decay: float = 0,
    ):
        self._validate_hyperparameters(
            {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": weight_decay}
        )
        super().__init__(parameters)
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weight_decay = weight_decay
        self.t = 0
        # zeros_like keeps each parameter's layout (C or Fortran), which the fused kernel walks flat
        self.biased_first_moment = [np.zeros_like(p._data) for p in self.parameters]
        self.biased_second_moment = [np.zeros_like(p._data) for p in self.parameters]
        self.step_counts = [0] * len(self.parameters)

    @staticmethod
    def _validate_hyperparameters(hyper: Dict[str, object]) -> None:
        _non_negative("lr", hyper["lr"], "learning rate")
        _beta("beta1", hyper["beta1"])
        _beta("beta2", hyper["beta2"])
        _non_negative("eps", hyper["eps"], "epsilon value")
        _non_negative("weight_decay", hyper["weight_decay"], "weight_decay value")

    def step(self) -> None:
        adam_update = _backend.active.adam_update
        self.t += 1
        lr, beta1, beta2, eps, wd = self.lr, self.beta1, self.beta2, self.eps, self.weight_decay
        decoupled = self._DECOUPLED
        m_list, v_list, counts = self.biased_first_moment, self.biased_second_moment, self.step_counts
        for i, param in enumerate(self.parameters):
            grad = _grad_array(param)
            if grad is None:
                continue
            counts[i] += 1
            with _writable(param._data):
                adam_update(param._data, grad, m_list[i], v_list[i], lr, beta1, beta2, eps, wd,
                            decoupled, counts[i])
            _updated_in_place(param)

    def _param_state(self, index: int) -> Dict[str, object]:
        return {
            "step": self.step_counts[index],
            "exp_avg": self.biased_first_moment[index].copy(),
            "exp_avg_sq": self.biased_second_moment[index].copy(),
        }

    def _check_param_state(self, index: int, state) -> Dict[str, object]:
        out = super()._check_param_state(index, state)
        for key in ("step", "exp_avg", "exp_avg_sq"):
            if key not in out:
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: the state of parameter {index} has no {key!r}"
                )
        step = out["step"]
        if not isinstance(step, (int, np.integer)) or isinstance(step, (bool, np.bool_)) or step < 0:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: step of parameter {index} must be an "
                f"integer >= 0, got {step!r}"
            )
        out["step"] = int(step)
        return out

    def _load_param_state(self, index: int, state: Dict[str, object]) -> None:
        self.step_counts[index] = state["step"]
        like = self.parameters[index]._data
        for key, store in (("exp_avg", self.biased_first_moment), ("exp_avg_sq", self.biased_second_moment)):
            array = np.empty_like(like)  # the parameter's layout, as the constructor makes it
            array[...] = state[key]
            store[index] = array

    def _extra_state(self) -> Dict[str, object]:
        return {"t": self.t}

    def _check_extra_state(self, state: Dict[str, object]) -> Dict[str, object]:
        t = state.get("t", self.t)
        if not isinstance(t, (int, np.integer)) or isinstance(t, (bool, np.bool_)) or t < 0:
            raise ValueError(f"{type(self).__name__}.load_state_dict: t must be an integer >= 0, got {t!r}")
        return {"t": int(t)}

    def _load_extra_state(self, state: Dict[str, object]) -> None:
        self.t = state["t"]


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), PyTorch's ``AdamW``.

    For each parameter ``p`` with gradient ``g`` and its own step count ``t``::

        p = p * (1 - lr * weight_decay)              # decay applied to the weights, not to g
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    The defaults are Adam's, with ``weight_decay=0.01`` (PyTorch's default).
    """

    _DECOUPLED = True

    def __init__(
        self,
        parameters: Iterable[Tensor],
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        *,
        weight_decay: float = 0.01,
    ):
        super().__init__(parameters, lr, beta1, beta2, eps, weight_decay=weight_decay)


# --------------------------------------------------------------------------- gradient clipping
def clip_grad_norm(parameters, max_norm: float, *, error_if_nonfinite: bool = False) -> float:
    """Scale the gradients of ``parameters`` so that their joint L2 norm is at most ``max_norm``.

    ``parameters`` is a tensor or an iterable of tensors; those whose ``grad`` is None are
    ignored.  The total norm ``sqrt(sum over tensors of sum(grad**2))`` is computed in
    float64; when it exceeds ``max_norm`` every gradient is multiplied by
    ``max_norm / (total + 1e-6)`` (PyTorch's ``clip_grad_norm_``).  Returns the total norm
    before clipping, as a Python float.

    The scaled gradients are new arrays (an array the caller assigned to ``.grad`` is never
    written into).  A NaN or infinite total norm raises ``RuntimeError`` when
    ``error_if_nonfinite`` is true; otherwise the gradients are scaled by the resulting NaN
    or zero factor, as in PyTorch.
    """
    max_norm = _non_negative("max_norm", max_norm, "max_norm value")
    tensors = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"clip_grad_norm takes Tensors, got {type(t).__name__}")
    grads = [(t, t._grad) for t in tensors if t._grad is not None]
    total = 0.0
    for _, g in grads:
        g64 = np.asarray(g, dtype=np.float64).ravel()
        total += float(np.dot(g64, g64))
    total = math.sqrt(total)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"The total norm of the gradients is {total}, so they cannot be clipped; "
            f"pass error_if_nonfinite=False to scale them anyway"
        )
    coefficient = max_norm / (total + 1e-6)
    if coefficient >= 1.0:  # (a NaN coefficient goes on to scale, as in PyTorch)
        return total
    with np.errstate(invalid="ignore"):  # an infinite norm: inf * 0 is the NaN PyTorch gives too
        for t, g in grads:
            g = np.asarray(g)
            t._grad = (g * g.dtype.type(coefficient)) if g.dtype.kind == "f" else g * coefficient
    return total
