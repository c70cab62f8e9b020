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
