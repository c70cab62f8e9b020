"""clumsygrad.nn.functional: values against NumPy references written here, every gradient
against float64 central finite differences, on both backends (the autouse fixture)."""
import math

import numpy as np
import pytest

import clumsygrad
from clumsygrad.nn import functional as F
from clumsygrad.tensor import Tensor, TensorType, no_grad
from helpers import numeric_gradient, parameter
from test_nn_kernels import naive_conv2d, naive_pool


def check_gradients(op, arrays, rng, atol=1e-6, rtol=1e-5):
    """Backward of ``sum(op(*params) * G)`` against finite differences in every argument."""
    params = [parameter(a) for a in arrays]
    out = op(*params)
    weights = rng.standard_normal(out.shape)
    loss = clumsygrad.math.sum(out * Tensor(weights, dtype=np.float64))
    loss.backward()
    for i, p in enumerate(params):
        def f(v, i=i):
            with no_grad():
                args = [Tensor(v if j == i else a, dtype=np.float64) for j, a in enumerate(arrays)]
                return float(np.sum(op(*args).data * weights))
        assert p.grad is not None, f"argument {i} got no gradient"
        np.testing.assert_allclose(p.grad, numeric_gradient(f, arrays[i]), atol=atol, rtol=rtol,
                                   err_msg=f"argument {i}")
    return out


@pytest.mark.parametrize("kw", [
    dict(), dict(stride=2, padding=1), dict(padding="same", dilation=2), dict(padding=(1, 0), groups=2, stride=(1, 2)),
    dict(padding="valid", dilation=(2, 1)), dict(padding="same"),
])
def test_conv2d_values_and_gradients(kw, rng):
    c = 4 if kw.get("groups") else 3
    x = rng.standard_normal((2, c, 6, 5))
    w = rng.standard_normal((4, c // kw.get("groups", 1), 3, 2))
    b = rng.standard_normal(4)
    out = check_gradients(lambda x, w, b: F.conv2d(x, w, b, **kw), [x, w, b], rng)
    stride = kw.get("stride", 1)
    stride = (stride, stride) if isinstance(stride, int) else stride
    dil = kw.get("dilation", 1)
    dil = (dil, dil) if isinstance(dil, int) else dil
    pad = kw.get("padding", 0)
    if pad == "same":  # PyTorch: total d*(k-1), the extra one at the end
        pad4 = (dil[0] * 2 // 2, dil[0] * 2 - dil[0] * 2 // 2, dil[1] * 1 // 2, dil[1] - dil[1] // 2)
        assert out.shape[2:] == x.shape[2:]
    elif pad == "valid":
        pad4 = (0, 0, 0, 0)
    else:
        p = (pad, pad) if isinstance(pad, int) else pad
        pad4 = (p[0], p[0], p[1], p[1])
    ref = naive_conv2d(x, w, stride, pad4, dil, kw.get("groups", 1)) + b[None, :, None, None]
    np.testing.assert_allclose(out.data, ref, rtol=1e-10, atol=1e-10)


def test_conv1d_and_unbatched_inputs(rng):
    x = rng.standard_normal((2, 3, 9))
    w = rng.standard_normal((5, 3, 3))
    out = check_gradients(lambda x, w: F.conv1d(x, w, stride=2, padding=1, dilation=2), [x, w], rng)
    ref = naive_conv2d(x[:, :, None], w[:, :, None], (1, 2), (0, 0, 1, 1), (1, 2), 1)[:, :, 0]
    np.testing.assert_allclose(out.data, ref, rtol=1e-10, atol=1e-10)
    single = F.conv2d(Tensor(x[0, :, :4].reshape(3, 2, 2), dtype=np.float64), Tensor(w[:, :, :2].reshape(5, 3, 1, 2), dtype=np.float64))
    assert single.shape == (5, 2, 1)
    same = F.conv1d(Tensor(x), Tensor(w), padding="same")
    assert same.shape == (2, 5, 9)


def test_conv_shape_errors_name_the_shapes():
    x = Tensor(np.zeros((2, 3, 5, 5)))
    with pytest.raises(ValueError, match=r"conv2d expects an input of shape \(N, C, H, W\).*got \(3, 5\)"):
        F.conv2d(Tensor(np.zeros((3, 5))), Tensor(np.zeros((4, 3, 3, 3))))
    with pytest.raises(ValueError, match="expects an input of 4 channels"):
        F.conv2d(x, Tensor(np.zeros((4, 2, 3, 3))), groups=2)
    with pytest.raises(ValueError, match="strided"):
        F.conv2d(x, Tensor(np.zeros((4, 3, 3, 3))), stride=2, padding="same")
    with pytest.raises(ValueError, match="bias of shape"):
        F.conv2d(x, Tensor(np.zeros((4, 3, 3, 3))), Tensor(np.zeros(3)))


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=(2, 3), stride=1)])
def test_pooling_values_and_gradients(kw, rng):
    x = rng.permutation(2 * 3 * 6 * 7).reshape(2, 3, 6, 7) / 10.0  # distinct: max pooling is smooth
    k = kw["kernel_size"]
    k = (k, k) if isinstance(k, int) else k
    s = kw.get("stride") or k
    s = (s, s) if isinstance(s, int) else s
    p = kw.get("padding", 0)
    out = check_gradients(lambda x: F.max_pool2d(x, **kw), [x], rng, atol=1e-5)
    np.testing.assert_allclose(out.data, naive_pool(x, k, s, (p, p), (1, 1), "max")[0])
    out = check_gradients(lambda x: F.avg_pool2d(x, **kw), [x], rng)
    np.testing.assert_allclose(out.data, naive_pool(x, k, s, (p, p), (1, 1), "avg")[0])
    out = check_gradients(lambda x: F.avg_pool2d(x, count_include_pad=False, **kw), [x], rng)
    np.testing.assert_allclose(out.data, naive_pool(x, k, s, (p, p), (1, 1), "avg", False)[0])


