"""The benchmark harness: its workloads compute what they claim, and ``python -m clumsygrad.bench`` works.

The ``--compare-0.2.1`` run itself needs PyPI and a venv, so it is not run here; its child
script, JSON parsing and ratio of ratios are tested with the installed package and fake results.
"""
import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

import clumsygrad
from clumsygrad.bench import compare021, report, suite, workloads
from clumsygrad.bench.compare021 import CompareError, parse_child_output, ratio_of_ratios

pytestmark = pytest.mark.both_backends

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


# --------------------------------------------------------------------------- workloads
@pytest.mark.parametrize("size", list(workloads.MLP_SIZES))
@pytest.mark.parametrize("backend_name", ["cython", "python"])
def test_numpy_yardstick_makes_the_same_sgd_update_as_clumsygrad(backend_name, size):
    clumsygrad.set_backend(backend_name)  # the autouse fixture restores the previous one
    data = workloads.mlp_data(workloads.MLP_SIZES[size])
    ours, yardstick = workloads.ClumsyMLP(data), workloads.NumpyMLP(data)
    ours.step()
    yardstick.step()
    for name in workloads.PARAM_NAMES:
        expected = yardstick.weights()[name] - data[name]
        actual = ours.weights()[name] - data[name]
        assert actual.dtype == expected.dtype == np.float32
        assert np.abs(expected).max() > 1e-7, f"{name}: the step did not move it"
        # Both are float32 differences of weights ~0.1: a few ulps of the weight are the floor.
        ulps = 4 * np.spacing(np.abs(data[name]).max())
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max() + ulps, err_msg=name)


@pytest.mark.parametrize("name", list(workloads.CONV_WORKLOADS))
@pytest.mark.parametrize("backend_name", ["cython", "python"])
def test_hand_written_numpy_conv_steps_compute_clumsygrads_gradients(backend_name, name):
    """The conv rows compare like with like: the NumPy im2col step's gradients are the library's."""
    clumsygrad.set_backend(backend_name)
    make_data, clumsy, numpy_step = workloads.CONV_WORKLOADS[name]
    data = make_data()
    ours, yardstick = clumsy(data).gradients(), numpy_step(data).gradients()
    assert set(ours) <= set(yardstick)
    for key, grad in ours.items():
        expected = yardstick[key]
        assert grad.shape == expected.shape and grad.dtype == expected.dtype == np.float32, key
        assert np.abs(expected).max() > 1e-6, f"{name} {key}: an all-zero gradient proves nothing"
        np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max(), err_msg=key)


@pytest.mark.parametrize("backend_name", ["cython", "python"])
def test_hand_written_numpy_cnn_makes_the_same_adam_steps(backend_name):
    clumsygrad.set_backend(backend_name)
    data = workloads.cnn_data()
    ours, yardstick = workloads.ClumsyCNN(data), workloads.NumpyCNN(data)
    for _ in range(3):
        ours.step()
        yardstick.step()
    for key in workloads.CNN_PARAMS:
        moved = yardstick.weights()[key] - data[key]
        assert np.abs(moved).max() > 1e-4, f"{key}: three Adam steps did not move it"
        np.testing.assert_allclose(ours.weights()[key] - data[key], moved, rtol=1e-3, atol=1e-6, err_msg=key)


def test_conv_data_sizes_are_the_issues():
    small, medium = workloads.conv_data(workloads.CONV_SIZES["small"]), workloads.conv_data(workloads.CONV_SIZES["medium"])
    assert small["x"].shape == (64, 1, 8, 8) and small["W"].shape == (16, 1, 3, 3)
    assert medium["x"].shape == (32, 16, 28, 28) and medium["W"].shape == (32, 16, 3, 3)
    assert workloads.cnn_data()["x"].shape == (32, 1, 8, 8)


def test_mlp_data_is_fixed_by_the_seed():
    a, b = (workloads.mlp_data(workloads.MLP_SIZES["tiny"]) for _ in range(2))
    assert all(np.array_equal(a[k], b[k]) and a[k].dtype == np.float32 for k in a)


def test_chain_has_n_nodes_and_unit_gradient():
    x, out = workloads.build_chain(1001)
    assert out._id - x._id == 1001
    out.backward()
    assert abs(float(x.grad)) == 1.0  # d/dx of 501 sign flips and 500 shifts


@pytest.mark.parametrize("kernel", workloads.KERNELS)
def test_kernel_args_fit_the_pure_kernels(kernel):
    from clumsygrad._kernels import pure

    from clumsygrad._kernels import native

    # The same arguments through both kernel sets: equal results, and equal arrays after in-place kernels.
    args_pure, args_native = workloads.kernel_args(kernel, 8, 4), workloads.kernel_args(kernel, 8, 4)
    out_pure = getattr(pure, kernel)(*args_pure)
    out_native = getattr(native, kernel)(*args_native)
    outs = [(out_pure, out_native)] if not isinstance(out_pure, tuple) else list(zip(out_pure, out_native))
    for a, b in outs + [(x, y) for x, y in zip(args_pure, args_native) if isinstance(x, np.ndarray)]:
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)
    assert out_pure is not None or kernel.endswith("_update")


