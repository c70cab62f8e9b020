"""The forward kernels the public functions call with no library Python frame in between:
``sigmoid_forward``, ``sum_forward``, ``mean_forward`` (new), ``mse_forward`` and
``log_softmax_forward`` (which now word the public functions' errors), and ``cross_entropy``'s
compiled callable on the compiled node.

Each kernel is held against its pure twin (hypothesis: shapes with zero-size axes and 0-d,
float32/float64 and promoted dtypes, C/F order, slices, negative strides, broadcast views) and
against the formula the public function computed before (NumPy's ``1 / (1 + exp(-x))``,
``np.add.reduce``, ``np.mean``: bit for bit); errors have the same type and words in both twins
and as before.  On the compiled node the public functions must not run any Python function of
the package (``sys.setprofile``).  Gradients against float64 finite differences are
``test_registry.py``'s (``op_samples.py`` runs these ops).
"""
import inspect
import pickle
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clumsygrad
from clumsygrad import _backend
from clumsygrad._kernels import native, pure
from clumsygrad.activation import log_softmax, sigmoid
from clumsygrad.loss import cross_entropy, mse_loss
from clumsygrad.math import mean
from clumsygrad.math import sum as csum
from clumsygrad.tensor import Tensor, TensorType

from helpers import compiled_node_in_use, examples, package_frames
from test_kernels_equivalence import DTYPES, LAYOUTS, dims, make_array, seeds

pytestmark = pytest.mark.both_backends

