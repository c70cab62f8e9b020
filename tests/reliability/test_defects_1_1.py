"""Regression tests for the defects of issue 18 (the 1.1.0 surface), one group per defect.

Each test failed on 1.1.0 and passes now, on both kernel sets (the autouse ``backend``
fixture) and on both graph-node twins (run the file once more with ``CLUMSYGRAD_BACKEND=python``;
``tests/test_pure_node_run.py`` does that in a default run).
"""
from __future__ import annotations

import gc
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import clumsygrad as cg
from clumsygrad.activation import log_softmax
from clumsygrad.gradcheck import GradcheckError, check_gradient, gradcheck
from clumsygrad.optimizer import SGD, Adam, AdamW
from clumsygrad.tensor import Tensor, TensorType

P = TensorType.PARAMETER


def _param(data, dtype=np.float64):
    return Tensor(np.asarray(data, dtype=dtype), tensor_type=P, dtype=dtype)


# =========================================================================== 1: split
@pytest.mark.parametrize("sections", [[3, 1], [-2, 1], [4, 2, 5], [2, 2], [0, 5], [-7, 9], [6], 5, [1, 3]])
def test_split_matches_np_split_pieces_and_gradients(sections):
    x = _param(np.arange(5.0))
    pieces = cg.split(x, sections)
    expected = np.split(np.arange(5.0), sections)
    assert [p.data.tolist() for p in pieces] == [e.tolist() for e in expected]
    # The gradient of piece k lands where NumPy's piece k came from.
    total = None
    for k, piece in enumerate(pieces):
        weighted = piece * float(k + 1)
        s = cg.math.sum(weighted) if piece.shape[0] else None
        if s is not None:
            total = s if total is None else total + s
    want = np.zeros(5)
    positions = np.split(np.arange(5), sections)
    for k, pos in enumerate(positions):
        np.add.at(want, pos, float(k + 1))
    if total is not None:
        total.backward()
        np.testing.assert_array_equal(x.grad, want)


def test_split_along_an_axis_with_non_increasing_indices():
    data = np.arange(12.0).reshape(2, 6)
    x = _param(data)
    pieces = cg.split(x, [4, 2], axis=1)
    for got, want in zip(pieces, np.split(data, [4, 2], axis=1)):
        np.testing.assert_array_equal(got.data, want)


# =========================================================================== 2: captured arrays
def test_index_array_changed_after_forward_does_not_move_the_gradient():
    x = _param(np.arange(8.0).reshape(4, 2))
    ids = np.array([0, 1])
    y = x[ids]
    ids[:] = 3
    y.backward(np.ones((2, 2)))
    np.testing.assert_array_equal(x.grad, [[1, 1], [1, 1], [0, 0], [0, 0]])


def test_index_list_and_tuple_of_arrays_changed_after_forward():
    x = _param(np.arange(12.0).reshape(4, 3))
    rows, cols = [0, 2], np.array([1, 1])
    y = x[rows, cols]
    rows[0] = 3
    cols[:] = 0
    y.backward(np.array([1.0, 2.0]))
    want = np.zeros((4, 3))
    want[0, 1], want[2, 1] = 1.0, 2.0
    np.testing.assert_array_equal(x.grad, want)


def test_list_key_changed_after_forward():
    x = _param(np.arange(4.0))
    key = [0, 0, 2]
    y = x[key]
    key[:] = [3, 3, 3]
    y.backward(np.ones(3))
    np.testing.assert_array_equal(x.grad, [2, 0, 1, 0])


def test_boolean_mask_changed_after_forward():
    x = _param(np.arange(4.0))
    mask = np.array([True, False, True, False])
    y = x[mask]
    mask[:] = [False, True, False, True]
    y.backward(np.ones(2))
    np.testing.assert_array_equal(x.grad, [1, 0, 1, 0])


