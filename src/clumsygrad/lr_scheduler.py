"""Learning-rate schedulers with PyTorch's formulas (``torch.optim.lr_scheduler``).

A scheduler owns an optimizer's ``lr``: built on it, it sets ``lr`` for step 0; each
``scheduler.step()`` (once per epoch, or per batch for ``OneCycleLR``, after
``optimizer.step()``) moves it on.  ``get_last_lr()`` is a one-element list (PyTorch gives one
value per parameter group; clumsygrad optimizers have one group).  ``state_dict()`` holds the
scheduler's counters and settings (never the optimizer); ``load_state_dict`` restores them.

The rates are the closed forms, with ``t = last_epoch`` and ``base`` the optimizer's ``lr``
when the scheduler was built:

* ``StepLR``: ``base * gamma ** (t // step_size)``
* ``ExponentialLR``: ``base * gamma ** t``
* ``CosineAnnealingLR``: ``eta_min + (base - eta_min) * (1 + cos(pi * t / T_max)) / 2``
* ``LinearLR``: ``base * (start_factor + (end_factor - start_factor) * min(t, total_iters) / total_iters)``
* ``OneCycleLR``: from ``max_lr / div_factor`` up to ``max_lr`` over ``pct_start`` of the steps, then
  down to ``max_lr / div_factor / final_div_factor`` (cosine or linear), cycling the momentum
  (SGD's ``momentum`` or Adam's ``beta1``) the other way between ``max_momentum`` and
  ``base_momentum``.
"""
from __future__ import annotations

import math
import numbers
from typing import Dict, List, Optional

from .optimizer import Optimizer

__all__ = ["LRScheduler", "StepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR", "OneCycleLR"]


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    return float(value)


class LRScheduler:
    """Base class: subclasses define ``get_lr()`` for the current ``last_epoch``."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__} needs an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        if last_epoch == -1 or not hasattr(self, "base_lr"):
            self.base_lr = float(optimizer.lr)
        self.last_epoch = int(last_epoch)
        self.step()

    def get_lr(self) -> float:
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch (or batch) and set the optimizer's ``lr``."""
        self.last_epoch += 1
        lr = self.get_lr()
        self.optimizer.lr = lr
        self._last_lr = [lr]

    def get_last_lr(self) -> List[float]:
        return list(self._last_lr)

    def state_dict(self) -> Dict[str, object]:
        """Every attribute but the optimizer (numbers and strings)."""
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: Dict[str, object]) -> None:
        unknown = set(state_dict) - set(self.state_dict())
        if unknown:
            raise KeyError(f"{type(self).__name__}.load_state_dict: unknown keys {sorted(unknown)}")
        self.__dict__.update(state_dict)
        self.optimizer.lr = self._last_lr[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, lr={self._last_lr[0]})"


class StepLR(LRScheduler):
    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        self.step_size = _positive_int("step_size", step_size)
        self.gamma = _real("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> float:
        return self.base_lr * self.gamma ** (self.last_epoch // self.step_size)


class ExponentialLR(LRScheduler):
    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = _real("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> float:
        return self.base_lr * self.gamma ** self.last_epoch


class CosineAnnealingLR(LRScheduler):
    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        self.T_max = _positive_int("T_max", T_max)
        self.eta_min = _real("eta_min", eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> float:
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2


class LinearLR(LRScheduler):
    """Linear warm-up (or decay) of the rate's factor from ``start_factor`` to ``end_factor``."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1) -> None:
        self.start_factor = _real("start_factor", start_factor)
        self.end_factor = _real("end_factor", end_factor)
        if not 0 < self.start_factor <= 1 or not 0 <= self.end_factor <= 1:
            raise ValueError(
                f"Starting multiplicative factor expected to be greater than 0 and less or equal to 1, "
                f"ending factor between 0 and 1; got {start_factor} and {end_factor}"
            )
        self.total_iters = _positive_int("total_iters", total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> float:
        t = min(self.last_epoch, self.total_iters)
        return self.base_lr * (self.start_factor + (self.end_factor - self.start_factor) * t / self.total_iters)


class OneCycleLR(LRScheduler):
    """The 1cycle policy, stepped once per batch; ``total_steps`` or ``epochs * steps_per_epoch``."""

    def __init__(self, optimizer: Optimizer, max_lr: float, total_steps: Optional[int] = None,
                 epochs: Optional[int] = None, steps_per_epoch: Optional[int] = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True, base_momentum: float = 0.85,
                 max_momentum: float = 0.95, div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False, last_epoch: int = -1) -> None:
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")
            total_steps = _positive_int("epochs", epochs) * _positive_int("steps_per_epoch", steps_per_epoch)
        self.total_steps = _positive_int("total_steps", total_steps)
        pct_start = _real("pct_start", pct_start)
        if not 0 <= pct_start <= 1:
            raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}")
        self.anneal_strategy = anneal_strategy
        self.max_lr = _real("max_lr", max_lr)
        initial = self.max_lr / _real("div_factor", div_factor)
        minimum = initial / _real("final_div_factor", final_div_factor)
        n = float(self.total_steps)
        if three_phase:
            self.phases = [
                (pct_start * n - 1, initial, self.max_lr, max_momentum, base_momentum),
                (2 * pct_start * n - 2, self.max_lr, initial, base_momentum, max_momentum),
                (n - 1, initial, minimum, max_momentum, max_momentum),
            ]
        else:
            self.phases = [
                (pct_start * n - 1, initial, self.max_lr, max_momentum, base_momentum),
                (n - 1, self.max_lr, minimum, base_momentum, max_momentum),
            ]
        self.cycle_momentum = bool(cycle_momentum)
        self._momentum_name = None
        if self.cycle_momentum:
            if hasattr(optimizer, "beta1"):
                self._momentum_name = "beta1"
            elif hasattr(optimizer, "momentum"):
                self._momentum_name = "momentum"
            else:
                raise ValueError("optimizer must support momentum or beta1 with `cycle_momentum` option enabled")
        optimizer.lr = initial
        self.base_lr = initial
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> float:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(
                f"Tried to step {step} times. The specified number of total steps is {self.total_steps}"
            )
        start_step = 0.0
        for i, (end_step, lr0, lr1, m0, m1) in enumerate(self.phases):
            if step <= end_step or i == len(self.phases) - 1:
                pct = (step - start_step) / (end_step - start_step)
                if self._momentum_name is not None:
                    setattr(self.optimizer, self._momentum_name, self._anneal(m0, m1, pct))
                return self._anneal(lr0, lr1, pct)
            start_step = end_step
        raise AssertionError("unreachable")

    def load_state_dict(self, state_dict: Dict[str, object]) -> None:
        super().load_state_dict(state_dict)
        if self._momentum_name is not None and self.last_epoch >= 0:
            self.last_epoch -= 1
            self.step()  # recomputes the momentum of the restored step
