"""Neural-network building blocks in PyTorch's shape: ``Module``, layers, ``functional``, ``init``.

    from clumsygrad import nn
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    optimizer = clumsygrad.optimizer.Adam(model.parameters(), lr=1e-3)

Parameters are PARAMETER tensors; ``model.state_dict()`` / ``load_state_dict`` save and restore
them (with ``clumsygrad.save`` / ``load`` for files).
"""
from . import functional, init
from .layers import (
    GELU, AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, Dropout, Embedding, Flatten,
    GRUCell, Identity, LayerNorm, LeakyReLU, Linear, LogSoftmax, MaxPool2d, ReLU, RNNCell, Sigmoid, SiLU, Softmax,
    Tanh,
)
from .module import IncompatibleKeys, Module, ModuleDict, ModuleList, Sequential

__all__ = [
    "functional", "init", "Module", "Sequential", "ModuleList", "ModuleDict", "IncompatibleKeys",
    "Linear", "Embedding", "Dropout", "LayerNorm", "BatchNorm1d", "BatchNorm2d", "Conv1d", "Conv2d",
    "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Flatten", "Identity", "ReLU", "Tanh", "Sigmoid",
    "GELU", "LeakyReLU", "SiLU", "Softmax", "LogSoftmax", "RNNCell", "GRUCell",
]
