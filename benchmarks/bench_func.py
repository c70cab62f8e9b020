"""Second-order transforms of the tiny MLP loss (B16, 32-32-8), compiled vs pure backend.

``pytest benchmarks/bench_func.py --benchmark-only``.  The loss is the MLP step's
(``mse_loss(softmax(relu(x @ W1 + b1) @ W2 + b2), y)``, float32, ``workloads.mlp_data``):

* ``hvp``: one Hessian-vector product with respect to all four parameters (1,320 numbers):
  a forward pass, a recorded gradient (create_graph) and one pass back through it;
* ``hessian-W2``: the 256 x 256 Hessian block of ``W2`` (``func.hessian``: one recorded
  gradient, then one reverse pass per row);
* ``grad``: ``func.grad`` of the same loss (first order, for scale).

``FuncMLP`` is written to be copied into ``clumsygrad.bench.workloads`` as is (public API only).
"""
import pytest

from clumsygrad.bench import workloads

import numpy as np

import clumsygrad as cg
from clumsygrad import func
from clumsygrad.activation import relu, softmax
from clumsygrad.loss import mse_loss
from clumsygrad.tensor import Tensor


class FuncMLP:
    """The tiny MLP's loss as a function of its parameters, and its second-order transforms."""

    def __init__(self, data):
        self.x, self.y = Tensor(data["x"]), Tensor(data["y"])
        self.params = tuple(data[k] for k in ("W1", "b1", "W2", "b2"))
        rng = np.random.default_rng(1)
        self.tangents = tuple(rng.standard_normal(p.shape).astype(np.float32) for p in self.params)
        self._grad = func.grad(self.loss, argnums=(0, 1, 2, 3))
        self._hessian_w2 = func.hessian(self.loss, argnums=2)

    def loss(self, w1, b1, w2, b2):
        h = relu(self.x @ w1 + b1)
        return mse_loss(softmax(h @ w2 + b2, axis=-1), self.y)

    def grad(self):
        return self._grad(*self.params)

    def hvp(self):
        return func.hvp(self.loss, self.params, self.tangents)

    def hessian_w2(self):
        return self._hessian_w2(*self.params)


@pytest.mark.parametrize("impl", ["cython", "python"])
@pytest.mark.parametrize("what", ["grad", "hvp", "hessian_w2"])
def test_func_tiny_mlp(benchmark, use_backend, what, impl):
    benchmark.group = f"func-{what}-tiny"
    use_backend(impl)
    model = FuncMLP(workloads.mlp_data(workloads.MLP_SIZES["tiny"]))
    benchmark(getattr(model, what))


def test_hvp_matches_the_hessian_block():
    """Not a timing: the benchmarked hvp agrees with the Hessian on the W2 block."""
    model = FuncMLP(workloads.mlp_data(workloads.MLP_SIZES["tiny"]))
    only_w2 = tuple(np.zeros_like(t) if i != 2 else t for i, t in enumerate(model.tangents))
    hv = func.hvp(model.loss, model.params, only_w2)[2].data
    h = model.hessian_w2().data.reshape(256, 256)
    np.testing.assert_allclose(hv.ravel(), h @ model.tangents[2].ravel(), rtol=2e-3, atol=1e-6)
    assert cg.get_backend() in ("cython", "python")