@pytest.mark.parametrize("kw", [
    dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=2), dict(kernel_size=(3, 2), stride=(2, 3)),
    dict(kernel_size=3, stride=3, padding=1),
])
def test_ceil_mode_pooling_values_and_gradients(kw, rng):
    x = rng.permutation(2 * 3 * 6 * 7).reshape(2, 3, 6, 7) / 10.0
    k = kw["kernel_size"]
    k = (k, k) if isinstance(k, int) else k
    s = kw.get("stride") or k
    s = (s, s) if isinstance(s, int) else s
    p = (kw.get("padding", 0),) * 2
    out = check_gradients(lambda x: F.max_pool2d(x, ceil_mode=True, **kw), [x], rng, atol=1e-5)
    np.testing.assert_allclose(out.data, naive_pool(x, k, s, p, (1, 1), "max", ceil_mode=True)[0])
    floor = F.max_pool2d(Tensor(x), **kw)
    assert out.shape[2] >= floor.shape[2] and out.shape[3] >= floor.shape[3]
    for include in (True, False):
        out = check_gradients(lambda x: F.avg_pool2d(x, ceil_mode=True, count_include_pad=include, **kw), [x], rng)
        np.testing.assert_allclose(out.data, naive_pool(x, k, s, p, (1, 1), "avg", include, ceil_mode=True)[0])


