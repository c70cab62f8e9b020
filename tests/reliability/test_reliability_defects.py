"""Regression tests for the reliability defects of issue 10 (1-6 and 9), on both backends.

Every test here failed on clumsygrad 0.3.0 before the compiled graph core (commit 1cb4426);
/work/notes/reliability.md lists how each one failed there.  The autouse ``backend`` fixture
runs each test once with the compiled engine and once with the pure one; the node twin is the
one chosen at import (``CLUMSYGRAD_BACKEND``), so a run with ``CLUMSYGRAD_BACKEND=python``
covers the pure nodes as well.
"""
import copy
import datetime
import gc
import linecache
import pickle
import random
import re
import signal
import sys
import threading
import time
import weakref

import numpy as np
import pytest

from clumsygrad.activation import relu, sigmoid, softmax, tanh
from clumsygrad.math import exp, sqrt, sum
from clumsygrad.tensor import Tensor, TensorType

from helpers import grads_of


def param(data, dtype=np.float64):
    return Tensor(data, tensor_type=TensorType.PARAMETER, dtype=dtype)


def custom_node(parents, backward, value=0.0):
    """An INTERMEDIATE tensor recorded with a hand-written backward function."""
    return Tensor._create_node(np.asarray(value, dtype=np.float64), backward, tuple(parents))


def engine_lock_held():
    """Whether this thread still holds the engine's lock (None where there is no lock).

    A lock left held is released here, so that one failure does not hang the tests after it.
    """
    try:
        from clumsygrad._graph import ENGINE_LOCK
    except ImportError:  # the pre-core code this suite was first run against had none
        return None
    held = ENGINE_LOCK._is_owned()
    while ENGINE_LOCK._is_owned():
        ENGINE_LOCK.release()
    return held


@pytest.fixture
def collector_state():
    """Restore the garbage collector's on/off state whatever a test leaves behind."""
    was_enabled = gc.isenabled()
    yield
    if was_enabled:
        gc.enable()
    else:
        gc.disable()


@pytest.fixture
def without_foreign_gc_callbacks():
    """Set aside other packages' ``gc.callbacks`` while a test's timer interrupts run.

    CPython reports an exception raised inside a collection callback as unraisable and drops it,
    so an interrupt whose handler runs there never reaches the test's loop.  Hypothesis registers
    such a callback (it times collections) once any property test has run in the process: seen as
    a CI failure, ``_Interrupt in <function gc_cumulative_time.<locals>.gc_callback>``.  The
    library itself registers none (asserted), so a user's Ctrl-C is never lost in its code.
    """
    import clumsygrad  # noqa: F401  (imported: whatever it would register is registered)

    ours = [cb for cb in gc.callbacks if getattr(cb, "__module__", "").startswith("clumsygrad")]
    assert ours == [], f"clumsygrad registered collection callbacks: {ours}"
    foreign = list(gc.callbacks)
    gc.callbacks.clear()
    yield
    gc.callbacks[:0] = foreign


# =========================================================================== defect 1: gc state
@pytest.mark.usefixtures("collector_state")
@pytest.mark.parametrize("enabled", [True, False])
def test_backward_leaves_the_collector_as_it_found_it(enabled):
    x = param([1.0, 2.0])
    (gc.enable if enabled else gc.disable)()
    seen_during = []
    y = custom_node([x], lambda t, g: (seen_during.append(gc.isenabled()) or np.ones(2),))
    sum(x * 2.0).backward()
    y.backward()
    assert gc.isenabled() is enabled
    assert seen_during == [enabled]  # backward does not switch it off while it runs either


@pytest.mark.usefixtures("collector_state")
def test_a_change_made_by_the_user_during_backward_is_kept():
    # The user (here a backward function, standing for code in another thread) switches the
    # collector off while a pass runs; the end of the pass must not switch it back on.
    gc.enable()
    x = param([1.0])
    y = custom_node([x], lambda t, g: (gc.disable() or np.ones(1),))
    y.backward()
    assert not gc.isenabled()


