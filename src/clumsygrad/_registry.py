"""The op registry: every differentiable operation defined once.

An entry (:func:`defop`) holds an op's name, its forward on arrays, one VJP formula per input
(or one joint formula), the NumPy callables that reach it, the Tensor methods that spell it, and,
where it has them, an array-only kernel for its backward pass and the compiled engine's typed loop.
Everything else is derived from the entries, never listed by hand:

* the public function (``clumsygrad.math.exp``...) that computes the forward value and records it;
* the backward function the engine runs (``clumsygrad.grad.exp_backward``), named as in 0.2.x;
* the Tensor methods, the NumPy-protocol tables (``UFUNCS``, ``FUNCTIONS``), the compiled engine's
  typed-loop table, the test table and the documentation's API table.

The VJP formulas are written with NumPy's spelling (``np.exp``, ``*``, ``np.sum``...) and the
adjoint helpers of :mod:`clumsygrad._adjoint`.  On arrays they compute a first-order backward
pass; on Tensors (through the NumPy protocol) the same formulas record a graph, which is how
gradients of gradients are taken (:mod:`clumsygrad.func`).  An op whose backward exists only as
an array kernel says so (``differentiable=False``) and is refused, by name, under
``create_graph=True``.

Formula signature: ``vjp(g, out, *inputs, **params) -> gradient of that input`` where ``g`` is the
gradient of the result, ``out`` the result, ``inputs`` the op's inputs and ``params`` its
keyword parameters as recorded in the node's ``_extra``.  A joint formula takes ``needs=(bool,
...)`` too and returns one gradient (or None) per input.
"""
from __future__ import annotations

import inspect
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from . import _backend, profiler as _profiler

__all__ = ["OpDef", "OPS", "UFUNCS", "FUNCTIONS", "defop", "variant", "export", "rule_of", "tensor_vjp",
           "save_input_shape"]

OPS: Dict[str, "OpDef"] = {}
"""Every registered op by name (public ops, and the named backward variants of the operators)."""

UFUNCS: Dict[np.ufunc, Callable] = {}
"""NumPy ufunc -> the public function that records it (``__array_ufunc__``)."""

FUNCTIONS: Dict[Callable, Callable] = {}
"""NumPy function -> the public function that records it (``__array_function__``)."""

_RULES: Dict[Callable, Tuple["OpDef", tuple]] = {}  # backward function -> (op, constant slots)
_TYPED: Dict[Callable, str] = {}  # backward function -> the compiled engine's typed-loop name

_Tensor = None  # bound by clumsygrad.tensor (the class is defined after the ops)


def bind(tensor_class) -> None:
    """Called once by :mod:`clumsygrad.tensor`: the class whose instances the ops take and make."""
    global _Tensor
    _Tensor = tensor_class


def typed_vjps() -> Dict[Callable, str]:
    """Backward function -> name of the compiled engine's typed loop for it."""
    return dict(_TYPED)


class OpDef:
    """One differentiable operation (see the module docstring)."""

    __slots__ = (
        "name", "module", "forward", "vjps", "joint", "kernel", "numpy", "methods", "typed",
        "save", "doc", "nin", "params", "defaults", "function", "backward", "differentiable",
        "compiled", "variant_of", "forward_kernel",
    )

    def __repr__(self) -> str:
        return f"OpDef({self.name!r}, module={self.module!r})"

    @property
    def numpy_names(self) -> Tuple[str, ...]:
        return tuple(f"np.{getattr(f, '__name__', f)}" for f in self.numpy)


def _signature(forward: Callable) -> inspect.Signature:
    """``forward``'s signature; a NumPy ufunc of one input (``np.exp``) reads as ``(x)``."""
    if isinstance(forward, np.ufunc):
        # named as 0.2.x's functions name it (``exp(tensor=t)`` keeps working)
        return inspect.Signature([inspect.Parameter("tensor", inspect.Parameter.POSITIONAL_OR_KEYWORD)])
    return inspect.signature(forward)


def _parameters(forward: Callable, nin: int):
    """The names of ``forward``'s inputs and keyword parameters, and the parameters' defaults."""
    params = list(_signature(forward).parameters.values())
    names = [p.name for p in params[nin:]]
    defaults = {p.name: p.default for p in params[nin:] if p.default is not inspect.Parameter.empty}
    return names, defaults


