"""Gradients of gradients, and function transforms: ``gradients``, ``grad``, ``value_and_grad``,
``vjp``, ``jacobian``, ``hessian``, ``hvp``.

:func:`gradients` is the primitive (PyTorch's ``autograd.grad``): the gradients of some outputs
with respect to some inputs, returned as Tensors, never written into any ``.grad``.  With
``create_graph=True`` every node's VJP is evaluated on Tensors (the op registry's formulas,
:func:`clumsygrad._registry.tensor_vjp`), so the gradients record a graph of their own and can
be differentiated again; without it the VJPs run on arrays through the nodes' backward functions
(the compiled kernels), as in ``backward()``.

The transforms take a function of Tensors and give a function:

* arguments may be Tensors or arrays/scalars; a float32 or float64 array keeps its dtype, any
  other number becomes float64;
* results are Tensors (``.data`` for the array); the outermost transform returns them with no
  graph (and never writes a ``.grad``), a transform called inside another one keeps the graph
  that links them, so transforms nest to any order (``grad(grad(f))``, ``jacobian(grad(f))``);
* each transform records its own evaluation even inside ``no_grad`` (and restores the mode).

Outside a transform, a Tensor argument that belongs to a graph (a parameter, an intermediate) is
taken by its value: ``grad(f)(w)`` is the gradient at ``w``'s current value, not a new branch of
``w``'s graph.  For gradients that must stay in a graph (a gradient penalty added to a loss that
``backward()`` then differentiates) use ``gradients(..., create_graph=True)``.
"""
from __future__ import annotations

import threading
from typing import Callable, Sequence, Tuple, Union

import numpy as np

from . import _backend, _registry
from ._graph import ENGINE_LOCK
from ._graph import hooks as _hooks
from .tensor import Tensor, TensorType

__all__ = ["gradients", "grad", "value_and_grad", "vjp", "jacobian", "hessian", "hvp"]

_INTERMEDIATE = TensorType.INTERMEDIATE


# ----------------------------------------------------------------------------- gradients
def _as_list(value, what: str) -> Tuple[list, bool]:
    if isinstance(value, Tensor):
        return [value], True
    if isinstance(value, (list, tuple)):
        items = list(value)
        for i, item in enumerate(items):
            if not isinstance(item, Tensor):
                raise TypeError(f"{what}[{i}] must be a Tensor, got {type(item).__name__}")
        return items, False
    raise TypeError(f"{what} must be a Tensor or a sequence of Tensors, got {type(value).__name__}")


def _order(roots: list) -> list:
    """Nodes that require gradients reachable from ``roots``, each before all of its parents."""
    postorder: list = []
    visited: set = set()
    for root in roots:
        if not root._requires_grad or root in visited:
            continue
        visited.add(root)
        path, next_parent = [root], [0]
        while path:
            node = path[-1]
            parents = node._parents
            i = next_parent[-1]
            while i < len(parents):
                parent = parents[i]
                i += 1
                if parent._requires_grad and parent not in visited:
                    visited.add(parent)
                    next_parent[-1] = i
                    path.append(parent)
                    next_parent.append(0)
                    break
            else:
                path.pop()
                next_parent.pop()
                postorder.append(node)
    postorder.reverse()
    return postorder


def _seed(output: Tensor, given, index: int, create_graph: bool):
    dtype = output._data.dtype
    if given is None:
        if output._data.size != 1:
            raise RuntimeError(
                f"grad_outputs[{index}] is needed: output {index} has shape {output.shape}, and a "
                "gradient can be implicitly created only for a one-element output"
            )
        ones = np.ones(output.shape, dtype=dtype)
        return Tensor(ones, dtype=dtype) if create_graph else ones
    if isinstance(given, Tensor):
        value = given if create_graph else given._data.astype(dtype, copy=False)
    else:
        value = np.asarray(given)
        if value.dtype.kind not in "biuf":
            raise TypeError(f"grad_outputs[{index}] must be real numbers, got dtype {value.dtype}")
        value = value.astype(dtype, copy=False)
        if create_graph:
            value = Tensor(value, dtype=dtype)
    if tuple(value.shape) != output.shape:
        raise ValueError(
            f"grad_outputs[{index}] has shape {tuple(value.shape)}, expected the output's {output.shape}"
        )
    return value


