"""Transposed gradients on the compiled paths (issue 15, the attention step's ``k.transpose(0, 2, 1)``).

* ``_matmul.swapped_copy``: the C-ordered copy of an array whose last two axes are swapped from
  C order (SSE 4x4 blocks for float32), against ``np.ascontiguousarray``; None for every other
  layout.
* The engine copies a transposed gradient view into C order when it becomes a tensor's first
  gradient (instead of the strided copy for ``.grad`` later): every ``.grad`` of the graph must
  equal the pure engine's, be C-ordered where the pure engine's is, and share memory with no
  other ``.grad``.
* ``matmul_backward`` copies a small right operand's transpose into C order for ``grad @ y.T``:
  the values must equal the pure twin's (float rounding) and float64 finite differences.
* ``_matmul.product``: NumPy's matmul inner loop called directly must give ``np.matmul``'s values,
  or None (NumPy then computes), also when a floating-point flag is raised (NumPy reports it).
* ``t.transpose(...)`` recorded in C (``Node.transpose``) against the generic method.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clumsygrad
from clumsygrad._kernels import pure as pure_kernels
from clumsygrad.loss import mse_loss
from clumsygrad.tensor import Tensor, TensorType, _Operators, no_grad

from helpers import compiled_node_in_use, examples, numeric_gradient
from test_forward_records import LAYOUTS, _param, _same_record, _view

pytestmark = pytest.mark.both_backends

SETTINGS = settings(max_examples=examples(150), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
dtypes = st.sampled_from([np.float32, np.float64])


def _matmul_module():
    from clumsygrad._kernels import _matmul  # the compiled kernels exist on both graph nodes

    return _matmul


@SETTINGS
@given(st.lists(st.integers(0, 9), min_size=2, max_size=4), dtypes, st.integers(0, 2**32 - 1))
def test_swapped_copy_equals_numpy(shape, dtype, seed):
    mod = _matmul_module()
    c = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    view = np.swapaxes(c, -1, -2)
    out = mod._swapped_copy(view)
    if view.flags.c_contiguous:  # a unit axis: nothing to copy
        assert out is None
        return
    assert out is not None and out.flags.c_contiguous and out.dtype == dtype
    np.testing.assert_array_equal(out, view)
    assert not np.shares_memory(out, c)


@pytest.mark.parametrize("make", [
    lambda: np.ones((3, 4), np.float32),                              # C order
    lambda: np.ones((4, 6), np.float32)[:, ::2].T,                    # strided, not a swap
    lambda: np.ones((2, 3, 4), np.float32).transpose(1, 0, 2),        # batch axes permuted
    lambda: np.ones((2, 3, 4), np.float32).transpose(2, 1, 0),        # all reversed
    lambda: np.ones((3, 4), np.int64).T,                              # not a float
    lambda: np.ones((3, 4), np.dtype(">f4")).T,                       # byte-swapped
    lambda: np.ones(5, np.float32),                                   # 1-D
    lambda: [[1.0, 2.0]],                                             # not an array
])
def test_swapped_copy_leaves_other_layouts(make):
    mod = _matmul_module()
    assert mod._swapped_copy(make()) is None


def _attention_grads(backend, dtype, shape, seed):
    """Every tensor's ``.grad`` of a small attention graph built on ``backend``."""
    clumsygrad.set_backend(backend)
    try:
        b, s, d = shape
        rng = np.random.default_rng(seed)
        x = Tensor(rng.standard_normal((b, s, d)), TensorType.INPUT, dtype=dtype)
        wq, wk, wv = (Tensor(rng.standard_normal((d, d)) / d, TensorType.PARAMETER, dtype=dtype) for _ in range(3))
        q, k, v = x @ wq, x @ wk, x @ wv
        kt = k.transpose(0, 2, 1)
        scores = (q @ kt) * 0.5
        out = scores @ v
        loss = mse_loss(out, Tensor(rng.standard_normal(out.shape), dtype=dtype))
        loss.backward()
        named = {"wq": wq, "wk": wk, "wv": wv, "q": q, "k": k, "v": v, "kt": kt, "scores": scores, "out": out}
        return {name: t.grad for name, t in named.items()}
    finally:
        clumsygrad.set_backend("cython" if compiled_node_in_use() else "python")


