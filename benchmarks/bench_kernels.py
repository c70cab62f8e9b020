"""Kernel benchmarks: every kernel on both backends, the NumPy reference beside the compiled one.

Each benchmark group is one kernel at one size (``group=f"{kernel}-{size}"``), so the two
backends of every case sit side by side in the report.  Inputs are float32 (the library's
default dtype) and shaped the way the backward functions use the kernels:

* ``reduce_to_shape`` / ``mul_reduce_to_shape``: an ``(n, m)`` gradient summed to a bias
  ``(m,)``, a row ``(1, m)`` and a column ``(n, 1)``; ``mul_reduce`` also the no-reduction
  ``x * b`` case (``other`` of shape ``(m,)`` broadcast over the rows);
* ``expand_to_shape``: the gradients of ``sum(axis=0)``, ``sum()`` and ``mean(axis=-1, keepdims=True)``;
* ``softmax_backward``: along the last axis and along axis 0;
* ``matmul_backward``: 2-D ``(n, m) @ (m, m)`` and batched ``(B, n, m) @ (m, m)``, whose ``gy``
  sums over the batch;
* ``softmax_forward``: logits along the last axis and along axis 0;
* ``mse_forward`` / ``mse_backward``: an ``(n, m)`` prediction against a one-hot target, the
  backward pass with both gradients and with the prediction's only (a constant target);
* ``relu_backward``: a relu output (about half zeros) and its gradient;
* ``sgd_update``: ``W -= lr * grad`` in place on an ``(n, m)`` parameter.

Run (BLAS single-threaded so both backends get the same one core)::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \\
        pytest benchmarks/bench_kernels.py --benchmark-only --benchmark-columns=median,ops
"""
import numpy as np
import pytest

from clumsygrad._kernels import pure

try:
    from clumsygrad._kernels import native
except ImportError:  # not built: time the reference alone
    native = None

BACKENDS = {"pure": pure, "native": native} if native is not None else {"pure": pure}
SIZES = {"8x8": (8, 8), "64x10": (64, 10), "256x256": (256, 256), "2048x2048": (2048, 2048)}


def _rng():
    return np.random.default_rng(2024)


def _softmax(z, axis):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# Each case: name -> function (n, m) -> (kernel name, args)
def _reduce_cases():
    def make(target):
        def case(n, m):
            g = _rng().standard_normal((n, m), dtype=np.float32)
            return g, target(n, m)
        return case

    return {
        "bias(m,)": make(lambda n, m: (m,)),
        "row(1,m)": make(lambda n, m: (1, m)),
        "col(n,1)": make(lambda n, m: (n, 1)),
    }


def _mul_reduce_cases():
    def make(target, other_shape):
        def case(n, m):
            rng = _rng()
            g = rng.standard_normal((n, m), dtype=np.float32)
            o = rng.standard_normal(other_shape(n, m), dtype=np.float32)
            return g, o, target(n, m)
        return case

    return {
        "bias(m,)": make(lambda n, m: (m,), lambda n, m: (n, m)),
        "row(1,m)": make(lambda n, m: (1, m), lambda n, m: (n, m)),
        "col(n,1)": make(lambda n, m: (n, 1), lambda n, m: (n, m)),
        "x*b(no-reduce)": make(lambda n, m: (n, m), lambda n, m: (m,)),
    }


def _expand_cases():
    def sum0(n, m):
        return _rng().standard_normal(m, dtype=np.float32), (n, m), 0, False, 1.0

    def sum_all(n, m):
        return np.asarray(np.float32(1.0)), (n, m), None, False, 1.0

    def mean_last(n, m):
        return _rng().standard_normal((n, 1), dtype=np.float32), (n, m), -1, True, 1.0 / m

    return {"sum(axis=0)": sum0, "sum()": sum_all, "mean(axis=-1,keepdims)": mean_last}


