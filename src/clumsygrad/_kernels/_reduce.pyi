# Type stub of a compiled module (Cython). Signatures match the pure twins in clumsygrad._kernels.pure
# (tests/test_stubs.py checks that); the behaviour is documented there and in the .pyx docstrings.
from typing import Optional, Sequence, SupportsIndex, Tuple, Union

import numpy as np
import numpy.typing as npt

_Shape = Union[SupportsIndex, Sequence[SupportsIndex]]
_Axis = Union[None, SupportsIndex, Sequence[SupportsIndex]]

def reduce_to_shape(grad: npt.ArrayLike, shape: _Shape) -> np.ndarray: ...
def mul_reduce_to_shape(grad: npt.ArrayLike, other: npt.ArrayLike, shape: _Shape) -> np.ndarray: ...
def expand_to_shape(
    grad: npt.ArrayLike, input_shape: _Shape, axis: _Axis, keepdims: bool, scale: float,
    out: Optional[np.ndarray] = None,
) -> np.ndarray: ...
