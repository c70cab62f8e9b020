"""``avg_pool2d(..., divisor_override=d)`` (PyTorch's): every window's sum divided by ``d``.

Values against a loop reference written here, the compiled kernels against their pure twins,
gradients against float64 central finite differences on both backends (the autouse fixture),
and the errors of a bad divisor.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clumsygrad
from clumsygrad._kernels import native, pure
from clumsygrad.nn import functional as F
from clumsygrad.tensor import Tensor, no_grad
from helpers import examples, numeric_gradient, parameter


def window_sums(x, k, s, p, ceil_mode):
    """Sum of each window's cells inside the image (padding is zeros), PyTorch's output size."""
    n, c, h, w = x.shape

    def size(length):
        span = length + 2 * p - k
        out = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (out - 1) * s >= length + p:  # the last window would start in the padding
            out -= 1
        return out

    oh, ow = size(h), size(w)
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            h0, w0 = i * s - p, j * s - p
            cells = x[:, :, max(h0, 0):max(min(h0 + k, h), 0), max(w0, 0):max(min(w0 + k, w), 0)]
            out[:, :, i, j] = cells.sum(axis=(2, 3))
    return out


GEOMETRIES = [  # kernel, stride, padding, ceil_mode
    (2, 2, 0, False), (3, 1, 1, False), (3, 2, 1, True), (2, 3, 1, True), (3, 3, 0, True),
]


@pytest.mark.parametrize("k,s,p,ceil_mode", GEOMETRIES)
@pytest.mark.parametrize("divisor", [1, 3, -2, 7])
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_values_are_window_sums_over_the_divisor(k, s, p, ceil_mode, divisor, count_include_pad):
    x = np.random.default_rng(k * 10 + s).standard_normal((2, 3, 7, 6))
    out = F.avg_pool2d(Tensor(x, dtype=np.float64), k, s, p, ceil_mode=ceil_mode,
                       count_include_pad=count_include_pad, divisor_override=divisor)
    np.testing.assert_allclose(out.data, window_sums(x, k, s, p, ceil_mode) / divisor, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k,s,p,ceil_mode", GEOMETRIES)
def test_gradient_matches_finite_differences(k, s, p, ceil_mode):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 2, 6, 7))

    def pool(t):
        return F.avg_pool2d(t, k, s, p, ceil_mode=ceil_mode, divisor_override=5)

    px = parameter(x)
    out = pool(px)
    weights = rng.standard_normal(out.shape)
    clumsygrad.math.sum(out * Tensor(weights, dtype=np.float64)).backward()

    def f(v):
        with no_grad():
            return float(np.sum(pool(Tensor(v, dtype=np.float64)).data * weights))

    np.testing.assert_allclose(px.grad, numeric_gradient(f, x), atol=1e-7, rtol=1e-6)


def test_the_module_passes_it_on_and_shows_it():
    x = np.arange(32.0).reshape(1, 2, 4, 4)
    layer = clumsygrad.nn.AvgPool2d(2, divisor_override=2)
    np.testing.assert_allclose(layer(Tensor(x, dtype=np.float64)).data, window_sums(x, 2, 2, 0, False) / 2)
    assert "divisor_override=2" in repr(layer)
    assert "divisor_override" not in repr(clumsygrad.nn.AvgPool2d(2))


@pytest.mark.parametrize("bad,error,words", [
    (0, ValueError, "must not be zero"),
    (1.5, TypeError, "must be an integer or None, got float"),
    (True, TypeError, "got bool"),
    ("2", TypeError, "got str"),
    (2**60, ValueError, "too large"),
])
def test_a_bad_divisor_is_refused_alike_everywhere(bad, error, words):
    x = np.ones((1, 1, 4, 4), np.float32)
    g = np.ones((1, 1, 2, 2), np.float32)
    for call in (
        lambda: F.avg_pool2d(Tensor(x), 2, divisor_override=bad),
        lambda: native.avg_pool2d_forward(x, (2, 2), (2, 2), (0, 0), True, False, bad),
        lambda: pure.avg_pool2d_forward(x, (2, 2), (2, 2), (0, 0), True, False, bad),
        lambda: native.avg_pool2d_backward(g, (1, 1, 4, 4), (2, 2), (2, 2), (0, 0), True, False, bad),
        lambda: pure.avg_pool2d_backward(g, (1, 1, 4, 4), (2, 2), (2, 2), (0, 0), True, False, bad),
    ):
        with pytest.raises(error, match=words):
            call()


@pytest.mark.both_backends
@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    geometry=st.sampled_from(GEOMETRIES),
    divisor=st.integers(-9, 9).filter(bool),
    count_include_pad=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]),
    layout=st.sampled_from(["C", "F", "reversed"]),
    hw=st.tuples(st.integers(3, 9), st.integers(3, 9)),
    seed=st.integers(0, 2**32 - 1),
)
def test_compiled_kernels_match_their_pure_twins(geometry, divisor, count_include_pad, dtype, layout, hw, seed):
    k, s, p, ceil_mode = geometry
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3) + hw).astype(dtype)
    if layout == "F":
        x = np.asfortranarray(x)
    elif layout == "reversed":
        x = x[:, :, ::-1, ::-1]
    args = ((k, k), (s, s), (p, p), count_include_pad, ceil_mode, divisor)
    want = pure.avg_pool2d_forward(x, *args)
    got = native.avg_pool2d_forward(x, *args)
    assert got.dtype == want.dtype and got.shape == want.shape
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    g = rng.standard_normal(want.shape).astype(dtype)
    want_dx = pure.avg_pool2d_backward(g, x.shape, *args)
    got_dx = native.avg_pool2d_backward(g, x.shape, *args)
    assert got_dx.dtype == want_dx.dtype and got_dx.shape == x.shape
    np.testing.assert_allclose(got_dx, want_dx, rtol=tol, atol=tol)
