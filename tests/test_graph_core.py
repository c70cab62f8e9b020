"""The graph core: the node twins, the fast-path operators, the typed backward loops, deep graphs, threads.

``Tensor`` is built on ``clumsygrad._backend.graph.Node`` (compiled unless
``CLUMSYGRAD_BACKEND=python`` at import).  The compiled twin answers common operators and
elementwise backward functions in C; every such answer must equal the generic Python one.
"""
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import clumsygrad
from clumsygrad import _backend, grad
from clumsygrad.activation import relu, sigmoid, tanh
from clumsygrad.math import cos, exp, log, sin, sqrt, sum
from clumsygrad.tensor import Tensor, TensorType, _Operators

from helpers import SHAPE_SETTINGS, examples

COMPILED = _backend.graph.__name__ == "clumsygrad._graph.native"


def param(data, dtype=np.float64):
    return Tensor(data, tensor_type=TensorType.PARAMETER, dtype=dtype)


# --------------------------------------------------------------------------- the node
def test_tensor_is_built_on_the_selected_node():
    assert issubclass(Tensor, _backend.graph.Node)
    assert Tensor.__mro__[1] is _backend.graph.Node
    if os.environ.get("CLUMSYGRAD_BACKEND", "").lower() != "python":
        assert COMPILED, "the compiled graph was built but not selected"


def test_fields_read_and_assign():
    x = param([1.0, 2.0])
    y = x * 3.0
    assert y._parents == (x,) and y._grad_fn is grad.mul_scalar_backward
    assert y._extra == {"scalar_value": 3.0}
    assert y._tensor_type is TensorType.INTERMEDIATE and y._requires_grad
    assert y._shape == (2,) and y._data.dtype == np.float64 and y._version == 0
    y._extra = {"scalar_value": 5.0}
    y.backward(np.ones(2))
    np.testing.assert_array_equal(x.grad, [5.0, 5.0])  # the assigned constant is read
    z = x * 2.0
    z._extra["scalar_value"] = 7.0  # changed in place through the dict
    z.backward(np.ones(2))
    np.testing.assert_array_equal(x.grad, [12.0, 12.0])
    z._tensor_type = TensorType.PARAMETER
    assert z._tensor_type is TensorType.PARAMETER
    z._id = 123
    assert z._id == 123
    z._parents = [x]
    assert z._parents == (x,)
    with pytest.raises(TypeError):
        z._parents = (1.0,)


def test_id_counter_reads_and_assigns():
    before = Tensor._id_counter
    t = Tensor(1.0)
    assert t._id == before and Tensor._id_counter == before + 1
    Tensor._id_counter = 10_000_000
    assert Tensor(1.0)._id == 10_000_000
    assert (Tensor(1.0) * 2.0)._id == 10_000_002


def test_user_subclass_and_isinstance():
    class Scaled(Tensor):
        __slots__ = ()

        def double(self):
            return self * 2.0

    s = Scaled([1.0, 2.0], tensor_type=TensorType.PARAMETER)
    y = s.double()
    assert isinstance(s, Tensor) and isinstance(y, Tensor)
    sum(y).backward()
    np.testing.assert_array_equal(s.grad, [2.0, 2.0])


def test_tensors_have_no_instance_dict():
    t = Tensor([1.0])
    with pytest.raises(AttributeError):
        t.anything = 1


# --------------------------------------------------------------------------- fast-path forwards
FLOATS = st.floats(-1e6, 1e6, allow_nan=False, width=32)


@st.composite
def arrays_and_dtype(draw, min_side=0):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=min_side, max_side=5))
    return draw(hnp.arrays(dtype, shape, elements=FLOATS)), dtype


OPERATORS = [
    ("__add__", lambda a, b: a + b),
    ("__sub__", lambda a, b: a - b),
    ("__mul__", lambda a, b: a * b),
    ("__radd__", lambda a, b: b + a),
    ("__rmul__", lambda a, b: b * a),
    ("__truediv__", lambda a, b: a / b),
]


