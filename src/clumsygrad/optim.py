"""The optimizers under the name PyTorch users reach for: ``clumsygrad.optim.SGD`` is
``clumsygrad.optimizer.SGD`` (one class, two import paths)."""
from .optimizer import SGD, Adam, AdamW, Optimizer, clip_grad_norm

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "clip_grad_norm"]
