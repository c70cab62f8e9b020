"""Check analytic gradients against central finite differences in float64."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .tensor import Tensor, TensorType, TensorUtils, enable_grad

__all__ = ["gradcheck", "GradcheckError"]


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with its finite-difference estimate."""


def _as_float64(value) -> np.ndarray:
    data = value._data if isinstance(value, Tensor) else value
    return np.array(data, dtype=np.float64)


def leaves_needing_grad(out: Tensor) -> list:
    """The tensors of ``out``'s graph that ``backward()`` writes a ``.grad`` into."""
    return [t for t in TensorUtils._reachable(out) if t._requires_grad and not t._parents]


def saved_grads(tensors) -> Callable[[], None]:
    """Remember the ``.grad`` of ``tensors`` (object and values); the returned function puts them back.

    The values are copied too: ``backward()`` may accumulate into a gradient array in place.
    """
    saved = [(t, t._grad, None if t._grad is None else np.array(t._grad, copy=True)) for t in tensors]

    def restore() -> None:
        for t, g, values in saved:
            if isinstance(g, np.ndarray) and g.flags.writeable:
                np.copyto(g, values)
            elif g is not None:
                g = values
            t._grad = g

    return restore


def _project(fn: Callable, arrays: Sequence[np.ndarray], cotangent: np.ndarray) -> float:
    """<fn(*arrays), cotangent>, evaluated on constant (INPUT) tensors."""
    out = fn(*(Tensor(a, dtype=np.float64) for a in arrays))
    return float(np.sum(np.asarray(out._data, dtype=np.float64) * cotangent))


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence,
    *,
    eps: float = 1e-6,
    atol: float = 1e-6,
    rtol: float = 1e-4,
    seed: int = 0,
    raise_exception: bool = True,
) -> bool:
    """Compare the gradients ``backward()`` gives for ``fn(*inputs)`` with central differences.

    ``inputs`` are arrays or tensors; each is copied into a float64 PARAMETER tensor.
    ``fn`` maps those tensors to one output tensor.  The output is contracted with a
    fixed random cotangent ``c``, and for every input ``x`` the analytic gradient of
    ``<fn(x), c>`` is checked against ``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)``
    with ``np.allclose(analytic, numeric, rtol, atol)``.

    The check records its own graph inside ``no_grad()`` too, and leaves the ``.grad`` of
    any other tensor ``fn`` reads as it was.

    Returns True when every gradient agrees.  Otherwise raises :class:`GradcheckError`
    describing the worst element, or returns False if ``raise_exception`` is false.
    """
    arrays = [_as_float64(x) for x in inputs]
    params = [Tensor(a, tensor_type=TensorType.PARAMETER, dtype=np.float64) for a in arrays]
    with enable_grad():  # the check records its own graph, inside no_grad() too
        out = fn(*params)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck needs fn to return a Tensor, got {type(out).__name__}")
    cotangent = np.random.default_rng(seed).standard_normal(out._shape)
    if out._requires_grad:
        # Other tensors fn reads (closures) get back the .grad they had.
        restore = saved_grads(t for t in leaves_needing_grad(out) if not any(t is p for p in params))
        try:
            out.backward(cotangent)
        finally:
            restore()

    for index, (param, base) in enumerate(zip(params, arrays)):
        analytic = param._grad if param._grad is not None else np.zeros_like(base)
        numeric = np.zeros_like(base)
        flat = numeric.reshape(-1)
        for i in range(base.size):
            shifted = [a.copy() for a in arrays]
            probe = shifted[index].reshape(-1)
            probe[i] = base.flat[i] + eps
            upper = _project(fn, shifted, cotangent)
            probe[i] = base.flat[i] - eps
            lower = _project(fn, shifted, cotangent)
            flat[i] = (upper - lower) / (2 * eps)
        if not np.allclose(analytic, numeric, rtol=rtol, atol=atol):
            worst = np.unravel_index(np.argmax(np.abs(analytic - numeric)), base.shape)
            message = (
                f"gradient of input {index} (shape {base.shape}) disagrees with finite differences: "
                f"at index {tuple(int(i) for i in worst)} analytic {analytic[worst]!r} vs numeric "
                f"{numeric[worst]!r}; max abs error {np.max(np.abs(analytic - numeric)):.3g}"
            )
            if raise_exception:
                raise GradcheckError(message)
            return False
    return True
