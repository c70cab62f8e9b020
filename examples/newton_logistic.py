"""Newton's method with ``clumsygrad.func.hessian`` on a small L2-regularised logistic regression,
against gradient descent on the same loss.

    python examples/newton_logistic.py      # Newton: |grad| < 1e-10 in a few steps; GD: hundreds

The data are 200 points in 5 dimensions (and a bias column) drawn from a fixed seed, labelled by
a noisy linear rule.  The loss is

    L(w) = mean(log(1 + exp(-y * (X w)))) + LAM / 2 * |w|^2,      y in {-1, +1}

written with clumsygrad ops (``log_sigmoid``).  A Newton step solves ``H d = -g`` with the
gradient ``g = func.grad(L)(w)`` and the Hessian ``H = func.hessian(L)(w)`` (6 x 6, one
reverse pass per row through the recorded gradient).  Gradient descent uses the step 1 / L with
L the Lipschitz constant of the gradient.  Both are printed step by step, with the Hessian
checked against the closed form X^T diag(s (1 - s)) X / n + LAM I.
"""
from __future__ import annotations

import sys
from typing import Any, Callable, Dict, List, TextIO, Tuple

import numpy as np

import clumsygrad as cg
from clumsygrad import func
from clumsygrad.tensor import Tensor

LAM = 1e-2


def make_data(n: int = 200, d: int = 5, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    x = np.hstack([x, np.ones((n, 1))])
    w_true = rng.standard_normal(d + 1)
    y = np.where(x @ w_true + 0.5 * rng.standard_normal(n) > 0, 1.0, -1.0)
    return x, y


def make_loss(x: np.ndarray, y: np.ndarray) -> Callable[[Tensor], Tensor]:
    xt = Tensor(x, dtype=np.float64)
    yt = Tensor(y, dtype=np.float64)

    def loss(w: Tensor) -> Tensor:
        margins = yt * (xt @ w)
        return -cg.mean(cg.log_sigmoid(margins)) + 0.5 * LAM * cg.sum(w * w)

    return loss


def closed_form_hessian(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    s = 1.0 / (1.0 + np.exp(-(x @ w)))
    h: np.ndarray = (x.T * (s * (1 - s))) @ x / len(x) + LAM * np.eye(x.shape[1])
    return h


def newton(loss: Callable[[Tensor], Tensor], w0: np.ndarray, tol: float = 1e-10, max_steps: int = 20,
           out: TextIO = sys.stdout) -> Tuple[np.ndarray, List[float]]:
    grad, hessian = func.grad(loss), func.hessian(loss)
    w = np.array(w0, dtype=np.float64)
    norms = []
    for step in range(max_steps):
        g = grad(w).data
        norms.append(float(np.linalg.norm(g)))
        print(f"newton {step:3d}  loss {float(loss(Tensor(w, dtype=np.float64)).data):.12f}  |grad| {norms[-1]:.2e}", file=out)
        if norms[-1] < tol:
            break
        w = w - np.linalg.solve(hessian(w).data, g)
    return w, norms


def gradient_descent(loss: Callable[[Tensor], Tensor], w0: np.ndarray, x: np.ndarray, tol: float = 1e-10,
                     max_steps: int = 5000, out: TextIO = sys.stdout) -> Tuple[np.ndarray, List[float]]:
    grad = func.grad(loss)
    lipschitz = np.linalg.eigvalsh(x.T @ x / len(x)).max() / 4 + LAM
    w = np.array(w0, dtype=np.float64)
    norms = []
    for step in range(max_steps):
        g = grad(w).data
        norms.append(float(np.linalg.norm(g)))
        if norms[-1] < tol:
            break
        w = w - g / lipschitz
    print(f"gradient descent: |grad| {norms[-1]:.2e} after {len(norms) - 1} steps (step 1/L = {1 / lipschitz:.3f})",
          file=out)
    return w, norms


def run(out: TextIO = sys.stdout) -> Dict[str, Any]:
    x, y = make_data()
    loss = make_loss(x, y)
    w0 = np.zeros(x.shape[1])
    h0 = func.hessian(loss)(w0).data
    hessian_error = float(np.max(np.abs(h0 - closed_form_hessian(x, y, w0))))
    print(f"Hessian at w0 vs closed form: max difference {hessian_error:.1e}", file=out)
    w_newton, newton_norms = newton(loss, w0, out=out)
    w_gd, gd_norms = gradient_descent(loss, w0, x, out=out)
    print(f"Newton: |grad| {newton_norms[-1]:.2e} after {len(newton_norms) - 1} steps; "
          f"max |w_newton - w_gd| = {np.max(np.abs(w_newton - w_gd)):.1e}", file=out)
    accuracy = float(np.mean(np.sign(x @ w_newton) == y))
    print(f"training accuracy {accuracy:.3f}", file=out)
    return {"newton_steps": len(newton_norms) - 1, "newton_norms": newton_norms,
            "gd_steps": len(gd_norms) - 1, "gd_norms": gd_norms, "w_newton": w_newton, "w_gd": w_gd,
            "hessian_error": hessian_error, "accuracy": accuracy}


if __name__ == "__main__":
    result = run()
    sys.exit(0 if result["newton_norms"][-1] < 1e-10 else 1)