@SETTINGS
@given(st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5)), dtypes, st.integers(0, 2**32 - 1))
def test_transposed_gradient_views_give_every_grad_of_the_pure_engine(shape, dtype, seed):
    fast = _attention_grads("cython" if compiled_node_in_use() else "python", dtype, shape, seed)
    ref = _attention_grads("python", dtype, shape, seed)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for name, r in ref.items():
        f = fast[name]
        assert f.shape == r.shape and f.dtype == r.dtype == dtype, name
        np.testing.assert_allclose(f, r, rtol=tol, atol=tol * max(1.0, float(np.abs(r).max()))), name
        if r.flags.c_contiguous:
            assert f.flags.c_contiguous, name
    grads = list(fast.values())
    for i, a in enumerate(grads):
        for b in grads[i + 1:]:
            assert not np.shares_memory(a, b)


@pytest.mark.parametrize("x_shape, y_shape", [((4, 3), (3, 5)), ((2, 4, 3), (3, 5)), ((1, 3), (3, 1)),
                                              ((6, 32), (32, 32)), ((0, 3), (3, 4))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_backward_with_the_copied_transpose_equals_the_twin_and_differences(x_shape, y_shape, dtype):
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal(x_shape), rng.standard_normal(y_shape)
    g = rng.standard_normal(np.matmul(x, y).shape)
    from clumsygrad._kernels import native as kernels

    gx, gy = kernels.matmul_backward(x.astype(dtype), y.astype(dtype), g.astype(dtype))
    rx, ry = pure_kernels.matmul_backward(x.astype(dtype), y.astype(dtype), g.astype(dtype))
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(gx, rx, rtol=tol, atol=tol)
    np.testing.assert_allclose(gy, ry, rtol=tol, atol=tol)
    if x.size:
        num_x = numeric_gradient(lambda a: float(np.sum(np.matmul(a, y) * g)), x)
        num_y = numeric_gradient(lambda b: float(np.sum(np.matmul(x, b) * g)), y)
        np.testing.assert_allclose(gx, num_x, rtol=1e-3, atol=1e-3 if dtype == np.float32 else 1e-6)
        np.testing.assert_allclose(gy, num_y, rtol=1e-3, atol=1e-3 if dtype == np.float32 else 1e-6)


def _layout(a, layout):
    """``a``'s values in another memory layout (same shape)."""
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "swapped" and a.ndim >= 2:
        return np.swapaxes(np.ascontiguousarray(np.swapaxes(a, -1, -2)), -1, -2)
    if layout == "sliced" and a.ndim and a.shape[0]:
        wide = np.zeros((2 * a.shape[0],) + a.shape[1:], dtype=a.dtype)
        wide[::2] = a
        return wide[::2]
    if layout == "reversed" and a.ndim:
        return np.ascontiguousarray(a[::-1])[::-1]
    return np.ascontiguousarray(a)


@st.composite
def product_cases(draw):
    n, k, m = (draw(st.integers(1, 6)) for _ in range(3))
    batch = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    kind = draw(st.sampled_from(["2d", "rows", "batched", "broadcast", "zero"]))
    left, right = (n, k), (k, m)
    if kind == "rows":
        left = batch + left
    elif kind == "batched":
        left, right = batch + left, batch + right
    elif kind == "broadcast":
        left, right = (1,) + left, (2,) + right
    elif kind == "zero":
        left = (0,) + left
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = draw(dtypes)
    layouts = st.sampled_from(["C", "F", "swapped", "sliced", "reversed"])
    return (_layout(rng.standard_normal(left).astype(dtype), draw(layouts)),
            _layout(rng.standard_normal(right).astype(dtype), draw(layouts)), kind)


@SETTINGS
@given(product_cases())
def test_product_by_numpys_matmul_loop_equals_np_matmul(case):
    """``_matmul.product``: NumPy's matmul inner loop called directly gives ``np.matmul``'s
    values (bit for bit where it runs the same per-matrix products; a batch folded into the
    rows of one product to float rounding) in a new C array; None where it does not apply."""
    a, b, kind = case
    got = _matmul_module()._product(a, b)
    if kind in ("broadcast", "zero"):
        assert got is None
        return
    if got is None:  # a batch whose strides do not collapse into one (a sliced batch axis)
        assert kind != "2d" and not (a.flags.c_contiguous and b.flags.c_contiguous)
        return
    want = np.matmul(a, b)
    assert got.shape == want.shape and got.dtype == want.dtype and got.flags.c_contiguous
    if kind == "rows" and a.ndim > 2:
        tol = 1e-5 if a.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(got, want)


def test_product_leaves_other_operands_to_numpy():
    mod = _matmul_module()
    a32, a64 = np.ones((2, 3), np.float32), np.ones((3, 2), np.float64)
    assert mod._product(a32, a64) is None  # mixed dtypes
    assert mod._product(np.ones((2, 3), np.int64), np.ones((3, 2), np.int64)) is None
    assert mod._product(np.ones((2, 3), np.float32), np.ones((4, 2), np.float32)) is None  # not aligned
    assert mod._product(np.ones((2, 3), np.dtype(">f4")), np.ones((3, 2), np.dtype(">f4"))) is None
    assert mod._product(np.ones((2, 2, 3), np.float32), np.ones((3, 3, 2), np.float32)) is None  # batches differ


@pytest.mark.parametrize("shapes", [((2, 2), (2, 2)), ((2, 3, 2), (2, 2)), ((2, 3, 2), (2, 2, 3))])
def test_product_overflow_is_reported_as_numpy_reports_it(shapes):
    """A product that overflows goes back to NumPy, which warns (or raises under np.errstate)."""
    a, b = (np.full(s, 1e38, np.float32) for s in shapes)
    assert _matmul_module()._product(a, b) is None
    x, y = Tensor(a, TensorType.PARAMETER), Tensor(b, TensorType.PARAMETER)
    with pytest.warns(RuntimeWarning, match="overflow encountered in (matmul|dot)"):
        out = x @ y
    assert np.isinf(out.data).all()
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        x @ y


def test_softmax_underflow_follows_np_errstate_as_the_pure_twin():
    from clumsygrad._kernels import native as kernels

    x = (np.random.default_rng(0).standard_normal((8, 16, 16)) * 100).astype(np.float32)
    for module in (kernels, pure_kernels):
        with np.errstate(under="raise"), pytest.raises(FloatingPointError):
            module.softmax_forward(x, -1)
        with np.errstate(under="ignore"):
            np.testing.assert_allclose(module.softmax_forward(x, -1), pure_kernels.softmax_forward(x, -1),
                                       rtol=2e-6, atol=np.finfo(np.float32).tiny * 4)


# --------------------------------------------------------------------------- t.transpose(...) recorded in C

@st.composite
def transpose_args(draw):
    """A shape (0-d to 4-d, zero-size axes too) and the arguments of ``t.transpose(...)``: none,
    None, a permutation as arguments or as one tuple/list (negative axes too), or a bad one."""
    shape = tuple(draw(st.lists(st.integers(0, 3), min_size=0, max_size=4)))
    nd = len(shape)
    perm = draw(st.permutations(range(nd)))
    perm = [a - nd if draw(st.booleans()) else a for a in perm]
    form = draw(st.sampled_from(["none", "None", "args", "tuple", "list", "empty", "bad"]))
    if form == "none":
        args = ()
    elif form == "None":
        args = (None,)
    elif form == "args":
        args = tuple(perm)
    elif form == "tuple":
        args = (tuple(perm),)
    elif form == "list":
        args = (list(perm),)
    elif form == "empty":
        args = ([],)
    else:  # repeated, out of range, too few, not ints
        args = draw(st.sampled_from([(0, 0), (nd,), tuple(range(nd + 1)), (0.0,) * nd, (np.int64(0),) * nd,
                                     ((0, 1), 2), (True,) * nd]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.standard_normal(shape), args, draw(dtypes), draw(st.sampled_from(LAYOUTS))


@SETTINGS
@given(transpose_args())
def test_transpose_record_equals_the_generic_method(case):
    """``t.transpose(...)`` (the compiled node records it in C) against ``_Operators.transpose``
    (``clumsygrad.shape.transpose``): same view, backward function, ``_extra``; same errors."""
    values, args, dtype, layout = case
    x = _view(values, layout, dtype) if values.ndim else _param(values, dtype)
    try:
        generic = _Operators.transpose(x, *args)
    except Exception as exc:  # noqa: BLE001 - the same type and message, whatever it is
        with pytest.raises(type(exc)) as info:
            x.transpose(*args)
        assert str(info.value) == str(exc)
        return
    fast = x.transpose(*args)
    _same_record(fast, generic)
    assert fast._extra == generic._extra  # the axes as the same tuple of Python ints
    assert fast.data.strides == generic.data.strides and np.shares_memory(fast.data, x.data) == (values.size > 0)
    assert fast._tensor_type == generic._tensor_type


def test_transpose_record_of_inputs_and_without_grad_is_an_input():
    x = Tensor(np.ones((2, 3, 4)), TensorType.INPUT)
    assert x.transpose(0, 2, 1)._tensor_type == TensorType.INPUT
    p = _param(np.ones((2, 3, 4)), np.float32)
    with no_grad():
        assert p.transpose(0, 2, 1)._tensor_type == TensorType.INPUT
    assert p.transpose(0, 2, 1)._tensor_type == TensorType.INTERMEDIATE


def test_transpose_takes_the_compiled_path():
    if not compiled_node_in_use():
        return
    from clumsygrad._graph import native

    assert "transpose" in vars(native.Node) and "transpose" not in vars(Tensor)
