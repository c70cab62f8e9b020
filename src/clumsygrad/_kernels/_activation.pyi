# Type stub of a compiled module (Cython). Signatures match the pure twins in clumsygrad._kernels.pure
# (tests/test_stubs.py checks that); the behaviour is documented there and in the .pyx docstrings.
from typing import Optional, SupportsIndex

import numpy as np
import numpy.typing as npt

def gelu_forward(x: npt.ArrayLike, approximate: str = "none") -> np.ndarray: ...
def gelu_backward(
    x: npt.ArrayLike, grad: npt.ArrayLike, approximate: str = "none", out: Optional[np.ndarray] = None
) -> np.ndarray: ...
def log_softmax_forward(x: npt.ArrayLike, axis: SupportsIndex) -> np.ndarray: ...
def log_softmax_backward(
    y: npt.ArrayLike, grad: npt.ArrayLike, axis: SupportsIndex, out: Optional[np.ndarray] = None
) -> np.ndarray: ...
