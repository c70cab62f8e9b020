"""The compiled node's forward records (``_operators.pyx``): ``x @ y``, ``x[rows]`` and the bias-row
``x + b`` / ``b - x`` / ``x * b``, against the generic Python operators they stand for.

Values must equal the generic operator's (``np.matmul``, NumPy indexing and broadcasting: bit for
bit where the same BLAS call or loop computes them, to float rounding for a batched product seen
as one 2-D product), the recorded backward function and ``_extra`` must be the generic one's,
and every case off the fast path (1-D operands, other dtypes, bad shapes, indices out of range)
must give the generic operator's result or error.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clumsygrad import grad
from clumsygrad.tensor import Tensor, TensorType, _Operators

from helpers import compiled_node_in_use, examples

pytestmark = pytest.mark.both_backends


SETTINGS = settings(max_examples=examples(200), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LAYOUTS = ["C", "F", "sliced", "reversed"]


def _param(values, dtype):
    return Tensor(values, TensorType.PARAMETER, dtype=dtype)


def _view(values, layout, dtype):
    """A tensor holding ``values`` whose data is laid out as ``layout`` (a graph view op)."""
    if layout == "F" and values.ndim == 2:
        return _param(np.ascontiguousarray(values.T), dtype).T()
    if layout == "sliced" and values.ndim:
        wide = np.zeros((2 * values.shape[0],) + values.shape[1:])
        wide[::2] = values
        return _param(wide, dtype)[::2]
    if layout == "reversed" and values.ndim:
        return _param(np.ascontiguousarray(values[::-1]), dtype)[::-1]
    return _param(values, dtype)


def _same_record(fast, generic, exact=True, constants=False):
    assert type(fast) is type(generic)
    assert fast._grad_fn is generic._grad_fn
    if constants:  # an array operand becomes a new constant tensor on each call: same values
        assert [p.data.tolist() for p in fast._parents] == [p.data.tolist() for p in generic._parents]
    else:
        assert fast._parents == generic._parents
    assert fast.data.dtype == generic.data.dtype and fast.shape == generic.shape
    if exact:
        np.testing.assert_array_equal(fast.data, generic.data)
    else:
        tol = 1e-5 if fast.data.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(fast.data, generic.data, rtol=tol, atol=tol)
    assert fast._extra.keys() == generic._extra.keys()
    for key in fast._extra:
        np.testing.assert_array_equal(fast._extra[key], generic._extra[key])


dtypes = st.sampled_from([np.float32, np.float64])


@st.composite
def matmul_operands(draw):
    n, k, m = (draw(st.integers(0, 5)) for _ in range(3))
    batch = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    kind = draw(st.sampled_from(["2d", "2d", "rows", "batched", "right_batch", "broadcast"]))
    left, right = (n, k), (k, m)
    if kind == "rows":
        left = batch + left
    elif kind == "batched":
        left, right = batch + left, batch + right
    elif kind == "right_batch":
        right = batch + right
    elif kind == "broadcast" and batch:
        left, right = (1,) * len(batch) + left, batch + right
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return (rng.standard_normal(left), rng.standard_normal(right), draw(dtypes),
            draw(st.sampled_from(LAYOUTS)), draw(st.sampled_from(LAYOUTS)))


@SETTINGS
@given(matmul_operands())
def test_matmul_record_equals_the_generic_operator(case):
    a, b, dtype, layout_a, layout_b = case
    x, y = _view(a, layout_a, dtype), _view(b, layout_b, dtype)
    fast = x @ y
    generic = _Operators.__matmul__(x, y)
    _same_record(fast, generic, exact=x.ndim == 2 and y.ndim == 2)
    np.testing.assert_allclose(fast.data, np.matmul(x.data, y.data), rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-5 if dtype == np.float32 else 1e-12)
    assert fast._grad_fn is grad.matmul_backward


@pytest.mark.parametrize("left, right", [
    ((3, 4), (5, 2)), ((2, 3, 4), (3, 4, 2)), ((4,), (4, 2)), ((3, 4), (4,)), ((), (3,)),
])
def test_matmul_record_errors_and_other_operands_are_the_generic_ones(left, right):
    x, y = _param(np.ones(left), np.float32), _param(np.ones(right), np.float32)
    try:
        expected = _Operators.__matmul__(x, y)
    except Exception as exc:  # noqa: BLE001 - the same type and message, whatever it is
        with pytest.raises(type(exc)) as info:
            x @ y
        assert str(info.value) == str(exc)
    else:
        _same_record(x @ y, expected)


def test_matmul_of_mixed_dtypes_and_arrays_is_the_generic_operator():
    x32, x64 = _param(np.ones((2, 3)), np.float32), _param(np.ones((3, 2)), np.float64)
    _same_record(x32 @ x64, _Operators.__matmul__(x32, x64))
    a = np.arange(6.0).reshape(3, 2)
    _same_record(x32 @ a, _Operators.__matmul__(x32, a), constants=True)
    with pytest.raises(TypeError, match="Right operand must be a Tensor, got list"):
        x32 @ [[1.0], [2.0], [3.0]]


@SETTINGS
@given(st.integers(1, 6), st.integers(0, 4), st.lists(st.integers(-6, 5), max_size=9), dtypes,
       st.sampled_from(LAYOUTS), st.booleans())
def test_row_lookup_record_equals_the_generic_operator(rows, width, ids, dtype, layout, three_d):
    ids = np.array([i for i in ids if -rows <= i < rows], dtype=np.intp)
    rng = np.random.default_rng(rows * 10 + width)
    table = rng.standard_normal((rows, width, 2) if three_d else (rows, width))
    x = _view(table, layout, dtype)
    fast = x[ids]
    generic = _Operators.__getitem__(x, ids)
    _same_record(fast, generic)
    assert fast._grad_fn is grad.getitem_backward
    key = fast._extra["key"]
    assert not key.flags.writeable and not np.shares_memory(key, ids)
    ids_before = ids.copy()
    ids[...] = 0  # the recorded rows are the caller's at the time of the call
    np.testing.assert_array_equal(fast._extra["key"], ids_before)


@pytest.mark.parametrize("key", [
    np.array([0, 7]), np.array([-8]), np.array([0, 1], dtype=np.int32), np.array([[0, 1]]),
    np.array([True, False, True, False, True, False, True]), np.zeros(0, dtype=np.intp),
])
def test_row_lookup_other_keys_and_errors_are_the_generic_ones(key):
    x = _param(np.arange(14.0).reshape(7, 2), np.float64)
    try:
        expected = _Operators.__getitem__(x, key)
    except Exception as exc:  # noqa: BLE001
        with pytest.raises(type(exc)) as info:
            x[key]
        assert str(info.value) == str(exc)
    else:
        _same_record(x[key], expected)


@SETTINGS
@given(st.lists(st.integers(0, 4), min_size=1, max_size=3), dtypes, st.sampled_from(["+", "-", "*"]),
       st.booleans(), st.integers(0, 2**32 - 1))
def test_bias_row_record_equals_numpy_broadcasting(shape, dtype, symbol, row_first, seed):
    rng = np.random.default_rng(seed)
    shape = tuple(shape) if len(shape) > 1 else (2,) + tuple(shape)
    big, row = _param(rng.standard_normal(shape), dtype), _param(rng.standard_normal(shape[-1:]), dtype)
    left, right = (row, big) if row_first else (big, row)
    op = {"+": np.add, "-": np.subtract, "*": np.multiply}[symbol]
    fast = left + right if symbol == "+" else (left - right if symbol == "-" else left * right)
    np.testing.assert_array_equal(fast.data, op(left.data, right.data))
    assert fast.data.dtype == dtype and fast.data.flags.c_contiguous
    assert fast._extra == {"left_shape": left.shape, "right_shape": right.shape}
    names = {"+": "add_broadcast_backward", "-": "sub_broadcast_backward", "*": "mul_broadcast_backward"}
    assert fast._grad_fn is getattr(grad, names[symbol])


def test_the_records_take_the_compiled_path():
    if not compiled_node_in_use():
        return
    from clumsygrad._graph import native

    assert "__matmul__" in vars(native.Node) and "__getitem__" in vars(native.Node)
    assert "__getitem__" not in vars(Tensor)  # the generic one is _Operators', behind the node's


# --------------------------------------------------------------------------- the registry's public functions
# On the compiled node a registry op's public function is an ``OpFunction``: its common calls run in
# C.  Each must record exactly what the registry's Python function records, or raise what it raises.
def _python_function(function):
    return getattr(function, "python_function", function)


def _outcome(call):
    try:
        return call()
    except Exception as exc:  # compared by type and words
        return exc


def _same_outcome(fast, slow):
    if isinstance(slow, Exception):
        assert type(fast) is type(slow) and str(fast) == str(slow)
    else:
        _same_record(fast, slow)


def _function_ops():
    from clumsygrad._registry import OPS

    return sorted(name for name, op in OPS.items()
                  if op.function is not None and op.variant_of is None and op.nin in (1, 2))


@pytest.mark.parametrize("name", _function_ops())
def test_op_function_records_what_the_python_function_records(name):
    from clumsygrad._registry import OPS
    from op_samples import SAMPLES

    op = OPS[name]
    for sample in SAMPLES[name]:
        for dtype in (np.float32, np.float64):
            tensors = [_param(a, dtype) for a in sample.inputs[:op.nin]]
            _same_outcome(_outcome(lambda: op.function(*tensors)),
                          _outcome(lambda: _python_function(op.function)(*tensors)))


@pytest.mark.parametrize("kwargs", [{}, {"axis": 0}, {"axis": -1}, {"axis": 5}, {"dim": 0}])
def test_op_function_parameters_by_keyword_and_position(kwargs):
    from clumsygrad.activation import softmax

    x = _param(np.random.default_rng(0).standard_normal((3, 4)), np.float32)
    _same_outcome(_outcome(lambda: softmax(x, **kwargs)), _outcome(lambda: _python_function(softmax)(x, **kwargs)))
    _same_outcome(_outcome(lambda: softmax(x, 0)), _outcome(lambda: _python_function(softmax)(x, 0)))
    _same_outcome(_outcome(lambda: softmax()), _outcome(lambda: _python_function(softmax)()))


@pytest.mark.parametrize("call", [
    lambda f, x: f(x, 0), lambda f, x: f(x, 1, True), lambda f, x: f(x, (0, 1)), lambda f, x: f(x, -1, keepdims=True),
    lambda f, x: f(x, 0, axis=1), lambda f, x: f(x, 0, True, 5), lambda f, x: f(x, 7), lambda f, x: f(x, None, False),
])
@pytest.mark.parametrize("name", ["sum", "mean", "softmax", "log_softmax", "max"])
def test_op_function_parameters_by_position(name, call):
    import clumsygrad

    function = getattr(clumsygrad, name)
    x = _param(np.random.default_rng(1).standard_normal((3, 4)), np.float64)
    _same_outcome(_outcome(lambda: call(function, x)), _outcome(lambda: call(_python_function(function), x)))


def test_op_function_inputs_off_the_c_path():
    from clumsygrad.activation import relu
    from clumsygrad.loss import mse_loss

    relu_py, mse_py = _python_function(relu), _python_function(mse_loss)
    a = np.array([[-1.0, 2.0], [0.5, -0.0]])
    # arrays and lists become constants; mixed dtypes promote to float64; bad shapes raise alike
    _same_record(relu(a), relu_py(a), constants=True)
    _same_record(relu([[-1.0, 2.0]]), relu_py([[-1.0, 2.0]]), constants=True)
    p32, p64 = _param(a, np.float32), _param(a, np.float64)
    _same_record(mse_loss(p32, p64), mse_py(p32, p64))
    assert mse_loss(p32, p64).data.dtype == np.float64
    _same_outcome(_outcome(lambda: mse_loss(p32, _param(a[:1], np.float32))),
                  _outcome(lambda: mse_py(p32, _param(a[:1], np.float32))))
    # a 0-d result of the scalar fast path (its value kept in C until read)
    s = _param(np.array(-3.0), np.float64) * 2.0
    _same_record(relu(s), relu_py(s))
    assert relu(s).data.tolist() == 0.0


def test_op_functions_look_like_functions():
    import inspect
    import pickle

    import clumsygrad as cg

    for name in _function_ops():
        from clumsygrad._registry import OPS

        function, python = OPS[name].function, _python_function(OPS[name].function)
        for attr in ("__name__", "__qualname__", "__module__", "__doc__"):
            assert getattr(function, attr) == getattr(python, attr), (name, attr)
        assert inspect.signature(function) == inspect.signature(python)
        assert inspect.isroutine(function)  # Sphinx documents it as a function
        if OPS[name].module != "internal":  # internal ops have no importable module
            assert pickle.loads(pickle.dumps(function)) is function
        assert repr(function).startswith(f"<function {name} at 0x")
    x = _param(np.array([[-1.0, 2.0]]), np.float32)
    assert Tensor.relu is cg.relu
    _same_record(x.relu(), cg.relu(x))
    _same_record(x.softmax(axis=0), cg.softmax(x, axis=0))


def test_the_common_op_calls_take_the_compiled_path():
    from clumsygrad.activation import relu, softmax
    from clumsygrad.loss import mse_loss

    for function in (relu, softmax, mse_loss):
        assert (type(function).__name__ == "OpFunction") == compiled_node_in_use()



BASIC_KEYS = [0, -1, slice(None), slice(1, None, 2), slice(None, None, -1), (0, 1), (Ellipsis, 0), (None, 0),
              (slice(0, 1), None, Ellipsis), (1, slice(None, None, -2)), Ellipsis, (), slice(5, 1), (-1, -1)]


@pytest.mark.parametrize("key", BASIC_KEYS, ids=repr)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_basic_index_record_equals_the_generic_operator(key, dtype, layout):
    x = _view(np.arange(12.0).reshape(3, 4), layout, dtype)
    fast, generic = _outcome(lambda: x[key]), _outcome(lambda: _Operators.__getitem__(x, key))
    _same_outcome(fast, generic)
    if not isinstance(fast, Exception):
        assert fast._extra["key"] == key and fast._extra["original_shape"] == (3, 4)
        assert np.shares_memory(fast.data, x.data) == np.shares_memory(generic.data, x.data)


def test_basic_index_errors_are_numpys():
    x = _param(np.arange(6.0).reshape(2, 3), np.float64)
    for key in [(5,), (0, 0, 0), (slice(None), 7)]:
        _same_outcome(_outcome(lambda: x[key]), _outcome(lambda: _Operators.__getitem__(x, key)))
    assert isinstance(_outcome(lambda: x[0, 0, 0]), IndexError)


@pytest.mark.parametrize("shapes", [((4,), (4,)), ((4,), (4, 3)), ((2, 4), (4,)), ((4,), (2, 4, 3)), ((2, 3, 4), (4,)),
                                    ((0,), (0,)), ((4,), (5,)), ((4,), (3, 2)), ((), (3,)), ((3,), ())])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vector_matmul_record_equals_the_generic_operator(shapes, dtype):
    rng = np.random.default_rng(len(shapes[0]) * 7 + len(shapes[1]))
    x, y = _param(rng.standard_normal(shapes[0]), dtype), _param(rng.standard_normal(shapes[1]), dtype)
    _same_outcome(_outcome(lambda: x @ y), _outcome(lambda: _Operators.__matmul__(x, y)))


@pytest.mark.parametrize("args", [((2, 6),), (2, 6), (-1,), (3, -1), ([4, 3],), (np.int64(12),), ((12, 1, 1),),
                                  (5, -1), ((2, 2, 2),), ("a",), (-1, -1), ((),)], ids=repr)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_reshape_record_equals_the_generic_method(args, layout):
    x = _view(np.arange(12.0).reshape(3, 4), layout, np.float32)
    fast, generic = _outcome(lambda: x.reshape(*args)), _outcome(lambda: _Operators.reshape(x, *args))
    _same_outcome(fast, generic)
    if not isinstance(fast, Exception):
        assert fast._extra == {"original_shape": (3, 4)}
        assert np.shares_memory(fast.data, x.data) == np.shares_memory(generic.data, x.data)


def test_reshape_of_a_0d_value_and_the_compiled_method():
    s = _param(np.array(2.0), np.float64) * 3.0  # a 0-d value of the scalar fast path
    _same_record(s.reshape(1, 1), _Operators.reshape(s, 1, 1))
    if compiled_node_in_use():
        from clumsygrad._graph import native

        assert Tensor.reshape is native.Node.reshape and "reshape" not in vars(Tensor)


# --------------------------------------------------------------------------- powers by a constant
POWERS = [2, 2.0, -1, -1.0, 0.5, 3, -2.5, 0, 1, 1e-3]


@SETTINGS
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), dtypes, st.sampled_from(LAYOUTS),
       st.sampled_from(POWERS), st.integers(0, 2**16))
def test_power_and_reciprocal_records_equal_the_generic_operators(shape, dtype, layout, power, seed):
    """``t ** c`` and ``c / t`` for a Python int or float ``c``: the node's C records (a typed POWER
    node, and ``c * t**-1`` with the exact quotient) against the generic Python operators."""
    values = np.random.default_rng(seed).uniform(0.2, 3.0, size=shape)
    t = _view(values, layout, dtype)
    with np.errstate(all="ignore"):
        _same_record(t ** power, _Operators.__pow__(t, power))
        fast, generic = power / t, _Operators.__rtruediv__(t, power)
    _same_record(fast, generic, constants=True)  # each has its own reciprocal node as parent:
    _same_record(fast._parents[0], generic._parents[0])  # the same record of ``t ** -1``


@pytest.mark.parametrize("power", [2, -1.0, 0.5, -2.5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_power_records_backpropagate_in_c_with_the_python_functions_gradients(power, dtype):
    import sys

    values = np.random.default_rng(4).uniform(0.2, 3.0, size=(3, 5))
    grads = []
    for make in (lambda t: (t ** power) * (2.0 / t), lambda t: _Operators.__mul__(
            _Operators.__pow__(t, power), _Operators.__rtruediv__(t, 2.0))):
        t = _param(values, dtype)
        loss = make(t).sum()
        called = []

        def profile(frame, event, arg):
            if event == "call" and frame.f_code.co_name in ("_power_by_constant", "_mul_by_constant"):
                called.append(frame.f_code.co_name)

        sys.setprofile(profile)
        try:
            loss.backward()
        finally:
            sys.setprofile(None)
        grads.append((t.grad, called))
    (fast, fast_calls), (generic, _) = grads
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(fast, generic, rtol=tol, atol=tol)
    x = values.astype(dtype).astype(np.float64)
    np.testing.assert_allclose(fast, power * x ** (power - 1) * (2.0 / x) - 2.0 * x ** power / x ** 2,
                               rtol=1e-4 if dtype == np.float32 else 1e-10)
    if compiled_node_in_use():
        assert fast_calls == [], fast_calls  # the typed POWER and MUL_SCALAR loops, no Python frame


def test_powers_off_the_c_path_are_the_generic_operators():
    t = _param(np.array([1.0, 4.0]), np.float64)
    u = _param(np.array([2.0, 0.5]), np.float64)
    zero_d = _param(np.array(3.0), np.float64)
    _same_record(t ** u, _Operators.__pow__(t, u))
    _same_record(2 ** t, _Operators.__rpow__(t, 2), constants=True)
    _same_record(t ** np.float64(2), _Operators.__pow__(t, np.float64(2)))
    _same_record(t ** True, _Operators.__pow__(t, True))
    _same_record(zero_d ** 2, _Operators.__pow__(zero_d, 2))
    _same_record(1.0 / zero_d, _Operators.__rtruediv__(zero_d, 1.0), constants=True)
    with pytest.raises(OverflowError):
        t ** (10 ** 400)
    with pytest.raises(TypeError):
        pow(t, 2, 3)
    with pytest.raises(TypeError):
        t ** "2"
