"""What the installed distribution carries: licence, typing marker, stubs, classifiers; no C/Cython sources.

These read the INSTALLED metadata (the wheel as a user gets it), plus setup.py and
pyproject.toml from the source tree for the NumPy C-API target.
"""
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

pytestmark = pytest.mark.both_backends

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dist():
    return metadata.distribution("clumsygrad")


def installed_files(dist):
    return [str(f) for f in dist.files or []]


def test_metadata_declares_the_mit_licence_with_its_file(dist):
    assert dist.metadata["License-Expression"] == "MIT"
    assert "LICENSE" in dist.metadata.get_all("License-File")
    licence = [f for f in dist.files if f.name == "LICENSE"]
    assert licence, installed_files(dist)
    assert "MIT License" in licence[0].read_text() and "clumsygrad developers" in licence[0].read_text()


def test_classifiers_name_every_supported_python_and_no_url_sends_users_to_the_pure_library(dist):
    classifiers = dist.metadata.get_all("Classifier")
    for minor in range(9, 15):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers
    assert "Typing :: Typed" in classifiers
    assert not [c for c in classifiers if c.startswith("License ::")]  # the SPDX expression replaces them
    # This project has no public URL yet; the pure 0.2.x library's repository and tracker are not its home.
    urls = dict(u.split(", ", 1) for u in dist.metadata.get_all("Project-URL") or [])
    assert not [u for u in urls.values() if "Sayan-001/ClumsyGrad" in u], urls


def test_the_install_carries_no_c_or_cython_sources_but_the_typing_files(dist):
    files = installed_files(dist)
    sources = [f for f in files if f.endswith((".pyx", ".pxd", ".c", ".html"))]
    assert not sources, f"sources installed: {sources}"
    assert any(f.endswith("clumsygrad/py.typed") for f in files)
    assert any(f.endswith("clumsygrad/_kernels/_reduce.pyi") for f in files)


def numpy_floor() -> str:
    """The lowest NumPy that pyproject.toml's [project] dependencies accept, e.g. ``"1.25.2"``."""
    text = (ROOT / "pyproject.toml").read_text()
    deps = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.S | re.M).group(1)
    return re.search(r"[\"']numpy\s*>=\s*([0-9][0-9.]*)", deps).group(1)


def test_numpy_c_api_target_is_the_lowest_numpy_the_package_accepts():
    # setup.py builds against NumPy 2.x headers, targeting the oldest runtime NumPy we declare.
    setup_py = (ROOT / "setup.py").read_text()
    target = re.search(r'^NUMPY_MIN = "([0-9.]+)"', setup_py, re.M).group(1)
    assert target == ".".join(numpy_floor().split(".")[:2])  # the C API target is major.minor
    build_requires = re.search(r"^requires\s*=\s*\[(.*?)\]", (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert '"numpy>=2.0"' in build_requires


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is new in Python 3.11; the regex reader is used above")
def test_the_regex_reader_agrees_with_a_toml_parser():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floors = [d.split(">=")[1] for d in project["dependencies"] if d.replace(" ", "").startswith("numpy>=")]
    assert floors == [numpy_floor()]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is new in Python 3.11")
def test_cibuildwheel_copies_every_top_level_path_the_tests_read_and_runs_both_nodes():
    import tomllib

    cibw = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["cibuildwheel"]
    sources = set(cibw["test-sources"])
    # What the tests open relative to the project root: ROOT / "docs", parents[1] / "examples", ...
    read = set()
    for path in (ROOT / "tests").rglob("*.py"):
        read |= set(re.findall(r'(?:ROOT|parents\[1\]|parent\.parent)\s*/\s*"([^"/]+)"', path.read_text()))
    assert read >= {"docs", "examples", "pyproject.toml"}, read
    assert read <= sources, f"tests read {sorted(read - sources)}, which test-sources leaves out"
    for name in sources:
        assert (ROOT / name).exists(), name
    # The suite runs twice: the compiled graph node, then the pure one.
    command = cibw["test-command"]
    assert command.count("pytest") == 2 and "CLUMSYGRAD_BACKEND='python'" in command
    assert "timeout" in " ".join(tomllib.loads((ROOT / "pyproject.toml").read_text())
                                 ["project"]["optional-dependencies"]["test"])
