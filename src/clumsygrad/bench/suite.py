"""Run every workload on every backend; the results are plain JSON-able dicts.

Times are medians in seconds: per training step, per chain node (build and backward), per kernel
call.  The compiled backend and the NumPy yardsticks take turns in this process.  The pure
backend's graph is only pure when ``Tensor`` is built on the pure node, which is chosen at
import (``CLUMSYGRAD_BACKEND=python``); so when this process has compiled nodes, the pure runs
happen in a child process started with ``CLUMSYGRAD_BACKEND=python``, which times its own NumPy
yardstick beside it (``pure/numpy`` is a ratio measured within the child).
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import clumsygrad
from clumsygrad import _backend
from clumsygrad._kernels import pure

from . import workloads
from .runner import Contender, Progress, loop_sample, run_interleaved

BACKENDS = ("cython", "python")
SEQUENCE_STEPS = tuple(workloads.STEP_WORKLOADS)  # rnn, attention, conv-small, conv-medium, cnn


class Settings(NamedTuple):
    mlp_rounds: int  # rounds of every training-step workload (MLP, RNN, attention)
    kernel_rounds: int
    chain_rounds: Dict[int, int]  # chain length -> rounds (a 1M chain takes seconds per round)
    target: float  # seconds one sample should last
    kernel_shapes: Tuple[Tuple[int, int], ...] = workloads.KERNEL_SHAPES


DEFAULT = Settings(mlp_rounds=15, kernel_rounds=7, chain_rounds={10_000: 15, 1_000_000: 3}, target=0.05)
# --quick: about 30 s on a 2-core VM; the 1M chain (seconds per pure sample) and the 2048x2048
# kernels (a matmul_backward call takes ~0.4 s) are left to the full run.
QUICK = Settings(mlp_rounds=5, kernel_rounds=3, chain_rounds={10_000: 3, 100_000: 1}, target=0.01,
                 kernel_shapes=workloads.KERNEL_SHAPES[:3])


def native_kernels():
    """``(module, None)`` for the compiled kernels, or ``(None, reason)`` when they do not import."""
    try:
        from clumsygrad._kernels import native
    except Exception as exc:  # as _backend: any failure to load them means python only
        return None, f"{type(exc).__name__}: {exc}"
    return native, None


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def pure_in_child() -> bool:
    """Whether the pure backend must be timed in a child: this process's nodes are compiled."""
    return _backend.graph is not _backend.pure_graph


def _use(backend: str):
    return lambda: clumsygrad.set_backend(backend)


# --------------------------------------------------------------------------- step workloads
def step_names(sizes: Sequence[str]) -> List[str]:
    return [f"mlp-{s}" for s in sizes] + list(SEQUENCE_STEPS)


def step_factories(name: str) -> Tuple[Callable[[], object], Callable[[], object], Optional[Callable[[], object]]]:
    """``(clumsygrad model, NumPy model, torch model or None)`` factories of a step workload."""
    if name.startswith("mlp-"):
        data = workloads.mlp_data(workloads.MLP_SIZES[name[4:]])
        return (lambda: workloads.ClumsyMLP(data), lambda: workloads.NumpyMLP(data),
                lambda: workloads.TorchMLP(data))
    make_data, clumsy, numpy = workloads.STEP_WORKLOADS[name]
    data = make_data()
    return (lambda: clumsy(data)), (lambda: numpy(data)), None


def step_contenders(name: str, backends: Sequence[str], torch: bool) -> List[Contender]:
    clumsy, numpy, torch_model = step_factories(name)
    contenders = [Contender(b, loop_sample(clumsy().step), prepare=_use(b)) for b in backends]
    contenders.append(Contender("numpy", loop_sample(numpy().step)))
    if torch and torch_model is not None:
        contenders.append(Contender("torch", loop_sample(torch_model().step)))
    return contenders


def func_contenders(what: str, backends: Sequence[str]) -> List[Contender]:
    """``clumsygrad.func`` on the tiny MLP loss (``workloads.FuncMLP``), one contender per backend."""
    data = workloads.mlp_data(workloads.MLP_SIZES["tiny"])
    return [Contender(b, loop_sample(getattr(workloads.FuncMLP(data), what)), prepare=_use(b)) for b in backends]


