"""``python -m clumsygrad.bench``: time clumsygrad against its pure backend and plain NumPy."""
from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time
from typing import List, Optional

import clumsygrad

from . import compare021, report, suite, workloads
from .runner import Progress, fmt_seconds, run_interleaved


def parse_sizes(text: str) -> List[str]:
    sizes = [s for s in text.replace(",", " ").split() if s]
    unknown = [s for s in sizes if s not in workloads.MLP_SIZES]
    if unknown or not sizes:
        raise argparse.ArgumentTypeError(f"unknown size(s) {unknown}; choose from {', '.join(workloads.MLP_SIZES)}")
    return sizes


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m clumsygrad.bench",
        description="Time training steps (MLP, character RNN, self-attention, a conv2d layer, the digits CNN), a deep scalar chain and the "
        "backward kernels on the compiled and pure backends, against hand-written NumPy steps.",
    )
    p.add_argument("--quick", action="store_true", help="few rounds (about 30 s): for tests and CI")
    p.add_argument("--sizes", type=parse_sizes, default=list(workloads.MLP_SIZES),
                   help=f"MLP sizes, comma-separated (default: {','.join(workloads.MLP_SIZES)})")
    p.add_argument("--plot", metavar="FILE.png", help="also draw the results (needs matplotlib: clumsygrad[plot])")
    p.add_argument("--compare-0.2.1", dest="compare", action="store_true",
                   help=f"also time clumsygrad {compare021.VERSION} in a venv of its own (needs PyPI the first time)")
    p.add_argument("--compare-1.0.0", dest="compare100", action="store_true",
                   help=f"also time clumsygrad {compare021.VERSION_100} (Python >= 3.14 only: needs a python3.14 "
                   "or newer on PATH) in a venv of its own")
    p.add_argument("--script", metavar='"FILE [ARGS]"',
                   help="instead of the suite, run your script (with its arguments, quoted as one) under the "
                   "compiled and the pure backends, each in a fresh process, and report both wall times")
    p.add_argument("--repeat", type=int, default=3, metavar="N",
                   help="with --script: runs per backend, alternating (default: 3; the median is reported)")
    return p


def pin_blas_threads(argv: List[str]) -> None:
    """Re-run this command with one BLAS thread unless already so.

    NumPy (imported by clumsygrad) has loaded its BLAS, which reads these variables only at
    load time, so setting them now needs a fresh process.
    """
    if all(os.environ.get(v) == "1" for v in report.BLAS_VARS):
        return
    os.environ.update({v: "1" for v in report.BLAS_VARS})
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "clumsygrad.bench", *argv])


def chain_for_compare(backends, rounds: int) -> dict:
    """Our chain at the lengths only the 0.2.1 comparison uses (ones 0.2.1 survives)."""
    here = [b for b in backends if not (b == "python" and suite.pure_in_child())]
    short = [n for n in compare021.CHAIN_LENGTHS if n not in workloads.CHAIN_LENGTHS]
    return {str(n): run_interleaved(suite.chain_contenders(n, here), rounds, 0.0) for n in short}


# --------------------------------------------------------------------------- --script
def run_script(command: List[str], backend: str) -> float:
    """Wall time of ``python command...`` in a fresh process with ``CLUMSYGRAD_BACKEND=backend``."""
    env = dict(os.environ, CLUMSYGRAD_BACKEND=backend)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *command], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"error: `{shlex.join(command)}` failed under CLUMSYGRAD_BACKEND={backend} "
                         f"(exit {proc.returncode}):\n{proc.stderr.strip()[-2000:]}")
    return elapsed


