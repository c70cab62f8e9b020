"""The compiled kernels (``native``) agree with the NumPy reference (``pure``) on every input.

Property tests generate shapes (0-d, zero-size axes, 1 to 4 dimensions), broadcast targets,
axes (None, int, negative, tuple; keepdims), dtypes (float32, float64, and int64 / int8 /
float16 to exercise promotion, mixed between operands) and memory layouts (C, Fortran,
sliced with steps, reversed with negative strides, read-only ``np.broadcast_to`` views).
Results must have the reference's dtype and shape and its values to float rounding, and each
property test checks that most of its calls ran the compiled code rather than being handed to
the twin (``helpers.requires_compiled_share``); the shapes are mostly non-empty, a third above
the kernels' 1,024-element blocks.

Fixed tests check what a property test cannot see: inputs are left untouched, results do
not share memory with inputs, no reference to an input is kept or leaked, and each kernel
``native`` exports is a compiled function.
"""
import sys
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clumsygrad
from clumsygrad import _backend, grad as grad_module
from clumsygrad._kernels import _shapes, native, pure
from clumsygrad.activation import relu, softmax
from clumsygrad.loss import mse_loss
from clumsygrad.optimizer import SGD
from clumsygrad.tensor import Tensor, TensorType

from helpers import requires_compiled_share, examples

pytestmark = pytest.mark.both_backends

KERNELS = ("reduce_to_shape", "mul_reduce_to_shape", "expand_to_shape", "softmax_backward",
           "matmul_backward", "softmax_forward", "mse_forward", "mse_backward", "relu_forward",
           "relu_backward", "sgd_update")
SETTINGS = settings(max_examples=examples(1000), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# float32/float64 dominate (the fast paths); the rest exercise the promotion rule
DTYPES = st.sampled_from([np.float32, np.float32, np.float32, np.float64, np.float64,
                          np.float64, np.int64, np.int8, np.float16])
# Non-contiguous layouts weigh double: they are where the compiled loops' strides matter.
LAYOUTS = st.sampled_from(["C", "F", "sliced", "sliced", "reversed", "reversed", "broadcast"])
# Shapes: half small and non-empty, a third above the kernels' 1,024-element blocks (up to
# ~4,000 elements), a fifth the edge cases (zero-size axes, 0-d) that were most of the draws.
_SMALL = st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple)
_BIG = st.one_of(
    st.tuples(st.integers(1025, 4000)),
    st.tuples(st.integers(33, 64), st.integers(33, 64)),
    st.tuples(st.integers(3, 5), st.integers(20, 30), st.integers(18, 26)),
)
_EDGE = st.lists(st.integers(0, 4), min_size=0, max_size=4).map(tuple)
_SHAPE_KINDS = {"small": _SMALL, "big": _BIG, "edge": _EDGE}
dims = st.sampled_from(["small"] * 5 + ["big"] * 3 + ["edge"] * 2).flatmap(_SHAPE_KINDS.__getitem__)


# --------------------------------------------------------------------------- input builders
def make_array(shape, dtype, layout, seed, positive=False, scale=1.0, integral=False):
    """An array of ``shape`` and ``dtype`` laid out as ``layout``, values from ``seed``.

    ``scale`` multiplies the float values; ``integral`` rounds them (exact zeros, ties).
    """
    rng = np.random.default_rng(seed)
    shape = tuple(shape)

    def values(shp):
        if np.dtype(dtype).kind in "iu":
            return rng.integers(0 if positive else -4, 5, size=shp).astype(dtype)
        v = (rng.random(shp) if positive else rng.standard_normal(shp)) * scale
        return np.asarray(np.round(v) if integral else v).astype(dtype)  # 0-d stays an array

    if layout == "F" and shape:  # (asfortranarray makes a 0-d array 1-d)
        return np.asfortranarray(values(shape))
    if layout == "sliced":
        big = values(tuple(2 * d + 1 for d in shape))
        return big[tuple(slice(1, None, 2) for _ in shape)][tuple(slice(0, d) for d in shape)]
    if layout == "reversed":
        return values(shape)[tuple(slice(None, None, -1) for _ in shape)]
    if layout == "broadcast":
        # stride-0 axes wherever the base has a 1 (every other non-trivial axis)
        base_shape = tuple(1 if i % 2 == 0 and d > 0 else d for i, d in enumerate(shape))
        return np.broadcast_to(values(base_shape), shape)
    return values(shape)


def eps(dtype):
    dtype = np.dtype(dtype)
    return np.finfo(dtype).eps if dtype.kind == "f" else 0.0