def defop(
    name: str,
    forward: Optional[Callable],
    vjp,
    *,
    module: str,
    nin: int = 1,
    numpy: Sequence = (),
    method=None,
    kernel: Optional[Callable] = None,
    typed: Optional[str] = None,
    save: Optional[Callable] = None,
    forward_kernel: Optional[str] = None,
    backward_name: Optional[str] = None,
    differentiable: bool = True,
    public: bool = True,
    params: Optional[Sequence[str]] = None,
    doc: str = "",
) -> OpDef:
    """Register an op; returns its entry (``entry.function`` is the public function).

    ``forward(*arrays, **params)`` computes the value on arrays (``nin`` of them, the leading
    positional parameters; the rest are parameters recorded in ``_extra``).  ``vjp`` is a tuple
    of per-input formulas, or one joint formula taking ``needs``.  ``kernel(tensor, grad, *,
    needs)`` replaces the formula on arrays (a compiled or fused backward).  ``save(out, *arrays,
    **params)`` adds entries to ``_extra``.  ``forward_kernel`` names the kernel (of the active
    set, ``_backend.active``) that ``forward`` calls with the same arguments (its parameters in
    ``forward``'s order, by position) and nothing else:
    the public function calls it directly, one Python frame less per call.  ``numpy`` lists the
    NumPy callables that reach the op, ``method`` the Tensor method name(s).  ``typed`` names the compiled engine's typed loop.
    """
    if name in OPS:
        raise ValueError(f"op {name!r} is registered twice")
    op = OpDef()
    op.name, op.module, op.forward, op.nin = name, module, forward, nin
    op.joint = not isinstance(vjp, tuple)
    op.vjps = vjp
    op.kernel, op.typed, op.save = kernel, typed, save
    op.forward_kernel = forward_kernel
    op.numpy = tuple(numpy)
    op.methods = (method,) if isinstance(method, str) else tuple(method or ())
    op.differentiable = differentiable
    op.doc = doc or ("" if isinstance(forward, np.ufunc) else (inspect.getdoc(forward) or "").split("\n")[0])
    op.compiled = ""
    op.variant_of = None
    if forward is not None:
        op.params, op.defaults = _parameters(forward, nin)
    else:  # a variadic op recorded by its own function: name the parameters its formulas read
        op.params, op.defaults = list(params or ()), {}
    op.backward = _derive_backward(op, backward_name or f"{name}_backward", ())
    op.function = _derive_function(op) if (public and forward is not None) else None
    if typed:
        _TYPED[op.backward] = typed
        op.compiled = "recorded in C" if typed.endswith("_BROADCAST") else "typed loop"
    if kernel is not None:
        op.compiled = (op.compiled + ", " if op.compiled else "") + "backward kernel"
    OPS[name] = op
    for f in op.numpy:
        (UFUNCS if isinstance(f, np.ufunc) else FUNCTIONS)[f] = op.function
    return op


def save_input_shape(out, x, **params) -> dict:
    """A ``save`` step: the input's shape as ``_extra["input_shape"]`` (0.2.x's key, recorded by the
    reductions).  The compiled ``OpFunction`` records it in C without calling this
    (``input_shape_only``)."""
    return {"input_shape": x.shape}


save_input_shape.input_shape_only = True


def variant(op: OpDef, backward_name: str, *, consts: Dict[int, str], params=(), typed=None,
            kernel=None) -> Callable:
    """Another backward function for ``op`` whose inputs at ``consts`` positions are constants.

    ``consts`` maps an input position to the ``_extra`` key holding its value (``x * 2.0`` records
    ``mul_scalar_backward`` with ``scalar_value``).  The formulas are the op's own.
    """
    entry = OpDef()
    for slot in OpDef.__slots__:
        setattr(entry, slot, getattr(op, slot))
    entry.name, entry.variant_of, entry.function = backward_name, op, None
    entry.params = list(op.params) + list(params)
    entry.kernel = kernel
    entry.backward = _derive_backward(entry, backward_name, tuple(sorted(consts.items())))
    if kernel is not None:
        entry.compiled = "backward kernel" if not typed else "typed loop, backward kernel"
    if typed:
        _TYPED[entry.backward] = typed
    OPS[backward_name] = entry
    return entry.backward


def rule_of(grad_fn) -> Optional[Tuple[OpDef, tuple]]:
    """The op (and constant slots) behind a backward function, or None for a user-written one."""
    return _RULES.get(grad_fn)


# ----------------------------------------------------------------------------- evaluation
def evaluate(op: OpDef, g, out, inputs: list, params: dict, needs: Sequence[bool]) -> tuple:
    """The op's VJP formulas: one gradient (or None where not needed) per input."""
    if op.joint:
        return tuple(op.vjps(g, out, *inputs, needs=tuple(needs), **params))
    grads = []
    for f, need in zip(op.vjps, needs):
        grads.append(f(g, out, *inputs, **params) if need else None)
    return tuple(grads)


