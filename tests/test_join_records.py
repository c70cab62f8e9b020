"""The compiled records of ``concatenate`` / ``stack`` and of ``t / u`` between tensors (issue 15).

On the compiled node ``clumsygrad.concatenate`` and ``clumsygrad.stack`` are ``JoinFunction``s
and ``Tensor.__truediv__`` of two tensors is ``_operators._divide``: each must record exactly
what the Python path records (``shape.concatenate``/``stack``, ``_Operators.__truediv__``) - the
same values bit for bit and layout, parents, ``_extra``, backward function, node ids in the same
order, the same warnings - run no clumsygrad Python frame on the common call, raise the Python
path's errors (type and words) for every bad call, and give the same gradients on both engines.
On the pure node (``CLUMSYGRAD_BACKEND=python``) the public functions are the Python ones and the
comparisons run the Python path against itself.  Finite differences check both ops' gradients.
"""
import inspect
import pickle
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clumsygrad
from clumsygrad import grad
from clumsygrad._registry import OPS
from clumsygrad.tensor import Tensor, TensorType, _Operators

from helpers import compiled_node_in_use, examples, numeric_gradient, package_frames

SETTINGS = settings(max_examples=examples(150), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])
LAYOUTS = ["C", "F", "sliced", "reversed", "unit", "node"]
dtypes = st.sampled_from([np.float32, np.float64])


def _python(function):
    """The Python function behind a compiled public function (itself on the pure node)."""
    return getattr(function, "python_function", function)


def _param(values, dtype):
    return Tensor(values, TensorType.PARAMETER, dtype=dtype)


def _view(values, layout, dtype):
    """A tensor holding ``values`` whose data is laid out as ``layout``.

    F: Fortran order (a transposed view); sliced / reversed: a strided view (a getitem node);
    unit: C order, but every axis of length one a NumPy ``None`` axis (stride 0); node: an
    intermediate result, for a 0-d value the C double of the scalar fast path."""
    values = np.asarray(values, dtype=np.float64)
    if layout == "F" and values.ndim >= 2:
        return _param(np.ascontiguousarray(values.T), dtype).T()
    if layout == "sliced" and values.ndim:
        wide = np.zeros((2 * values.shape[0],) + values.shape[1:])
        wide[::2] = values
        return _param(wide, dtype)[::2]
    if layout == "reversed" and values.ndim:
        return _param(np.ascontiguousarray(values[::-1]), dtype)[::-1]
    if layout == "unit" and 1 in values.shape:
        units = tuple(k for k, d in enumerate(values.shape) if d == 1)
        key = tuple(None if k in units else slice(None) for k in range(values.ndim))
        return _param(values.squeeze(axis=units), dtype)[key]
    if layout == "node":
        return _param(values, dtype) * 1.0
    return _param(values, dtype)


def _outcome(call):
    """``call()``'s result, or the exception it raised (compared by type and words)."""
    try:
        return call()
    except Exception as exc:  # noqa: BLE001
        return exc


