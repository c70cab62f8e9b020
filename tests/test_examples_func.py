"""examples/pinn.py and examples/newton_logistic.py reach their figures (short runs)."""
import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"{name}_example", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_pinn_solves_the_poisson_problem():
    pinn = _load("pinn")
    out = io.StringIO()
    result = pinn.train(steps=400, out=out)
    assert result["max_error"] < 1e-2, result["max_error"]
    assert result["history"][-1] < result["history"][0] / 100
    assert "max |u(x) - sin(pi x)|" in out.getvalue().splitlines()[-1]
    assert all(p.grad is None for p in result["params"])


def test_pinn_second_derivative_is_right():
    """u'' from the nested func.grad calls equals finite differences of u."""
    pinn = _load("pinn")
    params = pinn.init_params(3)
    x = np.linspace(0.1, 0.9, 5).reshape(5, 1)
    got = pinn.second_derivative(params, x).data
    h = 1e-4

    def u(z):
        return pinn.u(params, pinn.Tensor(z, dtype=np.float64)).data

    expected = (u(x + h) - 2 * u(x) + u(x - h)) / h ** 2
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_newton_converges_in_a_few_steps_and_agrees_with_gradient_descent():
    newton = _load("newton_logistic")
    out = io.StringIO()
    result = newton.run(out=out)
    assert result["hessian_error"] < 1e-12
    assert result["newton_steps"] <= 8 and result["newton_norms"][-1] < 1e-10
    assert result["gd_steps"] > 10 * result["newton_steps"]
    np.testing.assert_allclose(result["w_newton"], result["w_gd"], atol=1e-7)
    # quadratic convergence at the end: each |grad| at most ~ the square of the one before
    norms = result["newton_norms"]
    assert norms[-1] < 10 * norms[-2] ** 2
