"""Random tensors drawn from NumPy's global generator (``np.random.seed`` makes them repeatable)."""
from __future__ import annotations

from typing import Tuple

import numpy as np

from .tensor import Tensor, TensorType

__all__ = ["rand", "randn"]


def rand(shape: Tuple[int, ...], tensor_type: TensorType = TensorType.INPUT, dtype=np.float32) -> Tensor:
    """Uniform values in [0, 1)."""
    return Tensor(np.random.rand(*shape), tensor_type=tensor_type, dtype=dtype)


def randn(shape: Tuple[int, ...], tensor_type: TensorType = TensorType.INPUT, dtype=np.float32) -> Tensor:
    """Standard normal values."""
    return Tensor(np.random.randn(*shape), tensor_type=tensor_type, dtype=dtype)
