"""Bad input to a kernel: both backends raise the same exception type, with a message naming
the offending shapes or dtype, and the compiled kernels do so before touching any memory."""
import re

import numpy as np
import pytest

from clumsygrad._kernels import native, pure

pytestmark = pytest.mark.both_backends

MODULES = pytest.mark.parametrize("module", [native, pure], ids=["native", "pure"])


def f32(*shape):
    return np.ones(shape, dtype=np.float32)


def shape_re(*shapes):
    """A regex matching the shapes in order, e.g. ``(2, 3)`` then ``(4,)``, anywhere in the text."""
    return ".*".join(re.escape(str(tuple(s))) for s in shapes)


# (kernel, args, exception, message pattern)
CASES = {
    # ------------------------------------------------------------------ reduce_to_shape
    "reduce: target does not broadcast": (
        "reduce_to_shape", (f32(2, 3), (4,)), ValueError,
        "cannot reduce a gradient of shape " + shape_re((2, 3), (4,))),
    "reduce: target has more dims than grad": (
        "reduce_to_shape", (f32(2, 3), (1, 2, 3)), ValueError, shape_re((2, 3), (1, 2, 3))),
    "reduce: stretched axis is not 1": (
        "reduce_to_shape", (f32(4, 3), (2, 3)), ValueError, shape_re((4, 3), (2, 3))),
    "reduce: zero-size grad to a non-broadcasting target": (
        "reduce_to_shape", (f32(0, 3), (2, 3)), ValueError, shape_re((0, 3), (2, 3))),
    "reduce: negative dimension": (
        "reduce_to_shape", (f32(2, 3), (-1, 3)), ValueError, r"shape \(-1, 3\) has a negative dimension"),
    "reduce: float shape": (
        "reduce_to_shape", (f32(2, 3), (2.0, 3)), TypeError, "float"),
    "reduce: complex dtype": (
        "reduce_to_shape", (np.ones((2, 3), np.complex64), (3,)), TypeError,
        "real numeric arrays, got dtype complex64"),
    "reduce: object dtype": (
        "reduce_to_shape", (np.array([1, None], dtype=object), (2,)), TypeError, "got dtype object"),
    "reduce: string dtype": (
        "reduce_to_shape", (np.array(["a", "b"]), (2,)), TypeError, "got dtype <U1"),
    # ------------------------------------------------------------------ mul_reduce_to_shape
    "mul_reduce: other does not broadcast to grad": (
        "mul_reduce_to_shape", (f32(2, 3), f32(2), (3,)), ValueError,
        "cannot reduce a gradient of shape " + shape_re((2, 3), (2,))),
    "mul_reduce: other wider than grad": (
        "mul_reduce_to_shape", (f32(2, 3), f32(4, 2, 3), (3,)), ValueError, shape_re((2, 3), (4, 2, 3))),
    "mul_reduce: target does not broadcast": (
        "mul_reduce_to_shape", (f32(2, 3), f32(3), (2, 1, 3)), ValueError, shape_re((2, 3), (2, 1, 3))),
    "mul_reduce: complex other": (
        "mul_reduce_to_shape", (f32(2, 3), np.ones(3, np.complex128), (3,)), TypeError,
        "got dtype complex128"),
    "mul_reduce: datetime grad": (
        "mul_reduce_to_shape", (np.zeros(3, "datetime64[s]"), f32(3), (3,)), TypeError,
        r"got dtype datetime64\[s\]"),
    # ------------------------------------------------------------------ expand_to_shape
    "expand: grad does not fit the reduction": (
        "expand_to_shape", (f32(4), (2, 3), 0, False, 1.0), ValueError,
        r"gradient of shape \(4,\) does not fit a reduction of \(2, 3\) over axis 0 "
        r"\(keepdims=False\), which has shape \(3,\)"),
    "expand: keepdims shape expected": (
        "expand_to_shape", (f32(3), (2, 3), 0, True, 1.0), ValueError,
        r"\(3,\) does not fit a reduction of \(2, 3\) over axis 0 \(keepdims=True\), "
        r"which has shape \(1, 3\)"),
    "expand: grad of a full sum is 0-d": (
        "expand_to_shape", (f32(1), (2, 3), None, False, 1.0), ValueError,
        r"\(1,\) does not fit a reduction of \(2, 3\) over axis None.*which has shape \(\)"),
    "expand: tuple axis in the message": (
        "expand_to_shape", (f32(2, 3), (2, 3, 4), (0, -1), False, 1.0), ValueError,
        r"\(2, 3\) does not fit a reduction of \(2, 3, 4\) over axis \(0, -1\).*shape \(3,\)"),
    "expand: axis out of range": (
        "expand_to_shape", (f32(3), (2, 3), 2, False, 1.0), ValueError,
        "axis 2 is out of bounds for an array of dimension 2"),
    "expand: negative axis out of range": (
        "expand_to_shape", (f32(3), (2, 3), (-3,), False, 1.0), ValueError,
        "axis -3 is out of bounds for an array of dimension 2"),
    "expand: repeated axis": (
        "expand_to_shape", (f32(), (2, 3), (1, -1), False, 1.0), ValueError,
        r"repeated axis in \(1, -1\)"),
    "expand: float axis": (
        "expand_to_shape", (f32(3), (2, 3), 0.0, False, 1.0), TypeError, "float"),
    "expand: complex grad": (
        "expand_to_shape", (np.ones(3, np.complex64), (2, 3), 0, False, 1.0), TypeError,
        "got dtype complex64"),
    "expand: negative input dimension": (
        "expand_to_shape", (f32(3), (-2, 3), 0, False, 1.0), ValueError, "negative dimension"),
    # ------------------------------------------------------------------ softmax_backward
    "softmax: shapes differ": (
        "softmax_backward", (f32(2, 3), f32(3, 2), -1), ValueError,
        "softmax_backward needs the output and gradient in one shape, got " + shape_re((2, 3), (3, 2))),
    "softmax: ndim differs": (
        "softmax_backward", (f32(2, 3), f32(1, 2, 3), -1), ValueError, shape_re((2, 3), (1, 2, 3))),
    "softmax: axis out of range": (
        "softmax_backward", (f32(2, 3), f32(2, 3), 2), ValueError,
        "axis 2 is out of bounds for an array of dimension 2"),
    "softmax: 0-d axis out of range": (
        "softmax_backward", (f32(), f32(), 1), ValueError,
        "axis 1 is out of bounds for an array of dimension 1"),
    "softmax: axis None": (
        "softmax_backward", (f32(2, 3), f32(2, 3), None), TypeError, "NoneType"),
    "softmax: complex grad": (
        "softmax_backward", (f32(2, 3), np.ones((2, 3), np.complex64), -1), TypeError,
        "got dtype complex64"),
    # ------------------------------------------------------------------ matmul_backward
    "matmul: 1-d operand": (
        "matmul_backward", (f32(3), f32(3, 2), f32(2)), ValueError,
        "at least 2 dimensions, got " + shape_re((3,), (3, 2))),
    "matmul: inner sizes differ": (
        "matmul_backward", (f32(2, 3), f32(4, 2), f32(2, 2)), ValueError,
        "Matrix shapes not aligned: " + shape_re((2, 3), (4, 2))),
    "matmul: batch does not broadcast": (
        "matmul_backward", (f32(2, 2, 3), f32(3, 3, 4), f32(3, 2, 4)), ValueError,
        "batch dimensions do not broadcast: " + shape_re((2, 2, 3), (3, 3, 4))),
    "matmul: grad has the wrong shape": (
        "matmul_backward", (f32(2, 3), f32(3, 4), f32(2, 3)), ValueError,
        r"gradient of shape \(2, 3\) does not fit \(2, 3\) @ \(3, 4\), which has shape \(2, 4\)"),
    "matmul: grad misses the batch": (
        "matmul_backward", (f32(5, 2, 3), f32(3, 4), f32(2, 4)), ValueError,
        r"gradient of shape \(2, 4\) does not fit \(5, 2, 3\) @ \(3, 4\), which has shape \(5, 2, 4\)"),
    "matmul: complex operand": (
        "matmul_backward", (f32(2, 3), np.ones((3, 4), np.complex64), f32(2, 4)), TypeError,
        "got dtype complex64"),
    # ------------------------------------------------------------------ softmax_forward
    "softmax_forward: axis out of range": (
        "softmax_forward", (f32(2, 3), 2), ValueError,
        "axis 2 is out of bounds for an array of dimension 2"),
    "softmax_forward: negative axis out of range": (
        "softmax_forward", (f32(2, 3), -3), ValueError,
        "axis -3 is out of bounds for an array of dimension 2"),
    "softmax_forward: 0-d axis out of range": (
        "softmax_forward", (f32(), 1), ValueError,
        "axis 1 is out of bounds for an array of dimension 1"),
    "softmax_forward: empty axis": (
        "softmax_forward", (f32(2, 0, 3), 1), ValueError,
        r"softmax_forward over axis 1 of shape \(2, 0, 3\), which has no elements"),
    "softmax_forward: axis None": (
        "softmax_forward", (f32(2, 3), None), TypeError, "NoneType"),
    "softmax_forward: float axis": (
        "softmax_forward", (f32(2, 3), 1.0), TypeError, "float"),
    "softmax_forward: complex input": (
        "softmax_forward", (np.ones((2, 3), np.complex64), -1), TypeError, "got dtype complex64"),
    # ------------------------------------------------------------------ mse_forward / mse_backward
    "mse_forward: shapes differ": (
        "mse_forward", (f32(2, 3), f32(3, 2)), ValueError,
        "Predicted and target tensors must have the same shape for MSE loss. Got " + shape_re((2, 3), (3, 2))),
    "mse_forward: broadcastable is not enough": (
        "mse_forward", (f32(2, 3), f32(3)), ValueError, shape_re((2, 3), (3,))),
    "mse_forward: complex target": (
        "mse_forward", (f32(2), np.ones(2, np.complex128)), TypeError, "got dtype complex128"),
    "mse_backward: shapes differ": (
        "mse_backward", (f32(2, 3), f32(1, 2, 3), f32()), ValueError,
        "mse_backward needs the prediction and target in one shape, got " + shape_re((2, 3), (1, 2, 3))),
    "mse_backward: grad has more than one element": (
        "mse_backward", (f32(2, 3), f32(2, 3), f32(2)), ValueError,
        r"mse_backward needs a one-element gradient \(the loss is a scalar\), got shape \(2,\)"),
    "mse_backward: empty grad": (
        "mse_backward", (f32(2, 3), f32(2, 3), f32(0)), ValueError, r"got shape \(0,\)"),
    "mse_backward: complex grad": (
        "mse_backward", (f32(2, 3), f32(2, 3), np.ones((), np.complex64)), TypeError,
        "got dtype complex64"),
    # ------------------------------------------------------------------ relu_backward
    "relu_backward: shapes differ": (
        "relu_backward", (f32(2, 3), f32(3, 2)), ValueError,
        "relu_backward needs the output and gradient in one shape, got " + shape_re((2, 3), (3, 2))),
    "relu_backward: 0-d against 1-element": (
        "relu_backward", (f32(), f32(1)), ValueError, shape_re((), (1,))),
    "relu_backward: object grad": (
        "relu_backward", (f32(2), np.array([1, None], dtype=object)), TypeError, "got dtype object"),
    # ------------------------------------------------------------------ sgd_update
    "sgd_update: shapes differ": (
        "sgd_update", (f32(2, 3), f32(3), 0.1), ValueError,
        "sgd_update needs the parameter and gradient in one shape, got " + shape_re((2, 3), (3,))),
    "sgd_update: data is not an array": (
        "sgd_update", ([1.0, 2.0], f32(2), 0.1), TypeError,
        "sgd_update updates an ndarray in place, got list"),
}


