"""``python -m clumsygrad.bench``: time clumsygrad against its pure backend and plain NumPy."""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

import clumsygrad

from . import compare021, report, suite, workloads
from .runner import Progress, run_interleaved


def parse_sizes(text: str) -> List[str]:
    sizes = [s for s in text.replace(",", " ").split() if s]
    unknown = [s for s in sizes if s not in workloads.MLP_SIZES]
    if unknown or not sizes:
        raise argparse.ArgumentTypeError(f"unknown size(s) {unknown}; choose from {', '.join(workloads.MLP_SIZES)}")
    return sizes


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m clumsygrad.bench",
        description="Time an MLP training step, a deep scalar chain and the backward kernels on the "
        "compiled ('cython') and pure ('python') backends, against a hand-written NumPy step.",
    )
    p.add_argument("--quick", action="store_true", help="few rounds (about 30 s): for tests and CI")
    p.add_argument("--sizes", type=parse_sizes, default=list(workloads.MLP_SIZES),
                   help=f"MLP sizes, comma-separated (default: {','.join(workloads.MLP_SIZES)})")
    p.add_argument("--plot", metavar="FILE.png", help="also draw the results (needs matplotlib: clumsygrad[plot])")
    p.add_argument("--compare-0.2.1", dest="compare", action="store_true",
                   help=f"also time clumsygrad {compare021.VERSION} in a venv of its own (needs PyPI the first time)")
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
    short = [n for n in compare021.CHAIN_LENGTHS if n not in workloads.CHAIN_LENGTHS]
    return {str(n): run_interleaved(suite.chain_contenders(n, backends), rounds, 0.0) for n in short}


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    if args.plot:
        report.require_matplotlib()  # fail before minutes of timing, not after
    pin_blas_threads(argv)

    settings = suite.QUICK if args.quick else suite.DEFAULT
    native, _ = suite.native_kernels()
    n_backends = len(suite.BACKENDS) if native is not None else 1
    progress = Progress(suite.count_samples(args.sizes, n_backends, suite.torch_available(), settings))
    results = suite.run_suite(args.sizes, settings, progress)
    progress.close()

    child = child_error = None
    if args.compare:
        previous = clumsygrad.get_backend()
        results["chain_compare"] = chain_for_compare(results["backends"], settings.chain_rounds[10_000])
        clumsygrad.set_backend(previous)
        try:
            child = compare021.run_child(args.sizes, settings.mlp_rounds, settings.target, settings.chain_rounds[10_000])
        except compare021.CompareError as exc:
            child_error = str(exc)

    print(report.render(results, args.quick, child, child_error))
    if args.plot:
        report.plot(results, args.plot)
        print(f"\nplot written to {args.plot}")
    return 1 if child_error else 0
