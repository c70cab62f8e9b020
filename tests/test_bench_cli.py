"""``python -m clumsygrad.bench --script`` and ``--compare-1.0.0`` (issue 19)."""
import os
import stat
import subprocess
import sys

import pytest

from clumsygrad.bench import compare021

pytestmark = pytest.mark.both_backends

SCRIPT = """
import os, sys
import clumsygrad
from clumsygrad._backend import graph
with open(sys.argv[1], "a") as f:
    f.write(f"{os.environ.get('CLUMSYGRAD_BACKEND')} {graph.__name__.rsplit('.', 1)[-1]} {sys.argv[2]}\\n")
"""


def run_bench(*args, env=None):
    return subprocess.run([sys.executable, "-m", "clumsygrad.bench", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def test_script_runs_under_both_backends_and_reports_both_times(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    log = tmp_path / "log.txt"
    proc = run_bench("--script", f"{script} {log} 'two words'", "--repeat", "2")
    assert proc.returncode == 0, proc.stderr
    runs = log.read_text().splitlines()
    # each backend twice, taking turns; the pure runs really have the pure graph
    assert sorted(runs) == ["cython native two words"] * 2 + ["python pure two words"] * 2, runs
    assert runs[0] != runs[1]
    table = {line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith(("compiled ", "pure "))}
    assert set(table) == {"compiled", "pure"}
    assert all(line.count(" s") == 3 for line in table.values()), table
    assert "verdict: the pure backend took" in proc.stdout and "x the compiled backend's time" in proc.stdout
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80


def test_script_that_fails_is_reported_with_its_error(tmp_path):
    script = tmp_path / "bad.py"
    script.write_text("raise SystemExit('boom from the script')\n")
    proc = run_bench("--script", str(script), "--repeat", "1")
    assert proc.returncode != 0
    assert "failed under CLUMSYGRAD_BACKEND=" in proc.stderr and "boom from the script" in proc.stderr


def test_script_that_does_not_exist_is_a_clear_error(tmp_path):
    proc = run_bench("--script", str(tmp_path / "missing.py"))
    assert proc.returncode != 0 and "no such file" in proc.stderr


def fake_python(directory, name, version):
    path = directory / name
    path.write_text(f"#!/bin/sh\necho {version[0]} {version[1]}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_compare_100_without_python_314_says_none_was_found(tmp_path):
    if sys.version_info >= (3, 14):
        pytest.skip("this interpreter is itself >= 3.14, so one is always found")
    fake_python(tmp_path, "python3", (3, 11))  # a PATH with only an older python3
    env = dict(os.environ, PATH=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "clumsygrad.bench", "--compare-1.0.0", "--quick"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2
    assert "--compare-1.0.0" in proc.stderr and "no such interpreter was found on PATH" in proc.stderr
    assert "Python >= 3.14" in proc.stderr
    assert proc.stdout == ""  # it fails before any timing


def test_find_python314_takes_a_new_enough_interpreter_from_path(tmp_path, monkeypatch):
    if sys.version_info >= (3, 14):
        pytest.skip("this interpreter is itself >= 3.14")
    fake_python(tmp_path, "python3", (3, 12))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert compare021.find_python314() is None
    found = fake_python(tmp_path, "python3.14", (3, 14))
    assert compare021.find_python314() == str(found)


def test_compare_100_venv_is_its_own():
    assert compare021.venv_dir("1.0.0", "py314") != compare021.venv_dir()
    assert compare021.venv_dir("1.0.0", "py314").name == "venv-clumsygrad-1.0.0-py314"
