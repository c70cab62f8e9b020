"""The compiled kernels under the names and signatures of ``pure``.

Each name is a Cython ``def`` function (a ``cython_function_or_method``), re-exported as is:
no Python wrapper sits between a caller and the compiled code.

==========================  ===============================
``reduce_to_shape``         ``_reduce.pyx``
``mul_reduce_to_shape``     ``_reduce.pyx``
``expand_to_shape``         ``_reduce.pyx``
``softmax_backward``        ``_softmax.pyx``
``softmax_forward``         ``_softmax.pyx``
``mse_forward``             ``_loss.pyx``
``mse_backward``            ``_loss.pyx``
``relu_backward``           ``_elementwise.pyx``
``sgd_update``              ``_elementwise.pyx`` (in place)
``matmul_backward``         ``_matmul.pyx``
``adam_update``             ``_optim.pyx`` (in place)
==========================  ===============================

Importing this module raises ``ImportError`` when the extensions were never built; the
backend switch (``clumsygrad._backend``) then falls back to ``pure``.
"""
from ._elementwise import relu_backward, sgd_update
from ._loss import mse_backward, mse_forward
from ._matmul import matmul_backward
from ._optim import adam_update
from ._reduce import expand_to_shape, mul_reduce_to_shape, reduce_to_shape
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
    "relu_backward",
    "sgd_update",
    "adam_update",
]

# Issue 9: the embedding-lookup backward and the cross-entropy backward.
from ._cross_entropy import cross_entropy_backward  # noqa: E402
from ._scatter import scatter_add  # noqa: E402

__all__ += ["scatter_add", "cross_entropy_backward"]

# Issue 16: convolution, pooling and normalisation kernels of clumsygrad.nn.
from ._conv import conv2d_backward_input, conv2d_backward_weight, conv2d_forward  # noqa: E402
from ._norm import batch_norm_backward, layer_norm_backward  # noqa: E402
from ._pool import (  # noqa: E402
    avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward,
)

__all__ += [
    "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight",
    "max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward",
    "layer_norm_backward", "batch_norm_backward",
]
