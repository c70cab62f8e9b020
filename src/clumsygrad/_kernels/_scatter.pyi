# Type stub of a compiled module (Cython). Signatures match the pure twins in clumsygrad._kernels.pure
# (tests/test_stubs.py checks that); the behaviour is documented there and in the .pyx docstrings.
from typing import Optional, Sequence, SupportsIndex, Union

import numpy as np
import numpy.typing as npt

_Shape = Union[SupportsIndex, Sequence[SupportsIndex]]

def scatter_add(
    grad: npt.ArrayLike, indices: npt.ArrayLike, shape: _Shape, out: Optional[np.ndarray] = None
) -> np.ndarray: ...
