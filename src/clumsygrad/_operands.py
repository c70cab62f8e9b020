"""Operands of the shape and selection ops: tensors, or plain arrays and scalars wrapped as constants."""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from .tensor import Tensor, TensorType


def as_operands(values: Sequence) -> Tuple[Tensor, ...]:
    """``values`` as tensors; each non-tensor becomes an INPUT tensor.

    A wrapped constant takes the dtype of the tensor operands (float64 if any is float64, else
    float32), so ``maximum(t, 0)`` keeps ``t``'s dtype; only a float64 ndarray asks for float64
    itself.  With no tensor among ``values`` the default is float32.
    """
    tensors = [v for v in values if isinstance(v, Tensor)]
    dtype = np.float32
    if any(t._data.dtype == np.float64 for t in tensors):
        dtype = np.float64
    out = []
    for v in values:
        if isinstance(v, Tensor):
            out.append(v)
        else:
            own = np.float64 if isinstance(v, np.ndarray) and v.dtype == np.float64 else dtype
            out.append(Tensor(v, tensor_type=TensorType.INPUT, dtype=own))
    return tuple(out)
