"""Benchmarks of the issue-9 kernels: ``scatter_add`` and ``cross_entropy_backward``, both backends.

* ``scatter_add``: the backward pass of an embedding lookup, ``table[ids]`` with ``ids`` int64
  row indices (repeats included) into a float32 ``table``; the target case is 100,000 indices
  into (10,000, 64), where ``np.add.at`` (the pure twin) takes ~13 ns per element.
* ``cross_entropy_backward``: ``softmax(z) - onehot(y)`` over N rows of C logits, mean reduction.

Each group holds one case with the two backends side by side; the end of the run prints the
pure/compiled ratio of the medians.  Run::

    OPENBLAS_NUM_THREADS=1 taskset -c 1 pytest benchmarks/bench_features.py --benchmark-only \\
        --benchmark-columns=median,ops
"""
import numpy as np
import pytest

from clumsygrad._kernels import pure

try:
    from clumsygrad._kernels import native
except ImportError:  # not built: time the reference alone
    native = None

BACKENDS = {"pure": pure, "native": native} if native is not None else {"pure": pure}
_MEDIANS = {}


def _scatter_case(n, rows, width):
    def make():
        rng = np.random.default_rng(7)
        return (rng.standard_normal((n, width), dtype=np.float32), rng.integers(0, rows, size=n),
                (rows, width))
    return make


def _ce_case(n, c):
    def make():
        rng = np.random.default_rng(7)
        return (rng.standard_normal((n, c), dtype=np.float32), rng.integers(0, c, size=n),
                np.asarray(np.float32(1.0)), "mean")
    return make


CASES = {
    ("scatter_add", "100000->(10000,64)"): _scatter_case(100_000, 10_000, 64),
    ("scatter_add", "10000->(1000,64)"): _scatter_case(10_000, 1_000, 64),
    ("scatter_add", "1000->(50000,300)"): _scatter_case(1_000, 50_000, 300),
    ("cross_entropy_backward", "64x10"): _ce_case(64, 10),
    ("cross_entropy_backward", "2048x10"): _ce_case(2048, 10),
    ("cross_entropy_backward", "256x1000"): _ce_case(256, 1000),
}


@pytest.mark.parametrize(
    "kernel, case, backend",
    [pytest.param(k, c, b, id=f"{k}-{c}-{b}") for (k, c) in CASES for b in BACKENDS],
)
def test_feature_kernel(benchmark, kernel, case, backend):
    args = CASES[kernel, case]()
    fn = getattr(BACKENDS[backend], kernel)
    benchmark.group = f"{kernel}-{case}"
    benchmark.extra_info.update(kernel=kernel, case=case, backend=backend)
    result = benchmark(fn, *args)
    np.testing.assert_allclose(result, getattr(pure, kernel)(*args), rtol=1e-5, atol=1e-6)
    if benchmark.stats is not None:
        _MEDIANS[kernel, case, backend] = benchmark.stats.stats.median


@pytest.fixture(scope="module", autouse=True)
def print_ratios(request):
    """After the module's benchmarks: the pure/compiled ratio of the medians of each case."""
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():  # module teardown output is captured otherwise
        for kernel, case in CASES:
            p, n = _MEDIANS.get((kernel, case, "pure")), _MEDIANS.get((kernel, case, "native"))
            if p and n:
                reporter.write_line(f"{kernel:24s} {case:20s} pure {p * 1e6:10.1f} us  compiled "
                                    f"{n * 1e6:10.1f} us  ratio {p / n:6.1f}x")