# --------------------------------------------------------------------------- the CLI
def run_bench(*args, code=None, cwd=None):
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "clumsygrad.bench", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One ``--quick`` run for the module (it takes about half a minute), with ``--plot`` when possible."""
    png = tmp_path_factory.mktemp("bench") / "bench.png"
    proc = run_bench("--quick", *(["--plot", str(png)] if HAS_MATPLOTLIB else []), cwd=png.parent)
    return proc, png


def test_quick_run_exits_0_and_prints_a_row_for_every_workload(quick_run):
    proc, _ = quick_run
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    chains = [report.chain_label(n) for n in suite.QUICK.chain_rounds]
    rows = suite.step_names(list(workloads.MLP_SIZES)) + chains + list(workloads.KERNELS)
    for name in rows:
        row = [line for line in lines if line.startswith(name + " ")]  # rows start at column 0
        assert len(row) == 1, f"no single table row for {name}:\n{proc.stdout}"
        assert any(unit in row[0] for unit in (" ns", " us", " ms", " s")), row[0]


def test_quick_run_fits_80_columns_and_ends_with_a_verdict(quick_run):
    proc, _ = quick_run
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, [line for line in lines if len(line) > 80]
    verdict = proc.stdout[proc.stdout.index("verdict"):]
    if "plot written" in verdict:
        verdict = verdict[: verdict.index("plot written")]
    for name in suite.step_names(list(workloads.MLP_SIZES)):
        assert f"{name} compiled " in verdict.replace("\n  ", " "), verdict
    assert verdict.replace("\n  ", " ").count(" pure ") == len(suite.step_names(list(workloads.MLP_SIZES)))


def test_quick_run_times_the_pure_graph_in_a_child_process(quick_run):
    proc, _ = quick_run
    # With CLUMSYGRAD_BACKEND=python (the suite's second run) this process's graph is already pure.
    where = "a child process" if suite.pure_in_child() else "this process"
    assert f"ran in {where}" in " ".join(proc.stdout.split())
    if not suite.pure_in_child():
        assert "compiled kernels on the pure graph" in " ".join(proc.stdout.split())  # wrapped lines
    chain = [line for line in proc.stdout.splitlines() if line.startswith("chain-10k")][0]
    # the pure graph's nodes are Python objects: more bytes than the compiled node's
    cells = chain.split()
    compiled_bytes, pure_bytes = (int(cells[i - 1]) for i, cell in enumerate(cells) if cell == "B")
    assert pure_bytes > compiled_bytes, chain


def test_quick_run_reports_the_machine_and_one_blas_thread(quick_run):
    proc, _ = quick_run
    assert "BLAS pinned to 1 thread (OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1" in proc.stdout
    assert f"numpy {np.__version__}" in proc.stdout
    assert "machine :" in proc.stdout


def test_quick_run_shows_progress_on_stderr(quick_run):
    proc, _ = quick_run
    assert "[###" in proc.stderr and "done in" in proc.stderr
    assert "[###" not in proc.stdout


def test_plot_writes_a_png(quick_run):
    # matplotlib is in the "test" extra, so this runs wherever the suite is installed as documented.
    pytest.importorskip("matplotlib")  # the optional "plot" extra; without it --plot is not passed
    proc, png = quick_run
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_exits_with_install_advice(tmp_path):
    png = tmp_path / "bench.png"
    block = (
        "import sys; sys.modules['matplotlib'] = None\n"  # makes `import matplotlib` raise ImportError
        "from clumsygrad.bench.cli import main\n"
        f"sys.exit(main(['--quick', '--plot', {str(png)!r}]))\n"
    )
    proc = run_bench(code=block)
    assert proc.returncode != 0
    assert "--plot needs matplotlib" in proc.stderr and "pip install 'clumsygrad[plot]'" in proc.stderr
    assert not png.exists()


def test_unknown_size_is_a_usage_error():
    proc = run_bench("--sizes", "huge")
    assert proc.returncode == 2 and "unknown size" in proc.stderr


# --------------------------------------------------------------------------- --compare-0.2.1 pieces
FAKE_CHILD = {
    "clumsygrad": "0.2.1",
    "numpy": "2.0.0",
    "python": "3.11.0",
    "mlp": {"tiny": {"clumsygrad": 30e-6, "numpy": 1.5e-6}, "medium": {"clumsygrad": 8e-4, "numpy": 4e-4}},
    "chain": {
        "500": {"build": 4e-6, "backward": 9e-6},
        "10000": {"error": "RecursionError: maximum recursion depth exceeded"},
        "1000000": {"error": "RecursionError (not run: the 10,000 chain already fails)"},
    },
}


def test_parse_child_output_takes_the_json_line_among_noise():
    stdout = "some warning\n" + json.dumps(FAKE_CHILD) + "\n"
    assert parse_child_output(stdout) == FAKE_CHILD


@pytest.mark.parametrize("stdout", ["", "Traceback ...\nRecursionError\n", "{not json}\n", '{"other": 1}\n'])
def test_parse_child_output_without_a_result_raises(stdout):
    with pytest.raises(CompareError, match="printed no result"):
        parse_child_output(stdout)


def test_ratio_of_ratios_normalises_each_library_by_numpy_in_its_own_process():
    ours = {"tiny": {"cython": 4e-6, "python": 8e-6, "numpy": 2e-6}}  # not timed there: "medium" is left out
    table = ratio_of_ratios(ours, FAKE_CHILD)
    assert list(table) == ["tiny"]
    row = table["tiny"]
    assert row["0.2.1/numpy"] == pytest.approx(20.0)
    assert row["cython/numpy"] == pytest.approx(2.0) and row["python/numpy"] == pytest.approx(4.0)
    assert row["speedup cython"] == pytest.approx(10.0) and row["speedup python"] == pytest.approx(5.0)


def test_compare_table_reports_recursion_errors_instead_of_crashing():
    results = {
        "backends": ["python"],
        "mlp": {"tiny": {"python": 4e-6, "numpy": 2e-6}},
        "chain": {"10000": {"python": {"build": 3e-6, "backward": 2e-6}}},
        "chain_compare": {"500": {"python": {"build": 3e-6, "backward": 1e-6}}},
    }
    text = "\n".join(report.compare_table(results, FAKE_CHILD))
    assert "10.00x" in text  # speedup python: (30/1.5) / (4/2)
    assert "chain-10k   0.2.1: RecursionError: maximum recursion depth exceeded" in text
    assert "RecursionError (not run" in text
    assert "chain-500   0.2.1: 9.00 us" in text


def test_child_script_prints_json_the_parent_can_parse():
    # Run against the installed (0.3) clumsygrad: the child uses only the API 0.2.1 shares.
    config = {"sizes": ["tiny"], "rounds": 1, "target": 0.0, "chains": [50], "chain_rounds": 1}
    proc = subprocess.run(
        [sys.executable, "-E", str(compare021.CHILD), json.dumps(config)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    result = parse_child_output(proc.stdout)
    assert result["clumsygrad"] == clumsygrad.__version__
    assert set(result["mlp"]["tiny"]) == {"clumsygrad", "numpy"}
    assert result["chain"]["50"]["backward"] > 0


def test_fmt_time_picks_the_unit():
    assert [report.fmt_time(s) for s in (2.5, 0.0123, 4.56e-5, 7e-9)] == ["2.50 s", "12.3 ms", "45.6 us", "7.00 ns"]


def test_torch_column_matches_the_yardstick_or_the_report_says_torch_is_missing(quick_run):
    # Whichever applies on this machine is checked; PyTorch is never a requirement.
    if not suite.torch_available():
        assert "PyTorch not installed (no torch column)" in quick_run[0].stdout
        with pytest.raises(ImportError):
            workloads.TorchMLP(workloads.mlp_data(workloads.MLP_SIZES["tiny"]))
        return
    data = workloads.mlp_data(workloads.MLP_SIZES["tiny"])
    torch_model, yardstick = workloads.TorchMLP(data), workloads.NumpyMLP(data)
    torch_model.step()
    yardstick.step()
    for name, param in zip(workloads.PARAM_NAMES, torch_model.params):
        np.testing.assert_allclose(param.detach().numpy(), yardstick.weights()[name], rtol=0, atol=1e-7)


def test_without_compiled_kernels_the_report_says_so_and_times_python_only():
    code = (
        "import sys; sys.modules['clumsygrad._kernels.native'] = None\n"  # as if never built
        "import warnings; warnings.simplefilter('ignore')\n"
        "from clumsygrad.bench import report, suite\n"
        "results = suite.run_suite(['tiny'], suite.Settings(1, 1, {100: 1}, 0.001))\n"
        "print(report.render(results))\n"
    )
    proc = run_bench(code=code)
    assert proc.returncode == 0, proc.stderr
    assert "compiled backend unavailable" in proc.stdout
    assert "backends: python" in proc.stdout
    assert "mlp-tiny" in proc.stdout and "chain-100" in proc.stdout and "n/a" in proc.stdout