def _warned(call):
    """``(outcome, [(category, message), ...])`` of ``call()`` with every warning recorded."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _outcome(call)
    return result, [(w.category, str(w.message)) for w in caught]


def _same_node(fast, generic, constants=False):
    """Everything a record keeps: class, values (bit for bit) and layout, parents, ``_extra``,
    backward function, tensor type; then the same for each parent that is a new node."""
    assert type(fast) is type(generic)
    assert fast._grad_fn is generic._grad_fn
    assert fast._tensor_type is generic._tensor_type and fast._requires_grad == generic._requires_grad
    f, g = fast.data, generic.data
    assert f.dtype == g.dtype and f.shape == g.shape
    assert f.tobytes() == g.tobytes()  # bit for bit (NaNs, signed zeros)
    if f.size:
        assert f.strides == g.strides
    assert type(fast._extra) is dict and fast._extra.keys() == generic._extra.keys()
    for key, value in fast._extra.items():
        assert type(value) is type(generic._extra[key])
        np.testing.assert_array_equal(value, generic._extra[key])  # (a NaN constant equals itself)
    assert len(fast._parents) == len(generic._parents)
    for p, q in zip(fast._parents, generic._parents):
        if p is q:
            continue
        if p._grad_fn is None:  # an array operand made a new constant on each call
            assert constants and p.data.tobytes() == q.data.tobytes() and q._grad_fn is None
        else:  # a node made by the call itself (the ``u ** -1`` of a division, a row of a tensor)
            _same_node(p, q, constants)


def _same_outcome(fast, generic, constants=False):
    if isinstance(generic, Exception):
        assert type(fast) is type(generic), (fast, generic)
        assert str(fast) == str(generic)
    else:
        assert not isinstance(fast, Exception), fast
        _same_node(fast, generic, constants)


def _grads(build, arrays, dtype, layouts):
    """The gradients of ``sum(cos(k) * build(*leaves))`` for fresh leaves of ``arrays``."""
    leaves = [_view(a, layout, dtype) for a, layout in zip(arrays, layouts)]
    out = build(*leaves)
    weights = np.cos(np.arange(out.data.size) * 0.7).reshape(out.shape)
    (out * Tensor(weights, dtype=dtype)).sum().backward()
    return out, [leaf.grad for leaf in leaves]


def _same_grads(fast, slow):
    for f, s in zip(fast, slow):
        assert (f is None) == (s is None)
        if f is not None:
            assert f.dtype == s.dtype and f.shape == s.shape
            assert np.asarray(f).tobytes() == np.asarray(s).tobytes()


# --------------------------------------------------------------------------- concatenate and stack
@st.composite
def join_cases(draw):
    stacking = draw(st.booleans())
    nd = draw(st.integers(0 if stacking else 1, 3))
    ndout = nd + 1 if stacking else nd
    base = [draw(st.integers(0, 3)) for _ in range(nd)]
    axis = draw(st.integers(-ndout, ndout - 1))
    shapes = []
    for _ in range(draw(st.integers(1, 4))):
        shape = list(base)
        if not stacking:
            shape[axis] = draw(st.integers(0, 3))
        shapes.append(tuple(shape))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    arrays = [rng.standard_normal(s) for s in shapes]
    layouts = [draw(st.sampled_from(LAYOUTS)) for _ in shapes]
    return stacking, arrays, layouts, axis, draw(dtypes), draw(st.sampled_from([list, tuple]))


@SETTINGS
@given(join_cases(), st.sampled_from(["position", "keyword", "default"]))
def test_join_records_equal_the_python_functions(case, how):
    stacking, arrays, layouts, axis, dtype, container = case
    function = clumsygrad.stack if stacking else clumsygrad.concatenate
    python = _python(function)
    tensors = container(_view(a, layout, dtype) for a, layout in zip(arrays, layouts))
    if how == "default":
        axis = 0
        call, slow = (lambda: function(tensors)), (lambda: python(tensors))
    elif how == "keyword":
        call, slow = (lambda: function(tensors, axis=axis)), (lambda: python(tensors, axis=axis))
    else:
        call, slow = (lambda: function(tensors, axis)), (lambda: python(tensors, axis))
    fast, generic = _outcome(call), _outcome(slow)
    _same_outcome(fast, generic)
    if isinstance(fast, Exception):
        return
    assert fast._grad_fn is OPS["stack" if stacking else "concatenate"].backward
    assert fast._parents == tuple(tensors)
    ndout = arrays[0].ndim + (1 if stacking else 0)
    assert fast._extra["axis"] == axis % ndout
    if not stacking:
        assert fast._extra["sizes"] == tuple(a.shape[axis] for a in arrays)
    expected = (np.stack if stacking else np.concatenate)([t.data for t in tensors], axis=axis)
    assert fast.data.tobytes() == expected.tobytes() and fast.data.strides == expected.strides
    # the same gradients through the fast and the Python record, on this test's engine
    _same_grads(_grads(lambda *ts: function(container(ts), axis), arrays, dtype, layouts)[1],
                _grads(lambda *ts: python(container(ts), axis), arrays, dtype, layouts)[1])


def test_join_errors_and_other_calls_are_the_python_functions():
    a = _param(np.ones((2, 3)), np.float32)
    b = _param(np.ones((2, 4)), np.float32)
    c = _param(np.ones((2, 3)), np.float64)
    s = _param(np.array(2.0), np.float32) * 3.0  # a 0-d value
    calls = [
        ([], {}), ((), {}), ([a, b], {}), ([a, b], {"axis": 2}), ([a, b], {"axis": -3}), ([a, a], {"axis": 1.0}),
        ([a, b], {"axis": None}), ([a, a], {"axis": np.int64(1)}), ([a, a], {"axis": True}), ([s, s], {}),
        ([a, c], {}), ([a, np.ones((1, 3))], {}), ([a, [[1.0, 2.0, 3.0]]], {}), (a, {}), ([a, "x"], {}),
        ([a, a], {"axis": 0, "out": None}), ([a, a], {"dtype": np.float64}), ([a, a, a], {"axis": 10**30}),
        ([a, a], {"axis": -10**30}), ([s, a], {}),
    ]
    for function in (clumsygrad.concatenate, clumsygrad.stack):
        python = _python(function)
        for args, kwargs in calls:
            fast, generic = _outcome(lambda: function(args, **kwargs)), _outcome(lambda: python(args, **kwargs))
            _same_outcome(fast, generic, constants=True)
        _same_outcome(_outcome(lambda: function(iter([a, a]))), _outcome(lambda: python(iter([a, a]))))
        _same_outcome(_outcome(lambda: function(tensors=[a, a], axis=1)), _outcome(lambda: python(tensors=[a, a], axis=1)))
        _same_outcome(_outcome(lambda: function()), _outcome(lambda: python()))
        _same_outcome(_outcome(lambda: function([a], 0, 1)), _outcome(lambda: python([a], 0, 1)))
    # the errors themselves: empty, shapes, axis (words from NumPy and clumsygrad.shape)
    with pytest.raises(ValueError, match="concatenate needs at least one tensor"):
        clumsygrad.concatenate([])
    with pytest.raises(ValueError, match="stack needs at least one tensor"):
        clumsygrad.stack(())
    with pytest.raises(ValueError):
        clumsygrad.concatenate([a, b])
    with pytest.raises(ValueError, match="same shape"):
        clumsygrad.stack([a, b])
    with pytest.raises(np.exceptions.AxisError):
        clumsygrad.concatenate([a, a], axis=2)
    # mixed dtypes promote to float64, as the Python function does
    assert clumsygrad.concatenate([a, c]).data.dtype == np.float64


def test_numpy_functions_on_tensors_are_the_join_records():
    a, b = _param(np.arange(6.0).reshape(2, 3), np.float32), _param(np.ones((2, 3)), np.float32)
    _same_node(np.concatenate([a, b], axis=1), _python(clumsygrad.concatenate)([a, b], axis=1))
    _same_node(np.stack((a, b), axis=-1), _python(clumsygrad.stack)((a, b), axis=-1))


def test_join_functions_look_like_functions():
    from clumsygrad import shape

    for function in (clumsygrad.concatenate, clumsygrad.stack):
        python = _python(function)
        for attr in ("__name__", "__qualname__", "__module__", "__doc__"):
            assert getattr(function, attr) == getattr(python, attr)
        assert inspect.signature(function) == inspect.signature(python)
        assert str(inspect.signature(function)) == "(tensors: 'Sequence', axis: 'int' = 0)"
        assert inspect.isroutine(function)
        assert pickle.loads(pickle.dumps(function)) is function
        assert repr(function).startswith(f"<function {python.__name__} at 0x")
        assert getattr(shape, python.__name__) is function
        assert (type(function).__name__ == "JoinFunction") == compiled_node_in_use()


def test_join_ids_and_graph_mode():
    a, b = _param(np.ones((2, 3)), np.float32), _param(np.zeros((1, 3)), np.float32)
    first = clumsygrad.concatenate([a, b])
    second = clumsygrad.concatenate([a, b])
    assert second._id == first._id + 1
    with clumsygrad.no_grad():
        off = clumsygrad.stack([a, a])
    assert off._tensor_type is TensorType.INPUT and off._parents == () and off._grad_fn is None
    x, y = Tensor(np.ones(2)), Tensor(np.ones(2))  # no parameter: an INPUT result, as new_node makes it
    _same_node(clumsygrad.stack([x, y]), _python(clumsygrad.stack)([x, y]))
    assert clumsygrad.stack([x, y])._tensor_type is TensorType.INPUT


# --------------------------------------------------------------------------- t / u
@st.composite
def division_cases(draw):
    kind = draw(st.sampled_from(["same", "same", "row", "column", "scalar", "scalar_left", "general", "mismatch"]))
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=1, max_size=3)))
    if kind == "same":
        shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=3)))
        left, right = shape, shape
    elif kind == "row":
        left, right = (draw(st.integers(1, 3)),) + shape, shape[-1:]
        if draw(st.booleans()):
            left, right = right, left
    elif kind == "column":
        left, right = shape, shape[:-1] + (1,)
    elif kind == "scalar":
        left, right = shape, ()
    elif kind == "scalar_left":
        left, right = (), shape
    elif kind == "general":
        left, right = shape + (1,), (draw(st.integers(1, 3)),)
        left, right = (1,) + left, right
    else:
        left, right = shape + (2,), shape + (3,)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    a, b = rng.standard_normal(left), rng.standard_normal(right) + 0.5
    special = draw(st.sampled_from(["none", "none", "zero", "tiny", "nan"]))
    if special != "none" and b.size:  # zero divisors, overflowing quotients, NaN: NumPy's warnings
        b.flat[draw(st.integers(0, b.size - 1))] = {"zero": 0.0, "tiny": 1e-300, "nan": np.nan}[special]
    return a, b, draw(st.sampled_from(LAYOUTS)), draw(st.sampled_from(LAYOUTS)), draw(dtypes)


@SETTINGS
@given(division_cases())
def test_division_record_equals_the_generic_operator(case):
    a, b, layout_a, layout_b, dtype = case
    x, y = _view(a, layout_a, dtype), _view(b, layout_b, dtype)
    fast, fast_warnings = _warned(lambda: x / y)
    generic, generic_warnings = _warned(lambda: _Operators.__truediv__(x, y))
    assert fast_warnings == generic_warnings
    _same_outcome(fast, generic)
    if isinstance(fast, Exception):
        return
    inverse = fast._parents[1]
    assert fast._parents[0] is x and inverse._parents == (y,)
    assert inverse._grad_fn is grad.power_backward and inverse._extra == {"power": -1.0}
    assert fast._grad_fn is (grad.mul_backward if x.shape == y.shape else grad.mul_broadcast_backward)
    assert inverse._id + 1 == fast._id  # u ** -1 recorded first, as the generic operator does
    with np.errstate(all="ignore"):
        assert fast.data.tobytes() == np.asarray(np.divide(x.data, y.data)).tobytes()
    if np.all(np.isfinite(b)):
        _same_grads(_grads(lambda s, t: s / t, [a, b], dtype, [layout_a, layout_b])[1],
                    _grads(_Operators.__truediv__, [a, b], dtype, [layout_a, layout_b])[1])


def test_division_under_errstate_raise_is_the_generic_operators():
    x = _param(np.ones((2, 3)), np.float32)
    y = _param(np.array([[1.0, 0.0, 2.0], [1.0, 1.0, 1.0]]), np.float32)
    column = _param(np.array([[0.0], [1.0]]), np.float32)
    for divisor in (y, column):
        with np.errstate(divide="raise"):
            fast, generic = _outcome(lambda: x / divisor), _outcome(lambda: _Operators.__truediv__(x, divisor))
        assert isinstance(generic, FloatingPointError)
        _same_outcome(fast, generic)
        with np.errstate(divide="ignore"):
            fast, generic = _warned(lambda: x / divisor), _warned(lambda: _Operators.__truediv__(x, divisor))
        assert fast[1] == generic[1] == []
        _same_outcome(fast[0], generic[0])


def test_division_off_the_c_path_is_the_generic_operator():
    x32 = _param(np.arange(1.0, 7.0).reshape(2, 3), np.float32)
    x64 = _param(np.arange(1.0, 7.0).reshape(2, 3), np.float64)
    # mixed dtypes promote as the generic operator does; arrays and lists become constants
    _same_outcome(_outcome(lambda: x32 / x64), _outcome(lambda: _Operators.__truediv__(x32, x64)))
    assert (x32 / x64).data.dtype == np.float64
    a = np.full((2, 3), 4.0)
    _same_outcome(_outcome(lambda: x32 / a), _outcome(lambda: _Operators.__truediv__(x32, a)), constants=True)
    _same_outcome(_outcome(lambda: x32 / [1.0, 2.0, 4.0]),
                  _outcome(lambda: _Operators.__truediv__(x32, [1.0, 2.0, 4.0])), constants=True)
    # shapes that do not broadcast: the generic operator's words
    bad = _param(np.ones((4,)), np.float32)
    fast, generic = _outcome(lambda: x32 / bad), _outcome(lambda: _Operators.__truediv__(x32, bad))
    assert isinstance(generic, ValueError)
    _same_outcome(fast, generic)
    # x / number and number / t are unchanged
    for c in (2.0, 3, -0.5, 1e-30):
        _same_outcome(_outcome(lambda: x32 / c), _outcome(lambda: _Operators.__truediv__(x32, c)))
        _same_outcome(_outcome(lambda: c / x32), _outcome(lambda: _Operators.__rtruediv__(x32, c)))
    for c in (0.0, float("nan")):
        fast, generic = _warned(lambda: x32 / c), _warned(lambda: _Operators.__truediv__(x32, c))
        assert fast[1] == generic[1]
        _same_outcome(fast[0], generic[0])
    # 0-d values of the scalar fast path, each side
    s, t = _param(np.array(3.0), np.float64) * 1.0, _param(np.array(0.5), np.float64) * 2.0
    _same_outcome(_outcome(lambda: s / t), _outcome(lambda: _Operators.__truediv__(s, t)))
    _same_outcome(_outcome(lambda: x64 / s), _outcome(lambda: _Operators.__truediv__(x64, s)))
    _same_outcome(_outcome(lambda: s / x64), _outcome(lambda: _Operators.__truediv__(s, x64)))
    zero = _param(np.array(0.0), np.float32) * 1.0
    one = _param(np.array(1.0), np.float32) * 1.0
    fast, generic = _warned(lambda: one / zero), _warned(lambda: _Operators.__truediv__(one, zero))
    assert fast[1] == generic[1] and len(fast[1]) == 2
    _same_outcome(fast[0], generic[0])


# --------------------------------------------------------------------------- no Python frame
def test_the_common_calls_run_no_clumsygrad_python_frame():
    rng = np.random.default_rng(3)
    a, b, c = (_param(rng.standard_normal((16, 32)), np.float32) for _ in range(3))
    u = _param(rng.standard_normal((16, 32)) + 3.0, np.float32)
    column = _param(rng.standard_normal((16, 1)) + 3.0, np.float32)
    row = _param(rng.standard_normal(32) + 3.0, np.float32)
    total = a.sum()
    sliced = _param(rng.standard_normal((32, 32)), np.float32)[::2]
    calls = {
        "concatenate": lambda: clumsygrad.concatenate([a, b], 1),
        "concatenate tuple": lambda: clumsygrad.concatenate((a, b, c), axis=-1),
        "concatenate strided": lambda: clumsygrad.concatenate([a, sliced]),
        "stack": lambda: clumsygrad.stack([a, b, c]),
        "stack axis": lambda: clumsygrad.stack([a, b], axis=2),
        "stack strided": lambda: clumsygrad.stack([a, sliced], 1),
        "t / u": lambda: a / u,
        "t / column": lambda: a / column,
        "t / row": lambda: a / row,
        "t / 0-d": lambda: a / total,
        "0-d / 0-d": lambda: total / total,
        "strided / u": lambda: sliced / u,
    }
    for name, call in calls.items():
        result, frames = package_frames(call)
        assert isinstance(result, Tensor)
        if compiled_node_in_use():
            assert frames == [], (name, frames)
        else:  # the pure node runs the Python functions: the probe sees them
            assert frames, name
    # the probe sees the Python path where the compiled node falls back to it
    _, frames = package_frames(lambda: clumsygrad.concatenate([a, np.ones((16, 2))], 1))
    assert "concatenate" in frames
    _, frames = package_frames(lambda: a / _param(np.ones((16, 32)), np.float64))
    assert "__truediv__" in frames


@pytest.mark.parametrize("case", ["t / u", "t / column", "t / row", "t / 0-d", "0-d / 0-d", "strided / u",
                                  "concatenate", "stack", "concatenate strided", "stack 0-d"])
def test_backward_runs_what_the_generic_records_run(case):
    """The records carry the generic path's op codes: backward through them runs exactly the same
    clumsygrad Python functions (none where the engine has a typed loop) as through the generic
    records, and gives the same gradients bit for bit."""
    rng = np.random.default_rng(5)
    shapes = {"t / u": [(4, 6), (4, 6)], "t / column": [(4, 6), (4, 1)], "t / row": [(4, 6), (6,)],
              "t / 0-d": [(4, 6), ()], "0-d / 0-d": [(), ()], "strided / u": [(4, 6), (4, 6)],
              "concatenate": [(4, 6), (2, 6)], "stack": [(4, 6), (4, 6)],
              "concatenate strided": [(4, 6), (4, 6)], "stack 0-d": [(), ()]}[case]
    arrays = [rng.uniform(0.5, 2.0, s) for s in shapes]
    layouts = ["sliced" if "strided" in case and i == 0 else "node" if s == () else "C"
               for i, s in enumerate(shapes)]
    if case.startswith("concatenate"):
        fast, slow = (lambda *ts: clumsygrad.concatenate(list(ts))), (lambda *ts: _python(clumsygrad.concatenate)(list(ts)))
    elif case.startswith("stack"):
        fast, slow = (lambda *ts: clumsygrad.stack(ts, -1)), (lambda *ts: _python(clumsygrad.stack)(ts, -1))
    else:
        fast, slow = (lambda s, t: s / t), _Operators.__truediv__
    runs = []
    for build in (fast, slow, fast, slow):  # the first pass of each warms the engines' caches up
        leaves = [_view(a, layout, np.float32) for a, layout in zip(arrays, layouts)]
        loss = (build(*leaves) * 3.0).sum()
        _, frames = package_frames(loss.backward)
        runs.append((frames, [leaf.grad for leaf in leaves]))
    runs = runs[2:]
    assert runs[0][0] == runs[1][0]
    _same_grads(runs[0][1], runs[1][1])


# --------------------------------------------------------------------------- finite differences
@pytest.mark.parametrize("stacking, axis", [(False, 0), (False, 1), (False, -1), (True, 0), (True, 1), (True, -1)])
def test_join_gradients_match_finite_differences(stacking, axis):
    rng = np.random.default_rng(7)
    shapes = [(2, 3), (2, 3), (2, 3)] if stacking else [(2, 3), (2, 3), (2, 3)]
    if not stacking:
        shapes = [(2, 3), (1, 3), (3, 3)] if axis == 0 else [(2, 3), (2, 1), (2, 2)]
    arrays = [rng.standard_normal(s) for s in shapes]
    join = clumsygrad.stack if stacking else clumsygrad.concatenate
    weights = rng.standard_normal(np.shape((np.stack if stacking else np.concatenate)(arrays, axis=axis)))

    def value(i, v):
        parts = [Tensor(v if j == i else arrays[j], dtype=np.float64) for j in range(len(arrays))]
        return float((clumsygrad.tanh(join(parts, axis)) * Tensor(weights, dtype=np.float64)).sum().data)

    leaves = [Tensor(a, TensorType.PARAMETER, dtype=np.float64) for a in arrays]
    (clumsygrad.tanh(join(leaves, axis)) * Tensor(weights, dtype=np.float64)).sum().backward()
    for i, leaf in enumerate(leaves):
        np.testing.assert_allclose(leaf.grad, numeric_gradient(lambda v: value(i, v), arrays[i]),
                                   rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("left, right", [((3, 4), (3, 4)), ((3, 4), (3, 1)), ((3, 4), (4,)), ((3, 4), ()),
                                         ((4,), (3, 4)), ((), ())])
def test_division_gradients_match_finite_differences(left, right):
    rng = np.random.default_rng(11)
    a = rng.standard_normal(left)
    b = rng.uniform(0.5, 2.0, right) * np.where(rng.random(right) < 0.5, -1.0, 1.0)
    weights = rng.standard_normal(np.broadcast_shapes(left, right))

    def value(u, v):
        q = Tensor(u, dtype=np.float64) / Tensor(v, dtype=np.float64)
        return float((clumsygrad.tanh(q) * Tensor(weights, dtype=np.float64)).sum().data)

    x, y = (Tensor(v, TensorType.PARAMETER, dtype=np.float64) for v in (a, b))
    (clumsygrad.tanh(x / y) * Tensor(weights, dtype=np.float64)).sum().backward()
    np.testing.assert_allclose(x.grad, numeric_gradient(lambda v: value(v, b), a), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(y.grad, numeric_gradient(lambda v: value(a, v), b), rtol=1e-6, atol=1e-8)


def test_the_shared_loops_divide_by_zero_as_c_does():
    """The inline loops of native.pxd divide without a Python zero check: log's typed VJP at 0
    is inf, as the Python formula's (an unraisable ZeroDivisionError and a half-written gradient before)."""
    x = Tensor(np.array([0.0, 1.0, 2.0, 4.0]), TensorType.PARAMETER)
    with np.errstate(divide="ignore"):
        clumsygrad.log(x).backward(np.ones(4, np.float32))
    np.testing.assert_array_equal(x.grad, np.array([np.inf, 1.0, 0.5, 0.25], np.float32))
