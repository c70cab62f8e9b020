"""What ``python -m clumsygrad.bench`` prints (and plots) from the results dict of ``suite``."""
from __future__ import annotations

import os
import platform
import textwrap
from typing import List, Optional, Sequence

import numpy as np

import clumsygrad

from .compare021 import VERSION as OLD, ratio_of_ratios

OLD_DEFAULT = OLD

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


WIDTH = 80  # the report fits an 80-column terminal


def table(header: Sequence[str], rows: List[Sequence[str]], width: int = WIDTH) -> List[str]:
    """Columns padded to fit; the first left-aligned, the rest right-aligned.

    A table wider than ``width`` is cut into narrower tables, one under the other, each
    repeating the first column.
    """
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    groups: List[List[int]] = [[]]
    used = widths[0]
    for i in range(1, len(header)):
        if groups[-1] and used + 2 + widths[i] > width:
            groups.append([])
            used = widths[0]
        groups[-1].append(i)
        used += 2 + widths[i]
    out: List[str] = []
    for group in groups:
        columns = [0, *group]

        def line(cells):
            return "  ".join(
                str(cells[i]).ljust(widths[i]) if i == 0 else str(cells[i]).rjust(widths[i]) for i in columns
            ).rstrip()

        if out:
            out.append("")
        out += [line(header), "-" * len(line(header)), *(line(r) for r in rows)]
    return out


def wrap(text: str, indent: int = 0, width: int = WIDTH) -> List[str]:
    """``text`` wrapped to ``width`` columns, continuation lines indented by ``indent``."""
    return textwrap.wrap(text, width, subsequent_indent=" " * indent, break_on_hyphens=False) or [""]


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
        f"method  : medians of interleaved rounds (steps {s['mlp_rounds']}, kernels {s['kernel_rounds']}, "
        f"chains {', '.join(f'{chain_label(n)} {r}' for n, r in s['chain_rounds'].items())}); "
        "backends and NumPy take turns in one process",
    ]
    if results.get("pure_graph"):
        lines.append(f"pure    : the pure backend (CLUMSYGRAD_BACKEND=python: pure nodes, engine and kernels) "
                     f"ran in {results['pure_graph']}, beside its own NumPy step")
    if results["native_error"]:
        lines.append(f"NOTE    : compiled backend unavailable ({results['native_error']}); python only")
    elif results.get("compiled_graph") is False:
        lines.append("NOTE    : CLUMSYGRAD_BACKEND=python: the 'compiled' columns are the compiled kernels "
                     "on the pure graph (the node base is chosen at import); unset it to time the compiled graph")
    return [wrapped for line in lines for wrapped in wrap(line, indent=10)]


# --------------------------------------------------------------------------- tables
STEP_TITLES = {
    "rnn": "character RNN, batch 8, 16 steps, H=64",
    "attention": "self-attention, batch 8, seq 16, width 32",
    "conv-small": "conv2d 3x3 forward + input/weight/bias gradients (no optimizer), N=64, 1x8x8 -> 16",
    "conv-medium": "the same, N=32, 16x28x28 -> 32",
    "cnn": "digits CNN (conv 1-16, conv 16-32, max pool, linear 512-10), batch 32, Adam",
}


def pure_over_numpy(t: dict) -> Optional[float]:
    """The pure step over NumPy's, each timed in the same process (the child's, when it ran there)."""
    return ratio(t.get("python"), t.get("numpy_pure", t.get("numpy")))


def step_table(results: dict) -> List[str]:
    has_torch = results["torch"]
    head = ["workload", "compiled", "pure", "numpy"] + (["torch"] if has_torch else [])
    head += ["comp/np", "pure/np"] + (["torch/np"] if has_torch else [])
    rows = []
    for name, t in results["steps"].items():
        cy, py, npy, th = t.get("cython"), t.get("python"), t["numpy"], t.get("torch")
        row = [name, fmt_time(cy), fmt_time(py), fmt_time(npy)]
        row += [fmt_time(th) if th is not None else "-"] if has_torch else []
        row += [fmt_ratio(ratio(cy, npy)), fmt_ratio(pure_over_numpy(t))]
        row += [fmt_ratio(ratio(th, npy)) if th is not None else "-"] if has_torch else []
        rows.append(row)
    sizes = ", ".join(f"{name} = {STEP_TITLES[name]}" for name in results["steps"] if name in STEP_TITLES)
    return [
        "Training steps (forward, backward, SGD step, zero_grad), median per step",
        *wrap("  X/np: time over the hand-written NumPy step (backward derived by hand) timed "
              "beside it; < 1 is faster than NumPy. mlp-tiny/medium/large = batch 16/64/256, "
              "32-32-8 / 256-256-10 / 1024-1024-10" + (f"; {sizes}" if sizes else ""), indent=2),
        *table(head, rows),
    ]


def mlp_table(results: dict) -> List[str]:
    """The training-step table (older name)."""
    return step_table(results)


def fmt_bytes(value) -> str:
    return "-" if value is None else f"{value:.0f} B"