def chain_sample(n: int):
    """A sample that builds an ``n``-op chain and backpropagates it once: seconds per node of each."""

    def sample(number: int) -> Dict[str, float]:
        start = time.perf_counter()
        x, out = workloads.build_chain(n)
        built = time.perf_counter()
        out.backward()
        done = time.perf_counter()
        if abs(float(x.grad)) != 1.0:
            raise AssertionError(f"chain of {n}: gradient {x.grad}, expected +-1")
        return {"build": (built - start) / n, "backward": (done - built) / n}

    return sample


def chain_contenders(n: int, backends: Sequence[str]) -> List[Contender]:
    return [Contender(b, chain_sample(n), prepare=_use(b), calibrate=False) for b in backends]


def kernel_contenders(kernel: str, m: int, n: int, modules: Dict[str, object]) -> List[Contender]:
    args = workloads.kernel_args(kernel, m, n)
    return [
        Contender(b, loop_sample(lambda fn=getattr(mod, kernel): fn(*args))) for b, mod in modules.items()
    ]


# --------------------------------------------------------------------------- the pure child
class _Ticks:
    """The child's progress: one ``tick`` line on stdout per sample, which the parent counts."""

    def advance(self, label: str, steps: int = 1) -> None:
        sys.stdout.write("tick\n")
        sys.stdout.flush()

    def finished(self, label: str) -> None:
        pass


def run_pure_child_jobs(config: dict) -> dict:
    """In the ``CLUMSYGRAD_BACKEND=python`` child: the pure step workloads (beside NumPy) and chains."""
    ticks = _Ticks()
    result: dict = {"steps": {}, "chain": {}, "func": {}, "graph": _backend.graph.__name__}
    for name in config["steps"]:
        clumsy, numpy, _ = step_factories(name)
        contenders = [Contender("python", loop_sample(clumsy().step), prepare=_use("python")),
                      Contender("numpy", loop_sample(numpy().step))]
        times = run_interleaved(contenders, config["rounds"], config["target"], ticks, name)
        result["steps"][name] = {c: t["step"] for c, t in times.items()}
    for n, rounds in config["chains"]:
        result["chain"][str(n)] = run_interleaved(chain_contenders(n, ["python"]), rounds, 0.0, ticks)["python"]
    for what in config.get("func", ()):
        times = run_interleaved(func_contenders(what, ["python"]), config["func_rounds"], config["target"], ticks)
        result["func"][what] = times["python"]["step"]
    return result


def pure_child_env() -> Dict[str, str]:
    env = dict(os.environ)
    env[_backend.ENV_VAR] = "python"
    return env


def run_pure_child(config: dict, progress: Optional[Progress] = None) -> dict:
    """Start the pure child, advance ``progress`` per sample it reports, return its results."""
    code = (
        "import json, sys\n"
        "from clumsygrad.bench.suite import run_pure_child_jobs\n"
        "print('result ' + json.dumps(run_pure_child_jobs(json.loads(sys.argv[1]))))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(config)], stdout=subprocess.PIPE,
                            text=True, env=pure_child_env())
    result = None
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("tick"):
            if progress:
                progress.advance("pure graph (child process)")
        elif line.startswith("result "):
            result = json.loads(line[len("result "):])
    if proc.wait() != 0 or result is None:
        raise RuntimeError(f"the pure-backend child process failed (exit {proc.returncode})")
    if progress:
        progress.finished("pure graph (child process)")
    return result


