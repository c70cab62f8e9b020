"""Utilities shared by the core test modules.

Expected gradients are computed here independently of clumsygrad: central finite
differences in float64 (``numeric_gradient``, and ``gradcheck``, the oracle built on it, which
the gradient tests use instead of ``clumsygrad.gradcheck``) or closed forms written in the tests.
"""
from __future__ import annotations

import itertools
import os
from typing import Callable, Iterable, Sequence

import numpy as np
from hypothesis import HealthCheck, settings

from clumsygrad.tensor import Tensor, TensorType

def compiled_node_in_use() -> bool:
    """Whether ``Tensor`` is built on the compiled node.  Only ``CLUMSYGRAD_BACKEND=python`` at
    import may select the pure node (then the compiled paths do not exist and comparisons run pure
    against pure); anywhere else a missing compiled graph fails."""
    from clumsygrad import _backend

    if _backend.graph.__name__ == "clumsygrad._graph.native":
        return True
    assert os.environ.get("CLUMSYGRAD_BACKEND", "").strip().lower() == "python", \
        "the compiled graph was built but not selected"
    return False


def examples(n: int) -> int:
    """``n`` hypothesis examples, times ``CLUMSYGRAD_HYPOTHESIS_SCALE`` (default 1; at least 10).

    ``.ci/run`` sets 0.2 for its second run of the whole suite on the pure graph node: the
    first run, on the compiled node, has just drawn every example in full, and the kernel
    comparisons these settings drive do not depend on the node.
    """
    return max(10, round(n * float(os.environ.get("CLUMSYGRAD_HYPOTHESIS_SCALE", "1"))))


