# Type stub of a compiled module (Cython). Signatures match the pure twins in clumsygrad._kernels.pure
# (tests/test_stubs.py checks that); the behaviour is documented there and in the .pyx docstrings.
from typing import Optional, Sequence, SupportsIndex, Tuple, Union

import numpy as np
import numpy.typing as npt

_Shape = Union[SupportsIndex, Sequence[SupportsIndex]]
_Axis = Union[None, SupportsIndex, Sequence[SupportsIndex]]

def softmax_forward(x: npt.ArrayLike, axis: SupportsIndex) -> np.ndarray: ...
def softmax_backward(
    s: npt.ArrayLike, grad: npt.ArrayLike, axis: SupportsIndex, out: Optional[np.ndarray] = None
) -> np.ndarray: ...
