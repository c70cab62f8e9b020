"""The compiled kernels under the names and signatures of ``pure``.

Each name is a Cython ``def`` function (a ``cython_function_or_method``), re-exported as is:
no Python wrapper sits between a caller and the compiled code.

==========================  ===============================
``reduce_to_shape``         ``_reduce.pyx``
``mul_reduce_to_shape``     ``_reduce.pyx``
``expand_to_shape``         ``_reduce.pyx``
``softmax_backward``        ``_softmax.pyx``
``softmax_forward``         ``_softmax.pyx``
``matmul_backward``         ``_matmul.pyx``
``mse_forward``             ``_loss.pyx``
``mse_backward``            ``_loss.pyx``
``sigmoid_forward``         ``_activation.pyx``
``sum_forward``             ``_reduce.pyx``
``mean_forward``            ``_reduce.pyx``
``relu_forward``            ``_elementwise.pyx``
``relu_backward``           ``_elementwise.pyx``
``gelu_forward``            ``_activation.pyx``
``gelu_backward``           ``_activation.pyx``
``log_softmax_forward``     ``_activation.pyx``
``log_softmax_backward``    ``_activation.pyx``
``sgd_update``              ``_elementwise.pyx`` (in place)
``scatter_add``             ``_scatter.pyx``
``cross_entropy_backward``  ``_cross_entropy.pyx``
``cross_entropy_forward``   ``_cross_entropy.pyx``
``probs_minus_onehot``      ``_cross_entropy.pyx``
``adam_update``             ``_optim.pyx`` (in place)
``conv2d_forward``          ``_conv.pyx``
``conv2d_backward_input``   ``_conv.pyx``
``conv2d_backward_weight``  ``_conv.pyx``
``conv2d_backward_bias``    ``_conv.pyx``
``max_pool2d_forward``      ``_pool.pyx``
``max_pool2d_backward``     ``_pool.pyx``
``avg_pool2d_forward``      ``_pool.pyx``
``avg_pool2d_backward``     ``_pool.pyx``
``layer_norm_backward``     ``_norm.pyx``
``batch_norm_backward``     ``_norm.pyx``
==========================  ===============================

``_shapes.pyx`` holds what they share (the dtype rule, the prologue, the float32/float64
dispatch, axes, the loop plan); the interface and its rules are in ``docs/kernels.md``.

Importing this module raises ``ImportError`` when the extensions were never built; the
backend switch (``clumsygrad._backend``) then falls back to ``pure``.
"""
from ._activation import gelu_backward, gelu_forward, log_softmax_backward, log_softmax_forward, sigmoid_forward
from ._conv import conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight, conv2d_forward
from ._cross_entropy import cross_entropy_backward, cross_entropy_forward, probs_minus_onehot
from ._elementwise import relu_backward, relu_forward, sgd_update
from ._loss import mse_backward, mse_forward
from ._matmul import matmul_backward
from ._norm import batch_norm_backward, layer_norm_backward
from ._optim import adam_update
from ._pool import avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward
from ._reduce import expand_to_shape, mean_forward, mul_reduce_to_shape, reduce_to_shape, sum_forward
from ._scatter import scatter_add
from ._softmax import softmax_backward, softmax_forward

__all__ = [
    "reduce_to_shape",
    "mul_reduce_to_shape",
    "expand_to_shape",
    "softmax_backward",
    "matmul_backward",
    "softmax_forward",
    "mse_forward",
    "mse_backward",
    "sigmoid_forward",
    "sum_forward",
    "mean_forward",
    "relu_forward",
    "relu_backward",
    "gelu_forward",
    "gelu_backward",
    "log_softmax_forward",
    "log_softmax_backward",
    "sgd_update",
    "scatter_add",
    "cross_entropy_backward",
    "cross_entropy_forward",
    "probs_minus_onehot",
    "adam_update",
    "conv2d_forward",
    "conv2d_backward_input",
    "conv2d_backward_weight",
    "conv2d_backward_bias",
    "max_pool2d_forward",
    "max_pool2d_backward",
    "avg_pool2d_forward",
    "avg_pool2d_backward",
    "layer_norm_backward",
    "batch_norm_backward",
]
