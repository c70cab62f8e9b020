"""The optimizers under the name PyTorch users reach for: ``clumsygrad.optim.SGD`` is
``clumsygrad.optimizer.SGD`` (one class, two import paths).  ``clumsygrad.optim.lr_scheduler``
is ``clumsygrad.lr_scheduler`` (``import clumsygrad.optim.lr_scheduler`` works too)."""
import sys as _sys

from . import lr_scheduler
from .optimizer import SGD, Adam, AdamW, Optimizer, clip_grad_norm

_sys.modules[__name__ + ".lr_scheduler"] = lr_scheduler

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "clip_grad_norm"]