# The autouse ``backend`` fixture is function-scoped; it only selects the kernel set, so it is
# safe to share between the examples hypothesis draws inside one test run.
SHAPE_SETTINGS = settings(
    max_examples=examples(50),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

BACKWARD_FUNCTION_NAMES = (
    "transpose_backward",
    "add_backward",
    "add_scalar_backward",
    "sub_backward",
    "sub_scalar_backward",
    "mul_backward",
    "mul_scalar_backward",
    "matmul_backward",
    "power_backward",
    "negate_backward",
    "abs_backward",
    "reshape_backward",
    "sum_backward",
    "mean_backward",
    "exp_backward",
    "log_backward",
    "sqrt_backward",
    "sin_backward",
    "cos_backward",
    "tan_backward",
    "relu_backward",
    "sigmoid_backward",
    "tanh_backward",
    "softmax_backward",
    "mse_backward",
    "mae_backward",
    "add_broadcast_backward",
    "sub_broadcast_backward",
    "mul_broadcast_backward",
)


def parameter(data, dtype=np.float64) -> Tensor:
    """A PARAMETER tensor (float64 unless told otherwise, so finite differences are accurate)."""
    return Tensor(data, tensor_type=TensorType.PARAMETER, dtype=dtype)


def constant(data, dtype=np.float64) -> Tensor:
    """An INPUT tensor."""
    return Tensor(data, tensor_type=TensorType.INPUT, dtype=dtype)


def away_from_zero(rng: np.random.Generator, shape, low: float = 0.2, high: float = 2.0) -> np.ndarray:
    """Values with |x| in [low, high) and random signs: safe for relu/abs finite differences."""
    magnitude = rng.uniform(low, high, size=shape)
    sign = np.where(rng.random(size=shape) < 0.5, -1.0, 1.0)
    return magnitude * sign


def numeric_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of the scalar function ``f`` at the float64 array ``x``."""
    x = np.array(x, dtype=np.float64)
    out = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        shifted = x.copy()
        shifted[index] += eps
        upper = f(shifted)
        shifted[index] -= 2 * eps
        lower = f(shifted)
        out[index] = (upper - lower) / (2 * eps)
    return out


def gradcheck(fn: Callable, inputs: Sequence, *, eps: float = 1e-6, atol: float = 1e-6,
              rtol: float = 1e-4, seed: int = 0) -> bool:
    """This suite's own gradient oracle, independent of ``clumsygrad.gradcheck``.

    ``fn`` maps one tensor per input to an output tensor.  The gradients ``backward()`` gives
    for ``<fn(*inputs), c>`` (``c`` a fixed random cotangent) are compared, input by input, with
    :func:`numeric_gradient` (float64 central differences of that contraction, evaluated with
    plain NumPy on the output values).  Returns True, or raises ``AssertionError`` naming the
    input, the worst element and both values.  Same call as the library's checker, so a test
    may use either; only this one gives expected values.
    """
    arrays = [np.array(x.data if isinstance(x, Tensor) else x, dtype=np.float64) for x in inputs]
    params = [parameter(a.copy()) for a in arrays]
    out = fn(*params)
    assert isinstance(out, Tensor), f"fn must return a Tensor, got {type(out).__name__}"
    cotangent = np.random.default_rng(seed).standard_normal(out.shape)
    if out.requires_grad:
        out.backward(cotangent)

    for k, base in enumerate(arrays):
        def contraction(x, k=k):
            values = [constant(x if i == k else a.copy()) for i, a in enumerate(arrays)]
            return float(np.sum(np.asarray(fn(*values).data, dtype=np.float64) * cotangent))

        expected = numeric_gradient(contraction, base, eps)
        got = params[k].grad
        got = np.zeros_like(base) if got is None else np.asarray(got, dtype=np.float64)
        assert got.shape == base.shape, f"input {k}: gradient shape {got.shape}, input shape {base.shape}"
        if not np.allclose(got, expected, rtol=rtol, atol=atol):
            worst = np.unravel_index(np.argmax(np.abs(got - expected)), base.shape)
            raise AssertionError(
                f"input {k}: backward gives {got[worst]!r} at {worst}, finite differences "
                f"{expected[worst]!r} (max abs error {np.max(np.abs(got - expected)):.3g})"
            )
    return True


def sum_to_shape(array: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``array`` over the leading axes it has beyond ``shape`` and the axes where ``shape`` is 1.

    The textbook definition of broadcasting's adjoint, written out axis by axis.
    """
    result = np.asarray(array, dtype=np.float64)
    while result.ndim > len(shape):
        result = result.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and result.shape[axis] != 1:
            result = result.sum(axis=axis, keepdims=True)
    return result


def memory_overlaps(named_arrays: Iterable[tuple]) -> list:
    """Names of the pairs among ``(name, array)`` whose memory overlaps (``np.shares_memory``)."""
    pairs = []
    for (name_a, a), (name_b, b) in itertools.combinations(list(named_arrays), 2):
        if a is not None and b is not None and np.shares_memory(a, b):
            pairs.append((name_a, name_b))
    return pairs


def grads_of(tensors: Sequence[Tensor]) -> list:
    """Copies of the tensors' gradients (None stays None)."""
    return [None if t.grad is None else np.array(t.grad) for t in tensors]


# --------------------------------------------------------------------------- did the compiled code run?
# Each compiled kernel hands the inputs it does not serve (other layouts, dtypes, sizes) to its
# pure twin through the name ``pure`` of its extension module.  ``compiled_share`` puts a spy in
# that name and counts, per call of ``native.<kernel>``, whether the call went on to
# ``pure.<kernel>`` (handed off) or not (the compiled code produced the result).
NATIVE_KERNEL_MODULES = ("_reduce", "_softmax", "_loss", "_elementwise", "_matmul", "_optim",
                         "_scatter", "_cross_entropy")


class _HandOffSpy:
    """Stands in for ``clumsygrad._kernels.pure`` inside the compiled modules."""

    def __init__(self, pure_module, watched: str):
        self._pure = pure_module
        self._watched = watched
        self.handed = 0

    def __getattr__(self, name):
        target = getattr(self._pure, name)
        if name != self._watched:
            return target

        def recorded(*args, **kwargs):
            self.handed += 1
            return target(*args, **kwargs)

        return recorded


class compiled_share:
    """``with compiled_share("sgd_update") as stats:`` counts ``stats["compiled"]``, ``["pure"]``
    (handed to the twin) and ``["raised"]`` over the calls of ``native.sgd_update`` inside."""

    def __init__(self, kernel: str):
        self.kernel = kernel
        self.stats = {"compiled": 0, "pure": 0, "raised": 0}

    def __enter__(self):
        import importlib

        from clumsygrad._kernels import native, pure

        self._modules = [importlib.import_module(f"clumsygrad._kernels.{m}") for m in NATIVE_KERNEL_MODULES]
        self._spy = spy = _HandOffSpy(pure, self.kernel)
        for module in self._modules:
            module.pure = spy
        self._native, self._real = native, getattr(native, self.kernel)
        real, stats = self._real, self.stats

        def counted(*args, **kwargs):
            before = spy.handed
            try:
                result = real(*args, **kwargs)
            except Exception:
                stats["raised"] += 1
                raise
            stats["pure" if spy.handed > before else "compiled"] += 1
            return result

        setattr(native, self.kernel, counted)
        return self.stats

    def __exit__(self, *exc_info):
        from clumsygrad._kernels import pure

        setattr(self._native, self.kernel, self._real)
        for module in self._modules:
            module.pure = pure
        return False


def requires_compiled_share(kernel: str, minimum: float):
    """Decorate a (hypothesis) twin test of ``native.<kernel>``: after all its examples, at least
    ``minimum`` of the calls that returned must have run the compiled code (none handed to pure)."""

    def decorate(test):
        def run():
            with compiled_share(kernel) as stats:
                test()
            returned = stats["compiled"] + stats["pure"]
            assert returned, f"native.{kernel} was never called"
            share = stats["compiled"] / returned
            assert share >= minimum, (
                f"only {stats['compiled']} of {returned} calls of native.{kernel} ran compiled code "
                f"({share:.0%} < {minimum:.0%}); the rest were handed to pure.{kernel}"
            )

        run.__name__, run.__qualname__, run.__doc__ = test.__name__, test.__qualname__, test.__doc__
        run.__module__ = test.__module__
        return run

    return decorate


def package_frames(call):
    """``call()`` and the names of the clumsygrad package's Python functions it ran, in order
    (``sys.setprofile``: a compiled record runs none)."""
    import os
    import sys

    import clumsygrad

    package = os.path.dirname(os.path.abspath(clumsygrad.__file__)) + os.sep
    seen = []

    def profile(frame, event, arg):
        if event == "call" and os.path.abspath(frame.f_code.co_filename).startswith(package):
            seen.append(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        result = call()
    finally:
        sys.setprofile(None)
    return result, seen
