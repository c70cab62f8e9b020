# Type stub of a compiled module (Cython). Signatures match the pure twins in clumsygrad._kernels.pure
# (tests/test_stubs.py checks that); the behaviour is documented there and in the .pyx docstrings.
from typing import Optional, Sequence, SupportsIndex

import numpy as np
import numpy.typing as npt

_Ints = Sequence[SupportsIndex]

def conv2d_forward(x: npt.ArrayLike, weight: npt.ArrayLike, stride: _Ints, padding: _Ints, dilation: _Ints,
                   groups: SupportsIndex, bias: Optional[npt.ArrayLike] = None) -> np.ndarray: ...
def conv2d_backward_input(grad: npt.ArrayLike, weight: npt.ArrayLike, input_shape: _Ints, stride: _Ints,
                          padding: _Ints, dilation: _Ints, groups: SupportsIndex) -> np.ndarray: ...
def conv2d_backward_weight(grad: npt.ArrayLike, x: npt.ArrayLike, weight_shape: _Ints, stride: _Ints,
                           padding: _Ints, dilation: _Ints, groups: SupportsIndex) -> np.ndarray: ...
def conv2d_backward_bias(grad: npt.ArrayLike) -> np.ndarray: ...

# private knobs of the direct loops (tests, timing)
def _direct_limit(k: Optional[int] = None) -> int: ...
def _direct_isa(isa: Optional[int] = None) -> int: ...
