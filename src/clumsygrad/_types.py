"""The lowest layer: the roles a tensor plays in the graph (imported by the graph twins and ``tensor``)."""
from enum import IntEnum

__all__ = ["TensorType"]


class TensorType(IntEnum):
    """The role of a tensor in the graph.

    INPUT tensors are constants (no gradient), PARAMETER tensors are trained and receive
    gradients, INTERMEDIATE tensors are results of operations on the other two.
    """

    INPUT = 0
    PARAMETER = 1
    INTERMEDIATE = 2