def assert_matches(got, want, scale):
    """Same dtype, same shape, values within float rounding of a sum whose terms total ``scale``."""
    got = np.asarray(got)
    want = np.asarray(want)
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    e = eps(want.dtype)
    np.testing.assert_allclose(got, want, rtol=16 * e, atol=32 * e * (float(scale) + 1.0))


def suffix_target(draw, shape):
    """A shape that broadcasts to ``shape``: a suffix of it with some axes set to 1."""
    keep = draw(st.integers(0, len(shape)))
    tail = shape[len(shape) - keep:]
    ones = draw(st.lists(st.booleans(), min_size=len(tail), max_size=len(tail)))
    return tuple(1 if one else d for d, one in zip(tail, ones))


def as_shape_arg(draw, shape):
    """``shape`` in one of the forms callers pass: tuple, list, numpy ints, or an int for 1-d."""
    form = draw(st.sampled_from(["tuple", "tuple", "list", "np", "int"]))
    if form == "list":
        return list(shape)
    if form == "np":
        return tuple(np.int64(d) for d in shape)
    if form == "int" and len(shape) == 1:
        return shape[0]
    return shape


seeds = st.integers(0, 2**32 - 1)


# --------------------------------------------------------------------------- reduce_to_shape
@st.composite
def reduce_cases(draw):
    shape = draw(dims)
    target = suffix_target(draw, shape)
    grad = make_array(shape, draw(DTYPES), draw(LAYOUTS), draw(seeds))
    return grad, target, as_shape_arg(draw, target)


@requires_compiled_share("reduce_to_shape", 0.9)
@SETTINGS
@given(reduce_cases())
def test_reduce_to_shape_matches_pure(case):
    grad, target, shape_arg = case
    want = pure.reduce_to_shape(grad, shape_arg)
    got = native.reduce_to_shape(grad, shape_arg)
    assert got.shape == target
    assert_matches(got, want, np.abs(grad.astype(np.float64)).sum())


# --------------------------------------------------------------------------- mul_reduce_to_shape
@st.composite
def mul_reduce_cases(draw):
    shape = draw(dims)
    other_shape = suffix_target(draw, shape)
    target = suffix_target(draw, shape)
    grad = make_array(shape, draw(DTYPES), draw(LAYOUTS), draw(seeds))
    other = make_array(other_shape, draw(DTYPES), draw(LAYOUTS), draw(seeds))
    if draw(st.booleans()) and other.ndim == 0:
        other = other[()]  # a NumPy scalar, as a backward function may pass
    return grad, other, target, as_shape_arg(draw, target)


@requires_compiled_share("mul_reduce_to_shape", 0.9)
@SETTINGS
@given(mul_reduce_cases())
def test_mul_reduce_to_shape_matches_pure(case):
    grad, other, target, shape_arg = case
    want = pure.mul_reduce_to_shape(grad, other, shape_arg)
    got = native.mul_reduce_to_shape(grad, other, shape_arg)
    assert np.shape(got) == target
    scale = np.abs(np.multiply(grad, other, dtype=np.float64)).sum()
    assert_matches(got, want, scale)


# --------------------------------------------------------------------------- expand_to_shape
@st.composite
def expand_cases(draw):
    input_shape = draw(dims)
    nd = len(input_shape)
    kind = draw(st.sampled_from(["none", "int", "tuple"] if nd else ["none", "tuple"]))
    if kind == "none":
        axis, axes = None, tuple(range(nd))
    elif kind == "int":
        a = draw(st.integers(-nd, nd - 1))
        axis, axes = a, (a % nd,)
    else:
        chosen = draw(st.lists(st.integers(0, nd - 1), unique=True, max_size=nd)) if nd else []
        axis = tuple(a - nd if draw(st.booleans()) else a for a in chosen)
        if draw(st.booleans()):
            axis = list(axis)
        axes = tuple(chosen)
    keepdims = draw(st.booleans())
    if keepdims:
        gshape = tuple(1 if i in axes else d for i, d in enumerate(input_shape))
    else:
        gshape = tuple(d for i, d in enumerate(input_shape) if i not in axes)
    grad = make_array(gshape, draw(DTYPES), draw(LAYOUTS), draw(seeds))
    if grad.ndim == 0 and draw(st.booleans()):
        grad = grad[()]  # a NumPy scalar, as sum() of everything produces
    scale = draw(st.sampled_from([1.0, 0.5, 1.0 / 3.0, 2, np.float32(0.25), np.float64(-1.5)]))
    return grad, as_shape_arg(draw, input_shape), input_shape, axis, keepdims, scale