SETTINGS = settings(max_examples=examples(300), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TWINS = [pure, native]


def _outcome(call):
    """``call()``'s result, or its exception; the warnings it gave, as (category, text)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = call()
        except Exception as exc:  # compared by type and words
            result = exc
    return result, [(w.category, str(w.message)) for w in caught]


def _same(got, want):
    """Two outcomes agree: the same exception (type, words) or the same array bit for bit, and the
    same warnings."""
    (g, gw), (w, ww) = got, want
    if isinstance(w, Exception):
        assert type(g) is type(w) and str(g) == str(w), (g, w)
    else:
        assert not isinstance(g, Exception), g
        assert type(g) is np.ndarray, type(g)
        w = np.asarray(w)
        assert g.dtype == w.dtype and g.shape == w.shape
        assert g.tobytes() == np.ascontiguousarray(w).tobytes()  # bit for bit, NaNs included
    assert gw == ww


def _param(values, dtype=np.float32):
    return Tensor(values, TensorType.PARAMETER, dtype=dtype)


# --------------------------------------------------------------------------- sigmoid_forward
def _sigmoid_formula(x):
    """``clumsygrad.sigmoid``'s forward before the kernel (1.1.0)."""
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


@SETTINGS
@given(dims, DTYPES, LAYOUTS, seeds, st.sampled_from([1.0, 10.0, 100.0]))
def test_sigmoid_forward_is_the_formula_bit_for_bit(shape, dtype, layout, seed, scale):
    x = make_array(shape, dtype, layout, seed, scale=scale)
    want = _outcome(lambda: _sigmoid_formula(x.astype(np.result_type(x, np.float32))))
    for twin in TWINS:
        _same(_outcome(lambda: twin.sigmoid_forward(x)), want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_forward_extremes(dtype):
    x = np.array([-1e30, -1e4, -1000.0, -745.0, -100.0, -88.0, -87.5, -1e-30, -0.0, 0.0, 1e-30, 30.0, 87.5,
                  100.0, 104.0, 800.0, 1e30, np.inf, -np.inf, np.nan], dtype)
    want = _outcome(lambda: _sigmoid_formula(x))
    assert want[1] == []  # no overflow warning for very negative x
    for twin in TWINS:
        got = _outcome(lambda: twin.sigmoid_forward(x))
        _same(got, want)
        assert got[0][0] == 0.0 and got[0][-4] == 1.0 and np.isnan(got[0][-1])


@pytest.mark.parametrize("under", ["ignore", "warn", "raise"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_forward_reports_underflow_as_the_formula(under, dtype):
    # exp(-x) is subnormal or 0 for large x, 1 / (1 + exp(-x)) for very negative x: NumPy reports
    # underflow only when np.errstate asks for it; overflow is ignored either way
    x = np.array([1.0, 100.0, 800.0, -87.5, -1e4], dtype)
    with np.errstate(under=under, over="raise"):
        want = _outcome(lambda: _sigmoid_formula(x))
        for twin in TWINS:
            _same(_outcome(lambda: twin.sigmoid_forward(x)), want)
    if under == "raise":
        assert isinstance(want[0], FloatingPointError)


def test_sigmoid_forward_errors_and_promotion():
    for twin in TWINS:
        with pytest.raises(TypeError, match="got dtype complex128"):
            twin.sigmoid_forward(np.ones(3, np.complex128))
        assert twin.sigmoid_forward([0, 1]).dtype == np.float64  # int64 promotes
        assert twin.sigmoid_forward(np.float32(0)).shape == ()
        assert type(twin.sigmoid_forward(np.array(0.5, np.float32))) is np.ndarray


# --------------------------------------------------------------------------- sum / mean forward
@st.composite
def axes_of(draw, shape):
    """An axis argument: None, an int (negative too), a tuple or list of distinct axes, ()."""
    nd = len(shape)
    if nd == 0:
        return draw(st.sampled_from([None, ()]))
    kind = draw(st.sampled_from(["none", "int", "tuple", "list"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-nd, nd - 1))
    axes = draw(st.lists(st.integers(0, nd - 1), unique=True, max_size=nd))
    axes = [a - nd if draw(st.booleans()) else a for a in axes]
    return axes if kind == "list" else tuple(axes)


def _numpy_axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


@SETTINGS
@given(dims.flatmap(lambda s: st.tuples(st.just(s), axes_of(s))), DTYPES, LAYOUTS, seeds, st.booleans())
def test_sum_and_mean_forward_are_numpys_bit_for_bit(shape_axis, dtype, layout, seed, keepdims):
    shape, axis = shape_axis
    x = make_array(shape, dtype, layout, seed, scale=3.0)
    # NumPy's reduction of the array itself (its summation order follows the layout); other
    # dtypes are converted first
    xf = x if x.dtype in (np.float32, np.float64) else x.astype(np.result_type(x, np.float32))
    want_sum = _outcome(lambda: np.add.reduce(xf, axis=_numpy_axis(axis), keepdims=keepdims))
    want_mean = _outcome(lambda: np.mean(xf, axis=_numpy_axis(axis), keepdims=keepdims))
    for twin in TWINS:
        _same(_outcome(lambda: twin.sum_forward(x, axis, keepdims)), want_sum)
        _same(_outcome(lambda: twin.mean_forward(x, axis, keepdims)), want_mean)
        _same(_outcome(lambda: twin.sum_forward(x, axis=axis, keepdims=keepdims)), want_sum)
    if x.ndim == 0 or x.size == 0:
        return
    # the mean is the float sum divided by the count in float64, rounded once
    total = np.add.reduce(xf, axis=_numpy_axis(axis), keepdims=keepdims)
    count = xf.size // max(np.size(total), 1)
    by_hand = np.asarray(np.asarray(total, np.float64) / count).astype(xf.dtype)
    assert native.mean_forward(x, axis, keepdims).tobytes() == np.ascontiguousarray(by_hand).tobytes()


@pytest.mark.parametrize("shape", [(2, 3, 4), (3, 0), (0,), ()], ids=str)
@pytest.mark.parametrize("axis", [None, 0, -1, 2, 3, -4, (0, 0), (0, 5), (), [0, 2], [1], 1.5, "a", np.int64(1),
                                  True, ((0,),), (None,)], ids=repr)
@pytest.mark.parametrize("keepdims", [False, True, 1, "x"], ids=repr)
def test_sum_and_mean_forward_errors_and_warnings_are_numpys(shape, axis, keepdims):
    x = np.arange(float(np.prod(shape))).reshape(shape).astype(np.float32)
    want_sum = _outcome(lambda: np.add.reduce(x, axis=_numpy_axis(axis), keepdims=keepdims))
    want_mean = _outcome(lambda: np.mean(x, axis=_numpy_axis(axis), keepdims=keepdims))
    for twin in TWINS:
        _same(_outcome(lambda: twin.sum_forward(x, axis, keepdims)), want_sum)
        _same(_outcome(lambda: twin.mean_forward(x, axis, keepdims)), want_mean)


def test_mean_forward_never_divides_its_input():
    x = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    before = x.copy()
    for axis in [(), None, 0, (0, 1)]:
        for twin in TWINS:
            out = twin.mean_forward(x, axis, True)
            assert not np.shares_memory(out, x)
    np.testing.assert_array_equal(x, before)
    f = np.asfortranarray(np.arange(60.0).reshape(3, 4, 5))  # NumPy keeps the layout: an F-order result
    for twin in TWINS:
        _same(_outcome(lambda: twin.mean_forward(f, 1, True)), _outcome(lambda: np.mean(f, 1, keepdims=True)))


@pytest.mark.parametrize("fn, reference", [(csum, np.add.reduce), (mean, np.mean)], ids=["sum", "mean"])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2), [2, 0], 3, (1, 1)], ids=repr)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sum_and_mean_public_functions(fn, reference, axis, dtype, backend):
    p = _param(np.random.default_rng(3).standard_normal((2, 3, 4)) * 5, dtype)
    got = _outcome(lambda: fn(p, axis=axis, keepdims=True))
    want = _outcome(lambda: reference(p.data, axis=_numpy_axis(axis), keepdims=True))
    if isinstance(want[0], Exception):
        _same(got, want)
        return
    out = got[0]
    _same((out.data, got[1]), want)
    assert out._extra == {"axis": axis, "keepdims": True, "input_shape": (2, 3, 4)}
    assert out._grad_fn is getattr(clumsygrad.grad, f"{fn.__name__}_backward")
    assert list(out._extra) == ["axis", "keepdims", "input_shape"]  # the order the Python function records


# --------------------------------------------------------------------------- mse_forward
MSE_WORDS = "Predicted and target tensors must have the same shape for MSE loss. Got {} and {}."


@pytest.mark.parametrize("shapes", [((2, 3), (3, 2)), ((2, 3), (3,)), ((), (1,)), ((0,), (1,))], ids=str)
def test_mse_forward_words_mse_losss_error(shapes, backend):
    a, b = np.ones(shapes[0], np.float32), np.ones(shapes[1], np.float32)
    words = MSE_WORDS.format(*shapes)  # 1.1.0's mse_loss message
    for twin in TWINS:
        with pytest.raises(ValueError) as info:
            twin.mse_forward(a, b)
        assert str(info.value) == words
    with pytest.raises(ValueError) as info:
        mse_loss(_param(a), _param(b))
    assert str(info.value) == words
    with pytest.raises(ValueError) as info:
        mse_loss(_param(a), b)  # an array operand: the Python function, the same words
    assert str(info.value) == words


# --------------------------------------------------------------------------- log_softmax_forward
# 1.1.0's log_softmax messages (its _check_axis before the kernel) for int axes
LOG_SOFTMAX_ERRORS = [
    ((3, 0), 1, ValueError, "log_softmax over axis 1 of shape (3, 0), which has no elements"),
    ((3, 0), -1, ValueError, "log_softmax over axis -1 of shape (3, 0), which has no elements"),
    ((3, 0), True, ValueError, "log_softmax over axis True of shape (3, 0), which has no elements"),
    ((3, 0), np.int64(1), ValueError, "log_softmax over axis 1 of shape (3, 0), which has no elements"),
    ((3, 0), 2, ValueError, "log_softmax: axis 2 is out of bounds for an array of dimension 2"),
    ((2, 3, 4), 3, ValueError, "log_softmax: axis 3 is out of bounds for an array of dimension 3"),
    ((2, 3, 4), -4, ValueError, "log_softmax: axis -4 is out of bounds for an array of dimension 3"),
    ((2, 3, 4), 2**70, ValueError, f"log_softmax: axis {2**70} is out of bounds for an array of dimension 3"),
    ((), 1, ValueError, "log_softmax: axis 1 is out of bounds for an array of dimension 1"),
    ((), -2, ValueError, "log_softmax: axis -2 is out of bounds for an array of dimension 1"),
    ((2, 3, 4), "a", TypeError, "'str' object cannot be interpreted as an integer"),
    ((2, 3, 4), None, TypeError, "'NoneType' object cannot be interpreted as an integer"),
    ((2, 3, 4), 1.0, TypeError, "'float' object cannot be interpreted as an integer"),
    ((2, 3, 4), (1,), TypeError, "'tuple' object cannot be interpreted as an integer"),
]


@pytest.mark.parametrize("shape, axis, exc, words", LOG_SOFTMAX_ERRORS, ids=repr)
def test_log_softmax_forward_words_log_softmaxs_errors(shape, axis, exc, words, backend):
    x = np.ones(shape, np.float32)
    for twin in TWINS:
        with pytest.raises(exc) as info:
            twin.log_softmax_forward(x, axis)
        assert str(info.value) == words
    for call in (lambda: log_softmax(_param(x), axis), lambda: log_softmax(_param(x), axis=axis)):
        with pytest.raises(exc) as info:
            call()
        assert str(info.value) == words


@pytest.mark.parametrize("axis", [0, 1, -1, -2, np.int64(1), True])
def test_log_softmax_axes_that_work(axis, backend):
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    for twin in TWINS:
        np.testing.assert_allclose(twin.log_softmax_forward(x, axis), pure.log_softmax_forward(x, int(axis)),
                                   rtol=1e-6, atol=1e-6)
    out = log_softmax(_param(x), axis=axis)
    assert out._extra == {"axis": axis}
    assert log_softmax(_param(np.float32(2.0)), 0).data.tolist() == 0.0  # a 0-d input has one axis


# --------------------------------------------------------------------------- no Python frame
_h = np.random.default_rng(5).standard_normal((16, 32)).astype(np.float32)
_labels = np.random.default_rng(6).integers(0, 32, 16)
HOT_CALLS = {
    "sigmoid(h)": lambda h, b: sigmoid(h),
    "h.sigmoid()": lambda h, b: h.sigmoid(),
    "h.sum(0)": lambda h, b: h.sum(0),
    "sum(h)": lambda h, b: csum(h),
    "h.sum(axis=(0, 1), keepdims=True)": lambda h, b: h.sum(axis=(0, 1), keepdims=True),
    "mean(h)": lambda h, b: mean(h),
    "h.mean(1, True)": lambda h, b: h.mean(1, True),
    "mse_loss(h, b)": lambda h, b: mse_loss(h, b),
    "mse_loss(h, array)": lambda h, b: mse_loss(h, _h),
    "log_softmax(h, axis=-1)": lambda h, b: log_softmax(h, axis=-1),
    "log_softmax(h, 0)": lambda h, b: log_softmax(h, 0),
    "h.log_softmax()": lambda h, b: h.log_softmax(),
    "cross_entropy(h, labels)": lambda h, b: cross_entropy(h, _labels),
    "cross_entropy(h, list, 'sum')": lambda h, b: cross_entropy(h, _labels.tolist(), "sum"),
    "cross_entropy(h, labels, reduction='none')": lambda h, b: cross_entropy(h, _labels, reduction="none"),
}


@pytest.mark.parametrize("name", list(HOT_CALLS))
@pytest.mark.parametrize("kernels", ["python", "cython"])
def test_hot_calls_run_no_python_function_of_the_package(name, kernels):
    previous = clumsygrad.get_backend()
    clumsygrad.set_backend(kernels)
    try:
        h, b = _param(_h), Tensor(_h[::-1].copy())
        out, frames = package_frames(lambda: HOT_CALLS[name](h, b))
    finally:
        clumsygrad.set_backend(previous)
    assert isinstance(out, Tensor) and out._grad_fn is not None
    if compiled_node_in_use() and kernels == "cython":
        assert frames == []
    else:  # the pure node runs the registry's Python functions (and the pure kernels their own)
        assert frames


def test_the_frame_probe_sees_python_functions():
    # the probe itself must be able to fail: a call through a Python function of the package
    _, frames = package_frames(lambda: clumsygrad.activation.elu(_param(_h)))
    assert frames


# --------------------------------------------------------------------------- cross_entropy's callable
def _python_function(function):
    return getattr(function, "python_function", function)


def _record_outcome(call):
    try:
        return call()
    except Exception as exc:
        return exc


def _same_record(fast, slow):
    if isinstance(slow, Exception):
        assert type(fast) is type(slow) and str(fast) == str(slow), (fast, slow)
        return
    assert not isinstance(fast, Exception), fast
    assert type(fast) is type(slow) and fast._grad_fn is slow._grad_fn
    assert len(fast._parents) == len(slow._parents)
    for a, b in zip(fast._parents, slow._parents):  # the same tensor, or a view the call made of it
        assert a is b or (a._grad_fn is b._grad_fn and a._parents == b._parents
                          and a.data.tobytes() == b.data.tobytes())
    assert fast.data.dtype == slow.data.dtype and fast.data.tobytes() == slow.data.tobytes()
    assert fast._extra.keys() == slow._extra.keys()
    for key, value in slow._extra.items():
        other = fast._extra[key]
        if isinstance(value, np.ndarray):
            assert other.dtype == value.dtype and other.tobytes() == value.tobytes()
            assert other.flags.writeable == value.flags.writeable
        else:
            assert other == value


LABELS = [[0, 1, 3], np.array([0, 1, 3]), np.array([0, 1, 3], np.int32), np.array([0.0, 1.0, 3.0]), (0, 1, 3),
          [0, 1, 4], [-1, 0, 1], [0, 1], np.array([0.5, 1, 2]), "abc", None, np.array([[0], [1], [2]]),
          np.eye(3, 4), np.eye(3, 4).tolist(), np.array([0, 1, 2], np.uint8)[::-1]]


@pytest.mark.parametrize("labels", LABELS, ids=repr)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "avg", None, np.str_("sum")], ids=repr)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_records_what_the_python_function_records(labels, reduction, dtype, backend):
    z = _param(np.arange(12.0).reshape(3, 4) / 5 - 1, dtype)
    slow = _python_function(cross_entropy)
    for call in (lambda f: f(z, labels, reduction), lambda f: f(z, labels, reduction=reduction)):
        _same_record(_record_outcome(lambda: call(cross_entropy)), _record_outcome(lambda: call(slow)))
    _same_record(_record_outcome(lambda: cross_entropy(z, labels)), _record_outcome(lambda: slow(z, labels)))


