"""The benchmark report in a log: one progress line per finished workload, a live bar on a terminal,
and the BLAS that ran (library, core type, threads)."""
import io
import sys
import types

import pytest

from clumsygrad.bench import report, suite, workloads
from clumsygrad.bench.runner import Contender, Progress, run_interleaved

pytestmark = pytest.mark.both_backends


class Terminal(io.StringIO):
    def isatty(self):
        return True


def contenders():
    return [Contender(name, lambda number: {"step": 1e-6}) for name in ("a", "b", "c")]


def test_in_a_log_each_workload_is_one_line_however_many_samples():
    stream = io.StringIO()
    progress = Progress(2 * 3 * 5, stream)
    for label in ("first", "second"):
        run_interleaved(contenders(), 5, 0.0, progress, label)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3, lines
    assert lines[0].startswith("[###############...............] 15/30") and lines[0].endswith("  first")
    assert lines[1].startswith("[##############################] 30/30") and lines[1].endswith("  second")
    assert lines[2].startswith("done in ")
    assert "\r" not in stream.getvalue()


def test_on_a_terminal_the_bar_redraws_in_place_per_sample():
    stream = Terminal()
    progress = Progress(3 * 4, stream)
    run_interleaved(contenders(), 4, 0.0, progress, "work")
    progress.close()
    text = stream.getvalue()
    assert text.count("\r") == 12 + 2  # one redraw per sample, then the bar is erased
    assert text.count("\n") == 1  # only "done in": the bar leaves no line behind
    assert "\r[##############################] 12/12" in text
    assert "eta" in text


def test_on_a_narrow_terminal_no_redraw_wraps(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    stream = Terminal()
    progress = Progress(3 * 4, stream)
    run_interleaved(contenders(), 4, 0.0, progress, "a rather long workload label " * 3)
    progress.close()
    redraws = stream.getvalue().split("\r")[1:-1]
    assert len(redraws) == 12 + 1
    assert all(len(r) <= 39 for r in redraws), max(redraws, key=len)
    assert redraws[-1].strip() == ""  # the erasure
    assert "[" in redraws[0] and "1/12" in redraws[0]


def test_the_whole_suite_writes_one_line_per_workload_to_a_log():
    stream = io.StringIO()
    # Two kernel shapes: the 2048x2048 ones take most of a minute and log like any other.
    settings = suite.Settings(mlp_rounds=2, kernel_rounds=2, chain_rounds={50: 2}, target=0.0005,
                              kernel_shapes=workloads.KERNEL_SHAPES[:2])
    n_backends = len(suite.BACKENDS) if suite.native_kernels()[0] is not None else 1
    total = suite.count_samples(["tiny"], n_backends, suite.torch_available(), settings)
    progress = Progress(total, stream)
    suite.run_suite(["tiny"], settings, progress)
    progress.close()
    # mlp-tiny, rnn, attention, the conv steps, chain-50, the func transforms, the pure child
    # (when it runs) and the kernels
    child = n_backends > 1 and suite.pure_in_child()
    workloads_run = (len(suite.step_names(["tiny"])) + 1 + len(workloads.FUNC_WORKLOADS) + child
                     + len(workloads.KERNELS) * len(settings.kernel_shapes))
    lines = stream.getvalue().splitlines()
    assert len(lines) == workloads_run + 1, lines
    assert lines[-2].startswith(f"[##############################] {total}/{total}")


def test_blas_line_from_threadpoolctl_names_library_core_and_threads(monkeypatch):
    fake = types.ModuleType("threadpoolctl")
    fake.threadpool_info = lambda: [
        {"user_api": "openmp", "internal_api": "openmp", "num_threads": 2},
        {"user_api": "blas", "internal_api": "openblas", "version": "0.3.29", "num_threads": 1,
         "architecture": "Zen", "filepath": "/x/numpy.libs/libscipy_openblas64_-abc.so"},
    ]
    monkeypatch.setitem(sys.modules, "threadpoolctl", fake)
    assert report.blas_runtime() == "openblas 0.3.29 (core Zen, 1 thread, libscipy_openblas64_-abc.so)"


def test_blas_line_without_threadpoolctl_falls_back_to_numpys_config(monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import raises ImportError
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    line = report.blas_runtime()
    assert line.startswith(f"{report.blas_info()} per NumPy's build config; OPENBLAS_CORETYPE=Haswell")
    assert "pip install threadpoolctl" in line
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    assert "core type unknown" in report.blas_runtime()


def test_the_header_carries_the_blas_line():
    results = {"settings": suite.QUICK._asdict(), "backends": ["python"], "torch": False, "native_error": None}
    lines = report.header(results, quick=True)
    # wrapped to 80 columns, continuation lines indented under the value
    start = [i for i, line in enumerate(lines) if line.startswith("blas    : ")]
    assert len(start) == 1
    block = [lines[start[0]]] + [line for line in lines[start[0] + 1:]][:3]
    block = [block[0]] + [line for line in block[1:] if line.startswith(" " * 10)]
    assert " ".join(line.strip() for line in block) == f"blas    : {report.blas_runtime()}"
    assert all(len(line) <= 80 for line in lines)