@MODULES
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_raises_with_a_message_naming_it(module, case):
    kernel, args, exc, pattern = CASES[case]
    with pytest.raises(exc, match=pattern):
        getattr(module, kernel)(*args)


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_both_backends_raise_the_same_exception(case):
    kernel, args, _, _ = CASES[case]
    errors = []
    for module in (native, pure):
        with pytest.raises(Exception) as info:
            getattr(module, kernel)(*args)
        errors.append(info.value)
    assert type(errors[0]) is type(errors[1])
    assert str(errors[0]) == str(errors[1])


@MODULES
def test_dtype_is_checked_before_shapes(module):
    # a complex gradient of the wrong shape is a TypeError in both (pure checks dtypes first)
    with pytest.raises(TypeError):
        module.reduce_to_shape(np.ones((2, 3), np.complex64), (4,))
    with pytest.raises(TypeError):
        module.softmax_backward(np.ones(2, np.complex64), f32(3), 0)


def test_native_rejects_before_writing_anything():
    # the output of a failed call is never allocated and the inputs are untouched
    g = np.arange(6, dtype=np.float32).reshape(2, 3)
    before = g.copy()
    for call in (
        lambda: native.reduce_to_shape(g, (2, 2)),
        lambda: native.mul_reduce_to_shape(g, g[:, :2], (3,)),
        lambda: native.expand_to_shape(g, (2, 3, 4), 0, False, 1.0),
        lambda: native.softmax_backward(g, g[:1], 0),
        lambda: native.matmul_backward(g, g, g),
        lambda: native.softmax_forward(g[:, :0], 1),
        lambda: native.mse_forward(g, g[:1]),
        lambda: native.mse_backward(g, g, g),
        lambda: native.relu_backward(g, g.T),
        lambda: native.sgd_update(g, g[:1], 0.5),
    ):
        with pytest.raises(ValueError):
            call()
    np.testing.assert_array_equal(g, before)
