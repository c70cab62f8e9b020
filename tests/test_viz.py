"""clumsygrad.viz: the DOT text read structurally, pictures from both renderers, summaries of
large graphs, and that drawing only reads the graph."""
import re
import runpy
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import clumsygrad
from clumsygrad import viz
from clumsygrad.activation import relu, tanh
from clumsygrad.loss import mse_loss
from clumsygrad.math import mean
from clumsygrad.math import sum as csum
from clumsygrad.tensor import Tensor, TensorType

PARAM = TensorType.PARAMETER
ROOT = Path(__file__).resolve().parent.parent

NODE = re.compile(r'^  (\w+) \[shape=(\w+), style="([^"]*)", fillcolor="[^"]*", label="((?:[^"\\]|\\.)*)"\];$')
EDGE = re.compile(r'^  (\w+) -> (\w+)(?: \[label="×([\d,]+)"\])?;$')

needs_graphviz = pytest.mark.skipif(
    not viz._graphviz_available(), reason="Graphviz (the graphviz package and its dot executable) is not installed"
)


class Dot:
    """The DOT text ``to_dot`` wrote, parsed: boxes by key, edges in order."""

    def __init__(self, text: str):
        lines = text.splitlines()
        assert lines[0] == "digraph clumsygrad {" and lines[-1] == "}"
        self.text = text
        self.shape, self.style, self.label = {}, {}, {}
        self.edges = []
        for line in lines[1:-1]:
            node, edge = NODE.match(line), EDGE.match(line)
            if node:
                key, shape, style, label = node.groups()
                assert key not in self.label, f"box {key} written twice"
                self.shape[key], self.style[key] = shape, style.split(",")
                self.label[key] = label.replace('\\"', '"').split("\\n")
            elif edge:
                source, target, count = edge.groups()
                self.edges.append((source, target, int(count.replace(",", "")) if count else 1))
            else:
                assert line.startswith(("  graph [", "  node [", "  edge [")), line
        for source, target, _ in self.edges:
            assert source in self.label and target in self.label, (source, target)

    def keys(self, shape):
        return [k for k, s in self.shape.items() if s == shape]

    def tensors(self):
        return self.keys("box")

    def ops(self):
        return self.keys("ellipse")

    def named(self, name):
        (key,) = [k for k in self.tensors() if self.label[k][0] == name]
        return key

    def inputs(self, key):
        return [s for s, t, _ in self.edges if t == key]

    def outputs(self, key):
        return [t for s, t, _ in self.edges if s == key]

    def root(self):
        (key,) = [k for k in self.tensors() if "bold" in self.style[k]]
        return key

    def ops_on_path_to_root(self, start):
        """Operation names met following edges from box ``start`` (first output each time)."""
        names, key = [], start
        while self.outputs(key):
            key = self.outputs(key)[0]
            if self.shape[key] == "ellipse":
                names.append(self.label[key][0])
        return names


def reachable(tensor):
    """Every tensor behind ``tensor``, found independently of viz."""
    seen, stack = {id(tensor): tensor}, [tensor]
    while stack:
        for parent in stack.pop()._parents:
            if id(parent) not in seen:
                seen[id(parent)] = parent
                stack.append(parent)
    return list(seen.values())


def snapshot(tensor):
    """What drawing must not change: each node's parents tuple, gradient array and values."""
    return [
        (t, t._parents, tuple(t._parents), t._grad, None if t._grad is None else t._grad.copy(), t._data.copy())
        for t in reachable(tensor)
    ]


def assert_unchanged(before):
    for t, parents, members, grad, grad_values, data in before:
        assert t._parents is parents and tuple(t._parents) == members
        assert t._grad is grad
        if grad is not None:
            np.testing.assert_array_equal(t._grad, grad_values)
        np.testing.assert_array_equal(t._data, data)