@pytest.mark.usefixtures("collector_state")
def test_a_collector_disabled_from_another_thread_during_backward_stays_disabled():
    gc.enable()
    inside, resume = threading.Event(), threading.Event()

    def slow_backward(tensor, grad):
        inside.set()
        assert resume.wait(10)
        return (np.ones(1),)

    x = param([1.0])
    y = custom_node([x], slow_backward)
    worker = threading.Thread(target=y.backward)
    worker.start()
    assert inside.wait(10)
    gc.disable()  # the user, while the other thread is inside backward()
    resume.set()
    worker.join(10)
    assert not worker.is_alive()
    assert not gc.isenabled()
    np.testing.assert_array_equal(x.grad, [1.0])


INTERRUPTS = 20_000


class _Interrupt(KeyboardInterrupt):
    """What the timer's handler raises: a KeyboardInterrupt this module can tell from a real Ctrl-C."""


def _raise_interrupt(signum, frame):
    raise _Interrupt()


@pytest.mark.usefixtures("collector_state", "without_foreign_gc_callbacks")
@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs POSIX interval timers")
def test_interrupts_at_random_instants_never_lose_the_collector_nor_split_a_pass(backend):
    """20,000 timer interrupts land at random instants in short forward + backward loops.

    After each one: the collector is in the state the user left it in, the engine's lock is
    free, and the two leaves have received the same number of whole passes (a pass interrupted
    part-way changed no ``.grad``).  Half the rounds free the graph each pass, half keep it.
    """
    assert threading.current_thread() is threading.main_thread()
    x, w = param([1.0, 2.0]), param([3.0, 4.0])  # small integers: every sum is exact
    # y = sum(x * w) + sum(exp(x * 0) * w): d/dx = w, d/dw = x + 1, and a Python VJP on the way
    kept = sum(x * w) + sum(exp(x * 0.0) * w)
    draw = random.Random(backend)
    previous = signal.signal(signal.SIGALRM, _raise_interrupt)
    passes_seen = 0
    swallowed = []  # an interrupt raised inside a finalizer is "ignored": name where, if it happens
    previous_hook = sys.unraisablehook
    sys.unraisablehook = lambda u: swallowed.append(f"{u.exc_type.__name__} in {u.object!r}")
    try:
        for round_ in range(INTERRUPTS):
            user_wants_gc = round_ % 3 != 0
            (gc.enable if user_wants_gc else gc.disable)()
            delay = draw.uniform(1e-6, 3e-4)
            deadline = time.monotonic() + 60.0  # a lost interrupt fails the round, never hangs it
            try:
                signal.setitimer(signal.ITIMER_REAL, delay)  # inside: it may fire at once
                if round_ % 2:
                    while time.monotonic() < deadline:
                        kept.backward(keep_graph=True)
                else:
                    while time.monotonic() < deadline:
                        (sum(x * w) + sum(exp(x * 0.0) * w)).backward()
                pytest.fail(f"round {round_}: the timer's interrupt ({delay * 1e6:.0f} us) never "
                            f"reached this loop; exceptions reported as ignored: {swallowed}")
            except _Interrupt:
                pass
            assert gc.isenabled() is user_wants_gc, f"round {round_}"
            assert not engine_lock_held(), f"round {round_}"
            if x.grad is None:  # interrupted before the first pass committed
                assert w.grad is None, f"round {round_}: w.grad {w.grad}"
                continue
            passes = x.grad[0] / 3.0
            assert passes == int(passes), f"round {round_}: x.grad {x.grad}"
            np.testing.assert_array_equal(x.grad, passes * np.array([3.0, 4.0]), f"round {round_}")
            np.testing.assert_array_equal(w.grad, passes * np.array([2.0, 3.0]), f"round {round_}")
            passes_seen = passes
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        sys.unraisablehook = previous_hook
    # Passes did complete between interrupts (a few per round on the pure engine, dozens on the
    # compiled one), so the interrupts fell all through running passes, not before the first.
    print(f"{passes_seen:.0f} passes committed in {INTERRUPTS} interrupted rounds")
    assert passes_seen > INTERRUPTS // 10


def _frames_of(tb):
    while tb is not None:
        yield tb.tb_frame.f_code
        tb = tb.tb_next


