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


def venv_dir(version: str = VERSION, tag: Optional[str] = None) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    tag = tag or f"py{sys.version_info.major}{sys.version_info.minor}"
    return Path(base) / "clumsygrad-bench" / f"venv-clumsygrad-{version}-{tag}"


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _run(cmd: List[str], what: str) -> str:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise CompareError(f"{what} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def ensure_venv(log=sys.stderr, version: str = VERSION, base_python: str = sys.executable,
                tag: Optional[str] = None) -> Path:
    """The venv's interpreter, creating the venv (``base_python -m venv`` + pip) on first use."""
    venv = venv_dir(version, tag)
    python = venv_python(venv)
    check = [str(python), "-c", f"import importlib.metadata as m; assert m.version('clumsygrad') == '{version}'"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print(f"creating {venv} with clumsygrad=={version} (first use only) ...", file=log, flush=True)
    _run([base_python, "-m", "venv", "--clear", str(venv)], "python -m venv")
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", f"clumsygrad=={version}"]
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


def run_child(sizes, rounds: int, target: float, chain_rounds: int, log=sys.stderr, version: str = VERSION,
              base_python: str = sys.executable, tag: Optional[str] = None) -> dict:
    """Time the workloads under clumsygrad ``version`` (0.2.1 by default, or 1.0.0 with a
    Python >= 3.14 ``base_python``); returns the parsed child result."""
    python = ensure_venv(log, version, base_python, tag)
    config = {"sizes": list(sizes), "rounds": rounds, "target": target,
              "chains": list(CHAIN_LENGTHS), "chain_rounds": chain_rounds}
    # -E: our PYTHONPATH (a source checkout) must not shadow the venv's clumsygrad.
    # stderr passes through: the child's progress lines.
    proc = subprocess.run([str(python), "-E", str(CHILD), json.dumps(config)],
                          stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise CompareError(f"the clumsygrad {version} child exited with {proc.returncode}")
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
        row = {f"{child.get('clumsygrad', VERSION)}/numpy": base}
        for backend, seconds in ours[size].items():
            if backend not in ("cython", "python"):
                continue
            # the pure step may have run in a child beside its own NumPy step (suite.run_suite)
            numpy_there = ours[size].get("numpy_pure", ours[size]["numpy"]) if backend == "python" else None
            relative = seconds / (numpy_there or ours[size]["numpy"])
            row[f"{backend}/numpy"] = relative
            row[f"speedup {backend}"] = base / relative
        table[size] = row
    return table


# --------------------------------------------------------------------------- --compare-1.0.0
VERSION_100 = "1.0.0"  # published for Python >= 3.14 only


def python_version_of(executable: str) -> Optional[tuple]:
    try:
        out = subprocess.run([executable, "-c", "import sys; print(*sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30).stdout.split()
        return tuple(int(v) for v in out[:2]) if len(out) >= 2 else None
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def find_python314() -> Optional[str]:
    """A Python >= 3.14 interpreter on PATH (``python3.14``, ``python3.15``, ... then ``python3``)."""
    import shutil

    if sys.version_info >= (3, 14):
        return sys.executable
    candidates = [f"python3.{minor}" for minor in range(14, 30)] + ["python3", "python"]
    for name in candidates:
        path = shutil.which(name)
        if path and (python_version_of(path) or (0, 0)) >= (3, 14):
            return path
    return None


NO_PYTHON314 = (
    f"--compare-1.0.0: clumsygrad {VERSION_100} is published for Python >= 3.14 only, and no such "
    "interpreter was found on PATH (looked for python3.14 ... python3.29, python3, python). "
    "Install one (e.g. `uv python install 3.14` or your distribution's python3.14 package) and "
    "put it on PATH."
)
