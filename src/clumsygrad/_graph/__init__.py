"""The computational graph: the node every ``Tensor`` is built on, grad mode, and the backward engine.

Two twins with the same names and behaviour:

* ``pure`` - Python classes and functions, always importable; the reference.
* ``native`` - the compiled twin (``native.pyx``, re-exporting ``_state``, ``_operators`` and
  ``_engine``, the other modules of its jobs): the node is a ``cdef class`` whose fields are C
  members, the engine walks those fields with no per-node ``set``/``dict``, and the elementwise
  backward functions run as typed loops.

``clumsygrad._backend`` picks the node base once, at import (it is ``Tensor``'s base class), and the
engine at every ``set_backend``.  Both twins share ``ENGINE_LOCK``: one backward pass at a time per
process, so concurrent passes that share parameters add into their ``.grad`` one after the other.

The adopt-or-copy rule.  A gradient that a backward function returns becomes a node's pending
gradient (and, at the end of the pass, its ``.grad``) without a copy only when the engine can
prove nobody else can see it: it owns its memory (no base) and its reference count says only
the returned tuple and the engine hold it.  A view, the incoming gradient, a tensor's data, an
array returned for two parents or kept by the backward function all fail the test and are copied
once, on their first write, so no ``.grad`` ever aliases another array.
"""
import threading

ENGINE_LOCK = threading.RLock()