def test_ceil_mode_adds_the_windows_pytorch_adds(rng):
    x = Tensor(rng.standard_normal((1, 1, 7, 7)))
    assert F.max_pool2d(x, 2).shape == (1, 1, 3, 3)
    assert F.max_pool2d(x, 2, ceil_mode=True).shape == (1, 1, 4, 4)  # the last row/column alone
    assert F.avg_pool2d(x, 2, ceil_mode=True).data[0, 0, 3, 3] == x.data[0, 0, 6, 6]  # divisor 1
    # 5 cells, kernel 3, stride 3, padding 1: a third window would start at 5, in the padding
    assert F.max_pool2d(Tensor(np.zeros((1, 1, 5, 5))), 3, 3, 1, ceil_mode=True).shape == (1, 1, 2, 2)
    layer = clumsygrad.nn.MaxPool2d(2, ceil_mode=True)
    assert layer(x).shape == (1, 1, 4, 4) and "ceil_mode=True" in repr(layer)
    assert clumsygrad.nn.AvgPool2d(2, ceil_mode=True)(x).shape == (1, 1, 4, 4)
    assert clumsygrad.nn.AvgPool2d(3, 1, 1, False, False)(x).shape == (1, 1, 7, 7)  # PyTorch's order


@pytest.mark.parametrize("batched", [True, False])
def test_max_pool_return_indices(batched, rng):
    x = rng.permutation(2 * 3 * 5 * 6).reshape(2, 3, 5, 6) / 10.0
    x = x if batched else x[0]
    out, idx = F.max_pool2d(parameter(x), 3, 2, 1, ceil_mode=True, return_indices=True)
    ref, ref_idx = naive_pool(x if batched else x[None], (3, 3), (2, 2), (1, 1), (1, 1), "max", ceil_mode=True)
    assert isinstance(idx, np.ndarray) and idx.dtype == np.int64 and idx.shape == out.shape
    np.testing.assert_array_equal(idx, ref_idx if batched else ref_idx[0])
    np.testing.assert_allclose(out.data, ref if batched else ref[0])
    # each index points at the value it reports (PyTorch's flat h * W + w in its plane)
    planes = x.reshape(-1, 5 * 6) if batched else x.reshape(3, 30)
    np.testing.assert_array_equal(np.take_along_axis(planes, idx.reshape(planes.shape[0], -1), 1).ravel(),
                                  out.data.ravel())
    layer_out, layer_idx = clumsygrad.nn.MaxPool2d(3, 2, 1, return_indices=True, ceil_mode=True)(Tensor(x, dtype=np.float64))
    np.testing.assert_array_equal(layer_idx, idx)
    np.testing.assert_array_equal(layer_out.data, out.data)
    out.backward(np.ones(out.shape))  # the values still carry the gradient


