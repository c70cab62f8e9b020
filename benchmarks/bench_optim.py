"""The fused Adam kernel, compiled against its NumPy twin, and whole optimizer steps.

Groups (``pytest benchmarks/bench_optim.py --benchmark-only --benchmark-columns=median,ops``):

* ``adam_update-<size>``: one ``adam_update`` call on an ``(n, m)`` float32 parameter, the
  sizes of ``bench_kernels.py``, compiled (``native``) and pure side by side;
* ``adam-mlp-params``: one Adam step over an MNIST-sized MLP's parameters, 784x256 + 256 +
  256x10 + 10 float32 (203,530 values), kernel by kernel (``kernel-native``/``kernel-pure``)
  and through ``Adam.step()`` on each backend, with AdamW and SGD with momentum beside it.

The updates run in place again and again on the same arrays; a tiny rate keeps the values
bounded.  The compiled/pure ratio is the ratio of the medians of a group's two rows.
"""
import numpy as np
import pytest

from clumsygrad._kernels import pure
from clumsygrad.optimizer import SGD, Adam, AdamW
from clumsygrad.tensor import Tensor, TensorType

try:
    from clumsygrad._kernels import native
except ImportError:  # not built: time the reference alone
    native = None

KERNELS = {"pure": pure, "native": native} if native is not None else {"pure": pure}
SIZES = {"8x8": (8, 8), "64x10": (64, 10), "256x256": (256, 256), "2048x2048": (2048, 2048)}
MLP_SHAPES = ((784, 256), (256,), (256, 10), (10,))
LR = 1e-6


def _adam_arrays(shape, seed=2024):
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(shape, dtype=np.float32)
    g = rng.standard_normal(shape, dtype=np.float32)
    m = 0.1 * rng.standard_normal(shape, dtype=np.float32)
    return p, g, m, m * m


@pytest.mark.parametrize("backend", list(KERNELS))
@pytest.mark.parametrize("size", list(SIZES))
def test_adam_update(benchmark, size, backend):
    args = (*_adam_arrays(SIZES[size]), LR, 0.9, 0.999, 1e-8, 0.0, False, 10)
    benchmark.group = f"adam_update-{size}"
    benchmark.extra_info.update(kernel="adam_update", size=size, backend=backend)
    assert benchmark(KERNELS[backend].adam_update, *args) is None


@pytest.mark.parametrize("backend", list(KERNELS))
def test_adam_kernel_over_mlp_parameters(benchmark, backend):
    sets = [_adam_arrays(shape, seed) for seed, shape in enumerate(MLP_SHAPES)]
    update = KERNELS[backend].adam_update

    def step():
        for p, g, m, v in sets:
            update(p, g, m, v, LR, 0.9, 0.999, 1e-8, 0.0, False, 10)

    benchmark.group = "adam-mlp-params"
    benchmark.extra_info.update(kind="kernel", backend=backend)
    benchmark(step)


@pytest.mark.parametrize("backend", ["cython", "python"])
@pytest.mark.parametrize("make", [
    pytest.param(lambda ps: Adam(ps, lr=LR), id="Adam"),
    pytest.param(lambda ps: AdamW(ps, lr=LR), id="AdamW"),
    pytest.param(lambda ps: SGD(ps, lr=LR, momentum=0.9), id="SGD-momentum"),
])
def test_optimizer_step_over_mlp_parameters(benchmark, use_backend, make, backend):
    use_backend(backend)
    params = []
    for seed, shape in enumerate(MLP_SHAPES):
        p, g, _, _ = _adam_arrays(shape, seed)
        t = Tensor(p, tensor_type=TensorType.PARAMETER)
        t.grad = g
        params.append(t)
    opt = make(params)
    benchmark.group = "adam-mlp-params"
    benchmark.extra_info.update(kind="optimizer", backend=backend)
    benchmark(opt.step)