def chain_table(results: dict) -> List[str]:
    head = ["workload", "build", "backward", "bytes", "pure build", "pure backward", "pure bytes"]
    rows = []
    for n, t in results["chain"].items():
        cy, py = t.get("cython", {}), t.get("python", {})
        rows.append([
            chain_label(n),
            fmt_time(cy.get("build")),
            fmt_time(cy.get("backward")),
            fmt_bytes(cy.get("bytes")),
            fmt_time(py.get("build")),
            fmt_time(py.get("backward")),
            fmt_bytes(py.get("bytes")),
        ])
    where = results.get("pure_graph", "this process")
    return [
        "Scalar chain (x * -1, x + 0.5 alternating from one PARAMETER), median per node",
        *wrap("  build/backward/bytes: the compiled graph; pure: the pure graph "
              f"(CLUMSYGRAD_BACKEND=python, in {where}); bytes: resident memory per node", indent=2),
        *table(head, rows),
    ]


def func_table(results: dict) -> List[str]:
    """``clumsygrad.func`` on the tiny MLP loss: compiled and pure backends."""
    if not results.get("func"):
        return []
    head = ["transform", "compiled", "pure", "pure/comp"]
    rows = []
    for what, t in results["func"].items():
        cy, py = t.get("cython"), t.get("python")
        rows.append([what, fmt_time(cy), fmt_time(py), fmt_ratio(ratio(py, cy))])
    return [
        "Higher order (clumsygrad.func) on the mlp-tiny loss, median per call",
        *wrap("  grad: func.grad in all four parameters; hvp: one Hessian-vector product in all "
              "1,320 numbers; hessian: the 256 x 256 block of W2 (one reverse pass per row)", indent=2),
        *table(head, rows),
    ]


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
        "Kernels: pure/compiled time (compiled time per call); > 1: compiled is faster"
        if compiled
        else f"Kernels: pure time per call (compiled backend unavailable: {results['native_error']})"
    )
    return [title, *table(["kernel", *shapes], rows)]


def compare_table(results: dict, child: dict) -> List[str]:
    """Our results beside an older clumsygrad's (0.2.1, 1.0.0), each normalised by NumPy in its own process."""
    OLD = child.get("clumsygrad", OLD_DEFAULT)
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
        *wrap(f"  speedup = ({OLD}/numpy there) / (backend/numpy here): how many times closer to NumPy "
              "this build is", indent=2),
        *table(head, rows),
        "",
        "chain backward per node:",
    ]
    for n, theirs in child["chain"].items():
        ours = results.get("chain_compare", {}).get(n) or results["chain"].get(n, {})
        mine = "  ".join(f"{b} {fmt_time(ours[b]['backward'])}" for b in backends if b in ours)
        old = theirs.get("error") or f"{fmt_time(theirs['backward'])} (build {fmt_time(theirs['build'])})"
        lines.append(f"  {chain_label(n):<11} {OLD}: {old}")
        if mine:
            lines.append(f"  {'':<11} this build: {mine}")
    return lines


def verdict(results: dict) -> str:
    """One line: each training step's time over NumPy's, compiled and pure."""
    parts = []
    for name, t in results["steps"].items():
        cells = []
        if t.get("cython") is not None:
            cells.append(f"compiled {fmt_ratio(ratio(t['cython'], t['numpy']))}")
        if t.get("python") is not None:
            cells.append(f"pure {fmt_ratio(pure_over_numpy(t))}")
        parts.append(f"{name} {' / '.join(cells)}")
    return "verdict (time / hand-written NumPy step's): " + "; ".join(parts)


def render(results: dict, quick: bool = False, child: Optional[dict] = None, child_error: Optional[str] = None,
           extra: Sequence[List[str]] = ()) -> str:
    parts = [header(results, quick), step_table(results), chain_table(results), kernel_table(results)]
    if results.get("func"):
        parts.append(func_table(results))
    if child is not None:
        parts.append(compare_table(results, child))
    elif child_error:
        parts.append(wrap(f"clumsygrad {OLD} comparison failed: {child_error}", indent=2))
    parts.extend(extra)
    parts.append(wrap(verdict(results), indent=2))
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
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(18, 5))
    steps = results.get("steps") or {f"mlp-{k}": v for k, v in results["mlp"].items()}
    names = list(steps)
    contenders = [c for c in (next(iter(steps.values())) if names else {}) if c != "numpy_pure"]
    width = 0.8 / max(len(contenders), 1)
    for i, c in enumerate(contenders):
        ax1.bar([j + i * width for j in range(len(names))], [steps[s].get(c, 0) * 1e3 for s in names], width,
                label=c)
    ax1.set(xticks=[j + 0.4 - width / 2 for j in range(len(names))], xticklabels=names,
            yscale="log", ylabel="ms per step", title="Training step")
    ax1.legend()

    chains = list(results["chain"])
    bars = [(b, m) for b in results["backends"] for m in ("build", "backward")]
    width = 0.8 / len(bars)
    for i, (b, m) in enumerate(bars):
        ax2.bar([j + i * width for j in range(len(chains))],
                [results["chain"][n].get(b, {}).get(m, 0) * 1e6 for n in chains], width, label=f"{m} {b}")
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