@pytest.mark.usefixtures("collector_state", "without_foreign_gc_callbacks")
@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs POSIX interval timers")
def test_interrupts_inside_long_passes_of_either_engine_are_all_or_nothing(backend):
    """Timer interrupts during long backward passes land inside the engine itself.

    The sweeps above interrupt Python frames; the compiled engine's own loop runs no Python
    except the backward functions it calls (and NumPy's Python-level helpers), so there a
    signal's handler runs inside one of them (``sum_backward``, ``exp_backward`` of every 20th
    of 20,000 nodes), mid-pass, with the compiled engine's
    ``_propagate`` below it on the stack.  Each interrupt must leave the gradients as they were
    or with one whole pass added; the test counts the interrupts whose traceback passes
    through the engine (``backward_pass`` of the active engine) and needs many of them.
    """
    assert threading.current_thread() is threading.main_thread()
    x, w = param([1.0, 2.0]), param([3.0, 4.0])
    y = w * 1.0
    for i in range(20_000):
        y = y + x
        if i % 20 == 0:
            y = y + exp(x * 0.0) * w  # a backward function in Python, called by the engine
    loss = sum(y)  # d/dx = 20,000, d/dw = 1 + 1,000: integers, every sum exact
    one_pass = [np.full(2, 20_000.0), np.full(2, 1001.0)]
    from clumsygrad import _backend

    # The module whose pass runs: the compiled engine, or the pure one (backend "python", or
    # any backend when the pure node is Tensor's base, CLUMSYGRAD_BACKEND=python).
    engine_file = _backend.engine.backward_pass.__module__.rsplit(".", 1)[-1]
    draw = random.Random(f"long-{backend}")
    previous = signal.signal(signal.SIGALRM, _raise_interrupt)
    inside_engine = rounds = 0
    try:
        loss.backward(keep_graph=True)  # warm up; and how long one pass takes
        start = datetime.datetime.now()
        loss.backward(keep_graph=True)
        seconds = max((datetime.datetime.now() - start).total_seconds(), 1e-4)
        for rounds in range(1, 151):
            before = grads_of([x, w])
            try:
                signal.setitimer(signal.ITIMER_REAL, draw.uniform(0.02, 0.6) * seconds)
                loss.backward(keep_graph=True)
                signal.setitimer(signal.ITIMER_REAL, 0)
            except _Interrupt as exc:
                codes = list(_frames_of(exc.__traceback__))
                if any(c.co_name.endswith("backward_pass") and engine_file in c.co_filename + c.co_name
                       for c in codes):
                    inside_engine += 1
            signal.setitimer(signal.ITIMER_REAL, 0)
            assert not engine_lock_held(), f"round {rounds}"
            got = grads_of([x, w])
            nothing = all(np.array_equal(g, b) for g, b in zip(got, before))
            whole = all(np.array_equal(g, b + p) for g, b, p in zip(got, before, one_pass))
            assert nothing or whole, f"round {rounds}: x.grad {got[0]}, w.grad {got[1]}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    print(f"{inside_engine} of {rounds} interrupts landed inside the {engine_file} engine's pass")
    # Some must land inside the engine's own pass: measured 10-103 of 150 on the compiled engine
    # (the share depends on the machine's timer granularity and load), 142-150 on the pure one.
    assert inside_engine >= max(3, rounds // 50)


def _signal_can_land(frame, event):
    """Whether a signal handler could run at this trace event.

    Everywhere except the line event of a ``with`` statement: on exit, that event comes
    between the block and the call to ``__exit__``, where a tracer can raise but CPython never
    runs a signal handler (it does so at calls, returns and backward jumps).
    """
    if event != "line":
        return True
    return not linecache.getline(frame.f_code.co_filename, frame.f_lineno).lstrip().startswith("with ")


@pytest.mark.usefixtures("collector_state")
def test_an_exception_at_any_line_of_a_pass_is_all_or_nothing(backend):
    """A deterministic sweep: an asynchronous exception raised at the k-th traced event of a pass.

    The trace function stands for a signal handler that runs at that point (a line of Python,
    a call or a return in the library or a backward function).
    """
    gc.enable()
    x, w = param([1.0, 2.0]), param([3.0, 4.0])

    def by_hand(tensor, grad):  # a backward function of several lines, run mid-pass
        ones = np.ones(2)
        scaled = ones * grad
        return (scaled,)

    y = sum(x * w) + sum(exp(x * 0.0) * w) + sum(relu(w)) + custom_node([x], by_hand)
    y.backward(keep_graph=True)
    one_pass = grads_of([x, w])
    events = [0]

    def counter(frame, event, arg):
        events[0] += 1
        return counter

    sys.settrace(counter)
    try:
        y.backward(keep_graph=True)
    finally:
        sys.settrace(None)
    total = events[0]
    assert total > 5
    for k in range(total + 1):
        before = grads_of([x, w])
        seen = [0]

        def tracer(frame, event, arg):
            seen[0] += 1
            if seen[0] == k and _signal_can_land(frame, event):
                raise _Interrupt()
            return tracer

        sys.settrace(tracer)
        try:
            y.backward(keep_graph=True)
        except _Interrupt:
            interrupted = True
        else:
            interrupted = False
        finally:
            sys.settrace(None)
        assert not engine_lock_held(), k
        assert gc.isenabled(), k
        got = grads_of([x, w])
        whole = [b + p for b, p in zip(before, one_pass)]
        nothing = all(np.array_equal(g, e) for g, e in zip(got, before))
        everything = all(np.array_equal(g, e) for g, e in zip(got, whole))
        # Interrupted: the whole pass (the exception came after the commit) or nothing at all.
        assert everything or (interrupted and nothing), (
            f"event {k} of {total}: x.grad {got[0]}, w.grad {got[1]}"
        )


# =========================================================================== defect 2: versions
def _named_in_place_error(tensor):
    return pytest.raises(RuntimeError, match=rf"tensor {tensor._id} of shape .*modified in place")


def test_a_parameter_changed_after_the_forward_pass_stops_backward():
    x, w = param([1.0, 2.0]), param([3.0, 4.0])
    x.grad = np.array([10.0, 20.0])
    y = sum(x * w)
    w._bump_version()
    with _named_in_place_error(w):
        y.backward()
    np.testing.assert_array_equal(x.grad, [10.0, 20.0])
    assert w.grad is None
    sum(x * w).backward()  # a new forward pass records the new version
    np.testing.assert_array_equal(x.grad, [13.0, 24.0])


@pytest.mark.parametrize("changed", ["x", "w"])
def test_a_kept_graph_is_checked_again_at_every_backward(changed):
    x, w = param([1.0, 2.0]), param([3.0, 4.0])
    y = sum(x * w)
    y.backward(keep_graph=True)
    before = grads_of([x, w])
    tensor = x if changed == "x" else w
    tensor._bump_version()
    with _named_in_place_error(tensor):
        y.backward()
    for got, want in zip(grads_of([x, w]), before):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("make_optimizer", ["SGD", "Adam"])
def test_an_optimizer_step_between_forward_and_a_kept_backward_stops_it(make_optimizer):
    from clumsygrad import optimizer

    w, b = param([1.0, 2.0]), param([0.5])
    loss = sum(tanh(w * 2.0) * b)
    loss.backward(keep_graph=True)
    before = grads_of([w, b])
    getattr(optimizer, make_optimizer)([w, b], lr=0.1).step()  # changes w and b in place
    with pytest.raises(RuntimeError, match=r"tensor (%d|%d) of shape .*modified in place" % (w._id, b._id)):
        loss.backward()
    for got, want in zip(grads_of([w, b]), before):
        np.testing.assert_array_equal(got, want)


OWN_OUTPUT_OPS = {
    "exp": exp,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "softmax": lambda t: softmax(t, axis=-1),
    "relu": relu,
    "sqrt": lambda t: sqrt(t * t + 1.0),
}


@pytest.mark.parametrize("name", sorted(OWN_OUTPUT_OPS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ops_that_read_their_own_output_refuse_a_changed_output(name, dtype):
    x = param([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype)
    c = param([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype)
    x.grad = np.full((2, 3), 7.0, dtype=dtype)
    out = OWN_OUTPUT_OPS[name](x)
    loss = sum(out * c)
    out._bump_version()  # what an in-place write into out.data through the library records
    with _named_in_place_error(out):
        loss.backward()
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 7.0, dtype=dtype))
    assert c.grad is None


def test_the_changed_parent_is_named_among_many():
    from clumsygrad import concatenate

    a, b, c = param([1.0]), param([2.0]), param([3.0])
    b._bump_version()  # changed before the forward pass: fine
    y = sum(concatenate([a, b, c]) * 2.0)
    c._bump_version()
    with _named_in_place_error(c):
        y.backward()
    assert a.grad is None and b.grad is None and c.grad is None


def test_a_graph_recorded_by_hand_counts_versions_from_the_assignment():
    from clumsygrad import grad

    x = param([1.0, 2.0])
    x._bump_version()  # e.g. an optimizer step before this forward pass
    z = Tensor(x.data * 3.0, dtype=np.float64)
    z._grad_fn, z._extra = grad.mul_scalar_backward, {"scalar_value": 3.0}
    z._parents = (x,)  # the moment the graph is recorded
    z._tensor_type, z._requires_grad = TensorType.INTERMEDIATE, True
    z.backward(np.ones(2), keep_graph=True)
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])
    x._bump_version()
    with _named_in_place_error(x):
        z.backward(np.ones(2))


@pytest.mark.parametrize("parents, error, message", [
    ((), ValueError, "an operation needs at least one parent tensor"),
    ((1.0,), TypeError, "the parents of a tensor must be tensors, got float"),
])
def test_recording_with_bad_parents_is_refused(parents, error, message):
    with pytest.raises(error, match=message):
        Tensor._create_node(np.zeros(2), None, parents)


# =========================================================================== defect 3: all or nothing
def test_a_freed_shared_subgraph_fails_the_second_backward_without_changing_any_grad():
    w = param([1.0, 2.0])
    b = param([0.5, 0.5])
    h = tanh(w * 2.0 + b)  # shared by both losses
    l1 = sum(h * 3.0)
    l2 = sum(w * 5.0) + sum(h * 4.0) + sum(b)
    l1.backward()  # frees h's graph
    before = grads_of([w, b])
    with pytest.raises(RuntimeError, match="No backward graph exists"):
        l2.backward()
    for got, want in zip(grads_of([w, b]), before):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("grads_exist", [False, True])
def test_a_failing_backward_function_changes_no_grad(grads_exist):
    x, w = param([1.0, 2.0]), param([3.0, 4.0])
    if grads_exist:
        x.grad, w.grad = np.array([1.0, 1.0]), np.array([2.0, 2.0])

    def broken(tensor, grad):
        raise ArithmeticError("this backward function fails")

    # The failing branch comes first, so w and every node above it are reached before it.
    failing = sum(custom_node([x], broken))
    product = x * w
    y = failing + sum(product)
    nodes = [x, w, product, failing, y]
    before = grads_of(nodes)
    with pytest.raises(RuntimeError, match="this backward function fails"):
        y.backward()
    for got, want in zip(grads_of(nodes), before):
        np.testing.assert_array_equal(got, want)


def test_a_wrongly_shaped_gradient_changes_no_grad():
    x, w = param([1.0, 2.0]), param([3.0, 4.0])
    product = x * w
    y = sum(custom_node([x], lambda t, g: (np.ones(3),))) + sum(product)
    with pytest.raises(RuntimeError, match=r"shape \(3,\), expected \(2,\)"):
        y.backward()
    assert x.grad is None and w.grad is None and product.grad is None and y.grad is None


# =========================================================================== defect 4: threads
def test_concurrent_backward_into_shared_parameters_adds_every_pass():
    """4 threads start one pass each into two fresh shared leaves at once, 1,000 times over.

    The first write of a ``.grad`` is where two unlocked passes lose one (both see None);
    the GIL switches threads every microsecond here to give every race its chance.
    """
    trials, threads_n = 1000, 4
    state, results, errors = {}, [], []

    def next_trial():  # run by the last thread to reach the barrier
        if state:
            results.append((state["w"].grad, state["b"].grad))
        state["w"], state["b"] = param(np.ones(3)), param(np.zeros(3))

    barrier = threading.Barrier(threads_n, action=next_trial)

    def work():
        try:
            for _ in range(trials):
                barrier.wait()
                w, b = state["w"], state["b"]
                # add_backward hands both leaves one array, which the engine must copy: the
                # slowest first write, where an unlocked engine lets another thread in.
                sum((w + b) * 2.0).backward()  # dw = db = 2
            barrier.wait()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            barrier.abort()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work) for _ in range(threads_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors
    assert len(results) == trials
    lost = [k for k, (gw, gb) in enumerate(results)
            if not (np.array_equal(gw, np.full(3, 8.0)) and np.array_equal(gb, np.full(3, 8.0)))]
    assert lost == [], f"{len(lost)} of {trials} trials lost a pass, e.g. {results[lost[0]]}"


# =========================================================================== defect 5: copies
def _chain(n):
    x = param(1.0)
    y = x
    for _ in range(n // 2):
        y = y * 1.0001
        y = y + 0.5
    return x, y


def test_a_shallow_copy_never_shares_the_gradient():
    x = param([1.0, 2.0])
    sum(x * 3.0).backward()
    c = copy.copy(x)
    assert c.grad is not x.grad and not np.shares_memory(c.grad, x.grad)
    np.testing.assert_array_equal(c.grad, [3.0, 3.0])
    sum(c * 2.0).backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])  # the original is untouched
    np.testing.assert_array_equal(c.grad, [5.0, 5.0])
    sum(x).backward()
    np.testing.assert_array_equal(c.grad, [5.0, 5.0])


