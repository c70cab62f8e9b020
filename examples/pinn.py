"""A physics-informed network: a small MLP u(x) trained so that u'' = -pi^2 sin(pi x) on [0, 1]
with u(0) = u(1) = 0, whose solution is sin(pi x).  The loss is built from second derivatives
taken by ``clumsygrad.func``.

    python examples/pinn.py                 # max |u - sin(pi x)| about 6e-4, under ten seconds
    python examples/pinn.py --steps 500     # shorter run

The model is ``u(x) = tanh(tanh(x W1 + b1) W2 + b2) W3 + b3`` (1 -> 24 -> 24 -> 1, float64).
For a batch of collocation points ``x`` (one per row), the rows are independent, so the
gradient of ``sum(u(x))`` with respect to ``x`` is ``u'`` at every point, and the gradient of
``sum(u'(x))`` is ``u''``: two nested ``func.grad`` calls.  The loss

    mean((u''(x) + pi^2 sin(pi x))^2) + BC_WEIGHT * (u(0)^2 + u(1)^2)

is differentiated with respect to the parameters by ``func.value_and_grad`` (a third
derivative through the graph of the second) and minimised with ``clumsygrad.optimizer.Adam``.
At the end the max error against sin(pi x) on 201 points is printed.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, TextIO

import numpy as np

import clumsygrad as cg
from clumsygrad import func
from clumsygrad.optimizer import Adam
from clumsygrad.tensor import Tensor, TensorType

SIZES = (1, 24, 24, 1)
BC_WEIGHT = 10.0


def init_params(seed: int = 0) -> List[Tensor]:
    """Xavier-initialised weights and zero biases, float64 PARAMETER tensors."""
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        w = rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / (n_in + n_out))
        params.append(Tensor(w, TensorType.PARAMETER, dtype=np.float64))
        params.append(Tensor(np.zeros(n_out), TensorType.PARAMETER, dtype=np.float64))
    return params


def u(params: Sequence[Tensor], x: Any) -> Tensor:
    """The network at the points ``x`` (shape (n, 1)); returns (n, 1)."""
    w1, b1, w2, b2, w3, b3 = params
    h = cg.tanh(x @ w1 + b1)
    h = cg.tanh(h @ w2 + b2)
    return h @ w3 + b3


def second_derivative(params: Sequence[Tensor], x: Any) -> Tensor:
    """u''(x) at each point: the gradient of sum(u') where u' is the gradient of sum(u)."""
    du = func.grad(lambda z: cg.sum(u(params, z)))
    result: Tensor = func.grad(lambda z: cg.sum(du(z)))(x)
    return result


def loss(*args: Any) -> Tensor:
    """The PDE residual on the collocation points plus the boundary conditions."""
    *params, x, boundary = args
    residual = second_derivative(params, x) + np.pi ** 2 * cg.sin(np.pi * x)
    ub = u(params, boundary)
    return cg.mean(residual * residual) + BC_WEIGHT * cg.sum(ub * ub)


def max_error(params: Sequence[Tensor], n: int = 201) -> float:
    x = np.linspace(0.0, 1.0, n).reshape(n, 1)
    with cg.no_grad():
        pred = u(params, Tensor(x, dtype=np.float64)).data
    return float(np.max(np.abs(pred - np.sin(np.pi * x))))


def train(steps: int = 2000, points: int = 32, lr: float = 0.01, seed: int = 0,
          out: TextIO = sys.stdout) -> Dict[str, Any]:
    """Train with Adam (the learning rate decays tenfold over the run); returns the figures."""
    params = init_params(seed)
    opt = Adam(params, lr=lr)
    rng = np.random.default_rng(seed + 1)
    boundary = np.array([[0.0], [1.0]])
    value_and_grad = func.value_and_grad(loss, argnums=tuple(range(len(params))))
    start = time.perf_counter()
    history = []
    for step in range(1, steps + 1):
        # collocation points: a jittered grid, new each step
        x = ((np.arange(points) + rng.uniform(0, 1, points)) / points).reshape(points, 1)
        value, grads = value_and_grad(*params, x, boundary)
        for p, g in zip(params, grads):
            p.grad = g.data
        opt.lr = lr * 0.1 ** (step / steps)
        opt.step()
        opt.zero_grad()
        history.append(value.item())
        if step % max(1, steps // 10) == 0 or step == steps:
            print(f"step {step:5d}  loss {value.item():.3e}  max error {max_error(params):.2e}", file=out)
    seconds = time.perf_counter() - start
    err = max_error(params)
    print(f"max |u(x) - sin(pi x)| on [0, 1]: {err:.2e} after {steps} steps ({seconds:.1f} s)", file=out)
    return {"max_error": err, "loss": history[-1], "seconds": seconds, "history": history,
            "params": params}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--points", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = train(args.steps, args.points, args.lr, args.seed)
    return 0 if result["max_error"] < 1e-2 else 1


if __name__ == "__main__":
    sys.exit(main())
