"""The fused Adam/AdamW kernel: the compiled ``adam_update`` agrees with its NumPy twin.

The reference is itself checked against the update rule written out in float64. Bad input
raises the same exception with the same message on both sides, before anything is written.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clumsygrad._kernels import native, pure

from helpers import requires_compiled_share, examples

pytestmark = pytest.mark.both_backends

MODULES = pytest.mark.parametrize("module", [native, pure], ids=["native", "pure"])
SETTINGS = settings(max_examples=examples(300), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
EPS = {np.float32: np.finfo(np.float32).eps, np.float64: np.finfo(np.float64).eps}


def laid_out(values, layout):
    """``values`` (a fresh array) as a writeable array of the same shape in ``layout``."""
    if layout == "F":
        return np.asfortranarray(values)
    if layout in ("sliced", "reversed") and values.ndim:
        big = np.empty(values.shape[:-1] + (2 * values.shape[-1],), values.dtype)
        view = big[..., ::2] if layout == "sliced" else big[..., ::-1][..., : values.shape[-1]]
        view[...] = values
        return view
    return np.ascontiguousarray(values)


def arrays_for(shape, dtype, layouts, grad_dtype, seed):
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(shape).astype(dtype)
    g = (rng.standard_normal(shape) * 3).astype(grad_dtype)
    m = (rng.standard_normal(shape) * 0.1).astype(dtype)
    v = (rng.random(shape) * 0.1).astype(dtype)
    return [laid_out(np.array(a), lay) for a, lay in zip((p, g, m, v), layouts)]


def rule_float64(p, g, m, v, lr, beta1, beta2, eps, wd, decoupled, step):
    """The documented update, in float64."""
    p, g, m, v = (np.asarray(a, np.float64) for a in (p, g, m, v))
    if decoupled:
        p = p * (1 - lr * wd)
    else:
        g = g + wd * p
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat = m / (1 - beta1 ** step)
    v_hat = v / (1 - beta2 ** step)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


hyper = st.fixed_dictionaries({
    "lr": st.sampled_from([0.0, 1e-3, 0.1, 1.0]),
    "beta1": st.sampled_from([0.0, 0.5, 0.9]),
    "beta2": st.sampled_from([0.0, 0.9, 0.999]),
    "eps": st.sampled_from([0.0, 1e-8, 1e-3]),
    "wd": st.sampled_from([0.0, 0.01, 0.5]),
    "decoupled": st.booleans(),
    "step": st.integers(1, 2000),
})
# Mostly non-empty shapes, a quarter above the kernel's 1,024-element blocks; edge cases (empty, 0-d)
# a fifth.  Half the layouts are all-C (the compiled loop's case), the rest mixed.
shapes = st.sampled_from(["small"] * 5 + ["big"] * 3 + ["edge"] * 2).flatmap({
    "small": st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple),
    "big": st.one_of(st.tuples(st.integers(1025, 3000)), st.tuples(st.integers(33, 60), st.integers(33, 60))),
    "edge": st.lists(st.integers(0, 5), min_size=0, max_size=3).map(tuple),
}.__getitem__)
layouts = st.just(("C",) * 4) | st.tuples(*[st.sampled_from(["C", "C", "F", "sliced", "reversed"])] * 4)


@requires_compiled_share("adam_update", 0.5)
@SETTINGS
@given(shape=shapes, dtype=st.sampled_from([np.float32, np.float64]), lay=layouts,
       grad_dtype=st.sampled_from([None, np.float32, np.float64, np.int64]),
       h=hyper, seed=st.integers(0, 2**16))
def test_native_adam_update_matches_pure(shape, dtype, lay, grad_dtype, h, seed):
    args = arrays_for(shape, dtype, lay, grad_dtype or dtype, seed)
    ours = [laid_out(a.copy(), layout) for a, layout in zip(args, lay)]
    scalars = (h["lr"], h["beta1"], h["beta2"], h["eps"], h["wd"], h["decoupled"], h["step"])
    assert native.adam_update(*ours, *scalars) is None
    assert pure.adam_update(*args, *scalars) is None
    tol = 8 * EPS[dtype]
    for got, want in zip(ours, args):
        assert got.dtype == want.dtype and got.shape == want.shape
        scale = np.max(np.abs(want[np.isfinite(want)]), initial=1.0)
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale)


@SETTINGS
@given(shape=shapes, dtype=st.sampled_from([np.float32, np.float64]), h=hyper,
       seed=st.integers(0, 2**16))
def test_pure_adam_update_follows_the_documented_rule(shape, dtype, h, seed):
    p, g, m, v = arrays_for(shape, dtype, ("C",) * 4, dtype, seed)
    want = rule_float64(p, g, m, v, h["lr"], h["beta1"], h["beta2"], h["eps"], h["wd"],
                        h["decoupled"], h["step"])
    before = [np.array(a, np.float64) for a in (p, g, m)]
    pure.adam_update(p, g, m, v, h["lr"], h["beta1"], h["beta2"], h["eps"], h["wd"],
                     h["decoupled"], h["step"])
    # Each element within a few roundings of the magnitudes that went into it, whatever lr is:
    # for m and v, their old and new values and the gradient's terms; for p, its old and new
    # value and the move lr * m_hat / (sqrt(v_hat) + eps) computed from the magnitudes of m's
    # terms (m = beta1 m + (1 - beta1) g may cancel, and its rounding then shows in the move).
    # (Measured: at most 2.7 eps over 4,000 random cases; the bound is 16 eps, per element.)
    p0, g0, m0 = before
    lr, beta1, beta2, step = h["lr"], h["beta1"], h["beta2"], h["step"]
    g_terms = np.abs(g0) + (0.0 if h["decoupled"] else h["wd"] * np.abs(p0))
    with np.errstate(divide="ignore", invalid="ignore"):
        denominator = np.sqrt(want[2] / (1 - beta2 ** step)) + h["eps"]
        move = lr * (beta1 * np.abs(m0) + (1 - beta1) * g_terms) / (1 - beta1 ** step) / denominator
    move = np.where(np.isnan(move), np.inf, move)
    scales = (np.abs(p0) + np.abs(want[0]) + move,
              np.abs(m0) + np.abs(want[1]) + g_terms,
              np.abs(want[2]) + g0 * g0)
    tol = 16 * EPS[dtype]
    for name, got, exp, scale in zip("pmv", (p, m, v), want, scales):
        error = np.abs(np.asarray(got, np.float64) - exp)
        assert np.all(error <= tol * scale), (name, float(np.max(error / np.maximum(scale, 1e-300))))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("decoupled, wd", [(False, 0.0), (False, 0.1), (True, 0.01)])
def test_compiled_loop_is_bit_identical_on_an_mlp_layer(dtype, decoupled, wd):
    # the fast path (C-contiguous, one dtype): same operations in the same order and precision
    rng = np.random.default_rng(7)
    base = [rng.standard_normal((64, 33)).astype(dtype) for _ in range(2)]
    base += [np.zeros((64, 33), dtype), np.zeros((64, 33), dtype)]
    a = [x.copy() for x in base]
    b = [x.copy() for x in base]
    for step in range(1, 4):
        native.adam_update(*a, 1e-3, 0.9, 0.999, 1e-8, wd, decoupled, step)
        pure.adam_update(*b, 1e-3, 0.9, 0.999, 1e-8, wd, decoupled, step)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=2 * EPS[dtype], atol=0)


@MODULES
def test_gradient_aliasing_the_parameter_reads_before_writing(module):
    p = np.linspace(-1, 1, 7).astype(np.float32)
    m, v = np.zeros_like(p), np.zeros_like(p)
    ref_p, ref_m, ref_v = p.copy(), m.copy(), v.copy()
    pure.adam_update(ref_p, p.copy(), ref_m, ref_v, 0.1, 0.9, 0.99, 1e-8, 0.0, False, 1)
    module.adam_update(p, p, m, v, 0.1, 0.9, 0.99, 1e-8, 0.0, False, 1)
    np.testing.assert_array_equal(p, ref_p)
    np.testing.assert_array_equal(m, ref_m)


@MODULES
def test_non_finite_gradients_propagate_like_the_reference(module):
    p = np.ones(4, np.float32)
    g = np.array([np.nan, np.inf, -np.inf, 1.0], np.float32)
    m, v = np.zeros_like(p), np.zeros_like(p)
    want = [p.copy(), g, m.copy(), v.copy()]
    pure.adam_update(*want, 0.1, 0.9, 0.99, 1e-8, 0.0, False, 1)
    module.adam_update(p, g, m, v, 0.1, 0.9, 0.99, 1e-8, 0.0, False, 1)
    np.testing.assert_array_equal(p, want[0])  # assert_array_equal treats NaN == NaN
    np.testing.assert_array_equal(v, want[3])


def _f(*shape, dtype=np.float32):
    return np.ones(shape, dtype)


ERRORS = {
    "grad shape": ((_f(2, 3), _f(3), _f(2, 3), _f(2, 3)), {}, ValueError,
                   r"one shape, got \(2, 3\), \(3,\), \(2, 3\) and \(2, 3\)"),
    "moment shape": ((_f(2, 3), _f(2, 3), _f(3, 2), _f(2, 3)), {}, ValueError,
                     r"one shape, got \(2, 3\), \(2, 3\), \(3, 2\) and \(2, 3\)"),
    "moment dtype": ((_f(3), _f(3), _f(3, dtype=np.float64), _f(3)), {}, TypeError,
                     "moments in the parameter's dtype float32, got float64 and float32"),
    "integer parameter": ((_f(3, dtype=np.int64), _f(3), _f(3, dtype=np.int64), _f(3, dtype=np.int64)),
                          {}, TypeError, "float32 or float64 parameter, got dtype int64"),
    "complex gradient": ((_f(3), _f(3, dtype=np.complex64), _f(3), _f(3)), {}, TypeError,
                         "real numeric arrays, got dtype complex64"),
    "parameter is a list": (([1.0, 2.0], _f(2), _f(2), _f(2)), {}, TypeError,
                            "updates ndarrays in place, got list for param"),
    "step 0": ((_f(3), _f(3), _f(3), _f(3)), {"step": 0}, ValueError, "step >= 1"),
    "float step": ((_f(3), _f(3), _f(3), _f(3)), {"step": 1.5}, TypeError, "integer"),
    "beta1 of 1": ((_f(3), _f(3), _f(3), _f(3)), {"beta1": 1.0}, ValueError,
                   "0 <= beta1, beta2 < 1, got 1.0 and 0.99"),
    "negative beta2": ((_f(3), _f(3), _f(3), _f(3)), {"beta2": -0.5}, ValueError,
                       "got 0.9 and -0.5"),
    "NaN beta2": ((_f(3), _f(3), _f(3), _f(3)), {"beta2": float("nan")}, ValueError, "and nan"),
    "string rate": ((_f(3), _f(3), _f(3), _f(3)), {"lr": "0.1"}, TypeError, "must be real number, not str"),
    "None eps before a bad beta": ((_f(3), _f(3), _f(3), _f(3)), {"eps": None, "beta1": 2.0}, TypeError,
                                   "must be real number, not NoneType"),
    "step checked before the rates": ((_f(3), _f(3), _f(3), _f(3)), {"step": 0, "lr": "x"}, ValueError,
                                      "step >= 1"),
}


def _call(module, arrays, overrides):
    scalars = dict(lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.0, decoupled=False, step=1)
    scalars.update(overrides)
    copies = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in arrays]
    return module.adam_update(*copies, *scalars.values())


@pytest.mark.parametrize("case", list(ERRORS), ids=list(ERRORS))
def test_both_backends_raise_the_same_error(case):
    arrays, overrides, exc, pattern = ERRORS[case]
    messages = []
    for module in (native, pure):
        with pytest.raises(exc, match=pattern) as info:
            _call(module, arrays, overrides)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


@MODULES
def test_read_only_and_overlapping_state_is_rejected_before_any_write(module):
    p = np.arange(6, dtype=np.float32)
    g = np.ones(6, np.float32)
    m = np.zeros(6, np.float32)
    v = np.zeros(6, np.float32)
    v.flags.writeable = False
    with pytest.raises(ValueError, match="updates v in place, but it is read-only"):
        module.adam_update(p, g, m, v, 0.1, 0.9, 0.99, 1e-8, 0.0, False, 1)
    both = np.zeros(12, np.float32)
    with pytest.raises(ValueError, match="separate arrays for the parameter and its two moments"):
        module.adam_update(p, g, both[:6], both[3:9], 0.1, 0.9, 0.99, 1e-8, 0.0, False, 1)
    np.testing.assert_array_equal(p, np.arange(6))
    assert not m.any() and not both.any()


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("grad_dtype", [np.float32, np.float64])
def test_native_runs_the_compiled_loop_for_the_optimizers_arrays(monkeypatch, order, grad_dtype):
    # the layout the optimizer makes (moments zeros_like the parameter): no fallback to pure
    def no_fallback(*args):
        raise AssertionError("fell back to pure.adam_update")

    monkeypatch.setattr(pure, "adam_update", no_fallback)
    p = np.asarray(np.random.default_rng(0).standard_normal((5, 3)), np.float32, order=order)
    m, v = np.zeros_like(p), np.zeros_like(p)
    native.adam_update(p, p.T.T.astype(grad_dtype), m, v, 0.1, 0.9, 0.99, 1e-8, 0.01, True, 1)
    assert m.any() and v.any()


def test_native_keeps_no_reference_to_its_inputs():
    import sys

    p, g, m, v = (np.ones((4, 3), np.float32) for _ in range(4))
    odd = np.ones((4, 3), np.float64)[:, ::-1]  # converted copy on the fast path
    arrays = (p, g, m, v, odd)
    native.adam_update(p, g, m, v, 0.1, 0.9, 0.99, 1e-8, 0.0, False, 1)
    before = [sys.getrefcount(a) for a in arrays]
    for step in range(2, 22):
        native.adam_update(p, g, m, v, 0.1, 0.9, 0.99, 1e-8, 0.0, False, step)
        native.adam_update(p, odd, m, v, 0.1, 0.9, 0.99, 1e-8, 0.0, False, step)
        with pytest.raises(ValueError):
            native.adam_update(p, g[:1], m, v, 0.1, 0.9, 0.99, 1e-8, 0.0, False, step)
    assert [sys.getrefcount(a) for a in arrays] == before
