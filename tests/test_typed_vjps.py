"""The compiled engine's typed VJPs for kernel-backed and broadcast ops against the pure engine.

The ops whose backward the engine runs itself (``VJP`` members named by the registry's
``typed=``): broadcast add/sub/mul, matmul, relu, softmax, mse, cross-entropy (from the kept
softmax) and getitem with an integer row array.  Generated graphs put every operand layout in
front of them (C order, Fortran order through ``.T()``, slices with steps, negative strides,
zero-size axes, 0-d) in float32 and float64; the gradients of the compiled engine must equal
the pure engine's (the Python formulas and kernels) to float rounding, and the Python kernel
must not have run for the cases the typed path takes.  Finite differences of every registered
op are checked by ``test_registry.py`` from ``op_samples.py``.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clumsygrad
from clumsygrad._kernels import native
from clumsygrad.activation import relu, softmax, tanh
from clumsygrad.loss import cross_entropy, mse_loss
from clumsygrad.tensor import Tensor, TensorType

from helpers import compiled_node_in_use, examples, numeric_gradient

pytestmark = pytest.mark.both_backends


SETTINGS = settings(max_examples=examples(150), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LAYOUTS = ["C", "F", "sliced", "reversed"]


def _laid_out(t, layout):
    """``t`` (a 2-D tensor) seen through a graph op giving that layout, same values."""
    if layout == "F":  # a transposed view of the transposed values
        return Tensor(np.ascontiguousarray(t.data.T), TensorType.PARAMETER, dtype=t.data.dtype).T()
    if layout == "sliced":
        wide = np.zeros((2 * t.shape[0],) + t.shape[1:], dtype=t.data.dtype)
        wide[::2] = t.data
        return Tensor(wide, TensorType.PARAMETER, dtype=t.data.dtype)[::2]
    if layout == "reversed":
        return Tensor(np.ascontiguousarray(t.data[::-1]), TensorType.PARAMETER, dtype=t.data.dtype)[::-1]
    return t


def _run(build, arrays, dtype, backend):
    """Gradients of every leaf of ``build`` on ``backend``, the seed a fixed pattern."""
    clumsygrad.set_backend(backend)
    try:
        leaves = [Tensor(a, TensorType.PARAMETER, dtype=dtype) for a in arrays]
        out = build(*leaves)
        seed = np.cos(np.arange(out.data.size) * 0.7).reshape(out.shape).astype(dtype) if out.shape else None
        out.backward(seed)
        return [None if t.grad is None else np.array(t.grad) for t in leaves], out
    finally:
        clumsygrad.set_backend("cython" if compiled_node_in_use() else "python")


class _Counter:
    """Counts the calls of ``native.<name>`` made through ``_backend.active`` (the Python kernels')."""

    def __init__(self, monkeypatch, name):
        self.calls = 0
        real = getattr(native, name)

        def counted(*args, **kwargs):
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(native, name, counted)


def _agree(build, arrays, dtype):
    fast, out = _run(build, arrays, dtype, "cython" if compiled_node_in_use() else "python")
    ref, _ = _run(build, arrays, dtype, "python")
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for f, r in zip(fast, ref):
        assert (f is None) == (r is None)
        if f is not None:
            assert f.dtype == r.dtype == dtype and f.shape == r.shape
            scale = max(1.0, float(np.abs(r).max(initial=0)))
            np.testing.assert_allclose(f, r, rtol=tol, atol=tol * scale)
    return out


dtypes = st.sampled_from([np.float32, np.float64])
small = st.integers(0, 5)
positive = st.integers(1, 5)


@st.composite
def broadcast_cases(draw):
    shape = tuple(draw(st.lists(small, min_size=0, max_size=3)))
    other = list(shape[len(shape) - draw(st.integers(0, len(shape))):])
    other = tuple(1 if draw(st.booleans()) else d for d in other)
    if draw(st.booleans()):
        shape, other = other, shape
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.standard_normal(shape), rng.standard_normal(other), draw(st.sampled_from(["+", "-", "*"])), draw(dtypes)


@SETTINGS
@given(broadcast_cases())
def test_broadcast_arithmetic_typed_backward_equals_the_python_kernels(case):
    a, b, symbol, dtype = case

    def build(x, y):
        z = x + y if symbol == "+" else (x - y if symbol == "-" else x * y)
        return tanh(z)  # a gradient that is not all ones

    _agree(build, [a, b], dtype)


@st.composite
def matmul_cases(draw):
    n, k, m = draw(small), draw(small), draw(small)
    batch = tuple(draw(st.lists(positive, min_size=0, max_size=2)))
    kind = draw(st.sampled_from(["2d", "batched", "left_batch", "right_batch", "broadcast"]))
    left, right = (n, k), (k, m)
    if kind == "batched":
        left, right = batch + left, batch + right
    elif kind == "left_batch":
        left = batch + left
    elif kind == "right_batch":
        right = batch + right
    elif kind == "broadcast" and batch:
        left, right = batch + left, (1,) * len(batch) + right
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.standard_normal(left), rng.standard_normal(right), draw(dtypes), draw(st.sampled_from(LAYOUTS))


@SETTINGS
@given(matmul_cases())
def test_matmul_typed_backward_equals_the_python_kernel(case):
    a, b, dtype, layout = case

    def build(x, y):
        if x.ndim == 2:
            x = _laid_out(x, layout)  # a view: the matmul reads it in that layout
            assert layout == "C" or min(x.shape) < 2 or not x.data.flags.c_contiguous
        return x @ y

    _agree(build, [a, b], dtype)


@settings(SETTINGS, max_examples=examples(60))
@given(st.tuples(positive, positive), dtypes, st.sampled_from(LAYOUTS), st.sampled_from([-1, 0, 1]))
def test_relu_softmax_mse_typed_backward_equal_the_python_kernels(shape, dtype, layout, axis):
    rng = np.random.default_rng(sum(shape))
    a, target = rng.standard_normal(shape), rng.standard_normal(shape)

    def build(x, t):
        h = relu(_laid_out(x, layout))
        return mse_loss(softmax(h, axis=axis), t)

    _agree(build, [a, target], dtype)


@settings(SETTINGS, max_examples=examples(80))
@given(small, positive, dtypes, st.sampled_from(["mean", "sum", "none"]), st.integers(0, 2**32 - 1))
def test_cross_entropy_typed_backward_equals_the_python_kernel(n, c, dtype, reduction, seed):
    rng = np.random.default_rng(seed)
    z, labels = rng.standard_normal((n, c)) * 3, rng.integers(0, c, size=n)

    def build(x):
        return cross_entropy(tanh(x) * 4.0, labels, reduction=reduction)

    _agree(build, [z], dtype)


@settings(SETTINGS, max_examples=examples(80))
@given(positive, st.lists(st.integers(-5, 4), min_size=0, max_size=8), st.integers(0, 3), dtypes,
       st.integers(1, 3))
def test_embedding_rows_typed_backward_equals_the_python_kernel(rows, ids, width, dtype, uses):
    ids = np.array([i % rows if i >= 0 else -(-i % rows or rows) for i in ids], dtype=np.int64)
    rng = np.random.default_rng(len(ids))
    table = rng.standard_normal((rows, width))

    def build(e):
        total = None
        for u in range(uses):  # several lookups: later ones add into the owned pending gradient
            step = tanh(e[ids] * float(u + 1))
            total = step if total is None else total + step
        return total

    _agree(build, [table], dtype)


@settings(SETTINGS, max_examples=examples(80))
@given(st.tuples(positive, small, positive), st.permutations([0, 1, 2]), dtypes, st.integers(0, 2**32 - 1))
def test_permuted_gradients_equal_the_python_formula(shape, axes, dtype, seed):
    """A transposed view of the gradient (permute, swapaxes, .T()) reaches a matmul or a
    broadcast op in that layout; the kernels take it as it is."""
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(shape), rng.standard_normal((shape[2], shape[2]))

    def build(a, b):
        k = (a @ tanh(b.T())).transpose(0, 2, 1)  # (B, D, S), the attention step's k^T
        scores = a @ k  # (B, S, S)
        return tanh(scores).transpose(*axes) * 2.0

    _agree(build, [x, w], dtype)


@st.composite
def reduction_cases(draw):
    shape = tuple(draw(st.lists(small, min_size=0, max_size=3)))
    nd = len(shape)
    axis = draw(st.one_of(st.none(), st.integers(-nd, nd - 1) if nd else st.none(),
                          st.lists(st.integers(0, max(nd - 1, 0)), unique=True, max_size=nd).map(tuple)
                          if nd else st.none()))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return (rng.standard_normal(shape), axis, draw(st.booleans()), draw(st.sampled_from(["sum", "mean"])),
            draw(dtypes), draw(st.sampled_from(LAYOUTS)))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's own warnings for the mean of nothing
@SETTINGS
@given(reduction_cases())
def test_sum_and_mean_typed_backward_equal_the_formulas(case):
    values, axis, keepdims, name, dtype, layout = case
    reduce = getattr(clumsygrad, name)

    def build(x):
        if x.ndim == 2:
            x = _laid_out(x, layout)
        return tanh(reduce(x * 1.5, axis=axis, keepdims=keepdims))

    _agree(build, [values], dtype)


@settings(SETTINGS, max_examples=examples(80))
@given(st.lists(st.integers(0, 3), min_size=1, max_size=4), st.tuples(positive, positive), st.integers(-2, 1),
       st.booleans(), dtypes, st.integers(0, 2**32 - 1))
def test_concatenate_and_stack_typed_backward_equal_the_formulas(sizes, shape, axis, stacked, dtype, seed):
    rng = np.random.default_rng(seed)
    if stacked:
        arrays = [rng.standard_normal(shape) for _ in sizes]
        axis = axis % 3 - 3 if axis < 0 else axis  # a new axis of three
    else:
        axis = axis % 2
        arrays = [rng.standard_normal(shape[:axis] + (k,) + shape[axis + 1:]) for k in sizes]

    def build(*parts):
        parts = [tanh(p) if i % 2 else p for i, p in enumerate(parts)]  # some leaves, some nodes
        joined = clumsygrad.stack(parts, axis=axis) if stacked else clumsygrad.concatenate(parts, axis=axis)
        return tanh(joined * 1.5)

    _agree(build, arrays, dtype)


def test_the_typed_paths_run_instead_of_the_python_kernels(monkeypatch):
    if not compiled_node_in_use():
        return
    names = ("matmul_backward", "reduce_to_shape", "relu_backward", "softmax_backward", "mse_backward",
             "cross_entropy_backward", "probs_minus_onehot", "scatter_add", "expand_to_shape")
    counters = {name: _Counter(monkeypatch, name) for name in names}
    rng = np.random.default_rng(0)
    E = Tensor(rng.standard_normal((6, 4)), TensorType.PARAMETER)
    W = Tensor(rng.standard_normal((4, 3)), TensorType.PARAMETER)
    b = Tensor(rng.standard_normal(3), TensorType.PARAMETER)
    ids = np.array([1, 5, 1])
    h = relu(E[ids] @ W + b)
    loss = mse_loss(softmax(h), np.zeros((3, 3), np.float32)) + cross_entropy(h, ids % 3) + cross_entropy(E[ids] @ W, ids % 3)
    loss = loss + clumsygrad.mean(h * 2.0, axis=0).sum() + clumsygrad.sum(h, axis=(0, 1), keepdims=True).sum()
    loss.backward()
    assert {name: c.calls for name, c in counters.items()} == dict.fromkeys(names, 0)
    assert E.grad.shape == (6, 4) and W.grad.shape == (4, 3) and b.grad.shape == (3,)


def test_concatenate_and_stack_do_not_run_their_formulas_on_the_compiled_engine(monkeypatch):
    if not compiled_node_in_use():
        return
    from clumsygrad._registry import OPS

    def refuse(*args, **kwargs):
        raise AssertionError("the formula ran")

    for name in ("concatenate", "stack"):
        monkeypatch.setattr(OPS[name], "vjps", refuse)
    a = Tensor(np.ones((2, 3)), TensorType.PARAMETER)
    b = Tensor(np.ones((1, 3)), TensorType.PARAMETER)
    loss = (clumsygrad.concatenate([a, b * 2.0]) * 3.0).sum() + (clumsygrad.stack([a, a], axis=1) * 5.0).sum()
    loss.backward()
    np.testing.assert_array_equal(a.grad, np.full((2, 3), 13.0))
    np.testing.assert_array_equal(b.grad, np.full((1, 3), 6.0))


def test_embedding_rows_are_added_in_place_into_the_owned_pending_gradient():
    rng = np.random.default_rng(1)
    table = rng.standard_normal((5, 3))
    E = Tensor(table, TensorType.PARAMETER)
    ids = [np.array([0, 2, 2]), np.array([4, -1, 0])]
    loss = (E[ids[0]] * 2.0).sum() + (E[ids[1]] * 3.0).sum()
    loss.backward()
    expected = np.zeros((5, 3))
    np.add.at(expected, ids[0], 2.0)
    np.add.at(expected, ids[1], 3.0)
    np.testing.assert_array_equal(E.grad, expected)


def test_cross_entropy_gradient_from_the_kept_softmax_matches_finite_differences():
    rng = np.random.default_rng(2)
    z, labels = rng.standard_normal((4, 5)), np.array([0, 4, 2, 2])
    for reduction in ("mean", "sum"):
        x = Tensor(z, TensorType.PARAMETER, dtype=np.float64)
        cross_entropy(x, labels, reduction=reduction).backward()
        expected = numeric_gradient(lambda v: float(cross_entropy(Tensor(v, dtype=np.float64), labels,
                                                                  reduction=reduction).data), z)
        np.testing.assert_allclose(x.grad, expected, rtol=1e-6, atol=1e-8)


def test_cross_entropy_keeps_the_recorded_labels_when_the_caller_changes_them():
    labels = np.array([0, 1, 2])
    x = Tensor(np.zeros((3, 3)), TensorType.PARAMETER, dtype=np.float64)
    loss = cross_entropy(x, labels, reduction="sum")
    labels[:] = 0
    loss.backward()
    np.testing.assert_allclose(x.grad, np.full((3, 3), 1 / 3) - np.eye(3))


# --------------------------------------------------------------------------- 1-D matmul, basic indexing
@st.composite
def vector_matmul_cases(draw):
    n, k, m = draw(small), draw(small), draw(small)
    batch = tuple(draw(st.lists(positive, min_size=1, max_size=2)))
    left, right = {
        "dot": ((k,), (k,)),
        "row": ((k,), (k, m)),
        "column": ((n, k), (k,)),
        "row_batched": ((k,), batch + (k, m)),
        "batched_column": (batch + (n, k), (k,)),
    }[draw(st.sampled_from(["dot", "row", "column", "row_batched", "batched_column"]))]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.standard_normal(left), rng.standard_normal(right), draw(dtypes)


@SETTINGS
@given(vector_matmul_cases())
def test_matmul_with_a_vector_typed_backward_equals_the_formulas(case):
    a, b, dtype = case
    _agree(lambda x, y: tanh(x @ y) if (x.ndim + y.ndim) > 2 else (x @ y) * 3.0, [a, b], dtype)


BASIC_KEYS = [
    (1,), (-1,), (slice(None, None, -1),), (slice(1, None, 2),), (Ellipsis, 0), (None, slice(0, 2)),
    (0, None, slice(None, None, -2)), (slice(None), 1), (Ellipsis,), (1, 2), (slice(5, 1),),
]


@settings(SETTINGS, max_examples=examples(80))
@given(st.tuples(st.integers(2, 5), st.integers(3, 5)), st.sampled_from(BASIC_KEYS), dtypes,
       st.sampled_from(LAYOUTS), st.integers(0, 2**32 - 1))
def test_basic_index_typed_backward_equals_the_python_kernel(shape, key, dtype, layout, seed):
    a = np.random.default_rng(seed).standard_normal(shape)

    def build(x):
        part = _laid_out(x, layout)[key if len(key) > 1 else key[0]]
        return part * 2.0 + part * part  # used twice: the gradient is accumulated too

    _agree(build, [a], dtype)


def test_vector_matmul_and_basic_indexing_do_not_run_the_python_kernels(monkeypatch):
    if not compiled_node_in_use():
        return
    import clumsygrad.math as cg_math
    import clumsygrad.shape as cg_shape

    def refuse(*args, **kwargs):
        raise AssertionError("the Python kernel ran")

    monkeypatch.setattr(cg_math, "evaluate", refuse)  # matmul's kernel for 1-D operands
    monkeypatch.setattr(cg_shape, "scatter_array", refuse)  # getitem's kernel
    rng = np.random.default_rng(2)
    v = Tensor(rng.standard_normal(4), TensorType.PARAMETER, dtype=np.float64)
    M = Tensor(rng.standard_normal((3, 4)), TensorType.PARAMETER, dtype=np.float64)
    loss = (v @ v) + (M @ v).sum() + (v @ M.T()).sum() + M[1:, ::-1].sum() + M[0].sum() + M[..., None].sum()
    loss.backward()
    np.testing.assert_allclose(v.grad, 2 * v.data + M.data.sum(axis=0) + M.data.sum(axis=0), rtol=1e-12)
    expected = np.ones((3, 4)) * v.data[None, :] * 2 + 1.0
    expected[1:, :] += 1.0
    expected[0, :] += 1.0
    np.testing.assert_allclose(M.grad, expected, rtol=1e-12)


# --------------------------------------------------------------------------- division by a tensor
@SETTINGS
@given(broadcast_cases())
def test_division_typed_backward_equals_the_python_kernel(case):
    a, b, _, dtype = case
    b = np.where(np.abs(b) < 0.25, 0.25, b)  # away from zero: quotients of moderate size

    def build(x, y):
        return tanh(np.divide(x, y))  # x / y records x * y**-1, as in 0.2.x; np.divide the op

    _agree(build, [a, b], dtype)


def test_division_takes_the_typed_path(monkeypatch):
    if not compiled_node_in_use():
        return
    from clumsygrad import grad

    counter = _Counter(monkeypatch, "reduce_to_shape")  # the Python kernel's reduction
    x = Tensor(np.arange(1.0, 7.0).reshape(2, 3), TensorType.PARAMETER, dtype=np.float64)
    row = Tensor([1.0, 2.0, 4.0], TensorType.PARAMETER, dtype=np.float64)
    same = Tensor(np.full((2, 3), 2.0), TensorType.PARAMETER, dtype=np.float64)
    q = np.divide(x, row)
    assert q._grad_fn is grad.divide_backward
    (q.sum() + np.divide(x, same).sum()).backward()
    assert counter.calls == 0
    np.testing.assert_allclose(x.grad, np.broadcast_to(1.0 / row.data + 0.5, (2, 3)))
    np.testing.assert_allclose(row.grad, -(x.data / row.data ** 2).sum(axis=0))
    np.testing.assert_allclose(same.grad, -x.data / 4.0)