@requires_compiled_share("expand_to_shape", 0.9)
@SETTINGS
@given(expand_cases())
def test_expand_to_shape_matches_pure(case):
    grad, shape_arg, input_shape, axis, keepdims, scale = case
    want = pure.expand_to_shape(grad, shape_arg, axis, keepdims, scale)
    got = native.expand_to_shape(grad, shape_arg, axis, keepdims, scale)
    assert got.flags.c_contiguous
    assert got.shape == input_shape
    assert_matches(got, want, np.abs(np.asarray(grad, dtype=np.float64)).max(initial=0.0) * 2)


# --------------------------------------------------------------------------- softmax_backward
@st.composite
def softmax_cases(draw):
    shape = draw(dims)
    nd = max(len(shape), 1)
    axis = draw(st.integers(-nd, nd - 1))
    if draw(st.booleans()):
        axis = np.int64(axis)
    s = make_array(shape, draw(DTYPES), draw(LAYOUTS), draw(seeds), positive=True)
    grad = make_array(shape, draw(DTYPES), draw(LAYOUTS), draw(seeds))
    return s, grad, axis


@requires_compiled_share("softmax_backward", 0.9)
@SETTINGS
@given(softmax_cases())
def test_softmax_backward_matches_pure(case):
    s, grad, axis = case
    want = pure.softmax_backward(s, grad, axis)
    got = native.softmax_backward(s, grad, axis)
    scale = np.abs(np.multiply(s, grad, dtype=np.float64)).sum() * max(1.0, np.abs(s).max(initial=0))
    assert_matches(got, want, scale + np.abs(grad.astype(np.float64)).max(initial=0))


# --------------------------------------------------------------------------- matmul_backward
@st.composite
def matmul_cases(draw):
    batch = draw(st.lists(st.integers(0, 3), max_size=2).map(tuple))
    xb = suffix_target(draw, batch)
    yb = suffix_target(draw, batch)
    n, k, m = (draw(st.sampled_from([1, 2, 3, 4, 4, 0, 40])) for _ in range(3))  # 40: past the blocks
    out_batch = np.broadcast_shapes(xb, yb)
    x = make_array(xb + (n, k), draw(DTYPES), draw(LAYOUTS), draw(seeds))
    y = make_array(yb + (k, m), draw(DTYPES), draw(LAYOUTS), draw(seeds))
    grad = make_array(out_batch + (n, m), draw(DTYPES), draw(LAYOUTS), draw(seeds))
    needs = draw(st.sampled_from([(), (), (True, True), (True, False), (False, True)]))
    return x, y, grad, needs


@requires_compiled_share("matmul_backward", 0.9)
@SETTINGS
@given(matmul_cases())
def test_matmul_backward_matches_pure(case):
    x, y, grad, needs = case
    want = pure.matmul_backward(x, y, grad, *needs)
    got = native.matmul_backward(x, y, grad, *needs)
    assert isinstance(got, tuple) and len(got) == 2
    g64 = np.abs(grad.astype(np.float64))
    scales = (
        (g64 @ np.abs(np.swapaxes(y, -1, -2).astype(np.float64))).sum(),
        (np.abs(np.swapaxes(x, -1, -2).astype(np.float64)) @ g64).sum(),
    )
    for g, w, operand, scale in zip(got, want, (x, y), scales):
        if w is None:
            assert g is None
        else:
            assert g.shape == operand.shape
            assert_matches(g, w, scale)


# --------------------------------------------------------------------------- softmax_forward
@st.composite
def softmax_forward_cases(draw):
    shape = draw(dims)
    nd = max(len(shape), 1)
    axis = draw(st.integers(-nd, nd - 1))
    if draw(st.booleans()):
        axis = np.int64(axis)
    scale = draw(st.sampled_from([1.0, 1.0, 10.0, 100.0]))  # 100: terms underflow to 0
    x = make_array(shape, draw(DTYPES), draw(LAYOUTS), draw(seeds), scale=scale,
                   integral=draw(st.booleans()))  # integral: ties for the max
    return x, axis


def _outcome(fn, *args):
    """``("ok", result)`` or ``("raised", exception)``: the two backends must agree on which."""
    try:
        return "ok", fn(*args)
    except Exception as exc:  # noqa: BLE001 - compared below
        return "raised", exc


def assert_same_error(got, want):
    assert got[0] == want[0] == "raised", (got, want)
    assert type(got[1]) is type(want[1])
    assert str(got[1]) == str(want[1])


