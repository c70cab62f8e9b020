"""What ``python -m clumsygrad.bench`` prints (and plots) from the results dict of ``suite``."""
from __future__ import annotations

import os
import platform
from typing import List, Optional, Sequence

import numpy as np

import clumsygrad

from .compare021 import VERSION as OLD, ratio_of_ratios

BLAS_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


# --------------------------------------------------------------------------- formatting
def fmt_time(seconds: Optional[float]) -> str:
    """``123 us``, ``4.56 ms``: three significant digits, in the unit that fits."""
    if seconds is None:
        return "n/a"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            v = seconds / scale
            return f"{v:.0f} {unit}" if v >= 100 else f"{v:.1f} {unit}" if v >= 10 else f"{v:.2f} {unit}"


def fmt_ratio(r: Optional[float]) -> str:
    return "n/a" if r is None else f"{r:.2f}x"


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if a is None or b is None or b == 0 else a / b


def table(header: Sequence[str], rows: List[Sequence[str]]) -> List[str]:
    """Columns padded to fit; the first left-aligned, the rest right-aligned."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "  ".join(
            str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return [line(header), "-" * len(line(header)), *(line(r) for r in rows)]


def chain_label(n) -> str:
    n = int(n)
    return f"chain-{n // 1_000_000}M" if n % 1_000_000 == 0 else f"chain-{n // 1000}k" if n % 1000 == 0 else f"chain-{n}"


# --------------------------------------------------------------------------- header
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info() -> str:
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas['name']} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy, or a build that does not say
        return "unknown"


def blas_runtime() -> str:
    """The BLAS that is loaded, its core type and thread count: what the timings depend on.

    threadpoolctl (``pip install threadpoolctl``, in the ``bench`` extra) asks the loaded
    library itself; without it NumPy's build configuration names the library, and the
    environment says what it can.
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        coretype = os.environ.get("OPENBLAS_CORETYPE")
        core = f"OPENBLAS_CORETYPE={coretype}" if coretype else "core type unknown"
        return (
            f"{blas_info()} per NumPy's build config; {core}; threads per the variables above "
            "(pip install threadpoolctl to ask the loaded library)"
        )
    libraries = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not libraries:
        return f"{blas_info()} per NumPy's build config; threadpoolctl finds no BLAS loaded"
    return "; ".join(
        f"{i.get('internal_api', '?')} {i.get('version') or ''}".rstrip()
        + f" (core {i.get('architecture') or 'unknown'}, {i.get('num_threads')} thread"
        + ("s" if i.get("num_threads") != 1 else "")
        + f", {os.path.basename(i.get('filepath') or '?')})"
        for i in libraries
    )


def header(results: dict, quick: bool) -> List[str]:
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    pinned = ", ".join(f"{v}={os.environ.get(v, 'unset')}" for v in BLAS_VARS)
    s = results["settings"]
    lines = [
        f"clumsygrad {clumsygrad.__version__} benchmark{' (--quick)' if quick else ''}",
        f"machine : {cpu_model()}, {cores} cores ({usable} usable), {platform.system()} {platform.machine()}",
        f"python  : {platform.python_version()}, numpy {np.__version__}, BLAS {blas_info()}",
        f"threads : BLAS pinned to 1 thread ({pinned})",
        f"blas    : {blas_runtime()}",
        f"backends: {', '.join(results['backends'])}"
        + ("" if results["torch"] else "; PyTorch not installed (no torch column)"),
        f"method  : medians of interleaved rounds (MLP {s['mlp_rounds']}, kernels {s['kernel_rounds']}, "
        f"chains {', '.join(f'{chain_label(n)} {r}' for n, r in s['chain_rounds'].items())}); "
        "backends and NumPy take turns in one process",
    ]
    if results["native_error"]:
        lines.append(f"NOTE    : compiled backend unavailable ({results['native_error']}); python only")
    return lines


