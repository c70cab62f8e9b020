"""The compiled softmax's row passes for short float32 rows (SSE max/sum/dot per row, NumPy's own
``exp`` inner loop called directly; issue 15's 8x16x16 attention map) against the pure twin.

The split path runs for 512 to 4096 elements along the last axis; rows of 1 to 70 floats cover
the vector part (multiples of 4) and the scalar tails on both sides of the 64-float limit.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clumsygrad._kernels import native, pure

from helpers import examples

pytestmark = pytest.mark.both_backends

SETTINGS = settings(max_examples=examples(150), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _rows(n, seed, scale, special):
    rows = max(1, -(-600 // n))  # past the split path's 512 elements
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, n)) * scale).astype(np.float32)
    if special == "ties":
        x = np.round(x)
    elif special == "neg_inf" and n > 1:
        x[::3, ::2] = -np.inf
    elif special == "nan":
        x[1, n // 2] = np.nan
    elif special == "inf":
        x[2, 0] = np.inf
    return x


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the pure twin's inf - inf
@SETTINGS
@given(st.integers(1, 70), st.integers(0, 2**32 - 1), st.sampled_from([1.0, 10.0, 100.0]),
       st.sampled_from(["plain", "ties", "neg_inf", "nan", "inf"]))
def test_short_row_softmax_forward_equals_the_pure_twin(n, seed, scale, special):
    x = _rows(n, seed, scale, special)
    got, want = native.softmax_forward(x, -1), pure.softmax_forward(x, -1)
    assert got.dtype == np.float32 and got.flags.c_contiguous and got.shape == x.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=2e-6, atol=np.finfo(np.float32).tiny * 4)
    finite_rows = ~np.isnan(want).any(axis=-1)
    np.testing.assert_allclose(got[finite_rows].sum(axis=-1), 1.0, rtol=1e-5)


@SETTINGS
@given(st.integers(1, 70), st.integers(1, 40), st.integers(0, 2**32 - 1))
def test_short_row_softmax_backward_equals_the_pure_twin_and_float64(n, rows, seed):
    rng = np.random.default_rng(seed)
    s = pure.softmax_forward(rng.standard_normal((rows, n)).astype(np.float32), -1)
    g = rng.standard_normal((rows, n)).astype(np.float32)
    got = native.softmax_backward(s, g, -1)
    want = pure.softmax_backward(s, g, -1)
    exact = s.astype(np.float64) * (g - np.sum(s.astype(np.float64) * g, axis=-1, keepdims=True))
    for ref in (want, exact):
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6 * max(1.0, float(np.abs(g).max())))
