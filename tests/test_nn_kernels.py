"""The nn kernels (convolution, pooling, normalisation backward): compiled against pure with
hypothesis, both against naive NumPy loop references written here, gradients against float64
central finite differences."""
import contextlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from clumsygrad._kernels import _conv, native, pure

pytestmark = pytest.mark.both_backends

SETTINGS = settings(max_examples=40, deadline=None)


# --------------------------------------------------------------------------- naive references
def naive_conv2d(x, w, stride, padding, dilation, groups):
    n, c, h, wd = x.shape
    f, cg, kh, kw = w.shape
    sh, sw = stride
    pt, pb, pl, pr = padding
    dh, dw = dilation
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, f, oh, ow))
    fg = f // groups
    for b in range(n):
        for o in range(f):
            g = o // fg
            for y in range(oh):
                for z in range(ow):
                    s = 0.0
                    for ci in range(cg):
                        for i in range(kh):
                            for j in range(kw):
                                hh = y * sh - pt + i * dh
                                ww = z * sw - pl + j * dw
                                if 0 <= hh < h and 0 <= ww < wd:
                                    s += float(w[o, ci, i, j]) * float(x[b, g * cg + ci, hh, ww])
                    out[b, o, y, z] = s
    return out


def naive_pool(x, k, stride, padding, dilation, mode, include_pad=True, ceil_mode=False):
    """Pooling by loops, PyTorch's rules written out: the windows start at ``o*s - p``; floor
    mode keeps those that end inside the padded input, ceil mode also one that runs past it,
    unless that one starts in the right padding; max over the image cells of a window; the
    average divides by the window's cells inside the padded input (``include_pad``) or inside
    the image."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = k, stride, padding, dilation

    def starts(size, k_, s, p, d):
        out = []
        o = 0
        while True:
            last = o * s + d * (k_ - 1)  # in padded coordinates
            if last <= size + 2 * p - 1 or (ceil_mode and o * s <= size + 2 * p - 1 - d * (k_ - 1) + s - 1):
                out.append(o * s - p)
                o += 1
            else:
                break
        if ceil_mode and out and out[-1] >= size:
            out.pop()
        return out

    rows, cols = starts(h, kh, sh, ph, dh), starts(w, kw, sw, pw, dw)
    out = np.zeros((n, c, len(rows), len(cols)))
    idx = np.zeros((n, c, len(rows), len(cols)), np.int64)
    for b in range(n):
        for ch in range(c):
            for y, r0 in enumerate(rows):
                for z, c0 in enumerate(cols):
                    vals, where, padded = [], [], 0
                    for i in range(kh):
                        for j in range(kw):
                            hh, ww = r0 + i * dh, c0 + j * dw
                            if -ph <= hh < h + ph and -pw <= ww < w + pw:
                                padded += 1
                            if 0 <= hh < h and 0 <= ww < w:
                                vals.append(float(x[b, ch, hh, ww]))
                                where.append(hh * w + ww)
                    if mode == "max":
                        best = int(np.argmax(vals))
                        out[b, ch, y, z], idx[b, ch, y, z] = vals[best], where[best]
                    else:
                        out[b, ch, y, z] = sum(vals) / (padded if include_pad else len(vals))
    return out, idx


def numeric(f, x, eps=1e-6):
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        up = f(x)
        x[i] = old - eps
        down = f(x)
        x[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


# --------------------------------------------------------------------------- strategies
@st.composite
def conv_case(draw):
    groups = draw(st.integers(1, 3))
    cg = draw(st.integers(1, 2))
    fg = draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    pad = tuple(draw(st.integers(0, 2)) for _ in range(4))
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - pad[0] - pad[1]), 7))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - pad[2] - pad[3]), 7))
    n = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    layout = draw(st.sampled_from(["C", "F", "slice", "reversed"]))
    seed = draw(st.integers(0, 2 ** 16))
    bias = draw(st.booleans())
    return dict(shape=(n, groups * cg, h, w), wshape=(groups * fg, cg, kh, kw), stride=(sh, sw),
                padding=pad, dilation=(dh, dw), groups=groups, dtype=dtype, layout=layout, seed=seed,
                bias=bias)


def make(shape, dtype, layout, rng):
    if layout == "slice":
        big = rng.standard_normal(shape[:-1] + (2 * shape[-1],)).astype(dtype)
        return big[..., ::2]
    a = rng.standard_normal(shape).astype(dtype)
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "reversed":
        return np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    return a


def tol(dtype):
    return dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)


@SETTINGS
@given(conv_case())
def test_conv2d_compiled_matches_pure_and_the_naive_loops(case):
    rng = np.random.default_rng(case["seed"])
    x = make(case["shape"], case["dtype"], case["layout"], rng)
    w = make(case["wshape"], case["dtype"], case["layout"], rng)
    args = (case["stride"], case["padding"], case["dilation"], case["groups"])
    y_native, y_pure = native.conv2d_forward(x, w, *args), pure.conv2d_forward(x, w, *args)
    assert y_native.dtype == y_pure.dtype == case["dtype"]
    np.testing.assert_allclose(y_native, y_pure, **tol(case["dtype"]))
    np.testing.assert_allclose(y_pure, naive_conv2d(x, w, *args), **tol(case["dtype"]))
    g = make(y_pure.shape, case["dtype"], case["layout"], rng)
    dx_n = native.conv2d_backward_input(g, w, x.shape, *args)
    dx_p = pure.conv2d_backward_input(g, w, x.shape, *args)
    dw_n = native.conv2d_backward_weight(g, x, w.shape, *args)
    dw_p = pure.conv2d_backward_weight(g, x, w.shape, *args)
    assert dx_n.shape == dx_p.shape == x.shape and dw_n.shape == dw_p.shape == w.shape
    assert dx_n.dtype == dx_p.dtype == dw_n.dtype == dw_p.dtype == case["dtype"]
    np.testing.assert_allclose(dx_n, dx_p, **tol(case["dtype"]))
    np.testing.assert_allclose(dw_n, dw_p, **tol(case["dtype"]))
    db_n, db_p = native.conv2d_backward_bias(g), pure.conv2d_backward_bias(g)
    assert db_n.shape == db_p.shape == (w.shape[0],) and db_n.dtype == db_p.dtype == case["dtype"]
    np.testing.assert_allclose(db_n, db_p, **tol(case["dtype"]))
    np.testing.assert_allclose(db_p, np.asarray(g, np.float64).sum(axis=(0, 2, 3)), **tol(case["dtype"]))
    # the adjoint identity <conv(x), g> = <x, dx> = <w, dw> against the naive forward
    ref = float(np.sum(naive_conv2d(x, w, *args) * g))
    assert np.isclose(float(np.sum(dx_p.astype(np.float64) * x)), ref, rtol=1e-3, atol=1e-3)
    assert np.isclose(float(np.sum(dw_p.astype(np.float64) * w)), ref, rtol=1e-3, atol=1e-3)
    if case["bias"]:  # the fused bias: one value per output channel, added to every position
        b = rng.standard_normal(case["wshape"][0]).astype(case["dtype"])[::-1]
        yb_native, yb_pure = native.conv2d_forward(x, w, *args, b), pure.conv2d_forward(x, w, *args, bias=b)
        assert yb_native.dtype == yb_pure.dtype == case["dtype"]
        np.testing.assert_allclose(yb_native, yb_pure, **tol(case["dtype"]))
        np.testing.assert_allclose(yb_pure, naive_conv2d(x, w, *args) + b[:, None, None], **tol(case["dtype"]))


# shapes whose whole-batch column matrix exceeds 1 MB: the compiled kernels loop over the images
# (one product per image and group) instead of one product over the batch
@pytest.mark.parametrize("shape,wshape,stride,padding,dilation,groups,dtype", [
    ((4, 8, 40, 36), (6, 4, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 2, np.float32),
    ((3, 4, 50, 50), (8, 1, 5, 5), (2, 2), (2, 1, 0, 3), (2, 2), 4, np.float64),
    ((5, 6, 45, 40), (6, 2, 3, 3), (2, 1), (0, 0, 2, 2), (1, 2), 3, np.float32),
    ((3, 16, 28, 28), (32, 16, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, np.float32),
])
@pytest.mark.parametrize("path", ["im2col", "direct-auto"])
def test_conv2d_per_image_path_matches_pure(conv_path, path, shape, wshape, stride, padding, dilation, groups,
                                            dtype):
    conv_path(path)   # im2col: the per-image products even where the rule picks the direct loops
    rng = np.random.default_rng(3)
    x = make(shape, dtype, "F", rng)
    w = rng.standard_normal(wshape).astype(dtype)
    b = rng.standard_normal(wshape[0]).astype(dtype)
    args = (stride, padding, dilation, groups)
    y = pure.conv2d_forward(x, w, *args, bias=b)
    assert x.size * wshape[2] * wshape[3] * x.itemsize > 2 ** 20
    t = dict(rtol=2e-4, atol=2e-3) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(native.conv2d_forward(x, w, *args, b), y, **t)
    g = make(y.shape, dtype, "slice", rng)
    np.testing.assert_allclose(native.conv2d_backward_input(g, w, x.shape, *args),
                               pure.conv2d_backward_input(g, w, x.shape, *args), **t)
    np.testing.assert_allclose(native.conv2d_backward_weight(g, x, w.shape, *args),
                               pure.conv2d_backward_weight(g, x, w.shape, *args), rtol=t["rtol"], atol=t["atol"] * 50)


# --------------------------------------------------------------------------- direct loops
# Stride-1 convolutions with a short reduction run the direct loops of _conv_direct.h (see
# _conv._direct; by default only where their AVX2 + FMA copies run); the knobs _direct_limit (0:
# never direct), _direct_baseline (the baseline copies too) and _direct_isa (0: the baseline
# copies, 1: AVX2 + FMA where the CPU has them) let one process check every path against pure.
PATHS = {
    "direct-auto": dict(limit=10 ** 6, isa=1, baseline=True),
    "direct-baseline": dict(limit=10 ** 6, isa=0, baseline=True),
    "im2col": dict(limit=0, isa=1, baseline=False),
}


@contextlib.contextmanager
def using_path(name):
    """The compiled convolution kernels on the path ``name`` (PATHS) inside the block."""
    limit = _conv._direct_limit(PATHS[name]["limit"])
    baseline = _conv._direct_baseline(PATHS[name]["baseline"])
    _conv._direct_isa(PATHS[name]["isa"])
    try:
        yield
    finally:
        _conv._direct_limit(limit)
        _conv._direct_baseline(baseline)
        _conv._direct_isa(-1)


@pytest.fixture
def conv_path():
    """Sets the compiled convolution path by name for the test."""
    with contextlib.ExitStack() as stack:
        yield lambda name: stack.enter_context(using_path(name))


@st.composite
def direct_case(draw):
    """Stride-1 cases of every kind the direct loops handle: 1-6 channels per group either side
    (the four-channel blocks and the leftover channels), rows that are or are not whole vectors
    (widths 1-17: row mode and flat mode, odd slot counts), kernels 1-4 x 1-4 (the blocks of 3
    and 4 taps and their remainders), dilations, asymmetric paddings, groups, empty batches."""
    groups = draw(st.integers(1, 2))
    cg, fg = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pad = tuple(draw(st.integers(0, 3)) for _ in range(4))
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - pad[0] - pad[1]), 12))
    w = draw(st.sampled_from([v for v in (1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 17)
                              if v >= dw * (kw - 1) + 1 - pad[2] - pad[3]]))
    n = draw(st.integers(0, 3))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    layout = draw(st.sampled_from(["C", "F", "slice", "reversed"]))
    return dict(shape=(n, groups * cg, h, w), wshape=(groups * fg, cg, kh, kw), padding=pad, dilation=(dh, dw),
                groups=groups, dtype=dtype, layout=layout, seed=draw(st.integers(0, 2 ** 16)))


@SETTINGS
@given(direct_case(), st.sampled_from(sorted(PATHS)))
def test_conv2d_direct_loops_match_pure(case, path):
    with using_path(path):
        check_against_pure(case)


def check_against_pure(case):
    rng = np.random.default_rng(case["seed"])
    dtype = case["dtype"]
    x = make(case["shape"], dtype, case["layout"], rng)
    w = make(case["wshape"], dtype, case["layout"], rng)
    b = rng.standard_normal(case["wshape"][0]).astype(dtype)[::-1]
    args = ((1, 1), case["padding"], case["dilation"], case["groups"])
    y = pure.conv2d_forward(x, w, *args, bias=b)
    t = dict(rtol=2e-4, atol=2e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    got = native.conv2d_forward(x, w, *args, b)
    assert got.dtype == y.dtype == dtype and got.shape == y.shape
    np.testing.assert_allclose(got, y, **t)
    np.testing.assert_allclose(native.conv2d_forward(x, w, *args), pure.conv2d_forward(x, w, *args), **t)
    g = make(y.shape, dtype, case["layout"], rng)
    for name, arr, shape in (("conv2d_backward_input", w, x.shape), ("conv2d_backward_weight", x, w.shape)):
        got, ref = getattr(native, name)(g, arr, shape, *args), getattr(pure, name)(g, arr, shape, *args)
        assert got.dtype == ref.dtype == dtype and got.shape == ref.shape == shape
        np.testing.assert_allclose(got, ref, **t)
    np.testing.assert_allclose(native.conv2d_backward_bias(g), pure.conv2d_backward_bias(g), **t)


# either side of the size rule (_conv._direct, defaults, where the AVX2 + FMA copies run):
# C/G * kh * kw <= 288 takes the direct forward and weight-gradient loops; the input gradient's also need F/G * kh * kw <= 576 and either
# output rows of whole vectors (8 float32 lanes under AVX2, 4 without) or C/G >= 8
LANES = {1: 8, 0: 4}   # float32 lanes per instruction set of _conv._direct_isa()


@pytest.mark.parametrize("shape,wshape,groups,direct", [
    ((2, 32, 8, 8), (16, 32, 3, 3), 1, (True, True, True)),       # K = 288, F/G * 9 = 144
    ((2, 33, 8, 8), (16, 33, 3, 3), 1, (False, False, False)),    # K = 297
    ((2, 4, 9, 7), (17, 4, 3, 3), 1, (True, False, True)),        # rows of 7, C/G = 4
    ((2, 64, 6, 6), (32, 32, 3, 3), 2, (True, True, True)),       # per group: K = 288, C/G = 32
    ((1, 2, 8, 8), (65, 2, 3, 3), 1, (True, False, True)),        # F/G * 9 = 585
    ((2, 1, 28, 28), (32, 1, 3, 3), 1, (True, "lanes", True)),    # rows of 28: whole vectors of 4 only
    ((64, 1, 8, 8), (16, 1, 3, 3), 1, (True, True, True)),        # the bench's conv-small
    ((2, 16, 28, 28), (32, 16, 3, 3), 1, (True, True, True)),     # the bench's conv-medium
])
def test_conv2d_size_rule_sides_match_pure(shape, wshape, groups, direct):
    assert _conv._direct_limit() == 288 and not _conv._direct_baseline()
    direct = tuple(28 % LANES[_conv._direct_isa()] == 0 if d == "lanes" else d for d in direct)
    if _conv._direct_isa() == 0:   # no AVX2 + FMA: the rule keeps im2col + BLAS everywhere
        direct = (False, False, False)
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal(wshape).astype(np.float32)
    b = rng.standard_normal(wshape[0]).astype(np.float32)
    args = ((1, 1), (1, 1, 1, 1), (1, 1), groups)
    y = pure.conv2d_forward(x, w, *args, bias=b)
    g = rng.standard_normal(y.shape).astype(np.float32)
    t = dict(rtol=2e-4, atol=2e-3)
    results = (native.conv2d_forward(x, w, *args, b), native.conv2d_backward_input(g, w, x.shape, *args),
               native.conv2d_backward_weight(g, x, w.shape, *args))
    refs = (y, pure.conv2d_backward_input(g, w, x.shape, *args), pure.conv2d_backward_weight(g, x, w.shape, *args))
    for got, ref in zip(results, refs):
        np.testing.assert_allclose(got, ref, **t)
    # which path ran: with the direct loops switched off, a kernel the rule sent to them rounds
    # differently (other summation order), one it sent to im2col gives the same bits
    old = _conv._direct_limit(0)
    try:
        again = (native.conv2d_forward(x, w, *args, b), native.conv2d_backward_input(g, w, x.shape, *args),
                 native.conv2d_backward_weight(g, x, w.shape, *args))
    finally:
        _conv._direct_limit(old)
    for got, other, d in zip(results, again, direct):
        assert np.array_equal(got, other) != d


def test_conv2d_direct_isa_knob():
    """Forcing the baseline copies switches the direct loops off unless _direct_baseline is set."""
    isa = _conv._direct_isa()
    assert isa in (0, 1)
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((3, 1, 8, 8)).astype(np.float32), rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    args = ((1, 1), (1, 1, 1, 1), (1, 1), 1)
    try:
        assert _conv._direct_isa(0) == 0
        off = native.conv2d_forward(x, w, *args)
        limit = _conv._direct_limit(0)
        assert np.array_equal(off, native.conv2d_forward(x, w, *args))   # the same path: im2col
        _conv._direct_limit(limit)
        assert _conv._direct_isa(1) == isa   # only where the CPU has AVX2 and FMA
    finally:
        _conv._direct_isa(-1)
    assert _conv._direct_isa() == isa


BAD_CONV_CALLS = [
    ("conv2d_forward", (np.zeros((1, 3, 5, 5)), np.zeros((4, 2, 3, 3)), (1, 1), (0, 0, 0, 0), (1, 1), 2)),
    ("conv2d_forward", (np.zeros((1, 2, 5, 5)), np.zeros((4, 2, 3, 3)), (1, 1), (0, 0, 0, 0), (1, 1), 1, np.zeros(3))),
    ("conv2d_forward", (np.zeros((1, 2, 5, 5)), np.zeros((4, 2, 3, 3)), (1, 1), (0, 0, 0, 0), (1, 1), 1, np.zeros((4, 1)))),
    ("conv2d_forward", (np.zeros((1, 2, 5, 5)), np.zeros((4, 2, 3, 3)), (1, 1), (0, 0, 0, 0), (1, 1), 1, np.zeros(4, complex))),
    ("conv2d_forward", (np.zeros((1, 2, 5, 5)), np.zeros((4, 2, 3, 3)), (1,), (0, 0, 0, 0), (1, 1), 1)),
    ("conv2d_forward", (np.zeros((1, 2, 5, 5)), np.zeros((4, 2, 3, 3)), (1, 1), (0, -1, 0, 0), (1, 1), 1)),
    ("conv2d_forward", (np.zeros((1, 2, 5, 5)), np.zeros((4, 2, 3, 3)), (1, 1), (0, 0, 0, 0), (1, 0), 1)),
    ("conv2d_forward", (np.zeros((1, 2, 5, 5)), np.zeros((4, 2, 3, 3)), (1, 1), (0, 0, 0, 0), (1, 1), 0)),
    ("conv2d_forward", (np.zeros((1, 2, 5, 5)), np.zeros((4, 2, 3, 3)), (1, 1), (0, 0, 0, 0), (1, 1), 1.5)),
    ("conv2d_forward", (np.zeros((1, 2, 5, 5)), np.zeros((4, 2, 3, 3)), (1, 1), "same", (1, 1), 1)),
    ("conv2d_forward", (np.zeros((1, 2, 5, 5)), np.zeros((4, 2, 0, 3)), (1, 1), (0, 0, 0, 0), (1, 1), 1)),
    ("conv2d_forward", (np.zeros((1, 2, 5, 5)), np.zeros((4, 2, 3)), (1, 1), (0, 0, 0, 0), (1, 1), 1)),
    ("conv2d_backward_input", (np.zeros((1, 4, 3, 3)), np.zeros((4, 2, 3, 3)), (1, 2, 5), (1, 1), (0, 0, 0, 0), (1, 1), 1)),
    ("conv2d_backward_input", (np.zeros((1, 4, 3, 3)), np.zeros((4, 2, 3, 3)), (1, 2, 5, -5), (1, 1), (0, 0, 0, 0), (1, 1), 1)),
    ("conv2d_backward_input", (np.zeros((1, 4, 3, 2)), np.zeros((4, 2, 3, 3)), (1, 2, 5, 5), (1, 1), (0, 0, 0, 0), (1, 1), 1)),
    ("conv2d_backward_weight", (np.zeros((1, 4, 3, 3)), np.zeros((1, 2, 5, 5)), (4, 2, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1)),
    ("conv2d_backward_weight", (np.zeros((2, 4, 3, 3)), np.zeros((1, 2, 5, 5)), (4, 2, 3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1)),
    ("conv2d_backward_weight", (np.zeros((1, 4, 3, 3), "U1"), np.zeros((1, 2, 5, 5)), (4, 2, 3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1)),
    ("conv2d_backward_bias", (np.zeros((1, 4, 3)),)),
    ("conv2d_backward_bias", (np.zeros((1, 4, 3, 3), complex),)),
]


X4 = np.zeros((1, 2, 5, 5))
BAD_POOL_AND_NORM_CALLS = [
    ("max_pool2d_forward", (X4, (2, 2), (1, 1), (2, 0), (1, 1))),
    ("max_pool2d_forward", (X4, (2,), (1, 1), (0, 0), (1, 1))),
    ("max_pool2d_forward", (X4, (2, 2), (0, 1), (0, 0), (1, 1))),
    ("max_pool2d_forward", (np.zeros((1, 2, 1, 5)), (2, 1), (1, 1), (1, 0), (2, 1))),
    ("max_pool2d_forward", (X4, (7, 2), (1, 1), (0, 0), (1, 1), True)),
    ("max_pool2d_forward", (X4[0], (2, 2), (1, 1), (0, 0), (1, 1))),
    ("max_pool2d_forward", (X4.astype(complex), (2, 2), (1, 1), (0, 0), (1, 1))),
    ("max_pool2d_backward", (np.ones((1, 1, 1, 1)), np.array([[[[9]]]]), (1, 1, 2, 2))),
    ("max_pool2d_backward", (np.ones((1, 1, 1, 1)), np.array([[[[-1]]]]), (1, 1, 2, 2))),
    ("max_pool2d_backward", (np.ones((1, 1, 1, 1)), np.array([[[[0.0]]]]), (1, 1, 2, 2))),
    ("max_pool2d_backward", (np.ones((1, 1, 1, 1)), np.zeros((1, 1, 1, 2), np.int64), (1, 1, 2, 2))),
    ("max_pool2d_backward", (np.ones((1, 1, 1, 1)), np.zeros((1, 1, 1, 1), np.int64), (1, 2, 2, 2))),
    ("max_pool2d_backward", (np.ones((1, 1, 1, 1)), np.zeros((1, 1, 1, 1), np.int64), (1, 1, 2))),
    ("avg_pool2d_forward", (np.zeros((1, 1, 1, 4)), (2, 2), (1, 1), (0, 0), True)),
    ("avg_pool2d_forward", (X4, (2, 2), (1, 1), [0, 3], False, True)),
    ("avg_pool2d_backward", (np.ones((1, 2, 4, 3)), (1, 2, 5, 5), (2, 2), (1, 1), (0, 0), True)),
    ("avg_pool2d_backward", (np.ones((1, 2, 4, 4)), (1, 2, 5), (2, 2), (1, 1), (0, 0), True)),
    ("avg_pool2d_backward", (np.ones((1, 2, 2, 2)), (1, 2, 5, 5), (2, 2), (2, 2), (0, 0), True, True)),
    ("layer_norm_backward", (np.ones((3, 4)), np.ones((3, 5)), np.ones(3), None)),
    ("layer_norm_backward", (np.ones((3, 4)), np.ones((3, 4)), np.ones(4), None)),
    ("layer_norm_backward", (np.ones((3, 4)), np.ones((3, 4)), np.ones(3), np.ones(3))),
    ("layer_norm_backward", (np.ones((3, 4, 1)), np.ones((3, 4, 1)), np.ones(3), None)),
    ("layer_norm_backward", (np.ones((3, 4), complex), np.ones((3, 4)), np.ones(3), None)),
    ("layer_norm_backward", (np.ones((3, 4)), np.ones((3, 4)), np.ones(3, complex), None)),
    ("batch_norm_backward", (np.ones((2, 3, 4)), np.ones((2, 3, 4)), np.ones(2), None)),
    ("batch_norm_backward", (np.ones((2, 3, 4)), np.ones((2, 3, 4)), np.ones(3), np.ones((3, 1)))),
    ("batch_norm_backward", (np.ones((2, 3)), np.ones((2, 3)), np.ones(3), None)),
]


@pytest.mark.parametrize("name,args", BAD_CONV_CALLS + BAD_POOL_AND_NORM_CALLS)
def test_twins_raise_the_same_error(name, args):
    """The compiled kernels validate in C; every refusal is the pure twin's, message included."""
    with pytest.raises((ValueError, TypeError)) as expected:
        getattr(pure, name)(*args)
    with pytest.raises(expected.type) as got:
        getattr(native, name)(*args)
    assert str(got.value) == str(expected.value)


