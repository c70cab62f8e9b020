"""A PARAMETER scalar through a chain of 10k and 1M ops: graph build and backward, per backend.

Each backward consumes its graph, so every round builds a fresh chain in an untimed setup
(pedantic mode).  Divide by ``extra_info["nodes"]`` for the time per node; the build
benchmarks also record ``extra_info["bytes_per_node"]`` (RSS growth in a fresh interpreter).
"""
import pytest

from clumsygrad.bench import workloads

ROUNDS = {10_000: 20, 1_000_000: 3}  # a 1M chain takes seconds to build and to backpropagate


def label(n):
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k"


@pytest.mark.parametrize("backend", ["cython", "python"])
@pytest.mark.parametrize("n", workloads.CHAIN_LENGTHS, ids=label)
def test_chain_backward(benchmark, use_backend, n, backend):
    use_backend(backend)
    benchmark.group = f"chain-{label(n)}-backward"
    benchmark.extra_info["nodes"] = n

    def setup():
        x, out = workloads.build_chain(n)
        return (out,), {}

    benchmark.pedantic(lambda out: out.backward(), setup=setup, rounds=ROUNDS[n], iterations=1)


@pytest.mark.parametrize("backend", ["cython", "python"])
@pytest.mark.parametrize("n", workloads.CHAIN_LENGTHS, ids=label)
def test_chain_build(benchmark, use_backend, n, backend):
    use_backend(backend)
    benchmark.group = f"chain-{label(n)}-build"
    benchmark.extra_info["nodes"] = n
    benchmark.extra_info["bytes_per_node"] = workloads.chain_bytes_per_node(n, backend)
    benchmark.pedantic(workloads.build_chain, args=(n,), rounds=ROUNDS[n], iterations=1)