_LABEL_TENSOR = Tensor([0.0, 1.0, 2.0])
_TARGET_TENSOR = _param(np.eye(3, 4))


@pytest.mark.parametrize("call", [
    lambda f, z: f(z, _LABEL_TENSOR),
    lambda f, z: f(z, _TARGET_TENSOR),
    lambda f, z: f(np.ones((3, 4)), [0, 1, 2]),
    lambda f, z: f(z, [0, 1, 2], "mean", 1),
    lambda f, z: f(z),
    lambda f, z: f(),
    lambda f, z: f(logits=z, labels=[0, 1, 2]),
    lambda f, z: f(z, labels=[0, 1, 2]),
    lambda f, z: f(z, [0, 1, 2], foo=1),
    lambda f, z: f(z, [0, 1, 2], "sum", reduction="sum"),
    lambda f, z: f(z, [0, 1, 2], reduction="none", foo=1),
    lambda f, z: f(z[0], [0]),
    lambda f, z: f(z[:0], np.zeros(0, np.int64)),
    lambda f, z: f(z[:, :0], [0, 0, 0]),
    lambda f, z: f(z.T(), [0, 1, 2, 0]),
    lambda f, z: f(z * 1e4, [0, 1, 2], "sum"),
], ids=lambda c: "")
def test_cross_entropy_calls_off_the_c_path(call, backend):
    z = _param(np.arange(12.0).reshape(3, 4) / 5)
    _same_record(_record_outcome(lambda: call(cross_entropy, z)),
                 _record_outcome(lambda: call(_python_function(cross_entropy), z)))


