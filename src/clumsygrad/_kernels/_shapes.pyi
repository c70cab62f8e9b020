# Type stub of a compiled module (Cython). Signatures match the pure twins in clumsygrad._kernels.pure
# (tests/test_stubs.py checks that); the behaviour is documented there and in the .pyx docstrings.
from typing import Optional, Sequence, SupportsIndex, Tuple, Union

import numpy as np
import numpy.typing as npt

_Shape = Union[SupportsIndex, Sequence[SupportsIndex]]
_Axis = Union[None, SupportsIndex, Sequence[SupportsIndex]]

def result_dtype(*arrays: np.ndarray) -> np.dtype: ...
def as_shape(shape: _Shape) -> Tuple[int, ...]: ...
def normalize_axes(axis: _Axis, ndim: int) -> Tuple[int, ...]: ...
def reduction_axes(grad_shape: Sequence[int], shape: Sequence[int]) -> Tuple[int, ...]: ...
