"""The character RNN step and the self-attention step (issue 15), on both backends and in
hand-written NumPy, one group per workload: ``pytest benchmarks/bench_sequence.py --benchmark-only``.

The "python" rows here switch the kernels and the engine only (``set_backend``): the node base is
chosen at import, so for the pure graph run with ``CLUMSYGRAD_BACKEND=python pytest ...``.
"""
import pytest

from clumsygrad.bench import workloads

IMPLS = ["cython", "python", "numpy"]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", list(workloads.SEQUENCE_WORKLOADS))
def test_sequence_step(benchmark, use_backend, name, impl):
    benchmark.group = name
    make_data, clumsy, numpy = workloads.SEQUENCE_WORKLOADS[name]
    data = make_data()
    if impl == "numpy":
        model = numpy(data)
    else:
        use_backend(impl)
        model = clumsy(data)
    benchmark(model.step)
