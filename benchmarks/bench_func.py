"""Second-order transforms of the tiny MLP loss (B16, 32-32-8), compiled vs pure backend.

``pytest benchmarks/bench_func.py --benchmark-only``.  The loss is the MLP step's
(``mse_loss(softmax(relu(x @ W1 + b1) @ W2 + b2), y)``, float32, ``workloads.mlp_data``):

* ``hvp``: one Hessian-vector product with respect to all four parameters (1,320 numbers):
  a forward pass, a recorded gradient (create_graph) and one pass back through it;
* ``hessian-W2``: the 256 x 256 Hessian block of ``W2`` (``func.hessian``: one recorded
  gradient, then one reverse pass per row);
* ``grad``: ``func.grad`` of the same loss (first order, for scale).

``FuncMLP`` is ``clumsygrad.bench.workloads.FuncMLP``, the class ``python -m clumsygrad.bench`` times.
"""
import numpy as np
import pytest

import clumsygrad as cg
from clumsygrad import func
from clumsygrad.bench import workloads

FuncMLP = workloads.FuncMLP  # the bench's class: one definition for both reports


@pytest.mark.parametrize("impl", ["cython", "python"])
@pytest.mark.parametrize("what", ["grad", "hvp", "hessian"])
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
    h = model.hessian().data.reshape(256, 256)
    np.testing.assert_allclose(hv.ravel(), h @ model.tangents[2].ravel(), rtol=2e-3, atol=1e-6)
    assert cg.get_backend() in ("cython", "python")
