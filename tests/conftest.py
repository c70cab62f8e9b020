"""Shared test configuration.

Every test runs once per backend ("cython" and "python") through the autouse ``backend``
fixture, so the engine and every backward function are proven on both kernel sets.
A module that compares the backends itself sets ``pytestmark = pytest.mark.both_backends``
and runs once.  If the compiled kernels are missing, the "cython" runs fail loudly.

No test may hang: each has ``PER_TEST_TIMEOUT`` seconds, through pytest-timeout (the ``test``
extra; thread method, so tests that use signals keep SIGALRM) or, without it, through
``faulthandler``, which prints every thread's stack and ends the run.
"""
import faulthandler

import numpy as np
import pytest

try:
    import pytest_timeout  # noqa: F401
except ImportError:
    pytest_timeout = None

PER_TEST_TIMEOUT = 900  # seconds; the slowest test (a million-node chain on the pure node) takes ~1 min

import clumsygrad

BACKENDS = ("cython", "python")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "both_backends: the test compares the backends itself; run it once"
    )


def pytest_collection_modifyitems(config, items):
    if pytest_timeout is None:
        return
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(PER_TEST_TIMEOUT, method="thread"))


@pytest.fixture(autouse=True)
def _per_test_timeout():
    """Without pytest-timeout: dump the stacks and exit if one test runs past the limit."""
    if pytest_timeout is not None:
        yield
        return
    faulthandler.dump_traceback_later(PER_TEST_TIMEOUT, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames and not metafunc.definition.get_closest_marker(
        "both_backends"
    ):
        metafunc.parametrize("backend", BACKENDS, indirect=True, scope="function")


@pytest.fixture(autouse=True)
def backend(request):
    """Activate the backend this run is parametrised with, and restore the previous one after."""
    previous = clumsygrad.get_backend()
    name = getattr(request, "param", None)
    if name is not None:
        clumsygrad.set_backend(name)
    yield name or previous
    clumsygrad.set_backend(previous)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
