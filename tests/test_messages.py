"""The error messages of clumsygrad 0.2.x and 1.0.0, verbatim, as users' tests pin them.

Each case holds the old text exactly as 0.2.1 or 1.0.0 raised it and matches it, escaped, at the
start of the message (``pytest.raises(match="^" + re.escape(old))``): this project may add detail
after it, never change it.  0.2.1's "Right operand must be a Tensor for matrix multiplication." and
1.0.0's "Right operand must be a Tensor, got list" cannot both hold; the 1.0.0 text is kept and
0.2.1's shared start is pinned.  0.2.x's "Matrix multiplication requires at least 2D tensors." is
gone by design: 1-D operands follow NumPy's matmul rules now.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from clumsygrad import Tensor, TensorType
from clumsygrad.gradcheck import check_gradient
from clumsygrad.loss import mae_loss, mse_loss
from clumsygrad.math import sum as cg_sum
from clumsygrad.optimizer import Optimizer


def _param(values):
    return Tensor(values, TensorType.PARAMETER)


def _reshape_mismatch(ids):
    Tensor(np.zeros((2, 3))).reshape((4, 2))


def _mse_shapes(ids):
    mse_loss(_param([1.0, 2.0, 3.0]), Tensor([1.0, 2.0]))


def _mae_shapes(ids):
    mae_loss(_param([1.0, 2.0, 3.0]), Tensor([1.0, 2.0]))


def _seed_shape(ids):
    (_param([1.0, 2.0, 3.0]) * 2.0).backward(np.ones(2))


def _optimizer_step(ids):
    Optimizer([_param([1.0])]).step()


def _backward_without_grad(ids):
    (Tensor([1.0]) * 2.0).backward()


def _no_graph(ids):
    y = _param([1.0]) * 2.0
    y.backward()
    y.backward()


def _implicit_scalar(ids):
    (_param([1.0, 2.0]) * 2.0).backward()


def _broadcast(ids):
    _param(np.zeros((2, 3))) + _param(np.zeros((4,)))


def _matmul_right_operand(ids):
    _param(np.zeros((2, 2))) @ [[1.0, 0.0], [0.0, 1.0]]


def _matmul_not_aligned(ids):
    _param(np.zeros((2, 3))) @ _param(np.zeros((4, 5)))


def _engine_shape_mismatch(ids):
    x = _param([1.0, 2.0])
    node = Tensor._create_node(x.data * 2, lambda t, g: (np.ones(3),), (x,))
    total = cg_sum(node)
    ids.update(node=node._id, x=x._id)
    total.backward()


def _check_gradient_of_a_constant(ids):
    check_gradient(lambda t: t * 2.0, Tensor([1.0, 2.0]))


def _check_gradient_ignoring_its_input(ids):
    check_gradient(lambda t: Tensor([3.0]), _param([1.0, 2.0]))


def _check_gradient_not_populated(ids):
    other = _param([3.0])
    check_gradient(lambda t: other * 2.0, _param([1.0, 2.0]))


CASES = [
    # (release, exception, old message, what raises it)
    ("0.2.1", ValueError, "New shape must have the same number of elements as the original shape.", _reshape_mismatch),
    ("0.2.1", ValueError, "Predicted and target tensors must have the same shape for MSE loss.", _mse_shapes),
    ("0.2.1", ValueError, "Predicted and target tensors must have the same shape for MAE loss.", _mae_shapes),
    ("0.2.1", ValueError, "Gradient shape (2,) does not match tensor shape (3,)", _seed_shape),
    ("0.2.1", NotImplementedError, "Optimizer subclasses must implement the step method.", _optimizer_step),
    ("0.2.1", RuntimeError, "Tensor does not require gradients", _backward_without_grad),
    ("0.2.1", RuntimeError, "No backward graph exists for this tensor", _no_graph),
    ("0.2.1", RuntimeError, "Gradient can only be implicitly created for scalar outputs", _implicit_scalar),
    ("0.2.1", ValueError, "Cannot broadcast shapes (2, 3) and (4,)", _broadcast),
    ("0.2.1", TypeError, "Right operand must be a Tensor", _matmul_right_operand),
    ("1.0.0", TypeError, "Right operand must be a Tensor, got list", _matmul_right_operand),
    ("0.2.1", ValueError, "Matrix shapes not aligned: (2, 3) @ (4, 5)", _matmul_not_aligned),
    ("1.0.0", RuntimeError, "Error in backward pass at tensor {node}: Gradient shape mismatch for tensor {x}",
     _engine_shape_mismatch),
    ("1.0.0", ValueError, "tensor must require gradients (use TensorType.PARAMETER) to check its gradient",
     _check_gradient_of_a_constant),
    ("1.0.0", RuntimeError, "Tensor does not require gradients", _check_gradient_ignoring_its_input),
    ("1.0.0", ValueError, "backward() did not populate a gradient for tensor", _check_gradient_not_populated),
]


@pytest.mark.parametrize(
    "release,exception,old,action", CASES, ids=[f"{c[0]}-{c[3].__name__.strip('_')}" for c in CASES]
)
def test_old_message_starts_the_new_one(release, exception, old, action):
    ids = {}  # tensor ids the action names (assigned at run time)
    with pytest.raises(exception) as info:
        action(ids)
    assert re.match("^" + re.escape(old.format(**ids)), str(info.value)), str(info.value)


def test_engine_message_keeps_the_shapes_after_the_old_text():
    message = ""
    try:
        _engine_shape_mismatch({})
    except RuntimeError as exc:
        message = str(exc)
    assert "(3,)" in message and "(2,)" in message