@requires_compiled_share("softmax_forward", 0.85)
@SETTINGS
@given(softmax_forward_cases())
def test_softmax_forward_matches_pure(case):
    x, axis = case
    want = _outcome(pure.softmax_forward, x, axis)
    got = _outcome(native.softmax_forward, x, axis)
    if want[0] == "raised":  # only an empty softmax axis
        assert x.ndim and x.shape[int(axis)] == 0
        assert_same_error(got, want)
        return
    got, want = got[1], want[1]
    assert type(got) is np.ndarray
    assert_matches(got, want, 1.0)
    # the brief's accuracy: ~1e-6 relative in float32, 1e-12 in float64 (libc exp against NumPy's)
    rtol = 2e-6 if want.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=rtol, atol=np.finfo(want.dtype).tiny * 4)


# --------------------------------------------------------------------------- mse_forward / backward
@st.composite
def mse_cases(draw):
    shape = draw(dims)
    pred = make_array(shape, draw(DTYPES), draw(LAYOUTS), draw(seeds))
    target = make_array(shape, draw(DTYPES), draw(LAYOUTS), draw(seeds), integral=draw(st.booleans()))
    return pred, target


@requires_compiled_share("mse_forward", 0.85)
@SETTINGS
@given(mse_cases())
def test_mse_forward_matches_pure(case):
    pred, target = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the empty mean is NaN in both, with warnings
        want = pure.mse_forward(pred, target)
        got = native.mse_forward(pred, target)
    assert type(got) is np.ndarray and got.shape == ()
    assert np.isnan(got) == np.isnan(want) == (pred.size == 0)
    assert_matches(got, want, want if pred.size else 0.0)


@st.composite
def mse_backward_cases(draw):
    pred, target = draw(mse_cases())
    g_shape = draw(st.sampled_from([(), (), (1,), (1, 1)]))
    g = make_array(g_shape, draw(DTYPES), draw(st.sampled_from(["C", "F", "sliced", "reversed"])),
                   draw(seeds))
    form = draw(st.sampled_from(["array", "array", "scalar", "float"]))
    if form == "scalar":
        g = g.reshape(-1)[0]  # a NumPy scalar
    elif form == "float":
        g = float(g.reshape(-1)[0])  # a Python float: a float64 gradient
    needs = draw(st.sampled_from([(), (), (True, True), (True, False), (False, True), (False, False)]))
    return pred, target, g, needs


@requires_compiled_share("mse_backward", 0.9)
@SETTINGS
@given(mse_backward_cases())
def test_mse_backward_matches_pure(case):
    pred, target, g, needs = case
    want = pure.mse_backward(pred, target, g, *needs)
    got = native.mse_backward(pred, target, g, *needs)
    assert isinstance(got, tuple) and len(got) == 2
    for o, w in zip(got, want):
        if w is None:
            assert o is None
        else:
            assert type(o) is np.ndarray and o.shape == pred.shape
            assert_matches(o, w, np.abs(w.astype(np.float64)).max(initial=0.0))


# --------------------------------------------------------------------------- relu_forward
@SETTINGS
@given(dims, DTYPES, LAYOUTS, seeds, st.booleans())
def test_relu_forward_matches_pure(shape, dtype, layout, seed, integral):
    # integral: exact zeros and -0.0 among the inputs (the boundary of the select)
    x = make_array(shape, dtype, layout, seed, integral=integral)
    want = pure.relu_forward(x)
    got = native.relu_forward(x)
    assert type(got) is np.ndarray and got.flags.c_contiguous
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))  # -0.0 becomes 0.0 in both


@pytest.mark.parametrize("module", [native, pure], ids=["native", "pure"])
def test_relu_forward_is_numpy_maximum_with_zero(module):
    x = np.array([-0.0, 0.0, np.nan, -np.nan, -1.5, 2.0, np.inf, -np.inf, 1e-45], np.float32)
    for dtype in (np.float32, np.float64):
        a = x.astype(dtype)
        want = np.maximum(a, dtype(0))
        got = module.relu_forward(a)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))  # NaN's sign kept too
    assert module.relu_forward(np.arange(-2, 3)).dtype == np.float64  # integers promote
    assert module.relu_forward(np.float16(-1.0)).dtype == np.float32


# --------------------------------------------------------------------------- relu_backward
@st.composite
def relu_cases(draw):
    shape = draw(dims)
    # integral: exact zeros (and -0.0) in the relu output, as relu produces them
    y = make_array(shape, draw(DTYPES), draw(LAYOUTS), draw(seeds), integral=draw(st.booleans()))
    g = make_array(shape, draw(DTYPES), draw(LAYOUTS), draw(seeds))
    return y, g


