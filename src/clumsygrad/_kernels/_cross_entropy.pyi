# Type stub of a compiled module (Cython). Signatures match the pure twins in clumsygrad._kernels.pure
# (tests/test_stubs.py checks that); the behaviour is documented there and in the .pyx docstrings.
from typing import Optional

import numpy as np
import numpy.typing as npt

def cross_entropy_backward(logits: npt.ArrayLike, target: npt.ArrayLike, grad: npt.ArrayLike, reduction: str) -> np.ndarray: ...
def cross_entropy_forward(logits: npt.ArrayLike, labels: npt.ArrayLike, reduction: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None: ...
def probs_minus_onehot(
    probs: npt.ArrayLike, labels: npt.ArrayLike, grad: npt.ArrayLike, reduction: str, out: Optional[np.ndarray] = None
) -> np.ndarray: ...
