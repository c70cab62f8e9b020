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