def test_conv2d_takes_any_index_like_arguments():
    """Lists, NumPy integers and int-like shapes take the checked slow path to the same result."""
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 2, 6, 5)), rng.standard_normal((4, 1, 3, 2))
    ref = pure.conv2d_forward(x, w, (2, 1), (1, 0, 2, 1), (1, 2), 2)
    for k in (native, pure):
        y = k.conv2d_forward(x, w, [np.int64(2), 1], np.array([1, 0, 2, 1]), (np.int8(1), 2), np.int32(2))
        np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
        g = rng.standard_normal(ref.shape)
        np.testing.assert_allclose(k.conv2d_backward_input(g, w, np.array(x.shape), [2, 1], [1, 0, 2, 1], [1, 2], 2),
                                   pure.conv2d_backward_input(g, w, x.shape, (2, 1), (1, 0, 2, 1), (1, 2), 2),
                                   rtol=1e-12, atol=1e-12)
    y16 = native.conv2d_forward(x.astype(np.float16), w.astype(np.float16), (2, 1), (1, 0, 2, 1), (1, 2), 2)
    assert y16.dtype == np.float32
    yl = native.conv2d_forward(x.astype(np.longdouble), w, (2, 1), (1, 0, 2, 1), (1, 2), 2)
    assert yl.dtype == np.longdouble