# --------------------------------------------------------------------------- tables
def mlp_table(results: dict) -> List[str]:
    has_torch = results["torch"]
    head = ["workload", "cython", "python", "numpy"] + (["torch"] if has_torch else [])
    head += ["python/cython", "cython/numpy", "python/numpy"] + (["torch/numpy"] if has_torch else [])
    rows = []
    for size, t in results["mlp"].items():
        cy, py, npy, th = t.get("cython"), t.get("python"), t["numpy"], t.get("torch")
        row = [f"mlp-{size}", fmt_time(cy), fmt_time(py), fmt_time(npy)] + ([fmt_time(th)] if has_torch else [])
        row += [fmt_ratio(ratio(py, cy)), fmt_ratio(ratio(cy, npy)), fmt_ratio(ratio(py, npy))]
        row += [fmt_ratio(ratio(th, npy))] if has_torch else []
        rows.append(row)
    return [
        "MLP training step (forward, backward, SGD step, zero_grad), median per step",
        "  python/cython > 1: the compiled kernels are faster; X/numpy: times the hand-written NumPy step",
        *table(head, rows),
    ]


def fmt_bytes(value) -> str:
    return "-" if value is None else f"{value:.0f} B"


def chain_table(results: dict) -> List[str]:
    head = ["workload", "build cy", "build py", "backward cy", "backward py", "backward py/cy",
            "backward total cy", "bytes/node cy", "bytes/node py"]
    rows = []
    for n, t in results["chain"].items():
        cy, py = t.get("cython", {}), t.get("python", {})
        rows.append([
            chain_label(n),
            fmt_time(cy.get("build")),
            fmt_time(py.get("build")),
            fmt_time(cy.get("backward")),
            fmt_time(py.get("backward")),
            fmt_ratio(ratio(py.get("backward"), cy.get("backward"))),
            fmt_time(cy["backward"] * int(n) if cy else None),
            fmt_bytes(cy.get("bytes")),
            fmt_bytes(py.get("bytes")),
        ])
    return ["Scalar chain (x * -1, x + 0.5 alternating from one PARAMETER), median per node", *table(head, rows)]


def kernel_table(results: dict) -> List[str]:
    shapes = list(next(iter(results["kernels"].values())))
    compiled = "cython" in results["backends"]
    rows = []
    for kernel, by_shape in results["kernels"].items():
        cells = []
        for shape in shapes:
            t = by_shape[shape]
            if compiled:
                cells.append(f"{fmt_ratio(ratio(t['python'], t['cython']))} ({fmt_time(t['cython'])})")
            else:
                cells.append(fmt_time(t["python"]))
        rows.append([kernel, *cells])
    title = (
        "Kernels: pure/compiled time ratio (compiled time per call); > 1: compiled is faster"
        if compiled
        else f"Kernels: pure time per call (compiled backend unavailable: {results['native_error']})"
    )
    return [title, *table(["kernel", *shapes], rows)]


def compare_table(results: dict, child: dict) -> List[str]:
    """Our results beside clumsygrad 0.2.1's, each normalised by NumPy in its own process."""
    ratios = ratio_of_ratios(results["mlp"], child)
    backends = results["backends"]
    head = ["workload", OLD, "numpy there", f"{OLD}/numpy"]
    head += [f"{b}/numpy" for b in backends] + [f"speedup {b}" for b in backends]
    rows = []
    for size, r in ratios.items():
        theirs = child["mlp"][size]
        rows.append(
            [f"mlp-{size}", fmt_time(theirs["clumsygrad"]), fmt_time(theirs["numpy"]), fmt_ratio(r[f"{OLD}/numpy"])]
            + [fmt_ratio(r.get(f"{b}/numpy")) for b in backends]
            + [fmt_ratio(r.get(f"speedup {b}")) for b in backends]
        )
    lines = [
        f"clumsygrad {OLD} (own venv, numpy {child['numpy']}) vs this build (numpy {np.__version__})",
        f"  speedup = ({OLD}/numpy there) / (backend/numpy here): how many times closer to NumPy this build is",
        *table(head, rows),
        "",
        "chain backward per node:",
    ]
    for n, theirs in child["chain"].items():
        ours = results.get("chain_compare", {}).get(n) or results["chain"].get(n, {})
        mine = "  ".join(f"{b} {fmt_time(ours[b]['backward'])}" for b in backends if b in ours)
        old = theirs.get("error") or f"{fmt_time(theirs['backward'])} (build {fmt_time(theirs['build'])})"
        lines.append(f"  {chain_label(n):<11} {OLD}: {old}" + (f"   |  this build: {mine}" if mine else ""))
    return lines


