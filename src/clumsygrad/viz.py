"""Pictures of the computational graph behind a tensor.

``to_dot(tensor)`` returns the graph as Graphviz DOT text and needs no optional package.  ``draw(tensor, path)`` renders it: with Graphviz (the ``graphviz`` package and its
``dot`` executable) when both are installed, otherwise as a layered layout (networkx's
topological generations) drawn by matplotlib, which ``pip install "clumsygrad[plot]"``
provides.  The object ``draw`` returns shows itself inline in Jupyter.

Each tensor is a box (its name in ``params`` or its id, shape, dtype, type, the value of a
one-element tensor, and ``|grad|``, min and max once a gradient exists); each operation is an
ellipse named after its backward function (``matmul_backward`` shows as ``matmul``); edges run
in data-flow order, operands to operation to result.

Graphs with more than ``max_nodes`` tensors are summarised: a run of operations that feed one
another in a line (each result used once, other operands constants or parameters) becomes one
box holding the repeated pattern and its count, and if that is still too many, only the
``max_nodes`` units nearest the output are drawn and one box counts the rest.

The graph is only read, through the attributes every node has: ``_parents``, ``_grad_fn``
(its ``__name__``), ``_data``, ``_shape``, ``_grad``, ``_tensor_type`` and ``_id``.  Nothing
is written, no backward pass runs, and the walk is iterative, so graphs of any depth work.
"""
from __future__ import annotations

import operator
import os
import shutil
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

from .tensor import Tensor, TensorType

__all__ = ["to_dot", "draw", "GraphPicture"]

# Beyond about 200 tensors (and as many operations) a picture is no longer legible, and each
# box costs rendering time: a 2,500-tensor graph drew about 3x faster than with the former 500.
DEFAULT_MAX_NODES = 200
_MIN_CHAIN = 3  # chains hiding fewer tensors than this are drawn in full
_MAX_PERIOD = 8  # the longest repeated pattern of operations looked for in a chain
_MAX_GROUPED_SHOWN = 2  # a chain's private constants beyond this many share one box

_INPUT = int(TensorType.INPUT)
_PARAMETER = int(TensorType.PARAMETER)
_INTERMEDIATE = int(TensorType.INTERMEDIATE)
_ROLE = {_INPUT: "input", _PARAMETER: "parameter", _INTERMEDIATE: "intermediate"}

# Fill colours shared by both renderers.
_FILL = {
    "parameter": "#cfe2f3",
    "input": "#eeeeee",
    "intermediate": "#ffffff",
    "root": "#fff2cc",
    "op": "#fce5cd",
    "chain": "#d9ead3",
    "group": "#eeeeee",
    "more": "#f3f3f3",
}


class _Node:
    """One drawn box: ``kind`` is tensor, op, chain, group or more."""

    __slots__ = ("key", "kind", "lines", "fill", "dashed", "bold")

    def __init__(self, key: str, kind: str, lines: List[str], fill: str, dashed=False, bold=False):
        self.key = key
        self.kind = kind
        self.lines = lines
        self.fill = fill
        self.dashed = dashed
        self.bold = bold


class _Graph:
    """What is drawn: boxes, edges ``(source key, target key, count)`` and a caption."""

    __slots__ = ("nodes", "edges", "caption")

    def __init__(self, nodes: List[_Node], edges: List[Tuple[str, str, int]], caption: str):
        self.nodes = nodes
        self.edges = edges
        self.caption = caption