@SHAPE_SETTINGS
@given(arrays_and_dtype(), st.one_of(FLOATS, st.integers(-1000, 1000)), st.sampled_from(OPERATORS))
def test_scalar_operators_equal_the_generic_ones(data_dtype, c, operator_):
    data, dtype = data_dtype
    name, apply = operator_
    if name == "__truediv__" and c == 0:
        c = 3
    x = param(data, dtype)
    fast = apply(x, c)
    generic = getattr(_Operators, name)(x, c)
    assert fast._data.dtype == generic._data.dtype == dtype
    np.testing.assert_array_equal(fast._data, generic._data)
    assert fast._grad_fn is generic._grad_fn and fast._extra == generic._extra


@SHAPE_SETTINGS
@given(arrays_and_dtype(), st.sampled_from(["__add__", "__sub__", "__mul__"]))
def test_same_shape_operators_equal_the_generic_ones(data_dtype, name):
    data, dtype = data_dtype
    x = param(data, dtype)
    y = param(data[::-1] if data.ndim else data, dtype)
    fast = getattr(x, name)(y)
    generic = getattr(_Operators, name)(x, y)
    np.testing.assert_array_equal(fast._data, generic._data)
    assert fast._grad_fn is generic._grad_fn and fast._parents == (x, y)
    np.testing.assert_array_equal((-x)._data, _Operators.__neg__(x)._data)


# --------------------------------------------------------------------------- typed backward loops
def _square(t):
    return t ** 2


UNARY_OPS = [
    ("exp", lambda t: exp(t * 0.01)),
    ("log", lambda t: log(t * t + 1.0)),
    ("sqrt", lambda t: sqrt(t * t + 1.0)),
    ("sin", sin),
    ("cos", cos),
    ("tanh", tanh),
    ("sigmoid", sigmoid),
    ("relu", relu),
    ("neg", lambda t: -t),
    ("pow2", _square),
    ("pow3", lambda t: t ** 3),
    ("pow_half", lambda t: (t * t + 1.0) ** 0.5),
    ("pow_neg", lambda t: (t * t + 1.0) ** -1.5),
    ("scale", lambda t: t * 0.5),
    ("div", lambda t: t / 3.0),
    ("rsub", lambda t: 2.0 - t),
    ("reshape", lambda t: t.reshape(-1)),
    ("transpose", lambda t: t.T()),
]


def _grads(build, data, dtype, engine, seed):
    clumsygrad.set_backend(engine)
    x = param(data, dtype)
    y = param(data * 0.5 + 1.0, dtype)
    out = build(x, y)
    out.backward(np.asarray(seed, dtype=dtype).reshape(out.shape) if out.shape else None)
    return x.grad, y.grad


@settings(SHAPE_SETTINGS, max_examples=examples(40))
@given(arrays_and_dtype(min_side=1), st.sampled_from(UNARY_OPS + [
    ("add", None), ("sub", None), ("mul", None), ("self_mul", None)]))
@pytest.mark.both_backends
def test_typed_backward_loops_equal_the_python_functions(data_dtype, op):
    data, dtype = data_dtype
    name, unary = op
    data = data / 1e5  # keep exp/pow in range

    def build(x, y):
        if name == "add":
            h = x + y
        elif name == "sub":
            h = x - y
        elif name == "mul":
            h = x * y
        elif name == "self_mul":
            h = x * x
        else:
            h = unary(x) * 1.0
        return h

    seed = np.linspace(-1.0, 2.0, max(data.size, 1))
    compiled = _grads(build, data, dtype, "cython", seed)
    reference = _grads(build, data, dtype, "python", seed)
    for c, r in zip(compiled, reference):
        assert (c is None) == (r is None)
        if c is not None:
            assert c.dtype == r.dtype and c.shape == r.shape
            rtol = 2e-6 if dtype == np.float32 else 1e-13
            np.testing.assert_allclose(c, r, rtol=rtol, atol=rtol * 1e-3)