def _derive_backward(op: OpDef, name: str, consts: tuple) -> Callable:
    """The engine's backward function ``fn(tensor, grad, *, needs)`` for ``op``."""
    param_names = tuple(op.params)

    if op.kernel is not None:
        # The kernel is the backward function itself (no wrapper frame); it takes ``needs=None``.
        backward = op.kernel

    elif not consts and op.nin == 1 and not op.joint:
        (formula,) = op.vjps

        def backward(tensor, grad, *, needs=None):
            parent = tensor._parents[0]
            if param_names:
                extra = tensor._extra
                return (formula(grad, tensor._data, parent._data,
                                **{k: extra[k] for k in param_names if k in extra}),)
            return (formula(grad, tensor._data, parent._data),)

    elif not consts:

        def backward(tensor, grad, *, needs=None):
            parents = tensor._parents
            extra = tensor._extra
            inputs = [p._data for p in parents]
            params = {k: extra[k] for k in param_names if k in extra} if param_names else {}
            if needs is None:
                needs = (True,) * len(parents)
            return evaluate(op, grad, tensor._data, inputs, params, needs)

    else:

        def backward(tensor, grad, *, needs=None):
            parents = tensor._parents
            extra = tensor._extra
            inputs = [p._data for p in parents]
            if needs is None:
                needs = (True,) * len(parents)
            needs = list(needs)
            for pos, key in consts:
                inputs.insert(pos, extra[key])
                needs.insert(pos, False)
            params = {k: extra[k] for k in param_names if k in extra}
            grads = evaluate(op, grad, tensor._data, inputs, params, needs)
            skip = {pos for pos, _ in consts}
            return tuple(g for i, g in enumerate(grads) if i not in skip)

    backward.__name__ = backward.__qualname__ = name
    backward.__module__ = "clumsygrad.grad"
    backward.__doc__ = f"Backward function of ``{op.name}``: {op.doc}"
    backward.skips_unneeded = True
    _RULES[backward] = (op, consts)
    return backward


# ----------------------------------------------------------------------------- operands
def as_tensors(values: Sequence) -> tuple:
    """``values`` as tensors; a non-tensor becomes an INPUT constant.

    A constant takes the tensor operands' dtype (float64 if any is float64, else float32), so
    ``maximum(t, 0)`` keeps ``t``'s dtype; only a float64 ndarray asks for float64 itself.
    With no tensor among ``values`` the default is float32.
    """
    tensor = _Tensor
    for v in values:
        if not isinstance(v, tensor):
            break
    else:
        return tuple(values)
    dtype = np.float32
    for v in values:
        if isinstance(v, tensor) and v._data.dtype == np.float64:
            dtype = np.float64
    out = []
    for v in values:
        if isinstance(v, tensor):
            out.append(v)
        else:
            own = np.float64 if isinstance(v, np.ndarray) and v.dtype == np.float64 else dtype
            out.append(tensor(v, dtype=own))
    return tuple(out)