def mlp(rng):
    """A 2-layer MLP's loss, its named tensors, and each named tensor's shape."""
    x = Tensor(rng.normal(size=(8, 4)))
    target = Tensor(rng.normal(size=(8, 2)))
    W1 = Tensor(rng.normal(size=(4, 16)) * 0.5, PARAM)
    b1 = Tensor(np.zeros(16), PARAM)
    W2 = Tensor(rng.normal(size=(16, 2)) * 0.5, PARAM)
    b2 = Tensor(np.zeros(2), PARAM)
    loss = mse_loss(relu(x @ W1 + b1) @ W2 + b2, target)
    params = {"x": x, "target": target, "W1": W1, "b1": b1, "W2": W2, "b2": b2}
    return loss, params


def grad_line(grad):
    g = np.asarray(grad, dtype=np.float64)
    return f"|grad| {np.sqrt(np.sum(g * g)):.4g}  min {g.min():.4g}  max {g.max():.4g}"


# --------------------------------------------------------------------------- DOT text
def test_scalar_expression_has_one_box_per_tensor_and_one_ellipse_per_operation():
    a, b = Tensor(2.0, PARAM), Tensor(-3.0, PARAM)
    c = a * b + a ** 2
    dot = Dot(viz.to_dot(c, params={"a": a, "b": b}))
    # Tensors: a, b, a*b, a**2, c.  Operations: mul, power, add, with 2 + 1 + 2 operands.
    assert len(dot.tensors()) == 5
    assert sorted(dot.label[k][0] for k in dot.ops()) == ["add", "mul", "power"]
    assert len(dot.edges) == (2 + 1 + 2) + 3
    for key in dot.tensors():
        assert dot.label[key][1] == "() float32"
    a_key, b_key = dot.named("a"), dot.named("b")
    assert dot.label[a_key][2:] == ["parameter", "value 2"]
    assert dot.label[b_key][2:] == ["parameter", "value -3"]
    # Data flows operands -> operation -> result.
    (mul,) = [k for k in dot.ops() if dot.label[k] == ["mul"]]
    assert sorted(dot.inputs(mul)) == sorted([a_key, b_key])
    (product,) = dot.outputs(mul)
    assert dot.label[product][2:] == ["intermediate", "value -6"]
    (add,) = [k for k in dot.ops() if dot.label[k] == ["add"]]
    assert dot.outputs(add) == [dot.root()]
    assert dot.label[dot.root()] == [f"id {c._id}", "() float32", "intermediate", "value -2"]
    assert not any("grad" in line for k in dot.tensors() for line in dot.label[k])


def test_unnamed_tensors_are_labelled_by_id():
    a = Tensor([1.0, 2.0], PARAM)
    b = a * 3.0
    dot = Dot(viz.to_dot(b))
    assert sorted(dot.label[k][0] for k in dot.tensors()) == sorted([f"id {a._id}", f"id {b._id}"])
    assert [dot.label[k] for k in dot.ops()] == [["mul_scalar"]]


def test_an_operand_used_twice_has_two_edges():
    x = Tensor([1.0, 2.0], PARAM)
    y = x * x
    dot = Dot(viz.to_dot(y, {"x": x}))
    (mul,) = dot.ops()
    assert dot.inputs(mul) == [dot.named("x"), dot.named("x")]


def test_two_layer_mlp_before_backward(rng):
    loss, params = mlp(rng)
    dot = Dot(viz.to_dot(loss, params))
    # 6 named leaves + one result per operation; edges: operands + one result edge per operation.
    operands = {"matmul": 2, "add_broadcast": 2, "relu": 1, "mse": 2}
    assert len(dot.tensors()) == 6 + 6 and len(dot.ops()) == 6
    assert len(dot.edges) == sum(operands[dot.label[k][0]] + 1 for k in dot.ops())
    for name, tensor in params.items():
        key = dot.named(name)
        kind = "parameter" if tensor.requires_grad else "input"
        assert dot.label[key][1:] == [f"{tensor.shape} float32", kind]
    assert dot.ops_on_path_to_root(dot.named("x")) == ["matmul", "add_broadcast", "relu", "matmul", "add_broadcast", "mse"]
    assert dot.ops_on_path_to_root(dot.named("W2")) == ["matmul", "add_broadcast", "mse"]
    assert dot.label[dot.root()][1:] == ["() float32", "intermediate", f"value {float(loss.data):.4g}"]
    assert not any(line.startswith(("grad", "|grad|")) for k in dot.tensors() for line in dot.label[k])