@pytest.mark.both_backends
def test_non_contiguous_operands_fall_back_to_the_python_functions():
    base = np.arange(24.0).reshape(4, 6)
    for engine in ("cython", "python"):
        clumsygrad.set_backend(engine)
        x = param(base[:, ::2])  # a strided copy is made by Tensor(); make the node data strided
        y = x.T() * 2.0  # transposed data: not C-contiguous
        z = exp(y * 0.01) * y
        sum(z).backward()
        expected = 2.0 * (np.exp(0.02 * base[:, ::2]) * (1 + 0.02 * base[:, ::2]))
        np.testing.assert_allclose(x.grad, expected, rtol=1e-12)


# --------------------------------------------------------------------------- deep graphs
N_DEEP = 1_000_000


def _chain(n):
    x = Tensor(1.0, tensor_type=TensorType.PARAMETER, dtype=np.float64)
    y = x
    for _ in range(n // 2):
        y = y * 1.0000001
        y = y + 1e-7
    return x, y


@pytest.mark.slow
@pytest.mark.parametrize("keep_graph", [None, False, True])
def test_million_node_chain_builds_backpropagates_and_frees(keep_graph):
    x, y = _chain(N_DEEP)
    if keep_graph is not None:
        y.backward(keep_graph=keep_graph)
        np.testing.assert_allclose(x.grad, 1.0000001 ** (N_DEEP // 2), rtol=1e-9)
    del y  # must not recurse on the C stack


@pytest.mark.slow
@pytest.mark.both_backends
def test_pure_nodes_free_a_million_node_chain_too():
    script = (
        "import clumsygrad\n"
        "from clumsygrad.tensor import Tensor, TensorType\n"
        "assert clumsygrad._backend.graph.__name__ == 'clumsygrad._graph.pure'\n"
        "for keep in (None, True):\n"
        "    x = Tensor(1.0, tensor_type=TensorType.PARAMETER)\n"
        "    y = x\n"
        f"    for _ in range({N_DEEP}):\n"
        "        y = y * 1.0000001\n"
        "    if keep is not None:\n"
        "        y.backward(keep_graph=keep)\n"
        "    del y\n"
        "print('ok')\n"
    )
    env = dict(os.environ, CLUMSYGRAD_BACKEND="python")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# --------------------------------------------------------------------------- threads
def _mlp_grads(seed):
    rng = np.random.default_rng(seed)
    w = param(rng.standard_normal((5, 4)))
    b = param(rng.standard_normal(4))
    x = Tensor(rng.standard_normal((8, 5)), dtype=np.float64)
    for _ in range(20):
        loss = sum(tanh(x @ w + b) * 0.5 - 1.0 / (1.0 + exp(b)))
        loss.backward()
    return w.grad, b.grad


def test_independent_graphs_in_threads_match_one_thread():
    expected = [_mlp_grads(seed) for seed in range(8)]
    results = [None] * 8

    def work(k):
        results[k] = _mlp_grads(k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected):
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


def test_concurrent_backward_into_a_shared_parameter_adds_every_pass():
    for _ in range(20):
        w = param(np.ones(3))
        start = threading.Barrier(4)

        def work():
            start.wait()
            for _ in range(50):
                sum(w * 2.0 + w).backward()

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        np.testing.assert_array_equal(w.grad, np.full(3, 4 * 50 * 3.0))


def test_backward_passes_never_overlap():
    """One backward pass at a time (the engine's lock), shown without relying on a lucky switch.

    Thread A's pass runs a backward function that announces it is inside and then waits up to
    2 s for thread B's pass to announce the same; B starts its pass as soon as A is inside.
    With the lock B waits at the lock until A's pass ends, so A never sees it; without the
    lock B's pass runs at once and A sees it, every time.  Both passes add into one parameter.
    """
    from clumsygrad.tensor import _new_node

    w = param(np.ones(3))
    a_inside, b_inside = threading.Event(), threading.Event()
    overlapped = []

    def a_backward(tensor, grad):
        a_inside.set()
        overlapped.append(b_inside.wait(timeout=2.0))
        return (grad,)

    def b_backward(tensor, grad):
        b_inside.set()
        return (grad,)

    def run_a():
        sum(_new_node(w._data * 1.0, a_backward, (w,))).backward()

    def run_b():
        assert a_inside.wait(timeout=60)
        sum(_new_node(w._data * 1.0, b_backward, (w,))).backward()

    errors = []

    def guarded(fn):
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(fn,)) for fn in (run_a, run_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert overlapped == [False], "a second backward pass ran while the first was inside"
    assert b_inside.is_set()
    np.testing.assert_array_equal(w.grad, np.full(3, 2.0))


# --------------------------------------------------------------------------- the twins agree
PROGRAM = """
import json, numpy as np, clumsygrad
from clumsygrad.tensor import Tensor, TensorType
from clumsygrad.math import sum, exp, mean
from clumsygrad.activation import tanh, softmax, relu
out = {"graph": clumsygrad._backend.graph.__name__}
for backend in ("cython", "python"):
    clumsygrad.set_backend(backend)
    rng = np.random.default_rng(0)
    w = Tensor(rng.standard_normal((4, 3)), TensorType.PARAMETER, dtype=np.float64)
    b = Tensor(rng.standard_normal(3), TensorType.PARAMETER, dtype=np.float64)
    x = Tensor(rng.standard_normal((5, 4)), dtype=np.float64)
    h = tanh(x @ w + b) * 2.0 - 1.0 / (b * b + 1.0)
    loss = mean(softmax(relu(h) + exp(h * 0.1), axis=-1) ** 2) + sum(w.T().reshape(-1) * 0.5)
    loss.backward()
    errors = []
    for bad in (lambda: loss.backward(), lambda: Tensor([1.0]) @ Tensor([[1.0]]),
                lambda: w + Tensor(np.ones(5))):
        try:
            bad()
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    out[backend] = {"loss": float(loss.data), "w": w.grad.tolist(), "b": b.grad.tolist(),
                    "errors": errors}
print(json.dumps(out))
"""


@pytest.mark.both_backends
def test_pure_and_compiled_nodes_give_identical_results():
    runs = {}
    for graph in ("cython", "python"):
        env = dict(os.environ, CLUMSYGRAD_BACKEND=graph)
        done = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr
        runs[graph] = json.loads(done.stdout)
    assert runs["cython"]["graph"] == "clumsygrad._graph.native"
    assert runs["python"]["graph"] == "clumsygrad._graph.pure"
    results = [runs[g][b] for g in runs for b in ("cython", "python")]
    for r in results[1:]:
        assert r["errors"] == results[0]["errors"]
        np.testing.assert_allclose(r["loss"], results[0]["loss"], rtol=1e-14)
        np.testing.assert_allclose(r["w"], results[0]["w"], rtol=1e-12)
        np.testing.assert_allclose(r["b"], results[0]["b"], rtol=1e-12)


@pytest.mark.both_backends
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scalar_graphs_give_the_pure_engines_gradients_bit_for_bit(dtype):
    """0-d nodes keep values and gradients as C doubles; every .grad must equal the reference."""

    def run(engine):
        clumsygrad.set_backend(engine)
        x = Tensor(0.7, tensor_type=TensorType.PARAMETER, dtype=dtype)
        w = Tensor(-1.3, tensor_type=TensorType.PARAMETER, dtype=dtype)
        x.grad = np.array(0.25)  # stored as given, then accumulated into
        a = x * w + 0.5
        b = a * a - x / 3.0
        c = -b * 2.0 + w
        d = c * x - 1.0 + a * 1e-3
        d.backward(keep_graph=True)
        d.backward()
        return [t.grad for t in (x, w, a, b, c, d)], d.data

    compiled, reference = run("cython"), run("python")
    assert compiled[1].dtype == reference[1].dtype == dtype
    np.testing.assert_array_equal(compiled[1], reference[1])
    for got, want in zip(compiled[0], reference[0]):
        assert got.shape == want.shape == () and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert compiled[0][0].dtype == np.float64  # the assigned float64 array kept its dtype