def test_adaptive_avg_pool_matches_pytorch_bins(rng):
    x = rng.standard_normal((2, 3, 7, 5))
    out = check_gradients(lambda x: F.adaptive_avg_pool2d(x, (3, 2)), [x], rng)
    ref = np.empty((2, 3, 3, 2))
    for i in range(3):
        for j in range(2):
            h0, h1 = math.floor(i * 7 / 3), math.ceil((i + 1) * 7 / 3)
            w0, w1 = math.floor(j * 5 / 2), math.ceil((j + 1) * 5 / 2)
            ref[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    np.testing.assert_allclose(out.data, ref)
    assert F.adaptive_avg_pool2d(Tensor(x), 1).shape == (2, 3, 1, 1)


def test_linear_values_and_gradients(rng):
    x, w, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((5, 4)), rng.standard_normal(5)
    out = check_gradients(F.linear, [x, w, b], rng)
    np.testing.assert_allclose(out.data, np.einsum("abi,oi->abo", x, w) + b)
    check_gradients(F.linear, [x[0, 0], w], rng)


@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_values_and_gradients(affine, rng):
    x = rng.standard_normal((3, 2, 4))
    w, b = rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    args = [x, w, b] if affine else [x]
    out = check_gradients(lambda x, *wb: F.layer_norm(x, (2, 4), *wb), args, rng)
    rows = x.reshape(3, 8)
    ref = ((rows - rows.mean(1, keepdims=True)) / np.sqrt(rows.var(1, keepdims=True) + 1e-5)).reshape(x.shape)
    if affine:
        ref = ref * w + b
    np.testing.assert_allclose(out.data, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 2, 3)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_values_gradients_and_running_stats(shape, training, rng):
    x = rng.standard_normal(shape) * 2 + 1
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    rm0, rv0 = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    rm, rv = rm0.copy(), rv0.copy()
    op = lambda x, w, b: F.batch_norm(x, rm.copy(), rv.copy(), w, b, training=training)  # noqa: E731
    out = check_gradients(op, [x, w, b], rng)
    axes = (0,) + tuple(range(2, len(shape)))
    bshape = (1, 3) + (1,) * (len(shape) - 2)
    if training:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
    else:
        mean, var = rm0, rv0
    ref = (x - mean.reshape(bshape)) / np.sqrt(var.reshape(bshape) + 1e-5) * w.reshape(bshape) + b.reshape(bshape)
    np.testing.assert_allclose(out.data, ref, rtol=1e-9, atol=1e-9)
    F.batch_norm(Tensor(x, dtype=np.float64), rm, rv, training=training, momentum=0.25)
    if training:
        n = x.size // 3
        np.testing.assert_allclose(rm, 0.75 * rm0 + 0.25 * mean)
        np.testing.assert_allclose(rv, 0.75 * rv0 + 0.25 * var * n / (n - 1))
    else:
        np.testing.assert_array_equal(rm, rm0)


def test_dropout_mask_scale_and_seeded_generator(rng):
    x = rng.standard_normal((50, 40))
    out = check_gradients(lambda x: F.dropout(x, 0.3, generator=np.random.default_rng(7)), [x], rng)
    kept = out.data != 0
    assert 0.6 < kept.mean() < 0.8
    np.testing.assert_allclose(out.data[kept], x[kept] / 0.7)
    again = F.dropout(Tensor(x), 0.3, generator=np.random.default_rng(7))
    np.testing.assert_array_equal(again.data != 0, kept)
    t = Tensor(x)
    assert F.dropout(t, 0.3, training=False) is t
    assert not F.dropout(t, 1.0).data.any()
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(t, 1.5)


def test_embedding_values_gradients_and_padding_idx(rng):
    w = parameter(rng.standard_normal((5, 3)))
    idx = np.array([[0, 2, 2], [4, 1, 0]])
    out = F.embedding(idx, w, padding_idx=0)
    np.testing.assert_array_equal(out.data, w.data[idx])
    g = rng.standard_normal(out.shape)
    clumsygrad.math.sum(out * Tensor(g, dtype=np.float64)).backward()
    expected = np.zeros((5, 3))
    np.add.at(expected, idx.ravel(), g.reshape(-1, 3))
    expected[0] = 0
    np.testing.assert_allclose(w.grad, expected)
    with pytest.raises(ValueError, match="index 5 is out of range"):
        F.embedding([1, 5], w)
    with pytest.raises(TypeError, match="integer indices"):
        F.embedding(np.array([0.5]), w)


@pytest.mark.parametrize("op,ref", [
    (lambda x: F.gelu(x), lambda v: v * 0.5 * (1 + np.vectorize(math.erf)(v / math.sqrt(2)))),
    (lambda x: F.gelu(x, "tanh"), lambda v: 0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3)))),
    (lambda x: F.leaky_relu(x, 0.2), lambda v: np.where(v > 0, v, 0.2 * v)),
    (F.silu, lambda v: v / (1 + np.exp(-v))),
])
def test_activations(op, ref, rng):
    x = rng.standard_normal((4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # away from the kink of leaky_relu
    out = check_gradients(op, [x], rng)
    np.testing.assert_allclose(out.data, ref(x), rtol=1e-7, atol=1e-12)


def test_float32_inputs_stay_float32(rng):
    x = Tensor(rng.standard_normal((2, 3, 6, 6)), TensorType.PARAMETER)
    w = Tensor(rng.standard_normal((4, 3, 3, 3)), TensorType.PARAMETER)
    y = F.max_pool2d(F.conv2d(x, w, padding=1), 2)
    y = F.batch_norm(y, None, None, training=True)
    assert y.dtype == np.float32
    clumsygrad.math.sum(y * y).backward()
    assert x.grad.dtype == w.grad.dtype == np.float32