# --------------------------------------------------------------------------- reading the graph
def _walk(root) -> Tuple[list, List[List[int]], Dict[int, int], List[int]]:
    """Every tensor reachable from ``root``, each one's parents, and a data-flow order.

    Returns ``nodes`` (``nodes[0]`` is the root), ``parents`` (``parents[i]`` lists the
    positions in ``nodes`` of ``nodes[i]._parents``; a tensor used twice by one operation
    appears twice), ``index`` (``id()`` of a tensor to its position) and ``order`` (positions,
    every tensor after its parents, the root last).  Breadth-first discovery, then Kahn's
    algorithm only when the discovery order is not already topological: no recursion, so depth
    is limited by memory only.  ``nodes`` keeps the tensors alive, so their ids stay unique.
    """
    nodes = [root]
    index = {id(root): 0}
    parents: List[List[int]] = []
    add_node, find, add_row = nodes.append, index.get, parents.append
    discovery_is_topological = True  # every parent found after each of its users
    for i, node in enumerate(nodes):  # the loop also visits the nodes appended meanwhile
        row = []
        for parent in node._parents:
            k = id(parent)
            j = find(k)
            if j is None:
                j = index[k] = len(nodes)
                add_node(parent)
            elif j <= i:
                discovery_is_topological = False
            row.append(j)
        add_row(row)
    n = len(nodes)
    if discovery_is_topological:
        return nodes, parents, index, list(range(n - 1, -1, -1))
    waiting = [0] * n  # uses of each tensor by operations not yet placed
    for row in parents:
        for j in row:
            waiting[j] += 1
    order = [0] if waiting[0] == 0 else []
    for i in order:
        for j in parents[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                order.append(j)
    if len(order) != n:
        raise ValueError("The graph has a cycle: a tensor is among its own ancestors")
    order.reverse()
    return nodes, parents, index, order


def _fn_name(fn) -> str:
    """A backward function's name without "_backward": the operation."""
    if fn is None:
        return "?"
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return name[: -len("_backward")] if name.endswith("_backward") and len(name) > 9 else name


def _op_name(tensor) -> str:
    return _fn_name(tensor._grad_fn)


def _count_ops(tensors) -> Dict[str, int]:
    """How many of ``tensors`` each operation made (counted per function, named once)."""
    per_fn: Dict[object, int] = {}
    for t in tensors:
        fn = t._grad_fn
        per_fn[fn] = per_fn.get(fn, 0) + 1
    counts: Dict[str, int] = {}
    for fn, k in per_fn.items():
        name = _fn_name(fn)
        counts[name] = counts.get(name, 0) + k
    return counts


def _num(value) -> str:
    return f"{float(value):.4g}"


def _shape_text(shape, dtype) -> str:
    return f"{tuple(shape)} {np.dtype(dtype).name}"


def _tensor_node(key: str, tensor, name: Optional[str], is_root: bool) -> _Node:
    kind = int(tensor._tensor_type)
    role = _ROLE.get(kind, str(tensor._tensor_type))
    freed = kind == _INTERMEDIATE and not tensor._parents
    lines = [name if name is not None else f"id {tensor._id}", _shape_text(tensor._shape, tensor._data.dtype), role]
    data = tensor._data
    if data.size == 1:
        lines.append(f"value {_num(data.item())}")
    grad = tensor._grad
    if grad is not None:
        grad = np.asarray(grad)
        if grad.size == 1:
            lines.append(f"grad {_num(grad.item())}")
        elif grad.size:
            norm = np.sqrt(np.sum(np.square(grad, dtype=np.float64)))
            lines.append(f"|grad| {_num(norm)}  min {_num(grad.min())}  max {_num(grad.max())}")
    if freed:
        lines.append("graph freed by backward()")
    fill = _FILL["root"] if is_root else _FILL.get(role, "#ffffff")
    return _Node(key, "tensor", lines, fill, dashed=freed, bold=is_root)


def _parameter_names(params) -> Dict[int, str]:
    """``id()`` of each tensor in ``params`` to its name (the first name, if it has several)."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict {{name: tensor}}, got {type(params).__name__}")
    names: Dict[int, str] = {}
    for name, tensor in params.items():
        names.setdefault(id(tensor), str(name))
    return names


# --------------------------------------------------------------------------- summarising
def _single_consumers(parents: List[List[int]]) -> List[int]:
    """For each tensor: the one operation result using it, -1 if several use it, -2 if none."""
    single = [-2] * len(parents)
    for i, row in enumerate(parents):
        for j in row:
            s = single[j]
            if s == -2:
                single[j] = i
            elif s != i:
                single[j] = -1
    return single


def _chains(parents, order, single, named) -> List[Tuple[List[int], int]]:
    """Runs of operations in a line, as ``(hidden tensors, end tensor)``.

    Tensor ``u`` links to ``c`` when ``c`` is the only result using ``u`` and every other
    operand of ``c`` is a leaf (a constant, a parameter or a freed node).  A chain is a maximal
    run of links ``u1 -> ... -> um -> end``; the box stands for ``u1 .. um`` and the operations
    that made them and ``end``.
    """
    n = len(parents)
    leaf = [not row for row in parents]
    link = [-1] * n
    has_prev = [False] * n
    for u in range(1, n):  # the root (0) is always drawn
        c = single[u]
        if c < 0 or leaf[u] or u in named:
            continue
        for j in parents[c]:
            if j != u and not leaf[j]:
                break
        else:
            link[u] = c
            has_prev[c] = True
    chains = []
    for u in order:
        if link[u] < 0 or has_prev[u]:
            continue
        members = []
        while link[u] >= 0:
            members.append(u)
            u = link[u]
        if len(members) >= _MIN_CHAIN:
            chains.append((members, u))
    return chains


def _pattern_line(tensors) -> str:
    """The operations that made ``tensors`` (data-flow order) as a repeated pattern with its
    count, e.g. "(matmul → add → tanh) × 300, then mean"; else the commonest operations."""
    code_of: Dict[str, int] = {}  # operation name -> code
    fn_code: Dict[object, int] = {}  # backward function -> code; each function is named once
    codes = np.empty(len(tensors), np.int64)
    for k, t in enumerate(tensors):
        fn = t._grad_fn
        code = fn_code.get(fn)
        if code is None:
            code = fn_code[fn] = code_of.setdefault(_fn_name(fn), len(code_of))
        codes[k] = code
    names = list(code_of)
    # For each period p, the longest stretch where codes[i] == codes[i + p]; keep the best.
    best = None  # (covered, -period, start)
    for period in range(1, min(_MAX_PERIOD, len(codes) // 2) + 1):
        same = np.concatenate(([False], codes[period:] == codes[:-period], [False]))
        edges = np.flatnonzero(np.diff(same.astype(np.int8)))
        if not len(edges):
            continue
        starts, stops = edges[0::2], edges[1::2]
        k = int(np.argmax(stops - starts))
        covered = int(stops[k] - starts[k]) + period
        if best is None or covered > best[0]:
            best = (covered, period, int(starts[k]))
    if best is not None and best[0] >= max(2 * best[1], len(codes) // 2):
        covered, period, start = best
        repeats = covered // period
        stop = start + repeats * period

        def run(lo: int, hi: int) -> str:
            if hi - lo > 3:
                return f"{hi - lo} other ops"
            return " → ".join(names[c] for c in codes[lo:hi])

        line = f"({' → '.join(names[c] for c in codes[start:start + period])}) × {repeats:,}"
        if start:
            line = f"{run(0, start)}, then {line}"
        if stop < len(codes):
            line = f"{line}, then {run(stop, len(codes))}"
        return line
    counts = np.bincount(codes)
    top = np.argsort(-counts, kind="stable")[:4]
    return ", ".join(f"{names[k]} ×{counts[k]:,}" for k in top) + (", ..." if len(names) > 4 else "")


def _shapes_line(tensors, what: str) -> str:
    shapes = {(t._shape, t._data.dtype) for t in tensors}
    if len(shapes) == 1:
        return f"{len(tensors):,} {what}: {_shape_text(*shapes.pop())}"
    return f"{len(tensors):,} {what}, {len(shapes)} shapes"


# --------------------------------------------------------------------------- the drawn graph
class _Chain:
    """A collapsed chain: ``members`` (hidden, data-flow order), ``end`` (drawn after the box),
    and ``groups``: the chain's own leaves that share a box, constants and parameters apart."""

    __slots__ = ("members", "end", "groups")

    def __init__(self, members: List[int], end: int, groups: List[List[int]]):
        self.members = members
        self.end = end
        self.groups = groups


def _collapse(nodes, parents, order, named) -> Tuple[List[int], List[_Chain]]:
    """Collapse the chains.  Returns each tensor's unit and the chains.

    A unit is what gets one box: tensor ``i``'s own unit is ``i``; chain ``c`` is unit
    ``n + 3c`` and its two groups ``n + 3c + 1`` (constants) and ``n + 3c + 2`` (parameters).
    """
    n = len(nodes)
    unit = list(range(n))
    chains: List[_Chain] = []
    single = _single_consumers(parents)
    for members, end in _chains(parents, order, single, named):
        base = n + 3 * len(chains)
        inside = set(members)
        inside.add(end)
        private: Dict[int, None] = {}  # leaves used by this chain alone, in order of use
        for i in members + [end]:
            for j in parents[i]:
                if not parents[j] and j not in named and j not in inside and single[j] in inside:
                    private[j] = None
        by_kind: Tuple[List[int], List[int]] = ([], [])
        for j in private:
            by_kind[int(nodes[j]._tensor_type) == _PARAMETER].append(j)
        groups = [g if len(g) > _MAX_GROUPED_SHOWN else [] for g in by_kind]
        for i in members:
            unit[i] = base
        for slot, group in enumerate(groups, 1):
            for j in group:
                unit[j] = base + slot
        chains.append(_Chain(members, end, groups))
    return unit, chains


def _build(tensor, params, max_nodes) -> _Graph:
    """What to draw for the graph behind ``tensor``.

    The collector's state is left alone (a library must not switch it off: an interrupt or
    another thread could leave it off); compiled result nodes are not GC-tracked anyway.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"Expected a Tensor to draw, got {type(tensor).__name__}")
    if max_nodes is not None:
        try:
            valid = not isinstance(max_nodes, bool) and operator.index(max_nodes) >= 1
        except TypeError:
            valid = False
        if not valid:
            raise ValueError(f"max_nodes must be a positive integer or None, got {max_nodes!r}")
        max_nodes = operator.index(max_nodes)
    if int(tensor._tensor_type) == _INTERMEDIATE and not tensor._parents:
        raise RuntimeError(
            f"The graph behind tensor {tensor._id} was freed by backward(): call "
            "backward(keep_graph=True) to keep it for drawing, or draw before backward()"
        )
    names = _parameter_names(params)
    nodes, parents, index, order = _walk(tensor)
    n = len(nodes)
    root = 0
    summarise = max_nodes is not None and n > max_nodes
    if summarise:
        unit, chains = _collapse(nodes, parents, order, {index[k] for k in names if k in index})
    else:
        unit, chains = list(range(n)), []
    chain_of_end = {chain.end: c for c, chain in enumerate(chains)}

    def inputs(u: int) -> List[int]:
        """The units with an edge into unit ``u`` (into its operation, for a tensor)."""
        if u < n:
            if u in chain_of_end:
                return [n + 3 * chain_of_end[u]]
            return [unit[j] for j in parents[u]]
        c, slot = divmod(u - n, 3)
        if slot:
            return []
        chain = chains[c]
        inside = set(chain.members)
        inside.add(chain.end)
        return [unit[j] for i in chain.members + [chain.end] for j in parents[i] if j not in inside]

    # Still too many boxes: keep the max_nodes units nearest the output (breadth first).
    kept = None
    if summarise:
        n_units = n - sum(
            len(ch.members) - 1 + sum(len(g) - 1 for g in ch.groups if g) for ch in chains
        )
        if n_units > max_nodes:
            kept = {unit[root]}
            frontier = [unit[root]]
            for u in frontier:  # grows while it is read
                if len(kept) >= max_nodes:
                    break
                for v in inputs(u):
                    if v not in kept and len(kept) < max_nodes:
                        kept.add(v)
                        frontier.append(v)

    def key(u: int) -> str:
        if kept is not None and u not in kept:
            return "more"
        if u < n:
            return f"t{u}"
        c, slot = divmod(u - n, 3)
        return ("chain", "constants", "parameters")[slot] + str(c)

    out_nodes: List[_Node] = []
    edges: List[Tuple[str, str, int]] = []
    hidden = []
    for i in order:
        u = unit[i]
        if kept is not None and u not in kept:
            hidden.append(i)
        elif u == i:
            t = nodes[i]
            out_nodes.append(_tensor_node(f"t{i}", t, names.get(id(t)), i == root))
            if i in chain_of_end:
                edges.append((key(n + 3 * chain_of_end[i]), f"t{i}", 1))
            elif parents[i]:
                out_nodes.append(_Node(f"op{i}", "op", [_op_name(t)], _FILL["op"]))
                for j in parents[i]:
                    edges.append((key(unit[j]), f"op{i}", 1))
                edges.append((f"op{i}", f"t{i}", 1))
        elif (u - n) % 3 == 0 and chains[(u - n) // 3].members[0] == i:
            # A chain is drawn where its first member is, after its groups.
            chain = chains[(u - n) // 3]
            for slot, group in enumerate(chain.groups, 1):
                if group and (kept is None or u + slot in kept):
                    out_nodes.append(_group_node(key(u + slot), [nodes[j] for j in group]))
            lines = [
                f"chain of {len(chain.members) + 1:,} ops",
                _pattern_line([nodes[j] for j in chain.members] + [nodes[chain.end]]),
                _shapes_line([nodes[j] for j in chain.members], "tensors inside"),
            ]
            out_nodes.append(_Node(key(u), "chain", lines, _FILL["chain"]))
            for v in inputs(u):
                edges.append((key(v), key(u), 1))

    if kept is not None:
        hidden_ops = _count_ops(nodes[i] for i in hidden if parents[i])
        lines = [f"... {len(hidden):,} more tensors not drawn"]
        if hidden_ops:
            top = sorted(hidden_ops.items(), key=lambda kv: -kv[1])
            lines.append("ops: " + ", ".join(f"{k} ×{v:,}" for k, v in top[:3]) + (", ..." if len(top) > 3 else ""))
        lines.append(f"(raise max_nodes={max_nodes} to see them)")
        out_nodes.insert(0, _Node("more", "more", lines, _FILL["more"], dashed=True))

    caption = ""
    if summarise:
        merged: Dict[Tuple[str, str], int] = {}
        for a, b, m in edges:
            merged[(a, b)] = merged.get((a, b), 0) + m
        edges = [(a, b, m) for (a, b), m in merged.items()]
        n_ops = sum(1 for row in parents if row)
        caption = (
            f"{n:,} tensors and {n_ops:,} operations, summarised "
            f"(more than max_nodes={max_nodes} tensors)"
        )
    return _Graph(out_nodes, edges, caption)


def _group_node(key: str, tensors) -> _Node:
    roles: Dict[str, int] = {}
    for t in tensors:
        role = _ROLE.get(int(t._tensor_type), "?")
        roles[role] = roles.get(role, 0) + 1
    lines = [_shapes_line(tensors, "leaf tensors"), ", ".join(f"{v:,} {r}" for r, v in roles.items())]
    return _Node(key, "group", lines, _FILL["group"], dashed=True)


# --------------------------------------------------------------------------- DOT text
def _visible(text: str) -> str:
    """``text`` with control characters other than newline shown as Python escapes (``\\x00``)."""
    return "".join(
        c.encode("unicode_escape").decode("ascii") if (ord(c) < 32 and c != "\n") or 127 <= ord(c) < 160 else c
        for c in text
    )


def _quote(text: str) -> str:
    text = _visible(text)  # Graphviz refuses a NUL and mangles other control characters
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


_DOT_SHAPE = {"tensor": "box", "op": "ellipse", "chain": "box3d", "group": "folder", "more": "note"}


def _dot(graph: _Graph, rankdir: str) -> str:
    out = [
        "digraph clumsygrad {",
        f"  graph [rankdir={rankdir}, nodesep=0.25, ranksep=0.35"
        + (f", labelloc=b, fontname=Helvetica, fontsize=10, label={_quote(graph.caption)}" if graph.caption else "")
        + "];",
        '  node [fontname=Helvetica, fontsize=10, margin="0.12,0.05"];',
        "  edge [arrowsize=0.6];",
    ]
    for node in graph.nodes:
        style = ["filled"]
        if node.kind == "tensor":
            style.insert(0, "rounded")
        if node.dashed:
            style.append("dashed")
        if node.bold:
            style.append("bold")
        out.append(
            f"  {node.key} [shape={_DOT_SHAPE[node.kind]}, style={_quote(','.join(style))}, "
            f"fillcolor={_quote(node.fill)}, label={_quote(chr(10).join(node.lines))}];"
        )
    for source, target, count in graph.edges:
        out.append(f"  {source} -> {target}" + (f' [label="×{count:,}"];' if count > 1 else ";"))
    out.append("}")
    return "\n".join(out) + "\n"


def _check_rankdir(rankdir: str) -> str:
    if rankdir not in ("auto", "LR", "TB"):
        raise ValueError(
            f"rankdir must be 'LR' (left to right), 'TB' (top to bottom) or 'auto', got {rankdir!r}"
        )
    return rankdir


_TARGET_ASPECT = 1.4  # width / height of the picture "auto" aims at: a page or a screen


def _box_size(node: _Node) -> Tuple[float, float]:
    """Width and height (inches) of a box in the matplotlib drawing; Graphviz's are close."""
    width = max(len(line) for line in node.lines) * _CHAR_W + 2 * _PAD
    height = len(node.lines) * _LINE_H + 2 * _PAD
    if node.kind == "op":
        width, height = width * 1.25 + 0.05, height * 1.5
    return width, height


def _layers(graph: _Graph) -> Dict[str, int]:
    """Each box's layer: its distance in edges from the output, counted back (no recursion)."""
    users: Dict[str, List[str]] = {node.key: [] for node in graph.nodes}
    waiting = {node.key: 0 for node in graph.nodes}
    for a, b, _ in graph.edges:
        users[b].append(a)
        waiting[a] += 1
    depth = {key: 0 for key, k in waiting.items() if k == 0}
    ready = list(depth)
    for key in ready:
        for source in users[key]:
            depth[source] = max(depth.get(source, 0), depth[key] + 1)
            waiting[source] -= 1
            if waiting[source] == 0:
                ready.append(source)
    return depth


def _auto_rankdir(graph: _Graph) -> str:
    """"TB" or "LR", whichever gives the picture whose shape is nearer a page's.

    A small MLP is a long, thin sequence of layers: left to right it is a strip many times
    wider than high, top to bottom it reads like a page.  A wide, shallow graph is the reverse.
    The extents are estimated from the layers (as the layout fills them) and the box sizes.
    """
    import math

    depth = _layers(graph)
    if not depth:
        return "TB"
    n_layers = max(depth.values()) + 1
    widest = [0.0] * n_layers
    tallest = [0.0] * n_layers
    row_width = [0.0] * n_layers
    column_height = [0.0] * n_layers
    for node in graph.nodes:
        k = depth.get(node.key, 0)
        w, h = _box_size(node)
        widest[k], tallest[k] = max(widest[k], w), max(tallest[k], h)
        row_width[k] += w + _GAP_NODE
        column_height[k] += h + _GAP_NODE
    gaps = _GAP_LAYER * (n_layers - 1)
    shapes = {
        "TB": (max(row_width), sum(tallest) + gaps),
        "LR": (sum(widest) + gaps, max(column_height)),
    }

    def distance(rankdir: str) -> float:
        width, height = shapes[rankdir]
        return abs(math.log(max(width, 1e-3) / max(height, 1e-3) / _TARGET_ASPECT))

    return "TB" if distance("TB") <= distance("LR") else "LR"


def to_dot(tensor, params: Optional[Mapping[str, Tensor]] = None, *,
           max_nodes: Optional[int] = DEFAULT_MAX_NODES, rankdir: str = "auto") -> str:
    """Graphviz DOT text of the graph that produced ``tensor``.

    ``params`` maps names to tensors (e.g. ``{"W1": W1}``); other tensors are labelled by id.
    Graphs with more than ``max_nodes`` tensors are summarised (``None`` never summarises).
    ``rankdir`` is "LR" (data flows left to right), "TB" (top to bottom) or "auto" (the
    default): whichever of the two gives a picture nearer a page's proportions, so a deep,
    narrow graph (an MLP) runs top to bottom and a wide, shallow one left to right.  Raises
    ``RuntimeError`` when a backward pass without ``keep_graph=True`` has freed the graph.
    """
    _check_rankdir(rankdir)
    graph = _build(tensor, params, max_nodes)
    return _dot(graph, _auto_rankdir(graph) if rankdir == "auto" else rankdir)


# --------------------------------------------------------------------------- rendering
def _graphviz_available() -> bool:
    try:
        import graphviz  # noqa: F401
    except ImportError:
        return False
    return shutil.which("dot") is not None


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
        import networkx  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"draw() needs Graphviz (the graphviz package and its dot executable) or matplotlib "
            f'and networkx: pip install "clumsygrad[plot]" ({exc})'
        ) from None


