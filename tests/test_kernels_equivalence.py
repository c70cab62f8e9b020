"""The compiled kernels (``native``) agree with the NumPy reference (``pure``) on every input.

Property tests generate shapes (0-d, zero-size axes, 1 to 4 dimensions), broadcast targets,
axes (None, int, negative, tuple; keepdims), dtypes (float32, float64, and int64 / int8 /
float16 to exercise promotion, mixed between operands) and memory layouts (C, Fortran,
sliced with steps, reversed with negative strides, read-only ``np.broadcast_to`` views).
Results must have the reference's dtype and shape and its values to float rounding.

Fixed tests check what a property test cannot see: inputs are left untouched, results do
not share memory with inputs, no reference to an input is kept or leaked, and each kernel
``native`` exports is a compiled function.
"""
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clumsygrad._kernels import _shapes, native, pure

pytestmark = pytest.mark.both_backends

KERNELS = ("reduce_to_shape", "mul_reduce_to_shape", "expand_to_shape", "softmax_backward",
           "matmul_backward")
SETTINGS = settings(max_examples=1000, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# float32/float64 dominate (the fast paths); the rest exercise the promotion rule
DTYPES = st.sampled_from([np.float32, np.float32, np.float32, np.float64, np.float64,
                          np.float64, np.int64, np.int8, np.float16])
LAYOUTS = st.sampled_from(["C", "F", "sliced", "reversed", "broadcast"])
dims = st.lists(st.integers(0, 4), min_size=0, max_size=4).map(tuple)


# --------------------------------------------------------------------------- input builders
def make_array(shape, dtype, layout, seed, positive=False):
    """An array of ``shape`` and ``dtype`` laid out as ``layout``, values from ``seed``."""
    rng = np.random.default_rng(seed)
    shape = tuple(shape)

    def values(shp):
        if np.dtype(dtype).kind in "iu":
            return rng.integers(0 if positive else -4, 5, size=shp).astype(dtype)
        v = rng.random(shp) if positive else rng.standard_normal(shp)
        return v.astype(dtype)

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
    n, k, m = (draw(st.integers(0, 4)) for _ in range(3))
    out_batch = np.broadcast_shapes(xb, yb)
    x = make_array(xb + (n, k), draw(DTYPES), draw(LAYOUTS), draw(seeds))
    y = make_array(yb + (k, m), draw(DTYPES), draw(LAYOUTS), draw(seeds))
    grad = make_array(out_batch + (n, m), draw(DTYPES), draw(LAYOUTS), draw(seeds))
    needs = draw(st.sampled_from([(), (), (True, True), (True, False), (False, True)]))
    return x, y, grad, needs


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


# --------------------------------------------------------------------------- helper twins
@settings(max_examples=300, deadline=None)
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
    ]


def _outputs(result):
    return result if isinstance(result, tuple) else (result,)


@pytest.mark.parametrize("module", [native, pure], ids=["native", "pure"])
def test_kernels_leave_inputs_unchanged_and_share_no_memory(module, rng):
    for name, args in _calls(rng):
        arrays = [a for a in args if isinstance(a, np.ndarray)]
        before = [a.copy() for a in arrays]
        result = getattr(module, name)(*args)
        for a, b in zip(arrays, before):
            np.testing.assert_array_equal(a, b)
        for out in _outputs(result):
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
        with pytest.raises(ValueError):
            native.reduce_to_shape(bad, (4,))
        with pytest.raises(ValueError):
            native.softmax_backward(g, bad, 0)
    assert (sys.getrefcount(g), sys.getrefcount(bad)) == before


@pytest.mark.parametrize("name", KERNELS)
def test_native_exports_compiled_functions(name):
    fn = getattr(native, name)
    assert type(fn).__name__ == "cython_function_or_method"
    assert name in native.__all__


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
    ]
    for r in results:
        assert type(r) is np.ndarray and r.shape == () and r.dtype == np.float32
