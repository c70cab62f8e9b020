"""The memory guard: arrays a recorded graph reads are read-only while that graph lives.

Version counters catch in-place changes made through the library (optimizer steps); a raw
NumPy write such as ``w.data[:] = 0`` bypasses them.  With the guard on, every op recorded in a
graph makes its operands' and its result's arrays read-only, so such a write raises NumPy's
``ValueError: assignment destination is read-only`` instead of silently changing a gradient.
The arrays get their own flags back when the graph is freed: by ``backward()`` (unless
``keep_graph``) or when the nodes are garbage collected.  Library mutations (optimizer steps)
go through :func:`writable`, and bump the version counter instead.

Only arrays that own their memory are guarded: a view made before the guard locked its base
can still write through (NumPy checks the view's own flag), e.g. ``v.data`` of ``v = w[0:2]``.
Views are not locked themselves because NumPy lets a view be made writeable again only while
its base is writeable: giving them back would depend on the order in which the graphs that
share the base are freed, and could leave a user's view read-only for good.  A view taken
after the lock is read-only (NumPy copies the flag).  The guard is off by default, since
0.2.x code writes into ``.data`` (weight loading, hand-written SGD) while evaluation graphs are
alive; turn it on with ``clumsygrad.memory_guard()`` or ``clumsygrad.set_memory_guard(True)``.
"""
from __future__ import annotations

import contextlib
import threading
import weakref

import numpy as np

_lock = threading.RLock()
_enabled = False
_held = {}  # id(array) -> [array, number of live nodes guarding it]
_guards = {}  # id(node) -> (arrays, weakref.finalize) for every node that guards arrays
_listeners = []  # the compiled graph keeps a C copy of the switch


def is_enabled() -> bool:
    """Whether newly recorded ops make the arrays they read read-only."""
    return _enabled


def set_enabled(enabled: bool) -> bool:
    """Turn the guard on or off for ops recorded from now on (process-wide); returns the old state.

    Arrays already guarded stay read-only until their graphs are freed.
    """
    global _enabled
    previous, _enabled = _enabled, bool(enabled)
    for listener in _listeners:
        listener(_enabled)
    return previous


@contextlib.contextmanager
def memory_guard(enabled: bool = True):
    """``with memory_guard():`` guards the graphs recorded inside; the previous state comes back on exit."""
    previous = set_enabled(enabled)
    try:
        yield
    finally:
        set_enabled(previous)


def protect(node, arrays) -> bool:
    """Make ``arrays`` (those that own their memory) read-only until ``node`` is released or dies."""
    with _lock:
        guarded, seen = [], set()
        for array in arrays:
            if type(array) is not np.ndarray or id(array) in seen:
                continue
            entry = _held.get(id(array))
            if entry is not None and entry[0] is array:
                entry[1] += 1
            elif array.base is None and array.flags.writeable:
                _held[id(array)] = [array, 1]
                array.flags.writeable = False
            else:
                continue
            seen.add(id(array))
            guarded.append(array)
        if not guarded:
            return False
        key = id(node)
        _guards[key] = (guarded, weakref.finalize(node, _release_key, key))
        return True


def release(node) -> None:
    """Give back the arrays ``node`` guards (its graph was freed); a no-op for other nodes."""
    entry = _guards.get(id(node))
    if entry is not None:
        entry[1]()  # runs _release_key once and detaches from the node


def _release_key(key) -> None:
    with _lock:
        entry = _guards.pop(key, None)
        if entry is None:
            return
        for array in entry[0]:
            held = _held[id(array)]
            held[1] -= 1
            if held[1] == 0:
                del _held[id(array)]
                array.flags.writeable = True


@contextlib.contextmanager
def writable(array):
    """Let the library write into ``array`` in place even while graphs guard it (optimizer steps)."""
    with _lock:
        held = type(array) is np.ndarray and id(array) in _held and not array.flags.writeable
        if held:
            array.flags.writeable = True
        try:
            yield array
        finally:
            if held:
                array.flags.writeable = False


def guarded_count() -> int:
    """How many arrays are read-only because of live graphs (for tests and diagnostics)."""
    return len(_held)