def _derive_function(op: OpDef) -> Callable:
    """The public function: forward on the inputs' arrays, recorded with the op's backward.

    The common calls take the shortest path: one tensor input and no parameters given.
    """
    nin, forward, backward, save = op.nin, op.forward, op.backward, op.save
    param_names, defaults, name = tuple(op.params), op.defaults, op.name
    input_names = tuple(_signature(forward).parameters)[:nin]
    record = _backend.graph.record  # new_node keeping the dict of parameters made here
    kernel_name = op.forward_kernel
    profile_name = backward.__name__[: -len("_backward")]  # the profiler's row for this op

    plain_extra = defaults or None  # what a call with no parameters records

    def profiled(*args, **kwargs):  # clumsygrad.profile() times the forward
        start = _profiler.forward_begin()
        try:
            return call(*args, **kwargs)
        finally:
            _profiler.forward_end(profile_name, start)

    # The common calls (inputs only, no profile) take the shortest path: one frame, no binding.
    if nin == 1:
        param_set = frozenset(param_names)

        def function(*args, **kwargs):
            if len(args) != 1 or _profiler.active is not None:
                return (profiled if _profiler.active is not None else call)(*args, **kwargs)
            x = args[0]
            if kwargs:  # parameters by keyword (``softmax(t, axis=-1)``): bound here, not in call
                if not param_set.issuperset(kwargs):
                    return call(*args, **kwargs)  # it words the error
                if not isinstance(x, _Tensor):
                    (x,) = as_tensors((x,))
                params = dict(defaults)
                params.update(kwargs)
                if kernel_name is None:
                    data = forward(x._data, **params)
                else:
                    data = getattr(_backend.active, kernel_name)(x._data, **params)
                if save is not None:
                    params.update(save(data, x._data, **params))
                return record(data, backward, (x,), params)
            if not isinstance(x, _Tensor):
                (x,) = as_tensors((x,))
            if kernel_name is None:
                data = forward(x._data)
            else:  # the kernel takes the parameters' defaults from here
                data = getattr(_backend.active, kernel_name)(x._data, **defaults)
            if save is None:
                return record(data, backward, (x,), dict(plain_extra) if plain_extra else None)
            extra = dict(defaults)
            extra.update(save(data, x._data, **defaults))
            return record(data, backward, (x,), extra)

    elif nin == 2:

        def function(*args, **kwargs):
            if len(args) != 2 or kwargs or save is not None or _profiler.active is not None:
                return (profiled if _profiler.active is not None else call)(*args, **kwargs)
            x, y = args
            if not (isinstance(x, _Tensor) and isinstance(y, _Tensor)):
                x, y = as_tensors((x, y))
            compute = forward if kernel_name is None else getattr(_backend.active, kernel_name)
            return record(compute(x._data, y._data), backward, (x, y), dict(plain_extra) if plain_extra else None)

    else:

        def function(*args, **kwargs):
            return (profiled if _profiler.active is not None else call)(*args, **kwargs)

    def call(*args, **kwargs):
        if len(args) < nin:  # inputs given by keyword
            args = args + tuple(kwargs.pop(k) for k in input_names[len(args):] if k in kwargs)
            if len(args) < nin:
                raise TypeError(f"{name}() missing input {input_names[len(args)]!r}")
        if len(args) > nin + len(param_names):
            raise TypeError(
                f"{name}() takes at most {nin + len(param_names)} positional arguments, got {len(args)}"
            )
        tensors = as_tensors(args[:nin])
        params = dict(defaults)
        if len(args) > nin:
            params.update(zip(param_names, args[nin:]))
        if kwargs:
            for key in kwargs:
                if key not in param_names:
                    raise TypeError(f"{name}() got an unexpected keyword argument {key!r}")
            params.update(kwargs)
        arrays = tuple(t._data for t in tensors)
        data = forward(*arrays, **params)
        if save is not None:
            params.update(save(data, *arrays, **params))
        return record(data, backward, tensors, params)

    function.__name__ = function.__qualname__ = name
    function.__module__ = f"clumsygrad.{op.module}"
    function.__doc__ = op.doc if isinstance(forward, np.ufunc) else inspect.getdoc(forward)
    function.__signature__ = _signature(forward)
    # The compiled node runs the common calls of this function in C (the same steps, no frame).
    return _backend.graph.op_function(function, forward, backward, nin, param_names, defaults, kernel_name,
                                      save, _backend, _profiler)


def export(namespace: dict, module: str) -> list:
    """Put the public functions of ``module``'s ops into ``namespace``; returns their names."""
    names = []
    for op in OPS.values():
        if op.module == module and op.function is not None and op.variant_of is None:
            namespace[op.name] = op.function
            names.append(op.name)
    return names


def tensor_vjp(node, g, needs: Sequence[bool]) -> tuple:
    """``node``'s VJP evaluated on Tensors: ``g`` and the parents are Tensors, so the gradients
    it returns record a graph of their own (the step behind ``create_graph=True``).

    ``TypeError`` naming the backward function when it is not a registered op's (a user-written
    one) or when the op's backward exists only as an array kernel.
    """
    grad_fn = node._grad_fn
    rule = _RULES.get(grad_fn)
    name = getattr(grad_fn, "__name__", repr(grad_fn))
    if rule is None:
        raise TypeError(
            f"cannot differentiate the backward function {name} of tensor {node._id}: it is not a "
            "registered op's, so it has no differentiable form (create_graph=True needs one)"
        )
    op, consts = rule
    if not op.differentiable:
        raise TypeError(
            f"the backward of {op.name} ({name}) exists only as an array kernel and cannot be "
            "differentiated (create_graph=True)"
        )
    extra = node._extra
    inputs = list(node._parents)
    needs = list(needs)
    for pos, key in consts:
        inputs.insert(pos, extra[key])
        needs.insert(pos, False)
    params = {k: extra[k] for k in op.params if k in extra}
    grads = evaluate(op, g, node, inputs, params, needs)
    skip = {pos for pos, _ in consts}
    return tuple(x for i, x in enumerate(grads) if i not in skip)
