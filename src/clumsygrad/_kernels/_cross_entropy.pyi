# Type stub of a compiled module (Cython). Signatures match the pure twins in clumsygrad._kernels.pure
# (tests/test_stubs.py checks that); the behaviour is documented there and in the .pyx docstrings.
import numpy as np
import numpy.typing as npt

def cross_entropy_backward(logits: npt.ArrayLike, target: npt.ArrayLike, grad: npt.ArrayLike, reduction: str) -> np.ndarray: ...