@requires_compiled_share("relu_backward", 0.9)
@SETTINGS
@given(relu_cases())
def test_relu_backward_matches_pure(case):
    y, g = case
    want = pure.relu_backward(y, g)
    got = native.relu_backward(y, g)
    assert type(got) is np.ndarray
    assert_matches(got, want, 0.0)
    np.testing.assert_array_equal(got, want)  # a product by 0 or 1: exact


# --------------------------------------------------------------------------- sgd_update
@st.composite
def sgd_cases(draw):
    shape = draw(dims)
    dtype = draw(st.sampled_from([np.float32, np.float32, np.float64]))
    spec = (shape, dtype, draw(st.sampled_from(["C"] * 6 + ["F", "sliced", "reversed"])), draw(seeds))
    # mostly what the compiled loop serves (C arrays of one dtype, a Python float rate), the
    # rest exercises the hand-off to the twin
    g_dtype = dtype if draw(st.integers(0, 5)) else draw(DTYPES)
    g = make_array(shape, g_dtype, "C" if draw(st.integers(0, 5)) else draw(LAYOUTS), draw(seeds))
    lr = draw(st.sampled_from([0.01, 0.5, 1e-3, -0.25, 2.0, 0.1, 0.01, 0.5, 2, np.float32(0.1), np.float64(0.1)]))
    return spec, g, lr


@requires_compiled_share("sgd_update", 0.35)
@SETTINGS
@given(sgd_cases())
def test_sgd_update_matches_pure(case):
    spec, g, lr = case
    # two equal parameters, one per backend (a 0-d "sliced" array is a NumPy scalar: wrap it)
    want, got = np.asarray(make_array(*spec)), np.asarray(make_array(*spec))
    g_before = g.copy()
    assert pure.sgd_update(want, g, lr) is None
    assert native.sgd_update(got, g, lr) is None
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(g, g_before)
    assert_matches(got, want, np.abs(want.astype(np.float64)).max(initial=0.0))


# --------------------------------------------------------------------------- helper twins
@settings(max_examples=examples(300), deadline=None)
@given(shape=dims, data=st.data())
def test_shape_helpers_match_pure(shape, data):
    target = suffix_target(data.draw, shape)
    assert _shapes.reduction_axes(shape, target) == pure.reduction_axes(shape, target)
    assert _shapes.as_shape(list(target)) == pure.as_shape(list(target))
    nd = len(shape)
    axis = data.draw(st.one_of(
        st.none(),
        st.integers(-nd, nd - 1) if nd else st.none(),
        st.lists(st.integers(0, nd - 1), unique=True, max_size=nd).map(tuple) if nd else st.just(()),
    ))
    assert _shapes.normalize_axes(axis, nd) == pure.normalize_axes(axis, nd)


@pytest.mark.parametrize("dtypes", [
    ("float32",), ("float64",), ("int8",), ("int64",), ("float16",), ("bool",), ("uint64",),
    ("float32", "float64"), ("float32", "int64"), ("int8", "float16"), (">f4",), ("longdouble",),
])
def test_result_dtype_matches_pure(dtypes):
    arrays = [np.zeros(2, dtype=d) for d in dtypes]
    assert _shapes.result_dtype(*arrays) == pure.result_dtype(*arrays)


# --------------------------------------------------------------------------- fixed cases
def _calls(rng):
    """One representative call per kernel, on fresh C-contiguous float32 inputs."""
    g = rng.standard_normal((5, 4, 3)).astype(np.float32)
    o = rng.standard_normal((4, 3)).astype(np.float32)
    s = rng.random((5, 4, 3)).astype(np.float32)
    x = rng.standard_normal((5, 4, 3)).astype(np.float32)
    y = rng.standard_normal((3, 2)).astype(np.float32)
    gm = rng.standard_normal((5, 4, 2)).astype(np.float32)
    return [
        ("reduce_to_shape", (g, (4, 1))),
        ("mul_reduce_to_shape", (g, o, (1, 3))),
        ("mul_reduce_to_shape", (g, o, (5, 4, 3))),
        ("expand_to_shape", (o, (5, 4, 3), 0, False, 0.5)),
        ("softmax_backward", (s, g, 1)),
        ("softmax_backward", (s, g, -1)),
        ("matmul_backward", (x, y, gm)),
        ("matmul_backward", (y.T.copy()[None], x.transpose(0, 2, 1), gm.transpose(0, 2, 1))),
        ("softmax_forward", (g, -1)),
        ("softmax_forward", (g, 0)),
        ("mse_forward", (s, g)),
        ("mse_backward", (s, g, np.asarray(np.float32(0.5)))),
        ("mse_backward", (s, g, np.asarray(np.float32(0.5)), False, True)),
        ("relu_forward", (x,)),
        ("relu_backward", (x, g)),
        ("sgd_update", (g.copy(), s, 0.01)),  # in place: updates its first argument
    ]