def _conform(g, parent, create_graph: bool, node):
    """A VJP result as the parent's gradient: its dtype, its shape checked."""
    dtype = parent._data.dtype
    if create_graph:
        if not isinstance(g, Tensor):
            g = Tensor(np.asarray(g), dtype=dtype)
        elif g._data.dtype != dtype:
            g = g.astype(dtype)
        shape = g._shape
    else:
        if isinstance(g, Tensor):
            g = g._data
        if type(g) is not np.ndarray or g.dtype != dtype:
            g = np.asarray(g, dtype=dtype)
        shape = g.shape
    if shape != parent._shape:
        name = getattr(node._grad_fn, "__name__", "the backward function")
        raise ValueError(
            f"{name} of tensor {node._id} gave a gradient of shape {shape} for tensor "
            f"{parent._id}, expected {parent._shape}"
        )
    return g


def gradients(outputs, inputs, grad_outputs=None, create_graph: bool = False,
              allow_unused: bool = False, *, _steps=None):
    """The gradients of ``outputs`` with respect to ``inputs``, as Tensors; no ``.grad`` changes.

    ``outputs`` and ``inputs`` are Tensors or sequences of Tensors (``inputs`` may be leaves or
    intermediates; each must require gradients).  ``grad_outputs`` gives, per output, the
    gradient to start from (a Tensor or array of the output's shape); it may be omitted for
    one-element outputs, whose default is one.  The result is a tuple with one Tensor per input
    (in that input's dtype), or one Tensor when ``inputs`` is a single Tensor.

    With ``create_graph=True`` the results record a graph (they can be differentiated again);
    an op whose backward cannot be differentiated is a ``TypeError`` naming it.  Otherwise the
    results are Tensors with no graph.  An input the outputs do not depend on is a
    ``ValueError`` unless ``allow_unused`` (then its entry is None).  The graph is kept (call it
    again, or ``backward()``), hooks registered on the tensors on the way are called, and a
    tensor changed in place since it was used is a ``RuntimeError``, as in ``backward()``.
    """
    outs, _ = _as_list(outputs, "outputs")
    ins, single = _as_list(inputs, "inputs")
    if not outs:
        raise ValueError("gradients() needs at least one output")
    for i, o in enumerate(outs):
        if o._grad_fn is not None and not o._parents:
            raise RuntimeError(
                f"no backward graph exists for outputs[{i}] (tensor {o._id}): it was freed by an "
                "earlier backward(); pass keep_graph=True to keep it"
            )
    for i, x in enumerate(ins):
        if not x._requires_grad:
            raise ValueError(
                f"inputs[{i}] (tensor {x._id}, shape {x.shape}) does not require gradients: "
                "differentiate with respect to a PARAMETER tensor or a result computed from one"
            )
    if grad_outputs is None:
        given = [None] * len(outs)
    elif isinstance(grad_outputs, (Tensor, np.ndarray)) or not isinstance(grad_outputs, (list, tuple)):
        given = [grad_outputs]
    else:
        given = list(grad_outputs)
    if len(given) != len(outs):
        raise ValueError(f"{len(given)} grad_outputs for {len(outs)} outputs")
    seeds = [_seed(o, g, i, create_graph) for i, (o, g) in enumerate(zip(outs, given))]

    previous = _backend.graph.set_grad_enabled(bool(create_graph))
    try:
        with ENGINE_LOCK:
            totals = _propagate(outs, seeds, ins, bool(create_graph), _steps)
    finally:
        _backend.graph.set_grad_enabled(previous)

    results = []
    for i, x in enumerate(ins):
        g = totals.get(x)
        if g is None:
            if not allow_unused:
                raise ValueError(
                    f"inputs[{i}] (tensor {x._id}, shape {x.shape}) was not used to compute the "
                    "outputs; pass allow_unused=True to get None for it"
                )
            results.append(None)
        elif create_graph:
            results.append(g)
        else:
            results.append(Tensor(g, dtype=x._data.dtype))
    return results[0] if single else tuple(results)