def script_main(spec: str, repeat: int) -> int:
    command = shlex.split(spec)
    if not command:
        raise SystemExit("error: --script needs a file name")
    if not os.path.isfile(command[0]):
        raise SystemExit(f"error: --script: no such file: {command[0]}")
    backends = ["cython", "python"] if suite.native_kernels()[0] is not None else ["python"]
    repeat = max(1, repeat)
    progress = Progress(repeat * len(backends) + len(backends))
    times = {b: [] for b in backends}
    startup = {}
    for b in backends:  # what every run pays before the script's first line: interpreter and imports
        startup[b] = run_script(["-c", "import clumsygrad"], b)
        progress.advance(f"startup {b}")
    for r in range(repeat):
        for b in backends[r % len(backends):] + backends[:r % len(backends)]:
            times[b].append(run_script(command, b))
            progress.advance(f"{command[0]} {b} (run {r + 1}/{repeat})")
    progress.finished(command[0])
    progress.close()
    median = {b: statistics.median(t) for b, t in times.items()}
    rows = [[name, fmt_seconds_precise(median[b]), fmt_seconds_precise(min(times[b])),
             fmt_seconds_precise(startup[b])] for b, name in zip(backends, ("compiled", "pure")[-len(backends):])]
    lines = [
        *report.wrap(f"`python {shlex.join(command)}`: wall time of the whole process, median of {repeat} "
                     "runs per backend taking turns (CLUMSYGRAD_BACKEND=cython, =python; BLAS pinned to one "
                     "thread; the script's output discarded)"),
        "",
        *report.table(["backend", "median", "best", "startup+import"], rows),
        "",
    ]
    if len(backends) == 2:
        lines += report.wrap(f"verdict: the pure backend took {median['python'] / median['cython']:.2f}x the "
                             f"compiled backend's time ({median['python']:.2f} vs {median['cython']:.2f} s)")
    else:
        lines += report.wrap(f"verdict: compiled backend unavailable ({suite.native_kernels()[1]}); "
                             f"pure: {fmt_seconds_precise(median['python'])}")
    print("\n".join(lines))
    return 0


def fmt_seconds_precise(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 100 else fmt_seconds(seconds)


# --------------------------------------------------------------------------- main
def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    if args.plot:
        report.require_matplotlib()  # fail before minutes of timing, not after
    python314 = None
    if args.compare100:
        python314 = compare021.find_python314()
        if python314 is None:
            print(f"error: {compare021.NO_PYTHON314}", file=sys.stderr)
            return 2
    pin_blas_threads(argv)
    if args.script is not None:
        return script_main(args.script, args.repeat)

    settings = suite.QUICK if args.quick else suite.DEFAULT
    native, _ = suite.native_kernels()
    n_backends = len(suite.BACKENDS) if native is not None else 1
    progress = Progress(suite.count_samples(args.sizes, n_backends, suite.torch_available(), settings))
    results = suite.run_suite(args.sizes, settings, progress)
    progress.close()

    child = child_error = None
    extra = []
    if args.compare or args.compare100:
        previous = clumsygrad.get_backend()
        results["chain_compare"] = chain_for_compare(results["backends"], settings.chain_rounds[10_000])
        clumsygrad.set_backend(previous)
    if args.compare:
        try:
            child = compare021.run_child(args.sizes, settings.mlp_rounds, settings.target, settings.chain_rounds[10_000])
        except compare021.CompareError as exc:
            child_error = str(exc)
    if args.compare100:
        version = compare021.VERSION_100
        try:
            tag = "py" + "".join(map(str, compare021.python_version_of(python314) or ("3", "14")))
            other = compare021.run_child(args.sizes, settings.mlp_rounds, settings.target,
                                         settings.chain_rounds[10_000], version=version, base_python=python314,
                                         tag=tag)
            extra.append(report.compare_table(results, other))
        except compare021.CompareError as exc:
            child_error = (child_error + "; " if child_error else "") + str(exc)
            extra.append(report.wrap(f"clumsygrad {version} comparison failed: {exc}", indent=2))

    print(report.render(results, args.quick, child, child_error if args.compare else None, extra))
    if args.plot:
        report.plot(results, args.plot)
        print(f"\nplot written to {args.plot}")
    return 1 if child_error else 0