def test_where_condition_changed_after_forward():
    a, b = _param([1.0, 2.0, 3.0]), _param([4.0, 5.0, 6.0])
    c = np.array([1, 0, 1], bool)
    y = cg.where(c, a, b)
    c[:] = False
    cg.math.sum(y).backward()
    np.testing.assert_array_equal(a.grad, [1, 0, 1])
    np.testing.assert_array_equal(b.grad, [0, 1, 0])


def test_where_condition_tensor_changed_after_forward():
    a, b = _param([1.0, 2.0]), _param([4.0, 5.0])
    cond = Tensor(np.array([1.0, 0.0]))
    y = cg.where(cond, a, b)
    cond.data[:] = [0.0, 1.0]
    cg.math.sum(y).backward()
    np.testing.assert_array_equal(a.grad, [1, 0])


@pytest.mark.parametrize("as_labels", [False, True])
def test_cross_entropy_target_changed_before_backward(as_labels):
    logits_data = np.array([[1.0, 2.0, 0.5], [0.1, -1.0, 2.0]])
    target = np.array([1, 2]) if as_labels else np.eye(3)[[1, 2]]

    def run(mutate):
        z = _param(logits_data)
        t = target.copy()
        loss = cg.cross_entropy(z, t)
        if mutate:
            t[...] = np.eye(3)[[0, 0]] if not as_labels else 0
        loss.backward()
        return z.grad

    np.testing.assert_allclose(run(True), run(False), rtol=0, atol=0)


# =========================================================================== 3: load_state_dict
def _trained(opt_cls, **kw):
    w = _param([1.0, 2.0])
    opt = opt_cls([w], lr=0.1, **kw)
    w.grad = np.array([1.0, 1.0])
    opt.step()
    return w, opt


@pytest.mark.parametrize("key", ["exp_avg", "exp_avg_sq"])
@pytest.mark.parametrize("bad", [None, 0.5, 3, True, np.float64(0.5), "x", np.zeros(3), np.zeros((2, 1)),
                                 np.array([1, 2]), np.array([True, False])])
def test_adam_load_state_dict_refuses_junk_per_parameter_entries(key, bad):
    w, opt = _trained(Adam)
    state = opt.state_dict()
    before = (opt.biased_first_moment[0].copy(), opt.biased_second_moment[0].copy(), opt.step_counts[0])
    state["state"][0][key] = bad
    with pytest.raises((ValueError, TypeError), match=key):
        opt.load_state_dict(state)
    np.testing.assert_array_equal(opt.biased_first_moment[0], before[0])
    np.testing.assert_array_equal(opt.biased_second_moment[0], before[1])
    assert opt.step_counts[0] == before[2]
    w.grad = np.array([1.0, 1.0])
    opt.step()
    assert np.all(np.isfinite(w.data))


@pytest.mark.parametrize("bad", [0.5, 3, True, np.float32(2.0), "x", np.zeros(3), np.array([1, 2])])
def test_sgd_load_state_dict_refuses_a_number_as_momentum_buffer(bad):
    w, opt = _trained(SGD, momentum=0.9)
    state = opt.state_dict()
    before = opt.momentum_buffers[0].copy()
    state["state"][0]["momentum_buffer"] = bad
    with pytest.raises((ValueError, TypeError), match="momentum_buffer"):
        opt.load_state_dict(state)
    np.testing.assert_array_equal(opt.momentum_buffers[0], before)


def test_sgd_momentum_buffer_none_and_array_still_load_and_step():
    w = _param([1.0, 2.0])
    opt = SGD([w], lr=0.1, momentum=0.9)
    state = opt.state_dict()
    assert state["state"][0]["momentum_buffer"] is None
    opt.load_state_dict(state)
    for _ in range(3):
        w.grad = np.array([1.0, 1.0])
        opt.step()
    # b: 1, 1.9, 2.71; w -= 0.1 b each step
    np.testing.assert_allclose(w.data, [1 - 0.1 * (1 + 1.9 + 2.71), 2 - 0.1 * (1 + 1.9 + 2.71)])
    state = opt.state_dict()
    opt2 = SGD([_param([0.0, 0.0])], lr=0.1, momentum=0.9)
    opt2.load_state_dict(state)
    np.testing.assert_allclose(opt2.momentum_buffers[0], [2.71, 2.71])


