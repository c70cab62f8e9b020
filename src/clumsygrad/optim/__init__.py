"""PyTorch-style alias: ``clumsygrad.optim.Adam`` is ``clumsygrad.optimizer.Adam`` and
``clumsygrad.optim.lr_scheduler`` is ``clumsygrad.lr_scheduler``."""
import sys as _sys

from .. import lr_scheduler
from ..optimizer import SGD, Adam, AdamW, Optimizer, clip_grad_norm

_sys.modules[__name__ + ".lr_scheduler"] = lr_scheduler  # `import clumsygrad.optim.lr_scheduler` works

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "clip_grad_norm", "lr_scheduler"]
