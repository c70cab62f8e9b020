"""Optimizers that update PARAMETER tensors in place from their ``.grad``."""
from __future__ import annotations

from abc import ABC
from typing import List

import numpy as np

from . import _backend
from .tensor import Tensor, TensorType

__all__ = ["Optimizer", "SGD", "Adam"]


class Optimizer(ABC):
    """Base class: keeps the PARAMETER tensors among ``parameters``."""

    def __init__(self, parameters: List[Tensor]):
        self.parameters = [p for p in parameters if p._tensor_type == TensorType.PARAMETER]

    def step(self) -> None:
        """Update the parameters from their gradients."""
        raise NotImplementedError("Optimizer subclasses must implement the step method.")

    def zero_grad(self) -> None:
        """Forget the accumulated gradients (sets each ``grad`` to None)."""
        for param in self.parameters:
            param.grad = None


class SGD(Optimizer):
    """Plain gradient descent: ``param -= lr * grad``."""

    def __init__(self, parameters: List[Tensor], lr: float = 0.01):
        super().__init__(parameters)
        self.lr = lr

    def step(self) -> None:
        sgd_update = _backend.active.sgd_update  # param._data -= lr * param._grad, in place
        for param in self.parameters:
            if param._grad is not None:
                sgd_update(param._data, param._grad, self.lr)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2014) with bias-corrected first and second moments."""

    def __init__(
        self,
        parameters: List[Tensor],
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ):
        super().__init__(parameters)
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.t = 0
        self.biased_first_moment = [np.zeros_like(p._data) for p in self.parameters]
        self.biased_second_moment = [np.zeros_like(p._data) for p in self.parameters]

    def step(self) -> None:
        self.t += 1
        first_correction = 1 - self.beta1 ** self.t
        second_correction = 1 - self.beta2 ** self.t
        for param, m, v in zip(self.parameters, self.biased_first_moment, self.biased_second_moment):
            grad = param._grad
            if grad is None:
                continue
            m *= self.beta1
            m += (1 - self.beta1) * grad
            v *= self.beta2
            v += (1 - self.beta2) * (grad * grad)
            m_hat = m / first_correction
            v_hat = v / second_correction
            param._data -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