def _outputs(result):
    return result if isinstance(result, tuple) else (result,)


@pytest.mark.parametrize("module", [native, pure], ids=["native", "pure"])
def test_kernels_leave_inputs_unchanged_and_share_no_memory(module, rng):
    for name, args in _calls(rng):
        if name == "sgd_update":
            continue  # updates its first argument in place by design
        arrays = [a for a in args if isinstance(a, np.ndarray)]
        before = [a.copy() for a in arrays]
        result = getattr(module, name)(*args)
        for a, b in zip(arrays, before):
            np.testing.assert_array_equal(a, b)
        for out in _outputs(result):
            if out is None:
                continue
            for a in arrays:
                assert not np.shares_memory(out, a), (name, out.shape, a.shape)


def test_reduce_to_shape_without_reduction_returns_the_input_or_a_view():
    g = np.arange(6, dtype=np.float32).reshape(2, 3)
    for module in (native, pure):
        assert np.shares_memory(module.reduce_to_shape(g, (2, 3)), g)
    # native also skips the sum over a leading axis of length 1 (pure sums it into a copy)
    assert np.shares_memory(native.reduce_to_shape(g[None], (2, 3)), g)


@pytest.mark.parametrize("name", KERNELS)
def test_native_kernels_keep_no_reference_to_inputs(name, rng):
    for kernel, args in _calls(rng):
        if kernel != name:
            continue
        arrays = [a for a in args if isinstance(a, np.ndarray)]
        fn = getattr(native, name)
        fn(*args)  # warm up: first calls may intern constants
        counts = [sys.getrefcount(a) for a in arrays]
        for _ in range(20):
            result = fn(*args)
        del result
        assert [sys.getrefcount(a) for a in arrays] == counts


def test_native_keeps_no_reference_on_the_promotion_and_error_paths():
    g = np.ones((3, 4), dtype=np.int64)
    bad = np.ones((2, 5), dtype=np.float32)
    before = (sys.getrefcount(g), sys.getrefcount(bad))
    for _ in range(20):
        native.reduce_to_shape(g, (4,))
        native.mul_reduce_to_shape(g, g.T.T, (1, 4))
        native.softmax_backward(g, g, 0)
        native.softmax_forward(g, 0)
        native.mse_forward(g, g.T.T)
        native.mse_backward(g, g, g[0, :1])
        native.relu_backward(g, g)
        native.sgd_update(g.astype(np.float32), g, 0.5)
        with pytest.raises(ValueError):
            native.reduce_to_shape(bad, (4,))
        with pytest.raises(ValueError):
            native.softmax_backward(g, bad, 0)
        with pytest.raises(ValueError):
            native.mse_forward(g, bad)
        with pytest.raises(ValueError):
            native.mse_backward(g, g, bad)
        with pytest.raises(ValueError):
            native.relu_backward(bad, g)
        with pytest.raises(ValueError):
            native.softmax_forward(bad[:, :0], 1)
    assert (sys.getrefcount(g), sys.getrefcount(bad)) == before


@pytest.mark.parametrize("name", KERNELS)
def test_native_exports_compiled_functions(name):
    fn = getattr(native, name)
    assert type(fn).__name__ == "cython_function_or_method"
    assert name in native.__all__


def test_native_and_pure_export_the_same_names():
    assert sorted(native.__all__) == sorted(pure.__all__)
    for name in pure.__all__:
        assert type(getattr(native, name)).__name__ == "cython_function_or_method"


def test_expand_to_shape_result_is_a_new_c_contiguous_array():
    g = np.asfortranarray(np.ones((3, 4), dtype=np.float64))
    out = native.expand_to_shape(g, (3, 5, 4), 1, False, 2.0)
    assert out.flags.c_contiguous and out.flags.owndata
    assert (out == 2.0).all()


def test_sums_are_as_accurate_as_numpys_pairwise_sum():
    # a float32 sum of a million values: blocked partial sums, not one long running total
    g = np.full((1, 1_000_000), 0.1, dtype=np.float32)
    exact = np.float64(np.float32(0.1)) * 1_000_000
    for module in (native, pure):
        got = module.reduce_to_shape(g, (1, 1))
        assert abs(float(got[0, 0]) - exact) / exact < 1e-5


