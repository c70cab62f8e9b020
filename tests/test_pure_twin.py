"""The pure graph twin's short paths give what its general paths give.

* 0-d arithmetic with a Python float (the scalar chain, every loss scaled by a constant) is
  computed on NumPy scalars where no floating-point exception can occur, and on 0-d arrays
  elsewhere: the value, the dtype and every warning must be those of NumPy's array arithmetic.
* The pure engine computes the scalar operators' backward formulas in its loop instead of
  calling the backward functions; a pass must give, bit for bit, what the generic loop (the one
  a ``clumsygrad.profile()`` recording takes, which calls every backward function) gives.

The pure node is ``Tensor``'s base only with ``CLUMSYGRAD_BACKEND=python`` at import;
``test_pure_node_run.py`` runs this file again in such a child process.
"""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clumsygrad
from clumsygrad._graph import pure
from clumsygrad.tensor import Tensor, TensorType

EDGES = [0.0, -0.0, 1.0, -1.0, 0.5, 3.0, 1e-45, 1.1e-38, 1.2e-38, 1.18e-38, 1e-30, 1e30, 3.39e38, 3.4e38,
         3.41e38, 1e39, 1e300, 2.2e-308, 2.3e-308, 1e-320, 1.7e308, 1.8e308, float("inf"), -float("inf"),
         float("nan")]
OPS = [
    (pure._mul_0d, np.multiply),
    (pure._div_0d, np.divide),
    (pure._add_0d, np.add),
    (pure._sub_0d, np.subtract),
]


def _run(fn, *args):
    """``fn(*args)`` with every floating-point condition warning; the value and the warnings."""
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="warn"):
        warnings.simplefilter("always")
        value = fn(*args)
    return value, [(w.category, str(w.message)) for w in caught]


def _check_op(helper, ufunc, x, c, dtype):
    with np.errstate(over="ignore"):
        data = np.array(x, dtype=dtype)  # an edge beyond float32 is its inf
    if ufunc is np.divide and (c == 0.0 or c != c):
        return  # the operator divides through the helper only by a non-zero number
    got, got_warnings = _run(helper, data, c)
    want, want_warnings = _run(ufunc, data, c)
    got, want = np.asarray(got, dtype=dtype), np.asarray(want)
    assert want.dtype == dtype and got.dtype == dtype and got.shape == ()
    assert got.tobytes() == want.tobytes() or (np.isnan(got) and np.isnan(want)), (x, c, got, want)
    assert got_warnings == want_warnings, (ufunc.__name__, x, c, got_warnings, want_warnings)


@pytest.mark.both_backends
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_d_arithmetic_on_edges_equals_numpy_arrays(dtype):
    for helper, ufunc in OPS:
        for x in EDGES:
            for c in EDGES:
                _check_op(helper, ufunc, x, c, dtype)
                _check_op(helper, ufunc, -x, -c, dtype)


@pytest.mark.both_backends
@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([np.float32, np.float64]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6).map(float)),
    st.sampled_from(range(len(OPS))),
)
def test_zero_d_arithmetic_equals_numpy_arrays(dtype, x, c, which):
    helper, ufunc = OPS[which]
    with np.errstate(all="ignore"):
        x = float(np.asarray(x, dtype=dtype))  # a value the array can hold
    _check_op(helper, ufunc, x, c, dtype)


@pytest.mark.both_backends
def test_zero_d_negation_keeps_the_sign_rules():
    for dtype in (np.float32, np.float64):
        for x in EDGES:
            with np.errstate(over="ignore"):
                x = Tensor(x, tensor_type=TensorType.PARAMETER, dtype=dtype)
            assert (-x)._data.tobytes() == np.negative(x._data).tobytes()
            assert (-x)._data.dtype == dtype and type((-x)._data) is np.ndarray


def _chain(dtype, shape):
    """A chain of every operator with a constant, ending in a sum; returns (nodes, loss)."""
    x = Tensor(np.linspace(-1.5, 2.0, int(np.prod(shape))).reshape(shape), tensor_type=TensorType.PARAMETER,
               dtype=dtype)
    nodes = [x]
    t = x
    for i in range(60):
        c = (-1.0, 0.5, 1.25, 3, -2.0, 0.75)[i % 6]
        t = (t * c, t + c, c * t, t - c, t / c, c + t, -t)[i % 7]
        nodes.append(t)
    loss = t.sum() if shape else t
    return nodes, loss


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(), (3,), (2, 3)])
def test_engine_inline_formulas_equal_the_backward_functions(backend, dtype, shape):
    results = []
    for profiled in (False, True):
        nodes, loss = _chain(dtype, shape)
        if profiled:  # the generic loop: every backward function called and timed
            with clumsygrad.profile():
                loss.backward()
        else:
            loss.backward()
        results.append([n.grad for n in nodes])
    for fast, generic in zip(*results):
        assert fast.dtype == generic.dtype == dtype and fast.shape == generic.shape == shape
        assert fast.tobytes() == generic.tobytes()
    grads = results[0]
    assert len({id(g) for g in grads}) == len(grads)  # no .grad aliases another
    assert not any(np.shares_memory(a, b) for i, a in enumerate(grads) for b in grads[i + 1:])


@pytest.mark.both_backends
def test_pure_engine_keeps_numpy_overflow_warnings():
    """A float32 gradient that overflows in a scalar operator's backward: inf, with NumPy's warning."""
    previous = clumsygrad.get_backend()
    clumsygrad.set_backend("python")
    try:
        for shape in ((), (2,)):
            x = Tensor(np.ones(shape), tensor_type=TensorType.PARAMETER)
            y = (x * 10.0) * 1.0
            with warnings.catch_warnings(record=True) as caught, np.errstate(over="warn"):
                warnings.simplefilter("always")
                y.backward(np.full(shape, 3e38, dtype=np.float32))
            assert x.grad.dtype == np.float32 and np.all(x.grad == np.inf)
            assert [str(w.message) for w in caught] == ["overflow encountered in multiply"]
    finally:
        clumsygrad.set_backend(previous)


def _random_graph(rng):
    """A random DAG of adds and products over a few leaves (some constants); returns its root."""
    leaves = [Tensor(np.ones(2), tensor_type=rng.choice([TensorType.PARAMETER, TensorType.INPUT]))
              for _ in range(3)]
    nodes = list(leaves)
    for _ in range(rng.randint(1, 40)):
        operands = [rng.choice(nodes) for _ in range(rng.choice([1, 2, 2, 3]))]
        t = operands[0] * 2.0
        for other in operands[1:]:
            t = t + other if rng.random() < 0.5 else t * other
        nodes.append(t)
    return nodes[-1]


@pytest.mark.both_backends
def test_order_walk_on_pure_nodes_equals_the_generic_walk():
    """The walk specialised for pure nodes gives the generic walk's order, node for node (so
    gradients are summed in the same order); on compiled nodes the generic walk is the one used."""
    import random

    rng = random.Random(7)
    pure_nodes = isinstance(Tensor(0.0), pure.Node)
    checked = 0
    for _ in range(200):
        root = _random_graph(rng)
        if not root._requires_grad:
            continue
        generic = pure._reverse_topological_order(root)
        assert generic[0] is root and len(set(map(id, generic))) == len(generic)
        if pure_nodes:
            assert pure._reverse_topological_order(root, True) == generic
        checked += 1
    assert checked > 100