def test_cross_entropy_looks_like_a_function():
    python = _python_function(cross_entropy)
    for attr in ("__name__", "__qualname__", "__module__", "__doc__"):
        assert getattr(cross_entropy, attr) == getattr(python, attr)
    assert inspect.signature(cross_entropy) == inspect.signature(python)
    assert list(inspect.signature(cross_entropy).parameters) == ["logits", "labels", "reduction"]
    assert inspect.isroutine(cross_entropy)
    assert pickle.loads(pickle.dumps(cross_entropy)) is cross_entropy
    assert repr(cross_entropy).startswith("<function cross_entropy at 0x")
    assert clumsygrad.cross_entropy is cross_entropy is clumsygrad.nn.functional.cross_entropy
    assert (type(cross_entropy).__name__ == "CrossEntropyFunction") == compiled_node_in_use()
    assert python.__name__ == "cross_entropy" and inspect.isfunction(python)


def test_cross_entropy_gradients_from_the_c_record(backend):
    rng = np.random.default_rng(8)
    for dtype in (np.float32, np.float64):
        z = _param(rng.standard_normal((5, 4)), dtype)
        labels = np.array([0, 3, 1, 1, 2])
        for reduction in ("mean", "sum", "none"):
            z.grad = None
            loss = cross_entropy(z, labels, reduction)
            seed = np.arange(1.0, 6.0) if reduction == "none" else None
            loss.backward(seed)
            zz = z.data.astype(np.float64)
            p = np.exp(zz - zz.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            p[np.arange(5), labels] -= 1
            scale = {"mean": np.full(5, 0.2), "sum": np.ones(5), "none": np.arange(1.0, 6.0)}[reduction]
            tol = 1e-6 if dtype == np.float32 else 1e-12
            np.testing.assert_allclose(z.grad, p * scale[:, None], rtol=tol, atol=tol)


def test_profiled_calls_go_through_the_python_functions():
    # under clumsygrad.profile() the public functions run their Python functions (timed rows)
    h = _param(_h)
    with clumsygrad.profile() as prof:
        _, frames = package_frames(lambda: cross_entropy(h, _labels))
        _, sum_frames = package_frames(lambda: h.sum(0))
    assert "cross_entropy" in frames and "function" in sum_frames
    stats = prof.stats()
    assert stats["cross_entropy"]["forward_calls"] == 1
    assert stats["sum"]["forward_calls"] == 1


def test_kernel_names_are_exported_by_both_sets():
    for name in ("sigmoid_forward", "sum_forward", "mean_forward"):
        assert name in pure.__all__ and name in native.__all__
        assert getattr(_backend.active, name) is getattr(
            native if clumsygrad.get_backend() == "cython" else pure, name)
    from clumsygrad._registry import OPS

    for op, kernel in [("sigmoid", "sigmoid_forward"), ("sum", "sum_forward"), ("mean", "mean_forward"),
                       ("mse_loss", "mse_forward"), ("log_softmax", "log_softmax_forward")]:
        assert OPS[op].forward_kernel == kernel


# --------------------------------------------------------------------------- an array beside a tensor
def _two_input_ops():
    from clumsygrad._registry import OPS

    return sorted(name for name, op in OPS.items()
                  if op.function is not None and op.variant_of is None and op.nin == 2 and not op.params)


@pytest.mark.parametrize("name", _two_input_ops())
@pytest.mark.parametrize("x_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("y_kind", ["f32", "f64", "F-order f32", "sliced f64", "int64", "list", "bad shape",
                                    "0-d", "big-endian"])
