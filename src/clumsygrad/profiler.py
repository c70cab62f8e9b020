"""Where the time goes, per op, in the forward and in the backward pass.

    with clumsygrad.profile() as prof:
        loss = model(x)
        loss.backward()
    print(prof)            # a table sorted by total time
    prof.stats()           # {op: {"forward_calls", "forward_s", "backward_calls", "backward_s"}}

Backward: both engines time each node's backward function (the compiled engine checks one C
flag per node when no profile is active; the pure engine one module global).  The row of an op
is its backward function's name without ``_backward`` (``matmul``, ``tanh``, ``getitem``...).
Elementwise nodes that the compiled engine runs as typed loops are timed too.

Forward: the op registry calls :func:`forward_begin` and :func:`forward_end` around each op
(cost when off: one global read, ``active is None``).  Until every op goes through it, the
graph counts each recorded result under its backward function's name: those rows show forward
*calls* and no forward time ("-").  The records the compiled node makes in C (operators,
indexing, joins) are counted the same way, by the node constructor itself; the compiled public
functions of the registry hand every call to their Python function while a profile is active,
so those are timed.

Profiles do not nest; a profile records the thread that runs the ops, and passes of any thread.
"""
from __future__ import annotations

import threading
from time import perf_counter_ns
from typing import Dict, List, Optional

__all__ = ["profile", "Profile", "forward_begin", "forward_end"]

active: Optional["Profile"] = None
"""The profile recording now, or None.  The op registry reads this one global."""

_lock = threading.Lock()


def _op_name(fn) -> str:
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return name[: -len("_backward")] if name.endswith("_backward") else name


class Profile:
    """Calls and time per op, forward and backward; ``print()`` it for the table."""

    def __init__(self) -> None:
        self.forward: Dict[str, List[int]] = {}  # op -> [calls, ns]
        self.nodes: Dict[object, int] = {}  # backward function -> results recorded (new_node)
        self.backward: Dict[object, List[int]] = {}  # backward function -> [calls, ns]
        self.wall_ns = 0
        self._started = 0

    # ----------------------------------------------------------------- recording (the sinks)
    def _record_node(self, grad_fn) -> None:
        count = self.nodes.get(grad_fn)
        self.nodes[grad_fn] = 1 if count is None else count + 1

    def _record_backward(self, grad_fn, ns: int) -> None:
        entry = self.backward.get(grad_fn)
        if entry is None:
            self.backward[grad_fn] = [1, ns]
        else:
            entry[0] += 1
            entry[1] += ns

    def _record_forward(self, name: str, ns: int) -> None:
        entry = self.forward.get(name)
        if entry is None:
            self.forward[name] = [1, ns]
        else:
            entry[0] += 1
            entry[1] += ns

    # ----------------------------------------------------------------- context manager
    def __enter__(self) -> "Profile":
        global active
        with _lock:
            if active is not None:
                raise RuntimeError("a clumsygrad.profile() is already recording; profiles do not nest")
            active = self
            _install(self)
        self._started = perf_counter_ns()
        return self

    def __exit__(self, *exc) -> None:
        global active
        self.wall_ns += perf_counter_ns() - self._started
        with _lock:
            _install(None)
            active = None

    # ----------------------------------------------------------------- results
    def stats(self) -> Dict[str, Dict[str, Optional[float]]]:
        """Per op: ``forward_calls``, ``forward_s`` (None where not timed), ``backward_calls``, ``backward_s``."""
        out: Dict[str, Dict[str, Optional[float]]] = {}

        def row(name):
            return out.setdefault(name, {"forward_calls": 0, "forward_s": None, "backward_calls": 0,
                                         "backward_s": 0.0})

        for fn, count in self.nodes.items():
            if fn is not None:
                row(_op_name(fn))["forward_calls"] += count
        for name, (calls, ns) in self.forward.items():  # the registry's timed calls win over counts
            r = row(name)
            r["forward_calls"] = calls
            r["forward_s"] = ns * 1e-9
        for fn, (calls, ns) in self.backward.items():
            r = row(_op_name(fn))
            r["backward_calls"] += calls
            r["backward_s"] += ns * 1e-9
        return out

    def table(self) -> str:
        """The per-op table, sorted by total (forward + backward) time."""
        stats = self.stats()

        def total(item):
            s = item[1]
            return (s["forward_s"] or 0.0) + s["backward_s"]

        rows = sorted(stats.items(), key=total, reverse=True)
        head = ("op", "fwd calls", "fwd time", "bwd calls", "bwd time", "total")
        cells = [head] + [
            (name, str(s["forward_calls"]), _fmt(s["forward_s"]), str(s["backward_calls"]),
             _fmt(s["backward_s"] if s["backward_calls"] else None), _fmt(total((name, s))))
            for name, s in rows
        ]
        widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
        lines = [
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
            for r in cells
        ]
        lines.insert(1, "-" * len(lines[0]))
        fwd = sum(s["forward_s"] or 0.0 for s in stats.values())
        bwd = sum(s["backward_s"] for s in stats.values())
        lines.append(f"profiled {_fmt(self.wall_ns * 1e-9)} wall: forward ops {_fmt(fwd) if self.forward else '-'}, "
                     f"backward functions {_fmt(bwd)}")
        if any(s["forward_s"] is None and s["forward_calls"] for s in stats.values()):
            lines.append("fwd time '-': recorded by an operator (+ - * / @, indexing): counted, not timed")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return f"<clumsygrad Profile: {len(self.stats())} ops>"


def _fmt(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.0f} ns"


def _install(prof: Optional[Profile]) -> None:
    """Point both graph twins' sinks at ``prof`` (None: off)."""
    from ._graph import pure

    node = prof._record_node if prof is not None else None
    backward = prof._record_backward if prof is not None else None
    pure.set_profile_sinks(node, backward)
    try:
        from ._graph import native
    except ImportError:  # no compiled twin: nothing else to point
        return
    native.set_profile_sinks(node, backward)


def profile() -> Profile:
    """A context manager that records, per op, calls and time in forward and in backward."""
    return Profile()


# --------------------------------------------------------------------------- for the op registry
def forward_begin() -> int:
    """A start time for :func:`forward_end`; call only when ``profiler.active is not None``."""
    return perf_counter_ns()


def forward_end(name: str, start: int) -> None:
    """Record one forward call of op ``name`` that began at ``start`` (from :func:`forward_begin`)."""
    prof = active
    if prof is not None:
        prof._record_forward(name, perf_counter_ns() - start)