def _softmax_cases():
    def make(axis):
        def case(n, m):
            rng = _rng()
            s = _softmax(rng.standard_normal((n, m), dtype=np.float32), axis)
            g = rng.standard_normal((n, m), dtype=np.float32)
            return s, g, axis
        return case

    return {"axis=-1": make(-1), "axis=0": make(0)}


def _matmul_cases():
    def two_d(n, m):
        rng = _rng()
        x = rng.standard_normal((n, m), dtype=np.float32)
        y = rng.standard_normal((m, m), dtype=np.float32)
        return x, y, rng.standard_normal((n, m), dtype=np.float32)

    def batched(n, m):
        rng = _rng()
        b = 2 if n * m > 10**6 else 4
        x = rng.standard_normal((b, n, m), dtype=np.float32)
        y = rng.standard_normal((m, m), dtype=np.float32)
        return x, y, rng.standard_normal((b, n, m), dtype=np.float32)

    return {"2d": two_d, "batched(B,n,m)@(m,m)": batched}


def _softmax_forward_cases():
    def make(axis):
        def case(n, m):
            return _rng().standard_normal((n, m), dtype=np.float32), axis
        return case

    return {"axis=-1": make(-1), "axis=0": make(0)}


def _mse_operands(n, m):
    rng = _rng()
    pred = _softmax(rng.standard_normal((n, m), dtype=np.float32), -1)
    target = np.eye(m, dtype=np.float32)[rng.integers(0, m, size=n)]
    return pred, target


def _mse_forward_cases():
    return {"pred-target": _mse_operands}


def _mse_backward_cases():
    def both(n, m):
        return (*_mse_operands(n, m), np.asarray(np.float32(1.0)))

    def pred_only(n, m):
        return (*_mse_operands(n, m), np.asarray(np.float32(1.0)), True, False)

    return {"both": both, "pred-only": pred_only}


def _relu_backward_cases():
    def case(n, m):
        rng = _rng()
        y = np.maximum(rng.standard_normal((n, m), dtype=np.float32), 0)
        return y, rng.standard_normal((n, m), dtype=np.float32)

    return {"y,grad": case}


def _sgd_update_cases():
    def case(n, m):
        rng = _rng()
        # the update runs in place; a small rate keeps the parameter bounded over many calls
        return rng.standard_normal((n, m), dtype=np.float32), rng.standard_normal((n, m), dtype=np.float32), 1e-6

    return {"W-=lr*g": case}


CASES = {
    "reduce_to_shape": _reduce_cases(),
    "mul_reduce_to_shape": _mul_reduce_cases(),
    "expand_to_shape": _expand_cases(),
    "softmax_backward": _softmax_cases(),
    "matmul_backward": _matmul_cases(),
    "softmax_forward": _softmax_forward_cases(),
    "mse_forward": _mse_forward_cases(),
    "mse_backward": _mse_backward_cases(),
    "relu_backward": _relu_backward_cases(),
    "sgd_update": _sgd_update_cases(),
}

PARAMS = [
    pytest.param(kernel, case, size, backend, id=f"{kernel}-{size}-{case}-{backend}")
    for kernel, cases in CASES.items()
    for size in SIZES
    for case in cases
    for backend in BACKENDS
]


@pytest.mark.parametrize("kernel, case, size, backend", PARAMS)
def test_kernel(benchmark, kernel, case, size, backend):
    args = CASES[kernel][case](*SIZES[size])
    fn = getattr(BACKENDS[backend], kernel)
    benchmark.group = f"{kernel}-{size}"
    benchmark.extra_info.update(kernel=kernel, case=case, size=size, backend=backend)
    result = benchmark(fn, *args)
    expected = getattr(pure, kernel)(*args)
    for got, want in zip(
        result if isinstance(result, tuple) else (result,),
        expected if isinstance(expected, tuple) else (expected,),
    ):
        assert np.shape(got) == np.shape(want)  # (None for sgd_update, which works in place)
