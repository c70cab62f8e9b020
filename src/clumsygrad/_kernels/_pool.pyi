# Type stub of a compiled module (Cython). Signatures match the pure twins in clumsygrad._kernels.pure
# (tests/test_stubs.py checks that); the behaviour is documented there and in the .pyx docstrings.
from typing import Optional, Sequence, SupportsIndex, Tuple

import numpy as np
import numpy.typing as npt

_Ints = Sequence[SupportsIndex]

def max_pool2d_forward(x: npt.ArrayLike, kernel_size: _Ints, stride: _Ints, padding: _Ints,
                       dilation: _Ints, ceil_mode: bool = False) -> Tuple[np.ndarray, np.ndarray]: ...
def max_pool2d_backward(grad: npt.ArrayLike, indices: npt.ArrayLike, input_shape: _Ints) -> np.ndarray: ...
def avg_pool2d_forward(x: npt.ArrayLike, kernel_size: _Ints, stride: _Ints, padding: _Ints,
                       count_include_pad: bool, ceil_mode: bool = False,
                       divisor_override: Optional[int] = None) -> np.ndarray: ...
def avg_pool2d_backward(grad: npt.ArrayLike, input_shape: _Ints, kernel_size: _Ints, stride: _Ints,
                        padding: _Ints, count_include_pad: bool, ceil_mode: bool = False,
                        divisor_override: Optional[int] = None) -> np.ndarray: ...