def _plan(outs: list, ins: list) -> list:
    """The pass's steps: ``(node, needs)`` for each node with an input among itself or its
    ancestors, outputs first; ``needs`` says which parents lead to an input (None when none do,
    or for a leaf).  The same graph gives the same plan: a Jacobian makes it once for all rows."""
    order = _order(outs)
    targets = set(ins)
    relevant = set()
    for node in reversed(order):
        if node in targets:
            relevant.add(node)
            continue
        for p in node._parents:
            if p in relevant:
                relevant.add(node)
                break
    steps = []
    for node in order:
        if node in relevant:
            needs = tuple([p in relevant for p in node._parents])
            steps.append((node, needs if node._grad_fn is not None and any(needs) else None))
    return steps


def _propagate(outs: list, seeds: list, ins: list, create_graph: bool, steps=None) -> dict:
    """Each relevant node's total gradient, pushed from the outputs towards the inputs."""
    if steps is None:
        steps = _plan(outs, ins)
    pending: dict = {}
    for out, seed in zip(outs, seeds):  # (an output that leads to no input is never visited)
        if out not in pending:
            pending[out] = seed
        else:  # the same output twice
            pending[out] = pending[out] + seed if create_graph else np.asarray(pending[out] + seed)
    vjp = _registry.tensor_vjp
    for node, needs in steps:
        g = pending.get(node)
        if g is None:
            continue
        if _hooks._table:
            fns = _hooks.hooks_of(node)
            if fns is not None:
                g = pending[node] = _hooks.apply(node, fns, g, tensor_mode=create_graph)
        if needs is None:
            continue
        parents = node._parents
        node._check_versions()
        grad_fn = node._grad_fn
        if create_graph:
            grads = vjp(node, g, needs)
        elif getattr(grad_fn, "skips_unneeded", False):
            grads = grad_fn(node, g, needs=needs)
        else:
            grads = grad_fn(node, g)
        if len(grads) != len(parents):
            raise ValueError(
                f"{getattr(grad_fn, '__name__', grad_fn)} returned {len(grads)} gradients for "
                f"{len(parents)} parents"
            )
        for parent, need, pg in zip(parents, needs, grads):
            if not need or pg is None:
                continue
            pg = _conform(pg, parent, create_graph, node)
            acc = pending.get(parent)
            if acc is None:
                pending[parent] = pg
            elif create_graph:
                pending[parent] = acc + pg
            else:  # into a new array (`+` of two 0-d arrays would give a NumPy scalar)
                pending[parent] = np.add(acc, pg, out=np.empty_like(pg))
    return pending


# ----------------------------------------------------------------------------- transforms
_state = threading.local()  # depth: how many transforms are evaluating in this thread


def _depth() -> int:
    return getattr(_state, "depth", 0)


class _Scope:
    """A transform's evaluation: recording on, the nesting depth counted, both restored."""

    def __enter__(self):
        self.nested = _depth() > 0
        _state.depth = _depth() + 1
        self.previous = _backend.graph.set_grad_enabled(True)
        return self

    def __exit__(self, *exc_info):
        _state.depth -= 1
        _backend.graph.set_grad_enabled(self.previous)