def test_adamw_shares_the_adam_checks():
    w, opt = _trained(AdamW)
    state = opt.state_dict()
    state["state"][0]["exp_avg"] = None
    with pytest.raises((ValueError, TypeError), match="exp_avg"):
        opt.load_state_dict(state)


# =========================================================================== 4: maximum/minimum NaN
@pytest.mark.parametrize("op", [cg.maximum, cg.minimum])
def test_nan_in_the_first_operand_keeps_its_gradient(op):
    a = _param([np.nan, 1.0, 5.0, np.nan])
    b = _param([2.0, np.nan, 0.0, np.nan])
    y = op(a, b)
    assert np.isnan(y.data[[0, 1, 3]]).all()
    cg.math.sum(y).backward()
    want_a = [1.0, 0.0, 1.0 if op is cg.maximum else 0.0, 1.0]
    np.testing.assert_array_equal(a.grad, want_a)
    np.testing.assert_array_equal(b.grad, 1.0 - np.array(want_a))


def test_clip_with_nan_input_keeps_the_gradient_on_the_input():
    x = _param([np.nan, 0.5])
    y = cg.clip(x, 0.0, 1.0)
    cg.math.sum(y).backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])


# =========================================================================== 5: checkers in no_grad
def test_check_gradient_inside_no_grad():
    w = _param([0.3, -1.2, 2.0])
    with cg.no_grad():
        ok, diff = check_gradient(lambda t: t * t, w)
    assert ok and diff < 1e-6
    assert w.grad is None


def test_gradcheck_inside_no_grad():
    with cg.no_grad():
        assert gradcheck(lambda a, b: a * b + a, [np.array([0.5, -1.0]), np.array([2.0, 3.0])])
        assert cg.gradcheck(lambda a: a * a, [np.array([1.5])])


def test_checkers_restore_the_grad_of_other_parameters():
    other = _param([2.0, -1.0])
    other.grad = np.array([10.0, 20.0])
    w = _param([0.5, 1.5])
    ok, _ = check_gradient(lambda t: t * other, w)
    assert ok
    np.testing.assert_array_equal(other.grad, [10.0, 20.0])
    free = _param([1.0, 3.0])
    assert gradcheck(lambda a: a * free, [np.array([0.5, 1.5])])
    assert free.grad is None


# =========================================================================== 6: clear errors
@pytest.mark.parametrize("axis", [5, -3, 2])
def test_log_softmax_bad_axis_is_a_value_error_naming_it(axis):
    with pytest.raises(ValueError, match=f"axis {axis}"):
        log_softmax(Tensor(np.ones((2, 3))), axis=axis)


def test_log_softmax_and_cross_entropy_accept_arrays_and_lists():
    z = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]])
    ref = log_softmax(Tensor(z, dtype=np.float64)).data
    np.testing.assert_allclose(log_softmax(z).data, ref)
    labels = np.array([2, 0])
    want = cg.cross_entropy(Tensor(z, dtype=np.float64), labels).data
    np.testing.assert_allclose(cg.cross_entropy(z, labels).data, want)
    np.testing.assert_allclose(cg.cross_entropy(z.tolist(), [2, 0]).data, want, rtol=1e-6)
    np.testing.assert_allclose(cg.binary_cross_entropy_with_logits(z, np.ones_like(z)).data,
                               cg.binary_cross_entropy_with_logits(Tensor(z, dtype=np.float64),
                                                                   np.ones_like(z)).data)


# =========================================================================== 7: save depth and cycles
def test_save_and_load_a_3000_deep_nested_list(tmp_path):
    obj = inner = []
    for _ in range(3000):
        nxt = []
        inner.append(nxt)
        inner = nxt
    inner.append(Tensor([1.0, 2.0], tensor_type=P))
    path = tmp_path / "deep.npz"
    cg.save(obj, path)
    back = cg.load(path)
    depth = 0
    while isinstance(back, list) and back and isinstance(back[0], list):
        back, depth = back[0], depth + 1
    assert depth == 3000
    np.testing.assert_array_equal(back[0].data, [1.0, 2.0])