@pytest.mark.parametrize("dtype", [">f4", ">f8", "<f4", "longdouble", "bool", "uint16"])
def test_unusual_dtypes_match_pure(dtype, rng):
    # byte-swapped floats are converted, longdouble is served by the reference itself
    g = (rng.standard_normal((3, 4)) * 3).astype(dtype)
    s = np.abs(g).astype(dtype)
    calls = [
        ("reduce_to_shape", (g, (4,))),
        ("reduce_to_shape", (g, (3, 4))),
        ("mul_reduce_to_shape", (g, g[0], (3, 1))),
        ("expand_to_shape", (g[0], (2, 3, 4), (0, 1), False, 0.5)),
        ("softmax_backward", (s, g, 0)),
        ("matmul_backward", (g, g.T, g @ g.T)),
        ("softmax_forward", (g, 0)),
        ("mse_forward", (g, s)),
        ("mse_backward", (g, s, g[0, :1])),
        ("relu_backward", (g, s)),
    ]
    for name, args in calls:
        want = getattr(pure, name)(*args)
        got = getattr(native, name)(*args)
        for w, o in zip(_outputs(want), _outputs(got)):
            assert_matches(o, w, 100.0)


def test_huge_axis_is_a_value_error_like_pure():
    for module in (native, pure):
        with pytest.raises(ValueError, match="out of bounds"):
            module.expand_to_shape(np.ones(3), (2, 3), 2**70, False, 1.0)
        with pytest.raises(ValueError, match="out of bounds"):
            module.softmax_backward(np.ones(3), np.ones(3), -(2**70))


@pytest.mark.parametrize("module", [native, pure], ids=["native", "pure"])
def test_zero_d_results_are_arrays_not_numpy_scalars(module):
    a = np.array(0.5, dtype=np.float32)
    results = [
        module.reduce_to_shape(a, ()),
        module.mul_reduce_to_shape(a, a, ()),
        module.expand_to_shape(a, (), None, False, 2.0),
        module.softmax_backward(a, a, 0),
        module.softmax_forward(a, 0),
        module.mse_forward(a, a),
        module.mse_backward(a, a, a)[0],
        module.mse_backward(a, a, a)[1],
        module.relu_backward(a, a),
        module.relu_forward(a),
    ]
    for r in results:
        assert type(r) is np.ndarray and r.shape == () and r.dtype == np.float32


# --------------------------------------------------------------------------- fused forward/backward steps
@pytest.mark.parametrize("module", [native, pure], ids=["native", "pure"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 2047), (3, 2049)], ids=["compiled-loop", "numpy-exp"])
def test_softmax_forward_rows_sum_to_one_without_overflow(module, dtype, shape):
    # wide rows (past the vectorised max's 16 lanes and a sum block) and huge logits; native
    # runs its own loop up to 4096 elements and NumPy's exp above
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(shape) * 50 + 1e4).astype(dtype)
    for axis in (-1, 0):
        out = module.softmax_forward(x, axis)
        assert np.isfinite(out).all()
        np.testing.assert_allclose(out.sum(axis=axis), 1.0, rtol=20 * np.finfo(dtype).eps * 2049 ** 0.5)
        assert_matches(out, pure.softmax_forward(x, axis), 1.0)


@pytest.mark.parametrize("module", [native, pure], ids=["native", "pure"])
def test_softmax_forward_of_a_0d_array_is_one(module):
    for axis in (0, -1):
        out = module.softmax_forward(np.array(-3.5, dtype=np.float32), axis)
        assert type(out) is np.ndarray and out.shape == () and out.dtype == np.float32 and out == 1.0


def test_softmax_forward_nan_and_inf_rows_are_nan_in_both():
    # a NaN or +inf anywhere in a row makes NumPy's formula NaN for the whole row; a row of
    # -inf is NaN too (-inf - -inf); the other rows are untouched
    x = np.array([[1.0, np.nan, 3.0], [np.inf, 1.0, 2.0], [-np.inf] * 3, [0.0, 1.0, 2.0]], np.float32)
    with np.errstate(invalid="ignore"):
        for axis in (-1, 0):
            want = pure.softmax_forward(x, axis)
            got = native.softmax_forward(x, axis)
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
            assert_matches(got, want, 1.0)


