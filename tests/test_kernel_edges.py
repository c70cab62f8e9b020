"""The kernel twins agree at the edges (issue 10, defect 8).

* float32 sums whose partial sums leave float32's range but whose total does not: both
  sides now redo such a sum with double accumulators (the reference summed in float32, the
  compiled kernels in double only for short horizontal sums);
* ``expand_to_shape`` with a scale that is not a real number (None, a string) raises the
  same ``TypeError`` on both sides (the reference used to return NaN);
* shape entries too large for an array raise the same ``ValueError`` on both sides (the
  compiled side used to raise ``OverflowError``).

Each case is run against both kernel modules, and through the library on the active backend.
"""
import numpy as np
import pytest

from clumsygrad import _backend
from clumsygrad._kernels import _shapes, native, pure
from clumsygrad.math import sum as cg_sum
from clumsygrad.tensor import Tensor, TensorType

MODULES = pytest.mark.parametrize("module", [native, pure], ids=["native", "pure"])
BIG = np.float32(3e38)  # twice this overflows float32 (max 3.4e38)
CANCELLING = np.array([BIG, BIG, -BIG, -BIG], dtype=np.float32)


# --------------------------------------------------------------------------- float32 range
@pytest.mark.both_backends
@MODULES
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_reduce_to_shape_survives_partial_sums_beyond_float32(module):
    assert module.reduce_to_shape(CANCELLING, ()) == 0.0
    rows = np.stack([CANCELLING, CANCELLING[::-1]])
    out = module.reduce_to_shape(rows, (2, 1))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0.0], [0.0]])


@pytest.mark.both_backends
@MODULES
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("n", [2, 16, 256, 3000])
def test_kept_axes_and_long_rows_survive_partial_sums_beyond_float32(module, n):
    # rows added into a kept output axis ((4, n) -> (n,)), and long horizontal sums whose
    # float32 lane sums overflow ((n * 4,) -> ()): the compiled paths that add in float32
    columns = np.tile(CANCELLING[:, None], (1, n))
    np.testing.assert_array_equal(module.reduce_to_shape(columns, (n,)), np.zeros(n, np.float32))
    np.testing.assert_array_equal(module.reduce_to_shape(columns, (1, n)), np.zeros((1, n), np.float32))
    long_row = np.repeat(CANCELLING, n)  # n * 3e38, then n * -3e38
    assert module.reduce_to_shape(long_row, ()) == 0.0
    halves = np.full(columns.shape, 0.5, np.float32)
    np.testing.assert_array_equal(module.mul_reduce_to_shape(columns, halves, (n,)), np.zeros(n))


@pytest.mark.both_backends
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_overflowing_float32_products_stay_non_finite_on_both_sides():
    # the product g * other is rounded to float32 first on both sides: inf - inf is NaN
    g = np.array([1e20, 1e20], np.float32)
    other = np.array([1e20, -1e20], np.float32)
    assert np.isnan(native.mul_reduce_to_shape(g, other, ()))
    assert np.isnan(pure.mul_reduce_to_shape(g, other, ()))


@pytest.mark.both_backends
@MODULES
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_mul_reduce_to_shape_survives_partial_sums_beyond_float32(module):
    ones = np.ones(4, np.float32)
    assert module.mul_reduce_to_shape(CANCELLING, ones, ()) == 0.0
    assert module.mul_reduce_to_shape(CANCELLING, np.float32(0.5), (1,)).tolist() == [0.0]


@pytest.mark.both_backends
@MODULES
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_sums_beyond_float32_are_inf_on_both(module):
    out = module.reduce_to_shape(np.array([BIG, BIG, BIG], np.float32), ())
    assert out.dtype == np.float32 and out == np.inf
    out = module.reduce_to_shape(np.array([[-BIG], [-BIG]], np.float32), (1,))
    assert out.tolist() == [-np.inf]


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_the_gradient_of_a_broadcast_add_is_right_on_the_active_backend(backend):
    # d/db sum(x + b) with b broadcast over four rows: sum of the incoming gradient's rows
    x = Tensor(np.zeros((4, 1)))
    b = Tensor(np.zeros(1), tensor_type=TensorType.PARAMETER)
    y = x + b
    y.backward(CANCELLING.reshape(4, 1))
    assert b.grad.tolist() == [0.0]


def test_float32_sums_still_run_in_float32_when_nothing_overflows():
    # the reference's fast path is unchanged: its value is NumPy's float32 sum
    g = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)
    np.testing.assert_array_equal(pure.reduce_to_shape(g, (256,)), np.sum(g, axis=0, keepdims=True)[0])


# --------------------------------------------------------------------------- scale
@pytest.mark.both_backends
@pytest.mark.parametrize("scale, name", [(None, "NoneType"), ("2.0", "str"), (1j, "complex"),
                                         ([1.0], "list")])