@pytest.mark.parametrize("nodes, root", [
    ([{"list": [0]}], 0),                                  # a node its own child (a cycle)
    ([{"list": [1]}, {"value": 1}], 1),                     # a child after its parent
    ([{"value": 1}, {"list": [0]}, {"list": [0, 1]}], 2),   # a node in two containers
    ([{"value": 1}, {"value": 2}, {"list": [1]}], 2),       # a node in no container
    ([{"value": 1}, {"list": [True]}], 1),                  # a bool for an index
    ([{"value": 1}, {"list": [0]}], 0),                     # a root that is not the last node
    ([], 0),
    ("nodes", 0),
])
def test_a_damaged_flat_description_is_a_value_error(tmp_path, nodes, root):
    import json

    path = tmp_path / "flat.npz"
    with open(path, "wb") as f:
        np.savez(f, __clumsygrad__=np.array(json.dumps(
            {"format": "clumsygrad-checkpoint", "version": 2, "nodes": nodes, "root": root})))
    with pytest.raises(ValueError, match="not an intact clumsygrad checkpoint"):
        cg.load(path)


def test_shallow_objects_are_still_written_in_format_version_1(tmp_path):
    import json

    path = tmp_path / "v1.npz"
    cg.save({"a": [1, (2.5, None)], "t": Tensor([1.0])}, path)
    with np.load(path, allow_pickle=False) as archive:
        manifest = json.loads(archive["__clumsygrad__"].item())
    assert manifest["version"] == 1 and "nodes" not in manifest
    back = cg.load(path)
    assert back["a"] == [1, (2.5, None)] and back["t"].data.tolist() == [1.0]


@pytest.mark.parametrize("make", ["self_list", "dict_cycle", "tuple_in_list"])
def test_save_refuses_cycles(tmp_path, make):
    if make == "self_list":
        obj = [1]
        obj.append(obj)
    elif make == "dict_cycle":
        obj = {"a": {}}
        obj["a"]["b"] = obj
    else:
        inner = []
        obj = [(inner,)]
        inner.append(obj)
    path = tmp_path / "cycle.npz"
    with pytest.raises(ValueError, match="contains itself"):
        cg.save(obj, path)
    assert not path.exists()


def test_save_keeps_shared_but_acyclic_objects(tmp_path):
    shared = [1, 2]
    t = Tensor([3.0])
    path = tmp_path / "shared.npz"
    cg.save({"a": shared, "b": shared, "t": [t, t]}, path)
    back = cg.load(path)
    assert back["a"] == [1, 2] and back["b"] == [1, 2]
    assert back["t"][0].data.tolist() == [3.0]


# =========================================================================== 8: grad mode
@pytest.mark.parametrize("mode", ["no_grad", "enable_grad"])
def test_grad_mode_decorator_covers_a_generator_body(mode):
    w = _param([1.0])
    expected = mode == "enable_grad"

    @getattr(cg, mode)()
    def gen():
        for _ in range(3):
            sent = yield (w * 2.0).requires_grad
            assert sent is None or sent == "x"

    outer = cg.no_grad() if mode == "enable_grad" else cg.enable_grad()
    with outer:
        g = gen()
        results = [next(g), g.send("x"), next(g)]
        assert results == [expected] * 3
        # outside the generator's body the caller's mode holds
        assert (w * 2.0).requires_grad is (mode == "no_grad")
        with pytest.raises(StopIteration):
            next(g)
    assert (w * 2.0).requires_grad


def test_grad_mode_generator_close_and_throw_run_under_the_mode():
    w = _param([1.0])
    seen = []

    @cg.no_grad()
    def gen():
        try:
            yield 1
        except KeyError:
            seen.append(("throw", (w * 2.0).requires_grad))
            yield 2
        finally:
            seen.append(("finally", (w * 2.0).requires_grad))

    g = gen()
    next(g)
    assert g.throw(KeyError) == 2
    g.close()
    assert seen == [("throw", False), ("finally", False)]
    assert (w * 2.0).requires_grad