def test_relu_backward_keeps_nan_and_inf_semantics_of_the_product():
    # grad * (y > 0): a NaN/inf gradient under a zero mask is NaN (inf * 0), a NaN y masks
    y = np.array([1.0, 0.0, -1.0, np.nan, 2.0, 0.0], np.float32)
    g = np.array([np.nan, np.nan, np.inf, 5.0, -np.inf, -3.0], np.float32)
    with np.errstate(invalid="ignore"):
        want = pure.relu_backward(y, g)
        got = native.relu_backward(y, g)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))  # -3 * 0 is -0.0


def test_mse_backward_is_bitwise_pures_order_of_operations():
    rng = np.random.default_rng(3)
    p = rng.standard_normal((7, 5)).astype(np.float32)
    t = rng.standard_normal((7, 5)).astype(np.float32)
    for g in (np.asarray(np.float32(0.3)), np.asarray(0.3), np.ones((1, 1), np.float32)):
        for o, w in zip(native.mse_backward(p, t, g), pure.mse_backward(p, t, g)):
            assert o.dtype == w.dtype
            np.testing.assert_array_equal(o, w)


def test_sgd_update_with_a_grad_overlapping_the_data_matches_numpy():
    # a gradient that is a shifted view of the parameter itself: NumPy buffers the overlap
    base_native = np.arange(12, dtype=np.float32)
    base_pure = base_native.copy()
    native.sgd_update(base_native[1:], base_native[:-1], 0.5)
    pure.sgd_update(base_pure[1:], base_pure[:-1], 0.5)
    np.testing.assert_array_equal(base_native, base_pure)


def test_sgd_update_keeps_numpys_promotion_of_a_numpy_scalar_rate():
    # np.float64(lr) * float32 grad is computed in float64 (not a "weak" Python float)
    d_native = np.full(4, 1.0, np.float32)
    d_pure = d_native.copy()
    g = np.full(4, 1 / 3, np.float32)
    native.sgd_update(d_native, g, np.float64(0.1))
    pure.sgd_update(d_pure, g, np.float64(0.1))
    np.testing.assert_array_equal(d_native, d_pure)


class _Spy:
    """A kernel module that records which kernels were called, then runs the active ones."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def __getattr__(self, name):
        fn = getattr(self.inner, name)

        def spy(*args, **kwargs):
            self.calls.append(name)
            return fn(*args, **kwargs)

        return spy


@pytest.mark.parametrize("name", ["cython", "python"])
def test_library_runs_the_fused_kernels_of_the_active_backend(name, monkeypatch):
    clumsygrad.set_backend(name)
    spy = _Spy(_backend.active)
    monkeypatch.setattr(_backend, "active", spy)
    rng = np.random.default_rng(0)
    w = Tensor(rng.standard_normal((4, 3)), tensor_type=TensorType.PARAMETER)
    x = Tensor(rng.standard_normal((2, 4)))
    y = Tensor(np.eye(3)[[0, 2]])
    p = softmax(relu(x @ w), axis=-1)
    loss = mse_loss(p, y)
    loss.backward()
    SGD([w], lr=0.1).step()
    for kernel in ("softmax_forward", "mse_forward", "sgd_update"):
        assert kernel in spy.calls, (kernel, spy.calls)
    # The backward kernels: the pure engine reaches them through the backward functions (and so
    # through ``_backend.active``); the compiled engine calls the compiled kernels itself (its
    # typed VJPs), without the Python functions.
    backward_kernels = ("mse_backward", "relu_backward", "softmax_backward")
    if name == "python" or _backend.engine is _backend.pure_graph:
        for kernel in backward_kernels:
            assert kernel in spy.calls, (kernel, spy.calls)
    else:
        assert not set(backward_kernels) & set(spy.calls), spy.calls
    assert p._extra == {"axis": -1} and p._grad_fn is grad_module.softmax_backward


def test_the_hand_off_counter_sees_both_paths_of_sgd_update():
    # The compiled loop serves a C float array, a grad of its dtype and a Python float rate;
    # a NumPy scalar rate goes to the twin (its promotion differs).
    from helpers import compiled_share

    data = np.ones(2000, dtype=np.float32)
    with compiled_share("sgd_update") as stats:
        native.sgd_update(data, np.ones(2000, dtype=np.float32), 0.5)
        native.sgd_update(data, np.ones(2000, dtype=np.float32), np.float64(0.25))
        native.sgd_update(data[::2], np.ones(1000, dtype=np.float32), 0.25)
    assert stats == {"compiled": 1, "pure": 2, "raised": 0}
    np.testing.assert_array_equal(data[1::2], 0.25)
    np.testing.assert_array_equal(data[::2], 0.0)
    assert native.sgd_update is not None and type(native.sgd_update).__name__ == "cython_function_or_method"
