"""The 0.2.x compatibility names, gathered in one place: they stay importable from where 0.2.x had
them (``clumsygrad.tensor``, ``Tensor._create_node``...), and nothing new is built on them.

* ``Tensor._id_counter`` (read and assign) through the metaclass ``_TensorMeta``;
* ``Tensor._create_node(data, grad_fn, parents, extra=None)``, ``Tensor._broadcast_shapes``,
  ``Tensor._can_broadcast`` (the ``_Compat021`` base of ``Tensor``);
* ``TensorUtils`` (``get_parameters``, ``count_by_type``);
* ``clumsygrad.grad._reduce_gradient_to_shape`` lives in ``grad`` (a module-level name there).
"""
from __future__ import annotations

import operator
from typing import Dict

from . import _backend
from ._types import TensorType

__all__ = ["TensorUtils"]

_graph = _backend.graph


class _TensorMeta(type):
    """Gives ``Tensor._id_counter`` (read and assign, as in 0.2.x) over the graph's id counter."""

    @property
    def _id_counter(cls) -> int:
        return _graph.get_id_counter()

    @_id_counter.setter
    def _id_counter(cls, value: int) -> None:
        _graph.set_id_counter(operator.index(value))


def _broadcast_shapes(shape1: tuple, shape2: tuple) -> tuple:
    """The broadcast of two shapes; ``ValueError("Cannot broadcast shapes ...")`` if there is none."""
    n = max(len(shape1), len(shape2))
    padded1 = (1,) * (n - len(shape1)) + tuple(shape1)
    padded2 = (1,) * (n - len(shape2)) + tuple(shape2)
    result = []
    for d1, d2 in zip(padded1, padded2):
        if d1 != d2 and d1 != 1 and d2 != 1:
            raise ValueError(f"Cannot broadcast shapes {tuple(shape1)} and {tuple(shape2)}")
        result.append(d2 if d1 == 1 else d1)
    return tuple(result)


class _Compat021:
    """The static helpers 0.2.x code calls on ``Tensor``."""

    __slots__ = ()

    _create_node = staticmethod(_graph.new_node)
    _broadcast_shapes = staticmethod(_broadcast_shapes)

    @staticmethod
    def _can_broadcast(shape1: tuple, shape2: tuple) -> bool:
        try:
            _broadcast_shapes(shape1, shape2)
        except ValueError:
            return False
        return True


class TensorUtils:
    """Queries over the graph reachable from a tensor."""

    @staticmethod
    def _reachable(tensor):
        """Every tensor reachable from ``tensor`` through parents, each once."""
        seen = {tensor}
        stack = [tensor]
        while stack:
            current = stack.pop()
            yield current
            for parent in current._parents:
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)

    @staticmethod
    def get_parameters(tensor) -> list:
        """The PARAMETER tensors reachable from ``tensor``."""
        return [t for t in TensorUtils._reachable(tensor) if t._tensor_type == TensorType.PARAMETER]

    @staticmethod
    def count_by_type(tensor) -> Dict[TensorType, int]:
        """How many reachable tensors there are of each type."""
        counts = {kind: 0 for kind in TensorType}
        for t in TensorUtils._reachable(tensor):
            counts[t._tensor_type] += 1
        return counts