def _variable(value, nested: bool, what: str) -> Tensor:
    """A differentiation variable for one argument.

    Inside another transform a Tensor that requires gradients is followed by an identity node,
    so this transform's gradient is taken with respect to its own variable (the outer one sees
    the whole graph through it); anything else becomes a new PARAMETER leaf of its value.
    """
    if isinstance(value, Tensor):
        if nested and value._requires_grad:
            from .shape import _reshaped

            return _reshaped(value, value._data)
        data = value._data
        return Tensor(data, TensorType.PARAMETER, dtype=data.dtype)
    try:
        data = np.asarray(value)
    except Exception as exc:  # pragma: no cover - NumPy's own message
        raise TypeError(f"{what} must be a Tensor or an array of real numbers: {exc}") from exc
    if data.dtype.kind not in "biuf":
        raise TypeError(f"{what} must be a Tensor or an array of real numbers, got dtype {data.dtype}")
    dtype = data.dtype if data.dtype in (np.float32, np.float64) else np.float64
    return Tensor(data, TensorType.PARAMETER, dtype=dtype)


def _argnums(argnums, nargs: int) -> Tuple[tuple, bool]:
    single = not isinstance(argnums, (tuple, list))
    nums = (argnums,) if single else tuple(argnums)
    if not nums:
        raise ValueError("argnums must name at least one argument")
    out = []
    for a in nums:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise TypeError(f"argnums must be ints, got {type(a).__name__}")
        if not -nargs <= a < nargs:
            raise ValueError(f"argnums {a} is out of range for a function called with {nargs} arguments")
        out.append(int(a) % nargs)
    if len(set(out)) != len(out):
        raise ValueError(f"repeated argument in argnums {argnums}")
    return tuple(out), single


def _prepare(args: tuple, nums: tuple, nested: bool) -> Tuple[list, list]:
    args = list(args)
    variables = []
    for a in nums:
        v = _variable(args[a], nested, f"argument {a}")
        args[a] = v
        variables.append(v)
    return args, variables


def _detach(value):
    """A result leaving the outermost transform: Tensors without graph (containers walked)."""
    if isinstance(value, Tensor):
        if value._tensor_type == _INTERMEDIATE or value._requires_grad:
            return Tensor(value._data, dtype=value._data.dtype)
        return value
    if isinstance(value, tuple):
        return tuple(_detach(v) for v in value)
    if isinstance(value, list):
        return [_detach(v) for v in value]
    if isinstance(value, dict):
        return {k: _detach(v) for k, v in value.items()}
    return value


def _zeros_like(x: Tensor) -> Tensor:
    return Tensor(np.zeros(x.shape, dtype=x._data.dtype), dtype=x._data.dtype)


def _scalar_output(out, name: str) -> Tensor:
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}: the function must return a Tensor, got {type(out).__name__}")
    if out._data.size != 1:
        raise ValueError(
            f"{name}: the function must return a one-element Tensor (a scalar), got shape {out.shape}; "
            "use jacobian() or vjp() for a non-scalar output"
        )
    return out


def _split_aux(result, has_aux: bool, name: str):
    if not has_aux:
        return result, None
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise TypeError(f"{name}(has_aux=True): the function must return a pair (output, aux)")
    return result[0], result[1]


def _grads(out, variables, nested: bool, grad_outputs=None):
    """Gradients of ``out`` w.r.t. ``variables``; zeros for variables it does not depend on."""
    if not out._requires_grad:
        return [_zeros_like(v) for v in variables]
    found = gradients(out, variables, grad_outputs=grad_outputs, create_graph=nested,
                      allow_unused=True)
    return [g if g is not None else _zeros_like(v) for g, v in zip(found, variables)]


def value_and_grad(f: Callable, argnums: Union[int, Sequence[int]] = 0, has_aux: bool = False) -> Callable:
    """A function returning ``(f(*args), grad(f)(*args))`` (``((value, aux), grad)`` with
    ``has_aux``); one evaluation of ``f``.  See :func:`grad`."""

    def value_and_grad_f(*args, **kwargs):
        nums, single = _argnums(argnums, len(args))
        with _Scope() as scope:
            call_args, variables = _prepare(args, nums, scope.nested)
            out, aux = _split_aux(f(*call_args, **kwargs), has_aux, "value_and_grad")
            out = _scalar_output(out, "grad")
            grads = _grads(out, variables, scope.nested)
        g = grads[0] if single else tuple(grads)
        value = (out, aux) if has_aux else out
        if not scope.nested:
            value, g = _detach(value), _detach(g)
        return value, g

    value_and_grad_f.__name__ = f"value_and_grad({getattr(f, '__name__', 'f')})"
    value_and_grad_f.__doc__ = f.__doc__
    return value_and_grad_f