def render(results: dict, quick: bool = False, child: Optional[dict] = None, child_error: Optional[str] = None) -> str:
    parts = [header(results, quick), mlp_table(results), chain_table(results), kernel_table(results)]
    if child is not None:
        parts.append(compare_table(results, child))
    elif child_error:
        parts.append([f"clumsygrad {OLD} comparison failed: {child_error}"])
    return "\n\n".join("\n".join(p) for p in parts)


# --------------------------------------------------------------------------- plot
def require_matplotlib():
    """The pyplot module for ``--plot``; ``SystemExit`` with install advice when it is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, no display needed
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise SystemExit(
            f"error: --plot needs matplotlib ({exc}). Install it with: pip install 'clumsygrad[plot]'"
        ) from None
    return plt


def plot(results: dict, path: str) -> None:
    """Three panels: MLP step times, chain per-node times, kernel speedups."""
    plt = require_matplotlib()
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(16, 5))
    sizes = list(results["mlp"])
    contenders = list(next(iter(results["mlp"].values()))) if sizes else []
    width = 0.8 / max(len(contenders), 1)
    for i, c in enumerate(contenders):
        ax1.bar([j + i * width for j in range(len(sizes))], [results["mlp"][s][c] * 1e3 for s in sizes], width, label=c)
    ax1.set(xticks=[j + 0.4 - width / 2 for j in range(len(sizes))], xticklabels=[f"mlp-{s}" for s in sizes],
            yscale="log", ylabel="ms per step", title="MLP training step")
    ax1.legend()

    chains = list(results["chain"])
    bars = [(b, m) for b in results["backends"] for m in ("build", "backward")]
    width = 0.8 / len(bars)
    for i, (b, m) in enumerate(bars):
        ax2.bar([j + i * width for j in range(len(chains))],
                [results["chain"][n][b][m] * 1e6 for n in chains], width, label=f"{m} {b}")
    ax2.set(xticks=[j + 0.4 - width / 2 for j in range(len(chains))], xticklabels=[chain_label(n) for n in chains],
            ylabel="us per node", title="Scalar chain")
    ax2.legend()

    kernels = list(results["kernels"])
    shapes = list(results["kernels"][kernels[0]])
    width = 0.8 / len(shapes)
    compiled = "cython" in results["backends"]
    for i, shape in enumerate(shapes):
        values = [
            ratio(results["kernels"][k][shape]["python"], results["kernels"][k][shape]["cython"]) if compiled else 0
            for k in kernels
        ]
        ax3.bar([j + i * width for j in range(len(kernels))], values, width, label=shape)
    ax3.axhline(1.0, color="gray", linewidth=0.8)
    ax3.set(xticks=[j + 0.4 - width / 2 for j in range(len(kernels))], ylabel="pure / compiled time", yscale="log",
            title="Kernel speedup" if compiled else "Kernel speedup (compiled backend unavailable)")
    ax3.set_xticklabels(kernels, rotation=20, ha="right", fontsize=8)
    ax3.legend(title="gradient shape")
    fig.suptitle(f"clumsygrad {clumsygrad.__version__} on {cpu_model()} (1 BLAS thread)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