def test_copy_semantics():
    x = param([1.0, 2.0], np.float32)
    x.grad = np.array([0.5, 0.5], dtype=np.float32)
    shallow, deep, loaded = copy.copy(x), copy.deepcopy(x), pickle.loads(pickle.dumps(x))
    ids = {x._id, shallow._id, deep._id, loaded._id}
    assert len(ids) == 4
    assert shallow.data is x.data  # a shallow copy shares the values, like any shallow copy
    for c in (deep, loaded):
        assert not np.shares_memory(c.data, x.data)
    for c in (shallow, deep, loaded):
        assert type(c) is Tensor and c._tensor_type is TensorType.PARAMETER and c.requires_grad
        assert c.dtype == np.float32
        np.testing.assert_array_equal(c.data, x.data)
        np.testing.assert_array_equal(c.grad, x.grad)
        assert not np.shares_memory(c.grad, x.grad)


def test_an_intermediate_copy_carries_no_graph():
    x = param([1.0, 2.0])
    y = x * 2.0
    for c in (copy.copy(y), copy.deepcopy(y), pickle.loads(pickle.dumps(y))):
        assert c._tensor_type is TensorType.INTERMEDIATE and c.requires_grad
        assert c._parents == () and c._grad_fn is None
        np.testing.assert_array_equal(c.data, [2.0, 4.0])
        with pytest.raises(RuntimeError, match="No backward graph exists"):
            c.backward(np.ones(2))
        sum(c * 3.0).backward()  # used in a new graph it is a leaf: its own .grad, none upstream
        np.testing.assert_array_equal(c.grad, [3.0, 3.0])
        assert x.grad is None
    assert y.grad is None and y._parents == (x,)  # the original keeps its graph
    sum(y).backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


