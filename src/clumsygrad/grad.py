"""Backward functions: one per recorded operation, derived from the op registry.

Each has the signature ``fn(tensor, grad) -> tuple`` where ``tensor`` is the result of the
forward operation (its ``_parents``, ``_data`` and ``_extra`` describe it) and ``grad`` is the
gradient of the loss with respect to that result.  The returned tuple holds one gradient per
parent, shaped like that parent.  ``grad`` may be float32 or float64; results follow NumPy's
promotion.  Every function also takes ``needs=(bool, ...)`` (one flag per parent): the engine
passes it when some parent is a constant, and the function returns None in its place.

The formulas themselves live with their ops (``clumsygrad.math``, ``activation``, ``loss``,
``shape``, ``selection``), one entry each in :mod:`clumsygrad._registry`; this module gives
them the names 0.2.x and 1.0.0 users call (``clumsygrad.grad.exp_backward``).
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from . import _backend
from . import activation as _activation  # noqa: F401  (each import registers its ops)
from . import loss as _loss  # noqa: F401
from . import math as _math  # noqa: F401
from . import selection as _selection  # noqa: F401
from . import shape as _shape  # noqa: F401
from . import linalg as _linalg  # noqa: F401
from ._registry import OPS

GradientTuple = Tuple[np.ndarray, ...]
"""One gradient per parent tensor."""


def skips_unneeded(fn):
    """Mark a backward function that takes ``needs=(bool, ...)`` (one flag per parent).

    The engine passes ``needs`` when some parent is a constant; the function returns None in
    that parent's place instead of computing a gradient nobody will read.
    """
    fn.skips_unneeded = True
    return fn


def _reduce_gradient_to_shape(grad: np.ndarray, target_shape: tuple) -> np.ndarray:
    """Sum ``grad`` over the axes broadcasting added or stretched so that it has ``target_shape``.

    (0.2.x's name, kept importable.)
    """
    return _backend.active.reduce_to_shape(grad, target_shape)


# The 29 backward functions of 0.2.x, then those of 1.0.0/1.1.0, then every other op's.
_BACKWARDS = {op.backward.__name__: op.backward for op in OPS.values()}
globals().update(_BACKWARDS)

__all__ = ["GradientTuple"] + sorted(_BACKWARDS)