def test_two_layer_mlp_after_backward_keep_graph_shows_gradients(rng):
    loss, params = mlp(rng)
    loss.backward(keep_graph=True)
    dot = Dot(viz.to_dot(loss, params))
    assert len(dot.tensors()) == 12 and len(dot.ops()) == 6
    for name in ("W1", "b1", "W2", "b2"):
        assert dot.label[dot.named(name)][-1] == grad_line(params[name].grad)
    for name in ("x", "target"):
        assert dot.label[dot.named(name)][-1] == "input"  # no gradient, no gradient line
    assert dot.label[dot.root()][-1] == "grad 1"


def test_broadcast_and_reduction_graph():
    x = Tensor(np.arange(12.0).reshape(3, 4), PARAM, dtype=np.float64)
    b = Tensor(np.ones(4), PARAM, dtype=np.float64)
    scale = Tensor([[1.0], [2.0], [3.0]])  # (3, 1), float32 input
    y = mean(csum((x + b) * scale, axis=0))
    dot = Dot(viz.to_dot(y, {"x": x, "b": b, "scale": scale}))
    assert sorted(dot.label[k][0] for k in dot.ops()) == ["add_broadcast", "mean", "mul_broadcast", "sum"]
    assert len(dot.tensors()) == 3 + 4
    assert len(dot.edges) == (2 + 2 + 1 + 1) + 4
    assert dot.label[dot.named("x")][1] == "(3, 4) float64"
    assert dot.label[dot.named("b")][1] == "(4,) float64"
    assert dot.label[dot.named("scale")][1:] == ["(3, 1) float32", "input"]
    shapes = [dot.label[dot.outputs(k)[0]][1] for k in dot.ops()]
    by_op = dict(zip((dot.label[k][0] for k in dot.ops()), shapes))
    assert by_op == {
        "add_broadcast": "(3, 4) float64",
        "mul_broadcast": "(3, 4) float64",
        "sum": "(4,) float64",
        "mean": "() float64",
    }
    assert dot.ops_on_path_to_root(dot.named("scale")) == ["mul_broadcast", "sum", "mean"]


def test_names_are_escaped_in_dot_text():
    w = Tensor([1.0], PARAM)
    dot = Dot(viz.to_dot(w * 2.0, {'w "quoted" \\': w}))
    assert dot.label[dot.named('w "quoted" \\\\')][1] == "(1,) float32"


def test_rankdir():
    w = Tensor([1.0], PARAM)
    assert "rankdir=TB" in viz.to_dot(w * 2.0, rankdir="TB")
    assert "rankdir=LR" in viz.to_dot(w * 2.0, rankdir="LR")
    with pytest.raises(ValueError, match="rankdir must be 'LR'"):
        viz.to_dot(w * 2.0, rankdir="XY")


def _mlp_loss(rng, layers):
    x = Tensor(rng.normal(size=(8, 3)))
    h = x
    for _ in range(layers):
        W = Tensor(rng.normal(size=(h.shape[1], 3)), PARAM)
        h = relu(h @ W)
    return mse_loss(h, Tensor(np.zeros(h.shape)))


def test_auto_rankdir_draws_a_deep_narrow_graph_top_to_bottom(rng):
    # A small MLP is a sequence of layers: left to right it would be a strip (the old default).
    loss = _mlp_loss(rng, 2)
    assert "rankdir=TB" in viz.to_dot(loss)
    picture = viz.draw(loss, engine="matplotlib")
    assert picture.rankdir == "TB"
    elongation = {}
    for rankdir in ("TB", "LR"):
        width, height = viz._matplotlib_figure(picture._graph, rankdir).get_size_inches()
        elongation[rankdir] = max(width / height, height / width)
    assert elongation["TB"] < elongation["LR"] / 2, elongation