_FONT_PT = 9.0
_CHAR_W = 0.602 * _FONT_PT / 72  # DejaVu Sans Mono's advance, inches
_LINE_H = 1.25 * _FONT_PT / 72
_PAD = 0.08
_GAP_LAYER = 0.45
_GAP_NODE = 0.18


def _layout(graph: _Graph, rankdir: str):
    """Where to draw: centre and size (inches) of every box, and each edge's route.

    Layers are networkx's topological generations counted back from the output, so every box
    sits just before its first use.  An edge across several layers passes through a point in
    each layer in between, and a few barycentre sweeps order each layer to cut crossings.
    Returns ``pos``, ``size`` and, per edge of ``graph.edges``, the inner points of its route.
    """
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(node.key for node in graph.nodes)
    g.add_edges_from((a, b) for a, b, _ in graph.edges)
    generations = list(nx.topological_generations(g.reverse(copy=False)))
    layer = {key: len(generations) - 1 - k for k, generation in enumerate(generations) for key in generation}
    size = {node.key: _box_size(node) for node in graph.nodes}
    layers: List[list] = [[] for _ in generations]
    for node in graph.nodes:  # emission order: data flow
        layers[layer[node.key]].append(node.key)
    # Long edges get a waypoint per layer crossed; waypoints are laid out like small boxes.
    before: Dict[object, list] = {key: [] for key in size}
    after: Dict[object, list] = {key: [] for key in size}
    routes: Dict[Tuple[str, str], list] = {}
    for a, b in g.edges:
        chain = [a]
        for k in range(layer[a] + 1, layer[b]):
            point = ("via", a, b, k)
            size[point] = (0.0, 0.12)
            layers[k].append(point)
            before[point], after[point] = [], []
            chain.append(point)
        chain.append(b)
        for u, v in zip(chain, chain[1:]):
            after[u].append(v)
            before[v].append(u)
        routes[(a, b)] = chain[1:-1]
    rank = {key: r for members in layers for r, key in enumerate(members)}
    for sweep in range(4):
        forward = sweep % 2 == 0
        for members in (layers[1:] if forward else layers[-2::-1]):
            def centre(key, near=before if forward else after):
                return sum(rank[v] for v in near[key]) / len(near[key]) if near[key] else rank[key]
            members.sort(key=centre)
            for r, key in enumerate(members):
                rank[key] = r
    lr = rankdir == "LR"
    along = [max((size[k][0 if lr else 1] for k in members), default=0.0) for members in layers]
    across = [sum(size[k][1 if lr else 0] for k in members) + _GAP_NODE * max(len(members) - 1, 0)
              for members in layers]
    span = max(across)
    pos = {}
    offset = 0.0
    for k, members in enumerate(layers):
        centre_along = offset + along[k] / 2
        cursor = (span - across[k]) / 2
        for key in members:
            extent = size[key][1 if lr else 0]
            centre_across = cursor + extent / 2
            pos[key] = (centre_along, span - centre_across) if lr else (centre_across, -centre_along)
            cursor += extent + _GAP_NODE
        offset += along[k] + _GAP_LAYER
    return pos, size, {edge: [pos[point] for point in points] for edge, points in routes.items()}


