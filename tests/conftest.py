"""Shared test configuration.

Every test runs once per backend ("cython" and "python") through the autouse ``backend``
fixture, so the engine and every backward function are proven on both kernel sets.
A module that compares the backends itself sets ``pytestmark = pytest.mark.both_backends``
and runs once.  If the compiled kernels are missing, the "cython" runs fail loudly.
"""
import numpy as np
import pytest

import clumsygrad

BACKENDS = ("cython", "python")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "both_backends: the test compares the backends itself; run it once"
    )


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