def test_deep_graphs_pickle_and_deepcopy_without_recursion():
    x, y = _chain(20_000)
    limit = sys.getrecursionlimit()
    for c in (pickle.loads(pickle.dumps(y)), copy.deepcopy(y), copy.deepcopy([x, y])[1]):
        assert c._parents == ()
        np.testing.assert_array_equal(c.data, y.data)
    assert sys.getrecursionlimit() == limit
    y.backward()  # the original graph is intact
    np.testing.assert_allclose(x.grad, 1.0001 ** 10_000, rtol=1e-12)


def test_deepcopy_keeps_identity_within_one_copy_and_ids_unique():
    x = param([1.0])
    copied = copy.deepcopy({"a": x, "b": x, "c": [x]})
    assert copied["a"] is copied["b"] is copied["c"][0]
    assert copied["a"] is not x and copied["a"]._id != x._id
    many = copy.deepcopy([param([float(k)]) for k in range(50)])
    ids = [t._id for t in many]
    assert len(set(ids)) == 50 and max(ids) < Tensor._id_counter
    assert Tensor([0.0])._id not in ids  # new tensors never reuse a copy's id


def test_subclasses_survive_copies():
    loaded = pickle.loads(pickle.dumps(_Sub([1.0, 2.0], TensorType.PARAMETER)))
    assert type(loaded) is _Sub and type(copy.deepcopy(loaded)) is _Sub
    assert loaded.requires_grad