@pytest.mark.parametrize("kernels", [native, pure], ids=["cython", "python"])
@pytest.mark.parametrize("stride,padding,dilation,groups", [
    ((1, 1), (1, 1, 1, 1), (1, 1), 1), ((2, 1), (0, 1, 2, 0), (1, 2), 2), ((3, 2), (2, 2, 0, 1), (2, 1), 1),
])
def test_conv2d_gradients_match_finite_differences(kernels, stride, padding, dilation, groups):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 5, 6))
    w = rng.standard_normal((4, 2 // groups, 2, 3))
    args = (stride, padding, dilation, groups)
    g = rng.standard_normal(kernels.conv2d_forward(x, w, *args).shape)
    dx = kernels.conv2d_backward_input(g, w, x.shape, *args)
    dw = kernels.conv2d_backward_weight(g, x, w.shape, *args)
    np.testing.assert_allclose(dx, numeric(lambda v: np.sum(naive_conv2d(v, w, *args) * g), x), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dw, numeric(lambda v: np.sum(naive_conv2d(x, v, *args) * g), w), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kernels", [native, pure], ids=["cython", "python"])
def test_conv2d_bad_arguments_are_value_errors(kernels):
    x, w = np.zeros((1, 3, 5, 5)), np.zeros((4, 2, 3, 3))
    with pytest.raises(ValueError, match="groups=2 must divide"):
        kernels.conv2d_forward(x, w, (1, 1), (0, 0, 0, 0), (1, 1), 2)
    with pytest.raises(ValueError, match="expects 2 input channels"):
        kernels.conv2d_forward(x, w, (1, 1), (0, 0, 0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match="smaller than the dilated kernel"):
        kernels.conv2d_forward(np.zeros((1, 2, 2, 2)), w, (1, 1), (0, 0, 0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match="must be positive"):
        kernels.conv2d_forward(np.zeros((1, 2, 5, 5)), w, (0, 1), (0, 0, 0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match="4 dimensions"):
        kernels.conv2d_forward(np.zeros((2, 5, 5)), w, (1, 1), (0, 0, 0, 0), (1, 1), 1)
    with pytest.raises(TypeError, match="dtype"):
        kernels.conv2d_forward(np.zeros((1, 2, 5, 5), complex), w, (1, 1), (0, 0, 0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match="gradient of shape"):
        kernels.conv2d_backward_input(np.zeros((1, 4, 2, 2)), w, (1, 2, 5, 5), (1, 1), (0, 0, 0, 0), (1, 1), 1)


@st.composite
def pool_case(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 8))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 8))
    return dict(shape=(draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w), k=(kh, kw),
                stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))), padding=(ph, pw),
                dilation=(dh, dw), dtype=draw(st.sampled_from([np.float32, np.float64])),
                layout=draw(st.sampled_from(["C", "F", "slice", "reversed"])),
                include=draw(st.booleans()), ceil=draw(st.booleans()), seed=draw(st.integers(0, 2 ** 16)))


@SETTINGS
@given(pool_case())
def test_pooling_compiled_matches_pure_and_the_naive_loops(case):
    rng = np.random.default_rng(case["seed"])
    x = make(case["shape"], case["dtype"], case["layout"], rng)
    k, s, p, d, ceil = case["k"], case["stride"], case["padding"], case["dilation"], case["ceil"]
    try:
        pure.pool_geometry(x.shape, k, s, p, d, ceil)
    except ValueError as exc:  # a dilated window entirely in the padding: both refuse it
        assert "entirely into the padding" in str(exc)
        with pytest.raises(ValueError, match="entirely into the padding"):
            native.max_pool2d_forward(x, k, s, p, d, ceil)
        d = (1, 1)
    out_n, idx_n = native.max_pool2d_forward(x, k, s, p, d, ceil)
    out_p, idx_p = pure.max_pool2d_forward(x, k, s, p, d, ceil)
    ref, ref_idx = naive_pool(x, k, s, p, d, "max", ceil_mode=ceil)
    assert out_n.dtype == out_p.dtype == case["dtype"]
    np.testing.assert_array_equal(out_n, out_p)
    np.testing.assert_array_equal(idx_n, idx_p)
    np.testing.assert_array_equal(idx_p, ref_idx)
    np.testing.assert_allclose(out_p, ref)
    g = make(out_p.shape, case["dtype"], case["layout"], rng)
    np.testing.assert_allclose(native.max_pool2d_backward(g, idx_n, x.shape),
                               pure.max_pool2d_backward(g, idx_p, x.shape), **tol(case["dtype"]))
    a_n = native.avg_pool2d_forward(x, k, s, p, case["include"], ceil)
    a_p = pure.avg_pool2d_forward(x, k, s, p, case["include"], ceil)
    np.testing.assert_allclose(a_n, a_p, **tol(case["dtype"]))
    np.testing.assert_allclose(a_p, naive_pool(x, k, s, p, (1, 1), "avg", case["include"], ceil)[0],
                               **tol(case["dtype"]))
    g = make(a_p.shape, case["dtype"], case["layout"], rng)
    b_n = native.avg_pool2d_backward(g, x.shape, k, s, p, case["include"], ceil)
    b_p = pure.avg_pool2d_backward(g, x.shape, k, s, p, case["include"], ceil)
    assert b_n.dtype == b_p.dtype == case["dtype"]
    np.testing.assert_allclose(b_n, b_p, **tol(case["dtype"]))


def test_pool_output_size_is_pytorchs():
    # floor: (size + 2p - d(k-1) - 1) // s + 1; ceil rounds up, but a window that would start in
    # the right padding is dropped (5, k3 s3 p1: a third window would start at 5 = size)
    assert pure.pool_output_size(5, 3, 3, 1, 1, False) == 2
    assert pure.pool_output_size(5, 3, 3, 1, 1, True) == 2
    assert pure.pool_output_size(4, 2, 2, 1, 1, True) == 3
    assert pure.pool_output_size(4, 2, 2, 1, 1, False) == 3
    assert pure.pool_output_size(6, 3, 2, 1, 1, False) == 3
    assert pure.pool_output_size(6, 3, 2, 1, 1, True) == 4
    assert pure.pool_output_size(7, 2, 2, 0, 1, True) == 4
    for size in range(1, 12):
        for k in range(1, 4):
            for s in range(1, 4):
                for p in range(0, k // 2 + 1):
                    x = np.zeros((1, 1, size, 1))
                    for ceil in (False, True):
                        if size + 2 * p < k:
                            continue
                        n = len(naive_pool(x, (k, 1), (s, 1), (p, 0), (1, 1), "max", ceil_mode=ceil)[0][0, 0])
                        assert pure.pool_output_size(size, k, s, p, 1, ceil) == n, (size, k, s, p, ceil)
                        assert native.max_pool2d_forward(x, (k, 1), (s, 1), (p, 0), (1, 1), ceil)[0].shape[2] == n


@pytest.mark.parametrize("kernels", [native, pure], ids=["cython", "python"])
@pytest.mark.parametrize("include", [True, False])
@pytest.mark.parametrize("ceil", [False, True])
def test_pooling_gradients_match_finite_differences(kernels, include, ceil):
    rng = np.random.default_rng(1)
    x = rng.permutation(2 * 2 * 6 * 7).reshape(2, 2, 6, 7) / 7.0  # distinct values: max is smooth
    k, s, p = (3, 2), (2, 2), (1, 1)
    out, idx = kernels.max_pool2d_forward(x, k, s, p, (1, 1), ceil)
    assert out.shape[2:] == ((4, 4) if ceil else (3, 4))  # ceil mode adds a bottom row of windows
    g = rng.standard_normal(out.shape)
    numeric_max = numeric(lambda v: np.sum(naive_pool(v, k, s, p, (1, 1), "max", ceil_mode=ceil)[0] * g), x, eps=1e-4)
    np.testing.assert_allclose(kernels.max_pool2d_backward(g, idx, x.shape), numeric_max, atol=1e-6)
    g = rng.standard_normal(kernels.avg_pool2d_forward(x, k, s, p, include, ceil).shape)
    numeric_avg = numeric(lambda v: np.sum(naive_pool(v, k, s, p, (1, 1), "avg", include, ceil)[0] * g), x)
    np.testing.assert_allclose(kernels.avg_pool2d_backward(g, x.shape, k, s, p, include, ceil), numeric_avg,
                               atol=1e-6)


def test_max_pool_nan_wins_and_ties_go_to_the_first():
    x = np.array([[[[1.0, 3.0, 3.0], [np.nan, 0.0, 3.0]]]])
    for kernels in (native, pure):
        out, idx = kernels.max_pool2d_forward(x, (2, 3), (1, 1), (0, 0), (1, 1))
        assert np.isnan(out[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 3
        out, idx = kernels.max_pool2d_forward(x[:, :, :1], (1, 3), (1, 1), (0, 0), (1, 1))
        assert out[0, 0, 0, 0] == 3.0 and idx[0, 0, 0, 0] == 1


def test_max_pool_of_minus_infinity_points_inside_the_image():
    x = np.full((1, 1, 3, 3), -np.inf)
    x[0, 0, 2, 2] = 1.0
    for kernels in (native, pure):
        out, idx = kernels.max_pool2d_forward(x, (3, 3), (1, 1), (1, 1), (1, 1))
        assert out[0, 0, 0, 0] == -np.inf and idx[0, 0, 0, 0] == 0  # cell (0, 0), not the padding
        assert idx[0, 0, 2, 2] == 8 and out[0, 0, 2, 2] == 1.0
        assert (idx >= 0).all() and (idx < 9).all()
    np.testing.assert_array_equal(native.max_pool2d_forward(x, (3, 3), (1, 1), (1, 1), (1, 1))[1],
                                  pure.max_pool2d_forward(x, (3, 3), (1, 1), (1, 1), (1, 1))[1])


@pytest.mark.parametrize("kernels", [native, pure], ids=["cython", "python"])
def test_pooling_bad_arguments(kernels):
    with pytest.raises(ValueError, match="at most half"):
        kernels.max_pool2d_forward(np.zeros((1, 1, 4, 4)), (2, 2), (1, 1), (2, 0), (1, 1))
    with pytest.raises(ValueError, match="smaller than the pooling window"):
        kernels.avg_pool2d_forward(np.zeros((1, 1, 1, 4)), (2, 2), (1, 1), (0, 0), True)
    with pytest.raises(ValueError, match="out of range"):
        kernels.max_pool2d_backward(np.ones((1, 1, 1, 1)), np.array([[[[9]]]]), (1, 1, 2, 2))


def naive_norm_backward(x, weight, axes):
    """d/dx of sum(g * ((x - mean) / sqrt(var + eps) * weight)) by finite differences."""
    def f(v, g):
        mean = v.mean(axis=axes, keepdims=True)
        var = v.var(axis=axes, keepdims=True)
        return np.sum(g * (v - mean) / np.sqrt(var + 1e-5) * weight)
    return f


@SETTINGS
@given(st.integers(1, 4), st.integers(1, 5), st.integers(1, 4), st.sampled_from([np.float32, np.float64]),
       st.booleans(), st.integers(0, 2 ** 16))
def test_norm_backward_compiled_matches_pure(n, c, l, dtype, affine, seed):
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((n, c, l)).astype(dtype)
    xh = rng.standard_normal((n, c, l)).astype(dtype)[:, :, ::-1]
    rstd = rng.uniform(0.5, 2, c).astype(dtype)
    weight = rng.standard_normal(c).astype(dtype) if affine else None
    for a, b in zip(native.batch_norm_backward(g, xh, rstd, weight), pure.batch_norm_backward(g, xh, rstd, weight)):
        if a is None:
            assert b is None and not affine
        else:
            assert a.dtype == b.dtype == dtype
            np.testing.assert_allclose(a, b, **tol(dtype))
    g2, xh2 = g.reshape(n * c, l), np.asfortranarray(xh.reshape(n * c, l))
    rstd2 = rng.uniform(0.5, 2, n * c).astype(dtype)
    weight2 = rng.standard_normal(l).astype(dtype) if affine else None
    for a, b in zip(native.layer_norm_backward(g2, xh2, rstd2, weight2),
                    pure.layer_norm_backward(g2, xh2, rstd2, weight2)):
        if a is not None:
            np.testing.assert_allclose(a, b, **tol(dtype))


@pytest.mark.parametrize("kernels", [native, pure], ids=["cython", "python"])
def test_norm_backward_matches_finite_differences(kernels):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 5))
    weight = rng.standard_normal(4)
    g = rng.standard_normal(x.shape)
    mean, var = x.mean(axis=(0, 2), keepdims=True), x.var(axis=(0, 2), keepdims=True)
    rstd = 1 / np.sqrt(var + 1e-5)
    dx, dw, db = kernels.batch_norm_backward(g, (x - mean) * rstd, rstd.ravel(), weight)
    f = naive_norm_backward(x, weight[None, :, None], (0, 2))
    np.testing.assert_allclose(dx, numeric(lambda v: f(v, g), x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(db, g.sum(axis=(0, 2)))
    np.testing.assert_allclose(dw, (g * (x - mean) * rstd).sum(axis=(0, 2)))
    x2, g2, w2 = x.reshape(12, 5), g.reshape(12, 5), rng.standard_normal(5)
    mean, var = x2.mean(axis=1, keepdims=True), x2.var(axis=1, keepdims=True)
    rstd = 1 / np.sqrt(var + 1e-5)
    dx, _, _ = kernels.layer_norm_backward(g2, (x2 - mean) * rstd, rstd.ravel(), w2)
    f = naive_norm_backward(x2, w2, 1)
    np.testing.assert_allclose(dx, numeric(lambda v: f(v, g2), x2), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kernels", [native, pure], ids=["cython", "python"])
def test_norm_backward_bad_shapes(kernels):
    with pytest.raises(ValueError, match="rstd of shape"):
        kernels.batch_norm_backward(np.ones((2, 3, 4)), np.ones((2, 3, 4)), np.ones(2), None)
    with pytest.raises(ValueError, match="differ"):
        kernels.layer_norm_backward(np.ones((2, 3)), np.ones((3, 2)), np.ones(2), None)


@pytest.mark.parametrize("kernels", [native, pure], ids=["cython", "python"])
def test_empty_batches(kernels, recwarn):
    args = ((1, 1), (1, 1, 1, 1), (1, 1), 1)
    x, w = np.zeros((0, 2, 5, 5), np.float32), np.ones((3, 2, 3, 3), np.float32)
    y = kernels.conv2d_forward(x, w, *args)
    assert y.shape == (0, 3, 5, 5)
    assert kernels.conv2d_backward_input(y, w, x.shape, *args).shape == x.shape
    dw = kernels.conv2d_backward_weight(y, x, w.shape, *args)
    assert dw.shape == w.shape and not dw.any()
    out, idx = kernels.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1))
    assert kernels.max_pool2d_backward(out, idx, x.shape).shape == x.shape
    assert kernels.avg_pool2d_backward(out, x.shape, (2, 2), (2, 2), (0, 0), True).shape == x.shape
    dx, dweight, dbias = kernels.batch_norm_backward(np.zeros((0, 3, 4)), np.zeros((0, 3, 4)), np.ones(3), np.ones(3))
    assert dx.shape == (0, 3, 4) and not dweight.any() and not dbias.any()
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