def test_one_no_grad_instance_entered_twice():
    w = _param([1.0])
    ng = cg.no_grad()
    with ng:
        with ng:
            assert not (w * 1.0).requires_grad
        assert not (w * 1.0).requires_grad
    assert (w * 1.0).requires_grad
    eg = cg.enable_grad()
    with cg.no_grad():
        with eg:
            with eg:
                assert (w * 1.0).requires_grad
        assert not (w * 1.0).requires_grad


# =========================================================================== 9: graph drawing
def _named_graph(name):
    w = _param([[1.0, 2.0]])
    x = Tensor([[3.0], [4.0]])
    return cg.math.sum(w @ x), {name: w}


@pytest.mark.parametrize("name", ["a\x00b", "tab\there", "bell\x07", "esc\x1b[0m", "del\x7f", "cr\rx"])
def test_dot_has_no_raw_control_characters(name):
    out, params = _named_graph(name)
    dot = cg.viz.to_dot(out, params)
    assert not any(ord(c) < 32 and c != "\n" or ord(c) == 127 for c in dot)
    shown = name.encode("unicode_escape").decode("ascii").replace("\\", "\\\\")
    assert shown in dot


def test_dot_with_control_characters_is_accepted_by_graphviz():
    graphviz = pytest.importorskip("graphviz")
    import shutil

    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot executable is not installed")
    out, params = _named_graph("bad\x00name\x01")
    svg = graphviz.Source(cg.viz.to_dot(out, params)).pipe(format="svg")
    assert b"<svg" in svg


@pytest.mark.parametrize("name", ["$x^$", "$", "a$b$c", "\\frac{$", "nul\x00"])
def test_matplotlib_draws_names_with_dollars(name):
    pytest.importorskip("matplotlib")
    pytest.importorskip("networkx")
    out, params = _named_graph(name)
    picture = cg.viz.draw(out, params=params, engine="matplotlib")
    assert picture.png()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = picture.svg()
    text = svg.decode() if isinstance(svg, bytes) else svg
    assert "<svg" in text


# =========================================================================== 10: damaged npz closes its file
def _open_fds():
    return len(os.listdir(f"/proc/{os.getpid()}/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors through /proc")
@pytest.mark.parametrize("damage", ["truncated", "bad_zip_tail", "not_npz_zip"])
def test_damaged_npz_does_not_keep_its_file_open(tmp_path, damage):
    good = tmp_path / "good.npz"
    cg.save({"w": Tensor([1.0, 2.0])}, good)
    raw = good.read_bytes()
    bad = tmp_path / "bad.npz"
    if damage == "truncated":
        bad.write_bytes(raw[: len(raw) // 2])
    elif damage == "bad_zip_tail":
        bad.write_bytes(raw[:-10] + b"\xff" * 10)
    else:
        bad.write_bytes(b"PK\x03\x04" + b"\x00" * 60)
    gc.collect()
    before = _open_fds()
    errors = []  # kept alive: a file left open would stay open as long as its error lives
    for _ in range(5):
        with pytest.raises(ValueError, match="not an intact clumsygrad checkpoint") as info:
            cg.load(bad)
        errors.append(info.value)
    assert _open_fds() == before


# =========================================================================== 11: small traps
@pytest.mark.parametrize("content", [b"hello world, not a checkpoint" * 4, b"\x80\x04\x95" + b"\x00" * 40, b""])
def test_a_file_that_is_not_a_checkpoint_gets_no_allow_pickle_advice(tmp_path, content):
    path = tmp_path / "junk.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        cg.load(path)
    message = str(info.value)
    assert "allow_pickle" not in message and "pickle.load" not in message
    assert "not an intact clumsygrad checkpoint" in message
    assert "not a .npz archive" in message
