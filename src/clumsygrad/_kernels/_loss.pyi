# Type stub of a compiled module (Cython). Signatures match the pure twins in clumsygrad._kernels.pure
# (tests/test_stubs.py checks that); the behaviour is documented there and in the .pyx docstrings.
from typing import Optional, Sequence, SupportsIndex, Tuple, Union

import numpy as np
import numpy.typing as npt

_Shape = Union[SupportsIndex, Sequence[SupportsIndex]]
_Axis = Union[None, SupportsIndex, Sequence[SupportsIndex]]

def mse_forward(pred: npt.ArrayLike, target: npt.ArrayLike) -> np.ndarray: ...
def mse_backward(
    pred: npt.ArrayLike,
    target: npt.ArrayLike,
    grad: npt.ArrayLike,
    need_pred: bool = True,
    need_target: bool = True,
) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]: ...