class _Sub(Tensor):
    __slots__ = ()


# =========================================================================== defect 6: junk input
JUNK = [
    (None, "NoneType"),
    ("3.5", "str"),
    (b"1", "bytes"),
    (1 + 2j, "complex"),
    (np.complex64(1), "complex"),
    ([1.0, 2j], "complex"),
    (np.array([1.0, 2.0], dtype=np.complex128), "complex128"),
    (datetime.datetime(2024, 1, 1), "datetime"),
    (datetime.date(2024, 1, 1), "date"),
    (np.datetime64("2024-01-01"), "datetime64"),
    (np.timedelta64(3, "s"), "timedelta64"),
    (object(), "object"),
    ([None, None], "list"),
    ([1.0, None], "list"),
    (["1", "2"], "<U1"),
    (np.array([1.0, None], dtype=object), "object"),
    ({"a": 1}, "dict"),
]
REAL = [
    (3, 3.0),
    (2.5, 2.5),
    (True, 1.0),
    (np.float16(1.5), 1.5),
    (np.int8(-4), -4.0),
    (np.uint64(7), 7.0),
    (np.bool_(False), 0.0),
    (np.array(4.0), 4.0),
    ([[1, 2], [3, 4]], [[1.0, 2.0], [3.0, 4.0]]),
    ([True, 2, 3.5], [1.0, 2.0, 3.5]),
    (np.arange(3, dtype=np.int32), [0.0, 1.0, 2.0]),
    (np.array([0.5], dtype=np.float16), [0.5]),
]