def grad(f: Callable, argnums: Union[int, Sequence[int]] = 0, has_aux: bool = False) -> Callable:
    """The gradient of a scalar function: ``grad(f)(x)`` is d f / d x at ``x``.

    ``argnums`` (an int or a tuple of ints) picks the arguments to differentiate; a tuple gives
    a tuple of gradients.  With ``has_aux`` ``f`` returns ``(output, aux)`` and the result is
    ``(gradient, aux)``.  Each gradient is a Tensor of its argument's shape and dtype (zeros if
    ``f`` does not depend on it).  ``f`` must return a one-element Tensor.
    """
    vg = value_and_grad(f, argnums, has_aux)

    def grad_f(*args, **kwargs):
        value, g = vg(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    grad_f.__name__ = f"grad({getattr(f, '__name__', 'f')})"
    grad_f.__doc__ = f.__doc__
    return grad_f


def vjp(f: Callable, *primals, has_aux: bool = False):
    """``(f(*primals), vjp_fn)``: ``vjp_fn(cotangent)`` gives the tuple of d<f, cotangent>/d primal,
    one Tensor per primal (``cotangent`` of ``f``'s output shape; a tuple for a tuple output).

    ``vjp_fn`` may be called any number of times.  With ``has_aux`` the result is
    ``(output, vjp_fn, aux)``.
    """
    if not primals:
        raise TypeError("vjp() needs at least one primal argument")
    with _Scope() as scope:
        args, variables = _prepare(primals, tuple(range(len(primals))), scope.nested)
        out, aux = _split_aux(f(*args), has_aux, "vjp")
    outs, single_out = (([out], True) if isinstance(out, Tensor) else (list(out), False))
    for i, o in enumerate(outs):
        if not isinstance(o, Tensor):
            raise TypeError(f"vjp: output {i} of the function is a {type(o).__name__}, not a Tensor")
    created_nested = scope.nested

    def vjp_fn(cotangent):
        cots = [cotangent] if single_out else list(cotangent)
        if len(cots) != len(outs):
            raise ValueError(f"vjp_fn: {len(cots)} cotangents for {len(outs)} outputs")
        live = [(o, c) for o, c in zip(outs, cots) if o._requires_grad]
        nested = created_nested or _depth() > 0
        with _Scope():
            if not live:
                grads = [_zeros_like(v) for v in variables]
            else:
                found = gradients([o for o, _ in live], variables, [c for _, c in live],
                                  create_graph=nested, allow_unused=True)
                grads = [g if g is not None else _zeros_like(v) for g, v in zip(found, variables)]
        result = tuple(grads)
        return result if nested else _detach(result)

    value = out if scope.nested else _detach(out)
    if has_aux:
        return value, vjp_fn, (aux if scope.nested else _detach(aux))
    return value, vjp_fn


def jacobian(f: Callable, argnums: Union[int, Sequence[int]] = 0, has_aux: bool = False) -> Callable:
    """The Jacobian of ``f`` (reverse mode): ``jacobian(f)(x)`` has shape ``out.shape + x.shape``.

    One backward pass per element of the output (a row of the Jacobian).  ``argnums`` as in
    :func:`grad` (a tuple gives one Jacobian per argument); a function returning a tuple of
    Tensors gives a tuple (per output) of Jacobians.  With ``has_aux``: ``(jacobian, aux)``.
    """

    def jacobian_f(*args, **kwargs):
        nums, single = _argnums(argnums, len(args))
        with _Scope() as scope:
            call_args, variables = _prepare(args, nums, scope.nested)
            out, aux = _split_aux(f(*call_args, **kwargs), has_aux, "jacobian")
            outs, single_out = (([out], True) if isinstance(out, Tensor) else (list(out), False))
            per_output = []
            for i, o in enumerate(outs):
                if not isinstance(o, Tensor):
                    raise TypeError(f"jacobian: output {i} of the function is a {type(o).__name__}, not a Tensor")
                blocks = _jacobian_rows(o, variables, scope.nested)
                per_output.append(blocks[0] if single else tuple(blocks))
        result = per_output[0] if single_out else tuple(per_output)
        if not scope.nested:
            result, aux = _detach(result), _detach(aux)
        return (result, aux) if has_aux else result

    jacobian_f.__name__ = f"jacobian({getattr(f, '__name__', 'f')})"
    jacobian_f.__doc__ = f.__doc__
    return jacobian_f


def _jacobian_rows(out: Tensor, variables: list, nested: bool) -> list:
    """d out / d variable for each variable, by one pass per output element."""
    n = out._data.size
    dtype = out._data.dtype
    if not out._requires_grad or n == 0:
        return [_zeros_jacobian(out, v) for v in variables]
    rows = [[] for _ in variables]
    with ENGINE_LOCK:
        steps = _plan([out], variables)  # the same graph for every row: ordered once
    for k in range(n):
        seed = np.zeros(n, dtype=dtype)
        seed[k] = 1
        found = gradients(out, variables, grad_outputs=seed.reshape(out.shape),
                          create_graph=nested, allow_unused=True, _steps=steps)
        for j, (g, v) in enumerate(zip(found, variables)):
            rows[j].append(g)
    blocks = []
    for j, v in enumerate(variables):
        if all(g is None for g in rows[j]):
            blocks.append(_zeros_jacobian(out, v))
        elif nested:
            from .shape import reshape, stack

            parts = [g if g is not None else _zeros_like(v) for g in rows[j]]
            blocks.append(reshape(stack(parts, axis=0), out.shape + v.shape))
        else:
            data = np.stack([np.zeros(v.shape, v._data.dtype) if g is None else g._data for g in rows[j]])
            blocks.append(Tensor(data.reshape(out.shape + v.shape), dtype=v._data.dtype))
    return blocks


def _zeros_jacobian(out: Tensor, v: Tensor) -> Tensor:
    dtype = v._data.dtype
    return Tensor(np.zeros(out.shape + v.shape, dtype=dtype), dtype=dtype)


def hessian(f: Callable, argnums: Union[int, Sequence[int]] = 0) -> Callable:
    """The Hessian of a scalar function: ``jacobian(grad(f))``, shape ``x.shape + x.shape``.

    A tuple ``argnums`` gives the blocks ``H[i][j]`` = d^2 f / d x_i d x_j as nested tuples.
    """
    h = jacobian(grad(f, argnums), argnums)
    h.__name__ = f"hessian({getattr(f, '__name__', 'f')})"
    return h


def hvp(f: Callable, primals, tangents):
    """The Hessian-vector product of a scalar function at ``primals`` along ``tangents``.

    ``primals`` and ``tangents`` are one argument (a Tensor or an array) or tuples of them, of
    matching shapes; the result has the same structure.  Reverse over reverse: the gradient is
    recorded once and differentiated once along ``tangents``, never forming the Hessian.
    """
    single = not isinstance(primals, (tuple, list))
    ps = (primals,) if single else tuple(primals)
    ts = (tangents,) if single else tuple(tangents)
    if len(ps) != len(ts):
        raise ValueError(f"hvp: {len(ts)} tangents for {len(ps)} primals")
    g = grad(f, argnums=tuple(range(len(ps))))
    _, pullback = vjp(g, *ps)
    cots = []
    for i, (p, t) in enumerate(zip(ps, ts)):
        shape = p.shape if hasattr(p, "shape") else np.shape(p)
        if tuple(np.shape(t._data if isinstance(t, Tensor) else t)) != tuple(shape):
            raise ValueError(f"hvp: tangent {i} has shape {np.shape(t)}, expected the primal's {tuple(shape)}")
        cots.append(t)
    result = pullback(tuple(cots))
    return result[0] if single else result