def _matplotlib_figure(graph: _Graph, rankdir: str):
    from matplotlib.figure import Figure
    from matplotlib.patches import Ellipse, FancyArrowPatch, FancyBboxPatch
    from matplotlib.path import Path

    pos, size, routes = _layout(graph, rankdir)
    margin = 0.2
    xs = [pos[k][0] - size[k][0] / 2 for k in pos] + [pos[k][0] + size[k][0] / 2 for k in pos]
    ys = [pos[k][1] - size[k][1] / 2 for k in pos] + [pos[k][1] + size[k][1] / 2 for k in pos]
    ys.append(min(ys) - 0.06)  # a chain's second box
    xs.append(max(xs) + 0.06)
    if graph.caption:
        centre, half = (min(xs) + max(xs)) / 2, len(graph.caption) * _CHAR_W / 2
        xs += [centre - half, centre + half]
    x0, y0 = min(xs) - margin, min(ys) - margin - (0.3 if graph.caption else 0.0)
    width, height = max(xs) + margin - x0, max(ys) + margin - y0
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(x0, x0 + width)
    ax.set_ylim(y0, y0 + height)
    ax.axis("off")
    for node in graph.nodes:
        (x, y), (w, h) = pos[node.key], size[node.key]
        style = dict(facecolor=node.fill, edgecolor="#444444", linewidth=1.8 if node.bold else 0.8,
                     linestyle="--" if node.dashed else "-")
        if node.kind == "op":
            ax.add_artist(Ellipse((x, y), w, h, **style))
        else:
            if node.kind == "chain":  # a second box behind: several boxes in one
                ax.add_artist(FancyBboxPatch((x - w / 2 + 0.05, y - h / 2 - 0.05), w, h,
                                             boxstyle="square,pad=0", **style))
            rounding = "round,pad=0,rounding_size=0.06" if node.kind == "tensor" else "square,pad=0"
            ax.add_artist(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle=rounding, **style))
        # parse_math=False: a name such as "$x^$" is text, not mathtext
        ax.text(x, y, _visible("\n".join(node.lines)), ha="center", va="center", family="DejaVu Sans Mono",
                fontsize=_FONT_PT, linespacing=1.25, parse_math=False, usetex=False)
    lr = rankdir == "LR"
    for source, target, count in graph.edges:
        (xa, ya), (wa, ha) = pos[source], size[source]
        (xb, yb), (wb, hb) = pos[target], size[target]
        start = (xa + wa / 2, ya) if lr else (xa, ya - ha / 2)
        end = (xb - wb / 2, yb) if lr else (xb, yb + hb / 2)
        points = [start] + routes[(source, target)] + [end]
        route = Path(points, [Path.MOVETO] + [Path.LINETO] * (len(points) - 1))
        ax.add_artist(FancyArrowPatch(path=route, arrowstyle="-|>", mutation_scale=9, color="#444444",
                                      linewidth=0.8))
        if count > 1:
            (xc, yc), (xd, yd) = points[-2], points[-1]
            ax.text((xc + xd) / 2, (yc + yd) / 2, f"×{count:,}", fontsize=_FONT_PT - 1,
                    ha="center", va="bottom", family="DejaVu Sans Mono", color="#444444")
    if graph.caption:
        ax.text(x0 + width / 2, y0 + 0.15, _visible(graph.caption), ha="center", va="center",
                family="DejaVu Sans Mono", fontsize=_FONT_PT, parse_math=False, usetex=False)
    return fig