def _given(word):
    return pytest.raises(TypeError, match=rf"real numbers.*{re.escape(word)}")


@pytest.mark.parametrize("value, word", JUNK, ids=[w for _, w in JUNK])
def test_tensor_refuses_junk_naming_it(value, word):
    with _given(word):
        Tensor(value)


@pytest.mark.parametrize("value, word", JUNK[1:], ids=[w for _, w in JUNK[1:]])  # None: the default
def test_backward_refuses_a_junk_gradient_and_changes_nothing(value, word):
    x = param([1.0, 2.0])
    y = x * 2.0
    with _given(word):
        y.backward(value)
    assert x.grad is None
    y.backward([1, 1])  # the graph was not freed by the refused call
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


@pytest.mark.parametrize("value, word", JUNK[1:], ids=[w for _, w in JUNK[1:]])  # None: no gradient
def test_the_grad_setter_refuses_junk(value, word):
    x = param([1.0, 2.0])
    x.grad = np.array([5.0, 6.0])
    with _given(word):
        x.grad = value
    np.testing.assert_array_equal(x.grad, [5.0, 6.0])


def test_backward_of_a_list_of_none_gives_no_nan():
    x = param([1.0, 2.0])
    with _given("list"):
        (x * 1.0).backward([None, None])
    assert x.grad is None


@pytest.mark.parametrize("value, expected", REAL, ids=[repr(v) for v, _ in REAL])
def test_real_numbers_are_still_accepted(value, expected):
    for dtype in (np.float32, np.float64):
        t = Tensor(value, dtype=dtype)
        assert t.dtype == dtype
        np.testing.assert_array_equal(t.data, expected)
    shape = np.shape(expected)
    p = param(np.zeros(shape))
    (p * 3.0).backward(value)
    np.testing.assert_array_equal(p.grad, np.asarray(expected) * 3.0)
    p.grad = value
    np.testing.assert_array_equal(p.grad, expected)


# =========================================================================== defect 9: weakrefs
def test_weak_references_follow_the_tensor():
    x = param([1.0, 2.0])
    y = x * 2.0
    refs = [weakref.ref(x), weakref.ref(y)]
    assert refs[0]() is x and refs[1]() is y
    finalized = []
    weakref.finalize(y, finalized.append, "y")
    del y
    assert refs[1]() is None and finalized == ["y"]  # freed by reference counting at once
    cache = weakref.WeakValueDictionary({"x": x})
    assert cache["x"] is x
    del x
    assert refs[0]() is None and "x" not in cache


def test_a_graph_freed_by_backward_drops_its_weakly_referenced_nodes():
    x = param([1.0, 2.0])
    h = x * 2.0
    ref = weakref.ref(h)
    loss = sum(h * 3.0)
    del h
    assert ref() is not None  # alive: the graph holds it
    loss.backward()
    assert ref() is None  # backward freed the graph
    ws = weakref.WeakSet([x, loss])
    assert len(ws) == 2