# --------------------------------------------------------------------------- the suite
def count_samples(sizes: Sequence[str], n_backends: int, torch: bool, settings: Settings) -> int:
    """How many samples :func:`run_suite` takes (for the progress bar)."""
    steps = len(step_names(sizes)) * (n_backends + 1) * settings.mlp_rounds
    steps += len(sizes) * torch * settings.mlp_rounds
    if n_backends > 1 and pure_in_child():  # the child times NumPy again beside the pure steps
        steps += len(step_names(sizes)) * settings.mlp_rounds
    kernels = len(workloads.KERNELS) * len(settings.kernel_shapes) * n_backends * settings.kernel_rounds
    chains = sum(settings.chain_rounds.values()) * n_backends
    funcs = len(workloads.FUNC_WORKLOADS) * n_backends * settings.kernel_rounds
    return steps + kernels + chains + funcs


def run_suite(
    sizes: Sequence[str] = tuple(workloads.MLP_SIZES),
    settings: Settings = DEFAULT,
    progress: Optional[Progress] = None,
) -> dict:
    """Every workload, the backends and the yardsticks taking turns; returns the results dict.

    ``results["steps"][name]`` has ``cython``, ``python``, ``numpy`` (and ``torch``) seconds per
    step, plus ``numpy_pure`` when the pure step ran in the child (its own NumPy yardstick);
    ``results["pure_graph"]`` says where the pure backend ran.
    """
    native, native_error = native_kernels()
    backends = BACKENDS if native is not None else ("python",)
    child = "python" in backends and len(backends) > 1 and pure_in_child()
    here = tuple(b for b in backends if not (child and b == "python"))
    torch = torch_available()
    previous = clumsygrad.get_backend()
    settings = Settings(*settings)  # positional settings from older callers get the default shapes
    results = {
        "backends": list(backends),
        "native_error": native_error,
        "torch": torch,
        "settings": settings._asdict(),
        "pure_graph": "a child process" if child else "this process",
        "compiled_graph": pure_in_child(),  # False under CLUMSYGRAD_BACKEND=python: pure nodes here
        "steps": {},
        "chain": {},
        "func": {},
        "kernels": {},
    }
    try:
        for name in step_names(sizes):
            times = run_interleaved(step_contenders(name, here, torch), settings.mlp_rounds, settings.target,
                                    progress, name)
            results["steps"][name] = {contender: t["step"] for contender, t in times.items()}
        for n, rounds in settings.chain_rounds.items():
            results["chain"][str(n)] = run_interleaved(
                chain_contenders(n, here), rounds, settings.target, progress, f"chain-{n:,}"
            )
        for what in workloads.FUNC_WORKLOADS:
            times = run_interleaved(func_contenders(what, here), settings.kernel_rounds, settings.target,
                                    progress, f"func {what}")
            results["func"][what] = {b: t["step"] for b, t in times.items()}
        if child:
            config = {"steps": step_names(sizes), "rounds": settings.mlp_rounds, "target": settings.target,
                      "chains": [[n, r] for n, r in settings.chain_rounds.items()],
                      "func": list(workloads.FUNC_WORKLOADS), "func_rounds": settings.kernel_rounds}
            pure_results = run_pure_child(config, progress)
            for name, times in pure_results["steps"].items():
                results["steps"][name]["python"] = times["python"]
                results["steps"][name]["numpy_pure"] = times["numpy"]
            for n, times in pure_results["chain"].items():
                results["chain"][n]["python"] = times
            for what, seconds in pure_results.get("func", {}).items():
                results["func"][what]["python"] = seconds
        for n in settings.chain_rounds:
            for backend in backends:
                results["chain"][str(n)][backend]["bytes"] = workloads.chain_bytes_per_node(n, backend)
        modules = {"cython": native, "python": pure} if native is not None else {"python": pure}
        for kernel in workloads.KERNELS:
            results["kernels"][kernel] = {}
            for m, n in settings.kernel_shapes:
                times = run_interleaved(
                    kernel_contenders(kernel, m, n, modules),
                    settings.kernel_rounds,
                    settings.target,
                    progress,
                    f"{kernel} {m}x{n}",
                )
                results["kernels"][kernel][f"{m}x{n}"] = {b: t["step"] for b, t in times.items()}
    finally:
        clumsygrad.set_backend(previous)
    results["mlp"] = {name[4:]: t for name, t in results["steps"].items() if name.startswith("mlp-")}
    return results