class GraphPicture:
    """A drawn graph: ``png()`` / ``svg()`` render it, ``save(path)`` writes it.

    Jupyter shows it inline through ``_repr_svg_`` and ``_repr_png_``.  ``dot`` is its DOT text
    and ``engine`` the renderer, "graphviz" or "matplotlib".  It holds no tensors.
    """

    def __init__(self, graph: _Graph, engine: str, rankdir: str):
        self._graph = graph
        self.engine = engine
        self.rankdir = rankdir
        self.dot = _dot(graph, rankdir)
        self._cache: Dict[str, bytes] = {}

    def render(self, fmt: str) -> bytes:
        """The picture as bytes in ``fmt``: "png", "svg" or "pdf"."""
        if fmt not in ("png", "svg", "pdf"):
            raise ValueError(f"format must be 'png', 'svg' or 'pdf', got {fmt!r}")
        if fmt not in self._cache:
            if self.engine == "graphviz":
                import graphviz

                self._cache[fmt] = graphviz.Source(self.dot).pipe(format=fmt)
            else:
                import io

                fig = _matplotlib_figure(self._graph, self.rankdir)
                width, height = fig.get_size_inches()
                # Huge graphs: keep the bitmap within about 40 megapixels.
                dpi = min(120.0, (40e6 / (width * height)) ** 0.5, 30000 / max(width, height))
                buffer = io.BytesIO()
                fig.savefig(buffer, format=fmt, dpi=dpi, facecolor="white")
                self._cache[fmt] = buffer.getvalue()
        return self._cache[fmt]

    def png(self) -> bytes:
        return self.render("png")

    def svg(self) -> str:
        return self.render("svg").decode("utf-8")

    def save(self, path) -> None:
        """Write the picture to ``path``; its suffix (.png, .svg, .pdf, .dot or .gv) picks the format."""
        suffix = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
        if suffix in ("dot", "gv"):
            data = self.dot.encode("utf-8")
        elif suffix in ("png", "svg", "pdf"):
            data = self.render(suffix)
        else:
            raise ValueError(
                f"Cannot tell the picture format from {os.fspath(path)!r}: use a .png, .svg, .pdf or .dot file"
            )
        with open(path, "wb") as file:
            file.write(data)

    def _repr_png_(self) -> bytes:
        return self.png()

    def _repr_svg_(self) -> str:
        return self.svg()

    def __repr__(self) -> str:
        return (
            f"<GraphPicture: {len(self._graph.nodes)} boxes, {len(self._graph.edges)} edges, "
            f"drawn with {self.engine}>"
        )


