# Type stub of a compiled module (Cython). Signatures match the pure twins in clumsygrad._kernels.pure
# (tests/test_stubs.py checks that); the behaviour is documented there and in the .pyx docstrings.
from typing import Optional, Tuple

import numpy as np
import numpy.typing as npt

def layer_norm_backward(grad: npt.ArrayLike, xhat: npt.ArrayLike, rstd: npt.ArrayLike,
                        weight: Optional[npt.ArrayLike]) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]: ...
def batch_norm_backward(grad: npt.ArrayLike, xhat: npt.ArrayLike, rstd: npt.ArrayLike,
                        weight: Optional[npt.ArrayLike]) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]: ...
