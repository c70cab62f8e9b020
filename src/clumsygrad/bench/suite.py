"""Run every workload on every backend in this process; the results are plain JSON-able dicts.

Times are medians in seconds: per MLP step, per chain node (build and backward), per kernel call.
"""
from __future__ import annotations

import importlib.util
import time
from typing import Dict, List, NamedTuple, Optional, Sequence

import clumsygrad
from clumsygrad._kernels import pure

from . import workloads
from .runner import Contender, Progress, loop_sample, run_interleaved

BACKENDS = ("cython", "python")


class Settings(NamedTuple):
    mlp_rounds: int
    kernel_rounds: int
    chain_rounds: Dict[int, int]  # chain length -> rounds (a 1M chain takes seconds per round)
    target: float  # seconds one sample should last


DEFAULT = Settings(mlp_rounds=15, kernel_rounds=7, chain_rounds={10_000: 15, 1_000_000: 3}, target=0.05)
QUICK = Settings(mlp_rounds=3, kernel_rounds=3, chain_rounds={10_000: 3, 1_000_000: 1}, target=0.005)


def native_kernels():
    """``(module, None)`` for the compiled kernels, or ``(None, reason)`` when they do not import."""
    try:
        from clumsygrad._kernels import native
    except Exception as exc:  # as _backend: any failure to load them means python only
        return None, f"{type(exc).__name__}: {exc}"
    return native, None


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def _use(backend: str):
    return lambda: clumsygrad.set_backend(backend)


def mlp_contenders(size: workloads.MLPSize, backends: Sequence[str], torch: bool) -> List[Contender]:
    data = workloads.mlp_data(size)
    contenders = [
        Contender(b, loop_sample(workloads.ClumsyMLP(data).step), prepare=_use(b)) for b in backends
    ]
    contenders.append(Contender("numpy", loop_sample(workloads.NumpyMLP(data).step)))
    if torch:
        contenders.append(Contender("torch", loop_sample(workloads.TorchMLP(data).step)))
    return contenders


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


def count_samples(sizes: Sequence[str], n_backends: int, torch: bool, settings: Settings) -> int:
    """How many samples :func:`run_suite` takes (for the progress bar)."""
    mlp = len(sizes) * (n_backends + 1 + torch) * settings.mlp_rounds
    kernels = len(workloads.KERNELS) * len(workloads.KERNEL_SHAPES) * n_backends * settings.kernel_rounds
    chains = sum(settings.chain_rounds.values()) * n_backends
    return mlp + kernels + chains


def run_suite(
    sizes: Sequence[str] = tuple(workloads.MLP_SIZES),
    settings: Settings = DEFAULT,
    progress: Optional[Progress] = None,
) -> dict:
    """Every workload, the backends and the yardsticks taking turns; returns the results dict."""
    native, native_error = native_kernels()
    backends = BACKENDS if native is not None else ("python",)
    torch = torch_available()
    previous = clumsygrad.get_backend()
    results = {
        "backends": list(backends),
        "native_error": native_error,
        "torch": torch,
        "settings": settings._asdict(),
        "mlp": {},
        "chain": {},
        "kernels": {},
    }
    try:
        for name in sizes:
            results["mlp"][name] = {
                contender: times["step"]
                for contender, times in run_interleaved(
                    mlp_contenders(workloads.MLP_SIZES[name], backends, torch),
                    settings.mlp_rounds,
                    settings.target,
                    progress,
                    f"mlp-{name}",
                ).items()
            }
        for n, rounds in settings.chain_rounds.items():
            results["chain"][str(n)] = run_interleaved(
                chain_contenders(n, backends), rounds, settings.target, progress, f"chain-{n:,}"
            )
            for backend in backends:
                results["chain"][str(n)][backend]["bytes"] = workloads.chain_bytes_per_node(n, backend)
        modules = {"cython": native, "python": pure} if native is not None else {"python": pure}
        for kernel in workloads.KERNELS:
            results["kernels"][kernel] = {}
            for m, n in workloads.KERNEL_SHAPES:
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
    return results
