# Type stub of a compiled module (Cython). Signatures match the pure twins in clumsygrad._kernels.pure
# (tests/test_stubs.py checks that); the behaviour is documented there and in the .pyx docstrings.
import numpy as np
import numpy.typing as npt

def adam_update(
    param: np.ndarray,
    grad: npt.ArrayLike,
    m: np.ndarray,
    v: np.ndarray,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled: bool,
    step: int,
) -> None:
    """One Adam/AdamW step, in place on ``param``, ``m`` and ``v``."""
