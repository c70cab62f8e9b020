"""The MLP training step on both backends and in hand-written NumPy, one group per size.

``pytest benchmarks/bench_mlp.py --benchmark-only``; ``--benchmark-compare`` then reads
``mlp-tiny``, ``mlp-medium``, ``mlp-large`` side by side.
"""
import importlib.util

import pytest

from clumsygrad.bench import workloads

IMPLS = ["cython", "python", "numpy"] + (["torch"] if importlib.util.find_spec("torch") else [])


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("size", list(workloads.MLP_SIZES))
def test_mlp_step(benchmark, use_backend, size, impl):
    benchmark.group = f"mlp-{size}"
    data = workloads.mlp_data(workloads.MLP_SIZES[size])
    if impl == "numpy":
        model = workloads.NumpyMLP(data)
    elif impl == "torch":
        model = workloads.TorchMLP(data)
    else:
        use_backend(impl)
        model = workloads.ClumsyMLP(data)
    benchmark(model.step)