def test_auto_rankdir_draws_a_wide_shallow_graph_left_to_right():
    # Forty independent products summed at once: one short, very wide layer.
    leaves = [Tensor([float(k)], PARAM) for k in range(40)]
    total = sum_of(leaves)
    assert "rankdir=LR" in viz.to_dot(total)


def sum_of(tensors):
    from clumsygrad.shape import concatenate

    return csum(concatenate([t * 2.0 for t in tensors]))


def test_a_lone_tensor_is_one_box():
    t = Tensor([1.0, 2.0])
    dot = Dot(viz.to_dot(t))
    assert dot.tensors() == [dot.root()] and dot.edges == []


def test_bad_arguments_are_explained():
    w = Tensor([1.0], PARAM)
    with pytest.raises(TypeError, match="Expected a Tensor to draw, got ndarray"):
        viz.to_dot(np.ones(2))
    with pytest.raises(TypeError, match=r"params must be a dict \{name: tensor\}, got list"):
        viz.to_dot(w * 2.0, params=[w])
    with pytest.raises(ValueError, match="max_nodes must be a positive integer or None, got 0"):
        viz.to_dot(w * 2.0, max_nodes=0)
    with pytest.raises(ValueError, match="max_nodes must be a positive integer or None, got True"):
        viz.to_dot(w * 2.0, max_nodes=True)
    y = w * 2.0
    assert viz.to_dot(y, max_nodes=np.int64(5)) == viz.to_dot(y, max_nodes=5)
    with pytest.raises(ValueError, match="engine must be 'auto', 'graphviz' or 'matplotlib', got 'tikz'"):
        viz.draw(w * 2.0, engine="tikz")
    with pytest.raises(ValueError, match=r"use a \.png, \.svg, \.pdf or \.dot file"):
        viz.draw(w * 2.0, "graph.jpeg", engine="matplotlib")


# --------------------------------------------------------------------------- freed graphs
def test_a_freed_graph_is_explained():
    w = Tensor([1.0, 2.0], PARAM)
    loss = csum(w * w)
    loss.backward()
    for call in (lambda: viz.to_dot(loss), lambda: viz.draw(loss, engine="matplotlib")):
        with pytest.raises(RuntimeError, match=r"was freed by backward\(\): call backward\(keep_graph=True\)"):
            call()


def test_a_freed_part_of_a_graph_is_marked():
    w = Tensor([1.0, 2.0], PARAM)
    hidden = csum(w * w)
    out = hidden * 2.0
    hidden.backward()  # frees the graph behind `hidden`, not the operation after it
    dot = Dot(viz.to_dot(out, {"hidden": hidden}))
    key = dot.named("hidden")
    assert dot.label[key][-1] == "graph freed by backward()" and "dashed" in dot.style[key]
    assert dot.inputs(key) == [] and len(dot.tensors()) == 2


# --------------------------------------------------------------------------- read only
def test_drawing_changes_neither_graph_nor_gradients_nor_backend(rng, backend, tmp_path):
    loss, params = mlp(rng)
    before = snapshot(loss)
    pyplot_loaded = "matplotlib.pyplot" in sys.modules
    viz.to_dot(loss, params)
    viz.draw(loss, tmp_path / "before.png", params, engine="matplotlib")
    assert_unchanged(before)
    loss.backward(keep_graph=True)
    after_backward = snapshot(loss)
    viz.to_dot(loss, params, max_nodes=3)
    viz.draw(loss, tmp_path / "after.svg", params, engine="matplotlib")
    assert_unchanged(after_backward)
    assert clumsygrad.get_backend() == backend
    assert ("matplotlib.pyplot" in sys.modules) == pyplot_loaded  # matplotlib's global state untouched
    # The graph still backpropagates: a second pass adds exactly the same gradients again.
    first = {name: p.grad.copy() for name, p in params.items() if p.requires_grad}
    loss.backward()
    for name, grad in first.items():
        np.testing.assert_allclose(params[name].grad, 2 * grad, rtol=1e-6)


