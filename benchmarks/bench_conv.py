"""Convolution benchmarks (issue 16): conv2d forward + its gradients, compiled vs pure vs a
hand-written NumPy im2col step, and one CNN training step on the digits shape.

The workloads are ``clumsygrad.bench.workloads``' (the same ones ``python -m clumsygrad.bench``
times; ``tests/test_bench.py`` checks that the NumPy steps compute the library's gradients).
Sizes: ``small`` N=64, 1x8x8 -> 16 channels; ``medium`` N=32, 16x28x28 -> 32 channels; 3x3,
padding 1, float32.

* ``conv-kernels-<size>``: ``conv2d_forward`` (bias fused) + ``conv2d_backward_input`` +
  ``conv2d_backward_weight`` + ``conv2d_backward_bias`` of each kernel set, and the NumPy im2col
  step computing the same (output, input, weight and bias gradients); ``native-im2col`` is the
  compiled set with its direct loops switched off (``_conv._direct_limit(0)``: im2col + BLAS
  everywhere), to show what the size rule of ``_conv._direct`` chose;
* ``conv-autograd-<size>``: ``nn.functional.conv2d`` + ``backward()`` on each backend (the graph
  recording and the bias gradient included), against the same NumPy step;
* ``cnn-step``: one training step of ``examples/cnn_digits.py``'s model (batch 32, cross-entropy,
  Adam) on each backend and by hand in NumPy.

Run (BLAS single-threaded, one core)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 taskset -c 1 \\
        python -m pytest benchmarks/bench_conv.py --benchmark-only --benchmark-columns=median,ops
"""
import pytest

from clumsygrad._kernels import pure
from clumsygrad.bench import workloads

try:
    from clumsygrad._kernels import _conv, native
except ImportError:  # not built: time the reference alone
    native = None

KERNELS = {"pure": pure, "native": native, "native-im2col": native} if native is not None else {"pure": pure}
ARGS = ((1, 1), (1, 1, 1, 1), (1, 1), 1)


@pytest.mark.parametrize("size", list(workloads.CONV_SIZES))
@pytest.mark.parametrize("impl", list(KERNELS) + ["numpy-im2col"])
def test_conv_kernels(benchmark, impl, size):
    data = workloads.conv_data(workloads.CONV_SIZES[size])
    benchmark.group = f"conv-kernels-{size}"
    if impl == "numpy-im2col":
        benchmark(workloads.NumpyConv(data).step)
        return
    k = KERNELS[impl]
    x, w, b, g = data["x"], data["W"], data["b"], data["g"]

    def step():
        k.conv2d_forward(x, w, *ARGS, b)
        k.conv2d_backward_input(g, w, x.shape, *ARGS)
        k.conv2d_backward_weight(g, x, w.shape, *ARGS)
        k.conv2d_backward_bias(g)

    limit = _conv._direct_limit(0) if impl == "native-im2col" else None
    try:
        benchmark(step)
    finally:
        if limit is not None:
            _conv._direct_limit(limit)


@pytest.mark.parametrize("size", list(workloads.CONV_SIZES))
@pytest.mark.parametrize("backend", ["cython", "python"])
def test_conv_autograd(benchmark, use_backend, backend, size):
    use_backend(backend)
    benchmark.group = f"conv-autograd-{size}"
    benchmark(workloads.ClumsyConv(workloads.conv_data(workloads.CONV_SIZES[size])).step)


@pytest.mark.parametrize("size", list(workloads.CONV_SIZES))
def test_conv_autograd_numpy(benchmark, size):
    benchmark.group = f"conv-autograd-{size}"
    benchmark(workloads.NumpyConv(workloads.conv_data(workloads.CONV_SIZES[size])).step)


@pytest.mark.parametrize("backend", ["cython", "python"])
def test_cnn_step(benchmark, use_backend, backend):
    use_backend(backend)
    benchmark.group = "cnn-step"
    benchmark(workloads.ClumsyCNN(workloads.cnn_data()).step)


def test_cnn_step_numpy(benchmark):
    benchmark.group = "cnn-step"
    benchmark(workloads.NumpyCNN(workloads.cnn_data()).step)
