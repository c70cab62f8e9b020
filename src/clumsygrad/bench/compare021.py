"""``--compare-0.2.1``: the same workloads under clumsygrad 0.2.1, in a venv of its own.

Both packages are called ``clumsygrad``, so 0.2.1 cannot share this process.  A venv in
the user cache gets ``clumsygrad==0.2.1`` and this process's NumPy version; ``_child021.py``
times the 0.2.1 step and the NumPy yardstick there and prints JSON.  Machines and processes
differ in small ways, so the comparison is a ratio of ratios: each library's step time is
divided by the NumPy yardstick timed in the same process.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

VERSION = "0.2.1"
CHILD = Path(__file__).with_name("_child021.py")
CHAIN_LENGTHS = (500, 10_000, 1_000_000)  # 500: a depth 0.2.1 can backpropagate


class CompareError(RuntimeError):
    """The 0.2.1 environment could not be set up or its child run failed."""


def venv_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    tag = f"py{sys.version_info.major}{sys.version_info.minor}"
    return Path(base) / "clumsygrad-bench" / f"venv-clumsygrad-{VERSION}-{tag}"


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _run(cmd: List[str], what: str) -> str:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise CompareError(f"{what} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def ensure_venv(log=sys.stderr) -> Path:
    """The venv's interpreter, creating the venv (``python -m venv`` + pip) on first use."""
    venv = venv_dir()
    python = venv_python(venv)
    check = [str(python), "-c", f"import importlib.metadata as m; assert m.version('clumsygrad') == '{VERSION}'"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print(f"creating {venv} with clumsygrad=={VERSION} (first use only) ...", file=log, flush=True)
    _run([sys.executable, "-m", "venv", "--clear", str(venv)], "python -m venv")
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", f"clumsygrad=={VERSION}"]
    try:  # the same NumPy as ours, so the libraries are the only difference
        _run(pip + [f"numpy=={np.__version__}"], "pip install")
    except CompareError:
        _run(pip + ["numpy"], "pip install")
    return python


def parse_child_output(stdout: str) -> dict:
    """The child's JSON result: the last stdout line that is a JSON object."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                result = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "mlp" in result and "chain" in result:
                return result
    raise CompareError(f"the clumsygrad {VERSION} child printed no result: {stdout[-500:]!r}")


def run_child(sizes, rounds: int, target: float, chain_rounds: int, log=sys.stderr) -> dict:
    """Time the workloads under clumsygrad 0.2.1; returns the parsed child result."""
    python = ensure_venv(log)
    config = {"sizes": list(sizes), "rounds": rounds, "target": target,
              "chains": list(CHAIN_LENGTHS), "chain_rounds": chain_rounds}
    # -E: our PYTHONPATH (a source checkout) must not shadow the venv's clumsygrad.
    # stderr passes through: the child's progress lines.
    proc = subprocess.run([str(python), "-E", str(CHILD), json.dumps(config)],
                          stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise CompareError(f"the clumsygrad {VERSION} child exited with {proc.returncode}")
    return parse_child_output(proc.stdout)


def ratio_of_ratios(ours: Dict[str, Dict[str, float]], child: dict) -> Dict[str, Dict[str, Optional[float]]]:
    """Per MLP size: each time over its own process's NumPy step, and 0.2.1's ratio over ours.

    ``ours`` is ``{size: {"cython": s, "python": s, "numpy": s}}``; the result has, per size,
    ``"0.2.1/numpy"``, ``"<backend>/numpy"`` and ``"speedup <backend>"``, where a speedup of 3
    means 0.2.1 is three times further from NumPy than this backend.
    """
    table = {}
    for size, theirs in child["mlp"].items():
        if size not in ours:
            continue
        base = theirs["clumsygrad"] / theirs["numpy"]
        row = {f"{VERSION}/numpy": base}
        for backend, seconds in ours[size].items():
            if backend in ("numpy", "torch"):
                continue
            relative = seconds / ours[size]["numpy"]
            row[f"{backend}/numpy"] = relative
            row[f"speedup {backend}"] = base / relative
        table[size] = row
    return table