# --------------------------------------------------------------------------- large graphs
def test_a_100000_operation_chain_is_one_box_with_its_count():
    x = Tensor(1.0, PARAM)
    y = x
    for _ in range(100_000):
        y = y * 1.0001
    start = time.perf_counter()
    text = viz.to_dot(y, {"x": x})
    elapsed = time.perf_counter() - start
    assert elapsed < 10.0  # about 0.2-0.5 s here; only a pathology (quadratic, recursion) fails
    dot = Dot(text)
    (chain,) = dot.keys("box3d")
    assert dot.label[chain] == ["chain of 100,000 ops", "(mul_scalar) × 100,000", "99,999 tensors inside: () float32"]
    assert dot.edges == [(dot.named("x"), chain, 1), (chain, dot.root(), 1)]
    assert len(dot.tensors()) == 2 and dot.ops() == []
    assert "100,001 tensors and 100,000 operations, summarised (more than max_nodes=200 tensors)" in text


def test_the_threshold_is_a_parameter():
    x = Tensor(1.0, PARAM)
    y = x
    for _ in range(40):
        y = y + 1.0
    assert len(Dot(viz.to_dot(y)).tensors()) == 41  # under the default 200: drawn in full
    assert len(Dot(viz.to_dot(y, max_nodes=41)).tensors()) == 41
    assert len(Dot(viz.to_dot(y, max_nodes=40)).tensors()) == 2
    for _ in range(600):
        y = y + 1.0
    assert len(Dot(viz.to_dot(y, max_nodes=None)).tensors()) == 641
    assert viz.DEFAULT_MAX_NODES == 200  # a picture stays legible (and fast) by default


def test_a_repeated_block_with_shared_parameters_is_one_box(rng):
    W = Tensor(rng.normal(size=(4, 4)), PARAM)
    b = Tensor(np.zeros(4), PARAM)
    h0 = Tensor(rng.normal(size=(2, 4)))
    h = h0
    for _ in range(300):
        h = tanh(h @ W + b)
    loss = mean(h)
    dot = Dot(viz.to_dot(loss, {"W": W, "b": b, "h0": h0}, max_nodes=50))
    (chain,) = dot.keys("box3d")
    assert dot.label[chain] == [
        "chain of 901 ops",
        "(matmul → add_broadcast → tanh) × 300, then mean",
        "900 tensors inside: (2, 4) float32",
    ]
    assert sorted(dot.edges) == sorted(
        [(dot.named("h0"), chain, 1), (dot.named("W"), chain, 300), (dot.named("b"), chain, 300), (chain, dot.root(), 1)]
    )


def test_many_private_constants_of_a_chain_share_one_box():
    y = Tensor(1.0, PARAM)
    start = y
    for _ in range(100):
        y = y * Tensor(1.01)
    dot = Dot(viz.to_dot(y, {"start": start}, max_nodes=10))
    (chain,) = dot.keys("box3d")
    (group,) = dot.keys("folder")
    assert dot.label[group] == ["100 leaf tensors: () float32", "100 input"]
    assert sorted(dot.edges) == sorted([(dot.named("start"), chain, 1), (group, chain, 100), (chain, dot.root(), 1)])


def test_a_graph_with_no_chains_keeps_the_units_nearest_the_output():
    xs = [Tensor(np.full(3, float(i)), PARAM) for i in range(300)]
    total = xs[0] * xs[0]
    for x in xs[1:]:
        total = total + x * x  # two non-constant operands: no chain
    out = csum(total)
    n_tensors = len(reachable(out))
    dot = Dot(viz.to_dot(out, max_nodes=20))
    assert len(dot.tensors()) == 20
    (more,) = dot.keys("note")
    hidden = int(re.match(r"\.\.\. ([\d,]+) more tensors not drawn", dot.label[more][0]).group(1).replace(",", ""))
    assert hidden + 20 == n_tensors
    assert dot.label[more][1].startswith("ops: ")
    assert dot.label[more][2] == "(raise max_nodes=20 to see them)"
    # Every drawn operation still has all its operands: drawn boxes or the "more" box.
    for op in dot.ops():
        expected = 1 if dot.label[op] == ["sum"] else 2
        assert sum(c for s, t, c in dot.edges if t == op) == expected
    assert dot.ops_on_path_to_root(dot.root()) == []