def test_expand_to_shape_rejects_a_scale_that_is_not_a_real_number(scale, name):
    messages = []
    for module in (native, pure):
        with pytest.raises(TypeError, match=f"^must be real number, not {name}$") as info:
            module.expand_to_shape(np.ones(3, np.float32), (2, 3), 0, False, scale)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


@pytest.mark.both_backends
@MODULES
def test_expand_to_shape_takes_numpy_and_integer_scales(module):
    for scale in (2, np.float32(2.0), np.int64(2), np.array(2.0), True):
        out = module.expand_to_shape(np.ones(3, np.float32), (2, 3), 0, False, scale)
        np.testing.assert_array_equal(out, np.full((2, 3), float(scale), np.float32))


def test_sum_backward_with_a_bad_scale_is_a_type_error_on_the_active_backend(backend):
    with pytest.raises(TypeError, match="must be real number, not NoneType"):
        _backend.active.expand_to_shape(np.ones(3, np.float32), (2, 3), 0, False, None)
    x = Tensor(np.ones((2, 3)), tensor_type=TensorType.PARAMETER)
    cg_sum(x, axis=0).backward(np.ones(3))  # the library itself always passes a number
    np.testing.assert_array_equal(x.grad, np.ones((2, 3)))


# --------------------------------------------------------------------------- huge shapes
HUGE = [(2**63,), (10**30, 2), 2**63, (3, 2**64), (2**63 - 1,)]


@pytest.mark.both_backends
@pytest.mark.parametrize("shape", HUGE, ids=[str(s)[:20] for s in HUGE])
@pytest.mark.parametrize("call", [
    lambda m, s: m.reduce_to_shape(np.ones(3, np.float32), s),
    lambda m, s: m.mul_reduce_to_shape(np.ones(3, np.float32), np.ones(3, np.float32), s),
    lambda m, s: m.expand_to_shape(np.ones((), np.float32), s, None, False, 1.0),
    lambda m, s: m.as_shape(s),
], ids=["reduce_to_shape", "mul_reduce_to_shape", "expand_to_shape", "as_shape"])
def test_huge_shape_entries_raise_the_same_value_error(shape, call):
    messages = []
    for module in (native if call.__code__.co_names[-1] != "as_shape" else _shapes, pure):
        with pytest.raises(ValueError, match="has a dimension too large for an array") as info:
            call(module, shape)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


@pytest.mark.both_backends
@MODULES
def test_large_but_representable_shapes_still_give_the_usual_errors(module):
    # sizes a C ssize_t holds are parsed; they fail as shapes that do not fit, or as NumPy's
    # "array is too big", the same on both sides
    with pytest.raises(ValueError, match="cannot reduce a gradient of shape"):
        module.reduce_to_shape(np.ones(3, np.float32), (2**62,))
    with pytest.raises(ValueError, match="array is too big"):
        module.expand_to_shape(np.ones((), np.float32), (2**62, 2**62), None, False, 1.0)


LONG_FLOAT64_SUMS = {
    # name: (grad, other or None, target shape)
    "broadcast value": (np.broadcast_to(np.float64(0.1), (100_000,)), None, ()),
    "every other element": ((0.1 + 1e-3 * np.random.default_rng(5).random(200_000))[::2], None, ()),
    "reversed": (np.random.default_rng(6).standard_normal(100_000)[::-1], None, ()),
    "down the columns": ((0.1 + 1e-3 * np.random.default_rng(7).random((3, 100_000))).T, None, (1, 3)),
    "strided product": (np.random.default_rng(8).standard_normal(200_000)[::2],
                        np.random.default_rng(9).standard_normal(200_000)[::2], ()),
}


@pytest.mark.both_backends
@MODULES
@pytest.mark.parametrize("name", list(LONG_FLOAT64_SUMS))
def test_long_float64_sums_are_as_accurate_as_pairwise_summation(module, name):
    # A sum of n float64 terms added one after the other drifts by up to n roundings (measured:
    # 5,182 eps at 100,000 broadcast terms); NumPy's pairwise sum stays within ~log2(n) of the
    # exact (math.fsum) value, and so must both twins, whatever the operand's strides.
    import math

    grad, other, shape = LONG_FLOAT64_SUMS[name]
    if other is None:
        got = module.reduce_to_shape(grad, shape)
        terms = grad
    else:
        got = module.mul_reduce_to_shape(grad, other, shape)
        terms = grad * other
    flat_terms = terms.T if shape == (1, 3) else terms.reshape(1, -1)  # one row per output value
    exact = np.array([math.fsum(row) for row in flat_terms]).reshape(shape)
    magnitude = np.abs(flat_terms).sum(axis=1).reshape(shape)
    assert np.all(np.abs(got - exact) <= 32 * np.finfo(np.float64).eps * magnitude), (got - exact, magnitude)