def draw(tensor, path=None, params: Optional[Mapping[str, Tensor]] = None, *,
         max_nodes: Optional[int] = DEFAULT_MAX_NODES, engine: str = "auto",
         rankdir: str = "auto") -> GraphPicture:
    """Draw the graph that produced ``tensor``; write it to ``path`` (.png, .svg, .pdf, .dot) if given.

    ``engine`` is "graphviz" (needs the graphviz package and its ``dot`` executable),
    "matplotlib" (needs matplotlib and networkx: ``pip install "clumsygrad[plot]"``) or "auto",
    Graphviz when available, else matplotlib.  ``params`` and ``max_nodes`` are as in
    :func:`to_dot`, and so is ``rankdir`` ("auto" by default: top to bottom for a deep, narrow
    graph, left to right for a wide, shallow one).  Returns a :class:`GraphPicture`, which
    Jupyter displays inline.
    """
    _check_rankdir(rankdir)
    if engine == "auto":
        engine = "graphviz" if _graphviz_available() else "matplotlib"
    if engine == "graphviz":
        if not _graphviz_available():
            raise RuntimeError(
                "engine='graphviz' needs the graphviz Python package (pip install graphviz) and "
                "Graphviz's dot executable on PATH; engine='matplotlib' needs neither"
            )
    elif engine == "matplotlib":
        _require_matplotlib()
    else:
        raise ValueError(f"engine must be 'auto', 'graphviz' or 'matplotlib', got {engine!r}")
    graph = _build(tensor, params, max_nodes)
    picture = GraphPicture(graph, engine, _auto_rankdir(graph) if rankdir == "auto" else rankdir)
    if path is not None:
        picture.save(path)
    return picture