# --------------------------------------------------------------------------- pictures
def test_draw_with_matplotlib_writes_png_and_svg(rng, tmp_path):
    loss, params = mlp(rng)
    loss.backward(keep_graph=True)
    picture = viz.draw(loss, tmp_path / "mlp.png", params, engine="matplotlib")
    png = (tmp_path / "mlp.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    viz.draw(loss, tmp_path / "mlp.svg", params, engine="matplotlib", rankdir="TB")
    svg = (tmp_path / "mlp.svg").read_text()
    assert "<svg" in svg and svg.rstrip().endswith("</svg>") and len(svg) > 10_000
    assert picture.engine == "matplotlib"
    assert picture._repr_png_() == picture.png() and picture.png().startswith(b"\x89PNG")
    assert "<svg" in picture._repr_svg_()
    assert picture.dot == viz.to_dot(loss, params)
    # 12 tensors + 6 operations; 11 operands + 6 results.
    assert repr(picture) == "<GraphPicture: 18 boxes, 17 edges, drawn with matplotlib>"


def test_draw_summarised_chain_with_matplotlib(tmp_path):
    y = Tensor(1.0, PARAM)
    for _ in range(10_000):
        y = y * 1.0001
    viz.draw(y, tmp_path / "chain.png", engine="matplotlib")
    assert (tmp_path / "chain.png").read_bytes().startswith(b"\x89PNG")


def test_dot_suffix_writes_the_dot_text(tmp_path):
    w = Tensor([1.0], PARAM)
    y = w * 2.0
    viz.draw(y, tmp_path / "graph.dot", {"w": w}, engine="matplotlib")
    assert (tmp_path / "graph.dot").read_text() == viz.to_dot(y, {"w": w})


def test_without_graphviz_auto_uses_matplotlib(monkeypatch):
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    w = Tensor([1.0], PARAM)
    assert viz.draw(w * 2.0).engine == "matplotlib"
    with pytest.raises(RuntimeError, match="engine='graphviz' needs the graphviz Python package"):
        viz.draw(w * 2.0, engine="graphviz")


@needs_graphviz
def test_draw_with_graphviz_writes_png_and_svg(rng, tmp_path):
    loss, params = mlp(rng)
    picture = viz.draw(loss, tmp_path / "mlp.png", params)
    assert picture.engine == "graphviz"
    assert (tmp_path / "mlp.png").read_bytes().startswith(b"\x89PNG")
    viz.draw(loss, tmp_path / "mlp.svg", params, engine="graphviz")
    svg = (tmp_path / "mlp.svg").read_text()
    assert "<svg" in svg
    # Graphviz writes labels as text: every name and operation is there.
    for word in list(params) + ["matmul", "add_broadcast", "relu", "mse", "(4, 16) float32"]:
        assert word in svg


def test_readme_picture_script_leaves_the_tracked_picture_alone(tmp_path, monkeypatch):
    tracked = ROOT / "docs" / "mlp_graph.png"
    before = tracked.read_bytes()
    monkeypatch.setattr(sys, "argv", ["mlp_graph.py"])
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    runpy.run_path(str(ROOT / "docs" / "mlp_graph.py"), run_name="__main__")
    assert (tmp_path / "mlp_graph.png").read_bytes().startswith(b"\x89PNG")
    assert tracked.read_bytes() == before


def test_readme_picture_script_runs(tmp_path, monkeypatch):
    out = tmp_path / "mlp.png"
    monkeypatch.setattr(sys, "argv", ["mlp_graph.py", str(out)])
    runpy.run_path(str(ROOT / "docs" / "mlp_graph.py"), run_name="__main__")
    assert out.read_bytes().startswith(b"\x89PNG")


def test_viz_is_importable_as_a_submodule():
    import clumsygrad.viz as module

    assert module.to_dot is viz.to_dot and callable(module.draw)