def test_an_array_beside_a_tensor_is_the_python_functions_constant(name, x_dtype, y_kind, backend):
    from clumsygrad._registry import OPS

    function = OPS[name].function
    rng = np.random.default_rng(4)
    values = rng.uniform(0.5, 2.0, (3, 4))
    x = _param(values, x_dtype)
    y = {"f32": lambda: np.float32(values[::-1] * 0.7), "f64": lambda: values * 1.3,
         "F-order f32": lambda: np.asfortranarray(values.astype(np.float32) * 0.5),
         "sliced f64": lambda: np.repeat(values, 2, axis=1)[:, ::2] * 0.9,
         "int64": lambda: np.ones((3, 4), np.int64), "list": lambda: (values * 0.8).tolist(),
         "bad shape": lambda: values[:2].astype(np.float32), "0-d": lambda: np.float64(1.5) * np.ones(()),
         "big-endian": lambda: values.astype(">f8")}[y_kind]()
    fast = _record_outcome(lambda: function(x, y))
    slow = _record_outcome(lambda: _python_function(function)(x, y))
    if isinstance(slow, Exception):
        assert type(fast) is type(slow) and str(fast) == str(slow)
        return
    assert type(fast) is type(slow) and fast._grad_fn is slow._grad_fn and fast._parents[0] is x
    assert fast.data.dtype == slow.data.dtype and fast.data.tobytes() == slow.data.tobytes()
    made, want = fast._parents[1], slow._parents[1]  # the constant: a new INPUT tensor each call
    assert type(made) is type(want) and made._tensor_type == want._tensor_type
    assert made._requires_grad is want._requires_grad is False and made._grad_fn is None
    assert made.data.dtype == want.data.dtype and made.data.tobytes() == want.data.tobytes()
    assert made.data.flags.f_contiguous == want.data.flags.f_contiguous
    if isinstance(y, np.ndarray):
        assert not np.shares_memory(made.data, y)  # a copy, as Tensor(y) makes
    assert made._id != want._id and made._extra == want._extra == {}
