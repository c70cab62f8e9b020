"""Property tests of issue 14's shape-taking ops: for shapes and parameters drawn by hypothesis,
the value equals NumPy's and the gradient equals float64 central finite differences."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

import clumsygrad as cg
from clumsygrad.tensor import Tensor, TensorType

from helpers import numeric_gradient, examples

SETTINGS = settings(max_examples=examples(40), deadline=None)


def _check(fn_tensor, fn_array, x0, seed=0):
    t = Tensor(x0, TensorType.PARAMETER, dtype=np.float64)
    out = fn_tensor(t)
    want = np.asarray(fn_array(x0))
    assert out.shape == want.shape
    np.testing.assert_allclose(out.data, want, rtol=1e-12, atol=1e-12)
    weight = np.random.default_rng(seed).standard_normal(out.shape)
    (out * Tensor(weight, dtype=np.float64)).sum().backward()
    fd = numeric_gradient(lambda x: float(np.sum(np.asarray(fn_array(x)) * weight)), x0)
    got = np.zeros_like(x0) if t.grad is None else t.grad
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-6)


def _array(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


@st.composite
def einsum_cases(draw):
    letters = "abcd"
    sizes = {c: draw(st.integers(1, 3)) for c in letters}
    n_ops = draw(st.integers(1, 3))
    terms = [draw(st.lists(st.sampled_from(letters), min_size=0, max_size=3)) for _ in range(n_ops)]
    used = sorted(set("".join("".join(t) for t in terms)))
    out = draw(st.permutations(used)) if used else []
    out = out[: draw(st.integers(0, len(out)))]
    spec = ",".join("".join(t) for t in terms) + "->" + "".join(out)
    shapes = [tuple(sizes[c] for c in t) for t in terms]
    return spec, shapes, draw(st.integers(0, 2**16))


@SETTINGS
@given(einsum_cases())
def test_einsum_any_subscripts(case):
    spec, shapes, seed = case
    arrays = [_array(s, seed + i) for i, s in enumerate(shapes)]
    for k in range(len(arrays)):  # the gradient of each operand, the others held
        def with_tensor(t, k=k):
            return cg.einsum(spec, *[t if j == k else a for j, a in enumerate(arrays)])

        def with_arrays(x, k=k):
            return np.einsum(spec, *[x if j == k else a for j, a in enumerate(arrays)])

        _check(with_tensor, with_arrays, arrays[k], seed)


@SETTINGS
@given(st.lists(st.integers(1, 3), min_size=1, max_size=3), st.data())
def test_pad_any_widths(shape, data):
    nd = len(shape)
    form = data.draw(st.sampled_from(["int", "pair", "per-axis"]))
    if form == "int":
        width = data.draw(st.integers(0, 2))
    elif form == "pair":
        width = (data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2)))
    else:
        width = [(data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))) for _ in range(nd)]
    value = data.draw(st.sampled_from([0.0, 1.5]))
    _check(lambda t: cg.pad(t, width, constant_values=value),
           lambda x: np.pad(x, width, constant_values=value), _array(tuple(shape), nd))


@SETTINGS
@given(st.lists(st.integers(1, 3), min_size=1, max_size=3), st.lists(st.integers(1, 3), min_size=1, max_size=4))
def test_tile_any_reps(shape, reps):
    _check(lambda t: cg.tile(t, tuple(reps)), lambda x: np.tile(x, tuple(reps)), _array(tuple(shape), len(reps)))


@SETTINGS
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.data())
def test_roll_and_repeat_any_axis(shape, data):
    nd = len(shape)
    axis = data.draw(st.one_of(st.none(), st.integers(-nd, nd - 1)))
    shift = data.draw(st.integers(-5, 5))
    x0 = _array(tuple(shape), shift + 5)
    _check(lambda t: cg.roll(t, shift, axis=axis), lambda x: np.roll(x, shift, axis=axis), x0)
    n = x0.size if axis is None else shape[axis]
    repeats = data.draw(st.one_of(st.integers(0, 3), st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    _check(lambda t: cg.repeat(t, repeats, axis=axis), lambda x: np.repeat(x, repeats, axis=axis), x0)


@SETTINGS
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.data())
def test_take_and_take_along_axis_with_repeated_indices(shape, data):
    nd = len(shape)
    axis = data.draw(st.integers(-nd, nd - 1))
    n = shape[axis]
    x0 = _array(tuple(shape), n)
    idx = np.array(data.draw(st.lists(st.integers(-n, n - 1), min_size=0, max_size=5)), dtype=np.intp)
    _check(lambda t: cg.take(t, idx, axis=axis), lambda x: np.take(x, idx, axis=axis), x0)
    along_shape = list(shape)
    along_shape[axis] = data.draw(st.integers(0, 4))
    along = np.random.default_rng(n).integers(0, n, size=tuple(along_shape))
    _check(lambda t: cg.take_along_axis(t, along, axis=axis),
           lambda x: np.take_along_axis(x, along, axis=axis), x0)


@SETTINGS
@given(st.integers(2, 4), st.integers(2, 4), st.integers(-3, 3), st.data())
def test_diagonal_trace_triu_tril_any_offset(rows, cols, offset, data):
    batch = data.draw(st.sampled_from([(), (2,)]))
    x0 = _array(batch + (rows, cols), rows * cols)
    a1, a2 = (len(batch), len(batch) + 1)
    _check(lambda t: cg.diagonal(t, offset, a1, a2), lambda x: np.diagonal(x, offset, a1, a2), x0)
    _check(lambda t: cg.trace(t, offset, a1, a2), lambda x: np.trace(x, offset, a1, a2), x0)
    _check(lambda t: cg.triu(t, offset), lambda x: np.triu(x, offset), x0)
    _check(lambda t: cg.tril(t, offset), lambda x: np.tril(x, offset), x0)
