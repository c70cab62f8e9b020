"""clumsygrad.func: gradients of gradients and the function transforms.

Second derivatives are checked against central finite differences of first derivatives that
``backward()`` computes (itself checked against finite differences in test_registry.py), in
float64, on both backends (the ``backend`` fixture).
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

import clumsygrad as cg
from clumsygrad import _registry, func
from clumsygrad._registry import OPS
from clumsygrad.tensor import Tensor, TensorType

from helpers import numeric_gradient
from op_samples import SAMPLES

CASES = [(name, i) for name in sorted(SAMPLES) for i in range(len(SAMPLES[name]))]


def _params(arrays):
    return [Tensor(a, TensorType.PARAMETER, dtype=np.float64) for a in arrays]


def _first_derivatives(fn, arrays, weight):
    """d sum(fn(*arrays) * weight) / d arrays[i], by backward()."""
    params = _params(arrays)
    out = fn(*params)
    (out * Tensor(weight, dtype=np.float64)).sum().backward()
    return [p.grad if p.grad is not None else np.zeros_like(a) for p, a in zip(params, arrays)]


# ----------------------------------------------------------------------------- every op
@pytest.mark.parametrize("name,index", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_second_derivatives_of_every_op_match_finite_differences(name, index):
    """H v for the scalar sum(op(x) * w): create_graph=True, then a second pass, against finite
    differences of <first derivative, v>.  Piecewise-linear ops (second_order=False) are checked
    too: away from their kinks the answer is zero, and it must come out as zero, not an error."""
    sample = SAMPLES[name][index]
    rng = np.random.default_rng(11)
    params = _params(sample.inputs)
    out = sample.fn(*params)
    weight = rng.standard_normal(out.shape)
    vs = [rng.standard_normal(a.shape) for a in sample.inputs]
    loss = (out * Tensor(weight, dtype=np.float64)).sum()
    firsts = func.gradients(loss, params, create_graph=True, allow_unused=True)
    inner = None
    for g, v in zip(firsts, vs):
        if g is not None:
            term = (g * Tensor(v, dtype=np.float64)).sum()
            inner = term if inner is None else inner + term
    if inner is None or not inner.requires_grad:
        got = [np.zeros_like(a) for a in sample.inputs]
    else:
        seconds = func.gradients(inner, params, allow_unused=True)
        got = [np.zeros_like(a) if s is None else s.data for s, a in zip(seconds, sample.inputs)]
    assert all(p.grad is None for p in params), "gradients() must not write .grad"
    eps = max(sample.eps, 1e-5)
    for i, a in enumerate(sample.inputs):
        def directional(x, i=i):
            arrays = [x if j == i else b for j, b in enumerate(sample.inputs)]
            gs = _first_derivatives(sample.fn, arrays, weight)
            return float(sum(np.sum(g * v) for g, v in zip(gs, vs)))

        expected = numeric_gradient(directional, a, eps=eps)
        tol = max(sample.tol, 1e-5) * 10
        np.testing.assert_allclose(got[i], expected, rtol=tol, atol=tol, err_msg=f"{name} input {i}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_third_derivatives_run_for_every_op_and_keep_dtypes(dtype):
    """create_graph twice over every sample (the graphs of second derivatives record ops such as
    index_add and cast, which must be differentiable again); every gradient in its input's dtype."""
    failures = []
    for name, index in CASES:
        sample = SAMPLES[name][index]
        try:
            params = [Tensor(a, TensorType.PARAMETER, dtype=dtype) for a in sample.inputs]
            out = sample.fn(*params)
            weight = Tensor(np.random.default_rng(5).standard_normal(out.shape), dtype=dtype)
            level = (out * weight).sum()
            for order in (1, 2, 3):
                if not level.requires_grad:
                    break
                grads = func.gradients(level, params, create_graph=order < 3, allow_unused=True)
                for g, p in zip(grads, params):
                    assert g is None or (g.dtype == p.dtype and g.shape == p.shape), (order, g, p)
                terms = [cg.sum(g * g) for g in grads if g is not None]
                level = terms[0]
                for t in terms[1:]:
                    level = level + t
        except Exception as exc:  # collected, so one run names every failing op
            failures.append(f"{name}-{index}: {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures)


def test_every_op_is_differentiable_or_says_why():
    """An op marked differentiable=False names itself under create_graph=True (never a zero)."""
    refused = [name for name, op in OPS.items() if not op.differentiable]
    for name in refused:
        for sample in SAMPLES[name]:
            params = _params(sample.inputs)
            out = sample.fn(*params)
            with pytest.raises(TypeError, match=OPS[name].name):
                func.gradients(out.sum(), params, create_graph=True, allow_unused=True)


def test_user_written_backward_function_is_refused_by_name():
    x = cg.Tensor([1.0, 2.0], TensorType.PARAMETER, dtype=np.float64)

    def my_backward(tensor, grad):
        return (grad * 2.0,)

    y = Tensor._create_node(x.data * 2.0, my_backward, (x,))
    # first order works through the function itself
    np.testing.assert_allclose(func.gradients(y.sum(), x).data, [2.0, 2.0])
    with pytest.raises(TypeError, match="my_backward"):
        func.gradients(y.sum(), x, create_graph=True)


# ----------------------------------------------------------------------------- gradients()
def test_gradients_matches_backward_and_leaves_grad_alone():
    rng = np.random.default_rng(0)
    w = Tensor(rng.standard_normal((3, 2)), TensorType.PARAMETER, dtype=np.float64)
    x = Tensor(rng.standard_normal((4, 3)), dtype=np.float64)
    loss = cg.sum(cg.tanh(x @ w) ** 2)
    (g,) = func.gradients(loss, [w])
    assert w.grad is None and g.grad is None and not g.requires_grad
    loss.backward(keep_graph=True)
    np.testing.assert_allclose(g.data, w.grad, rtol=1e-12)
    g2 = func.gradients(loss, w, create_graph=True)
    assert g2.requires_grad and g2.dtype == np.float64
    np.testing.assert_allclose(g2.data, w.grad, rtol=1e-12)


def test_gradients_errors():
    x = Tensor([1.0, 2.0], TensorType.PARAMETER)
    c = Tensor([1.0, 2.0])
    y = x * 3.0
    with pytest.raises(RuntimeError, match="grad_outputs"):
        func.gradients(y, x)
    with pytest.raises(ValueError, match="shape"):
        func.gradients(y, x, grad_outputs=np.ones(3))
    with pytest.raises(ValueError, match="does not require gradients"):
        func.gradients(y.sum(), c)
    z = Tensor([1.0], TensorType.PARAMETER)
    with pytest.raises(ValueError, match="not used"):
        func.gradients(y.sum(), [x, z])
    gx, gz = func.gradients(y.sum(), [x, z], allow_unused=True)
    assert gz is None
    np.testing.assert_allclose(gx.data, [3.0, 3.0])
    with pytest.raises(TypeError, match="Tensor"):
        func.gradients(y.sum(), [np.ones(2)])
    y.sum().backward()  # frees the graph
    with pytest.raises(RuntimeError, match="no backward graph"):
        func.gradients(y, x, grad_outputs=np.ones(2))


def test_gradients_dtype_follows_each_input():
    a = Tensor([1.0, 2.0], TensorType.PARAMETER, dtype=np.float32)
    b = Tensor([3.0, 4.0], TensorType.PARAMETER, dtype=np.float64)
    out = cg.sum(a * b)
    for create_graph in (False, True):
        ga, gb = func.gradients(out, [a, b], create_graph=create_graph)
        assert ga.dtype == np.float32 and gb.dtype == np.float64
    y = b * 2.0  # float64 output, float32 cotangent
    for create_graph in (False, True):
        g = func.gradients(y, b, grad_outputs=Tensor([1.0, 0.5]), create_graph=create_graph)
        assert g.dtype == np.float64
        np.testing.assert_allclose(g.data, [2.0, 1.0])


def test_gradients_of_several_outputs_add_up():
    x = Tensor([0.5, -1.0], TensorType.PARAMETER, dtype=np.float64)
    y1, y2 = cg.sum(cg.exp(x)), cg.sum(x * x)
    g = func.gradients([y1, y2], [x])[0]
    np.testing.assert_allclose(g.data, np.exp(x.data) + 2 * x.data)


def test_version_check_still_raises_under_create_graph():
    x = Tensor([0.5, 2.0], TensorType.PARAMETER, dtype=np.float64)
    y = cg.sum(cg.exp(x))
    x.data[0] = 1.0
    x._bump_version()
    for create_graph in (False, True):
        with pytest.raises(RuntimeError, match="modified in place"):
            func.gradients(y, x, create_graph=create_graph)


# ----------------------------------------------------------------------------- transforms
def test_grad_of_grad_of_grad():
    f = lambda x: cg.sum(cg.sin(x) * x * x)  # noqa: E731
    x = np.array([0.3, 1.1, -0.7])
    d1 = func.grad(f)(x).data
    d3 = func.grad(lambda x: cg.sum(func.grad(lambda y: cg.sum(func.grad(f)(y)))(x)))(x).data
    # f' = 2x sin + x^2 cos; f'' = 2 sin + 4x cos - x^2 sin; f''' = 6 cos - 6x sin - x^2 cos
    np.testing.assert_allclose(d1, 2 * x * np.sin(x) + x ** 2 * np.cos(x), rtol=1e-12)
    np.testing.assert_allclose(d3, 6 * np.cos(x) - 6 * x * np.sin(x) - x ** 2 * np.cos(x), rtol=1e-10)


def test_three_deep_scalar_and_jacobian_of_grad():
    f = lambda x: x * x * x * x  # noqa: E731
    assert func.grad(func.grad(func.grad(f)))(2.0).item() == pytest.approx(48.0)
    h = func.jacobian(func.grad(lambda x: cg.sum(cg.exp(x) * x)))(np.array([0.1, 0.2]))
    np.testing.assert_allclose(h.data, np.diag(np.exp([0.1, 0.2]) * (2 + np.array([0.1, 0.2]))))
    # jacobian(jacobian(grad)): third derivative tensor of sum(x^3 * y) ...
    t = func.jacobian(func.jacobian(func.grad(lambda x: cg.sum(x ** 3))))(np.array([1.0, 2.0]))
    expected = np.zeros((2, 2, 2))
    expected[0, 0, 0], expected[1, 1, 1] = 6.0, 6.0
    np.testing.assert_allclose(t.data, expected)


def test_nested_grads_do_not_confuse_their_variables():
    # d/dx [ d/dy (x * y) at y = x ] = d/dx x = 1 (not 2)
    assert func.grad(lambda x: func.grad(lambda y: x * y)(x))(3.0).item() == pytest.approx(1.0)


def test_grad_argnums_has_aux_and_value_and_grad():
    f = lambda a, b: (cg.sum(a * b * b), {"b": b})  # noqa: E731
    a, b = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    (ga, gb), aux = func.grad(f, argnums=(0, 1), has_aux=True)(a, b)
    np.testing.assert_allclose(ga.data, b * b)
    np.testing.assert_allclose(gb.data, 2 * a * b)
    assert not aux["b"].requires_grad
    (value, _), g = func.value_and_grad(f, argnums=1, has_aux=True)(a, b)
    assert value.item() == pytest.approx(np.sum(a * b * b))
    np.testing.assert_allclose(g.data, 2 * a * b)
    with pytest.raises(ValueError, match="one-element"):
        func.grad(lambda x: x * 2.0)(a)
    with pytest.raises(ValueError, match="out of range"):
        func.grad(lambda x: cg.sum(x), argnums=2)(a)


def test_argument_dtypes():
    f = lambda x: cg.sum(x * x)  # noqa: E731
    assert func.grad(f)(np.ones(2, np.float32)).dtype == np.float32
    assert func.grad(f)(np.ones(2)).dtype == np.float64
    assert func.grad(f)(np.array([1, 2])).dtype == np.float64
    assert func.grad(f)(3).dtype == np.float64
    assert func.grad(f)(Tensor([1.0, 2.0])).dtype == np.float32
    g = func.grad(lambda x: cg.sum(x * 0.0 + 1.0))(np.ones(3))  # f does not depend on x
    np.testing.assert_array_equal(g.data, 0.0)


def test_transforms_leave_no_graph_and_no_grad():
    w = Tensor(np.array([[0.5, -0.2], [0.1, 0.3]]), TensorType.PARAMETER, dtype=np.float64)
    x = Tensor(np.array([1.0, 2.0]), dtype=np.float64)
    loss = lambda w: cg.sum(cg.tanh(x @ w) ** 2)  # noqa: E731
    g = func.grad(loss)(w)
    h = func.hessian(loss)(w)
    v = func.hvp(loss, w, np.ones((2, 2)))
    for t in (g, h, v):
        assert t._tensor_type == TensorType.INPUT and not t.requires_grad and t._parents == ()
    assert w.grad is None
    np.testing.assert_allclose(v.data, (h.data.reshape(4, 4) @ np.ones(4)).reshape(2, 2), rtol=1e-10)


def test_transforms_work_under_no_grad_and_restore_it():
    f = lambda x: cg.sum(cg.exp(x))  # noqa: E731
    with cg.no_grad():
        g = func.grad(f)(np.array([0.0, 1.0]))
        assert not cg.tensor._graph.is_grad_enabled()
        h = func.hessian(f)(np.array([0.0, 1.0]))
        assert not cg.tensor._graph.is_grad_enabled()
    np.testing.assert_allclose(g.data, np.exp([0.0, 1.0]))
    np.testing.assert_allclose(h.data, np.diag(np.exp([0.0, 1.0])))
    assert cg.tensor._graph.is_grad_enabled()
    with pytest.raises(ZeroDivisionError):
        func.grad(lambda x: 1 / 0)(1.0)
    assert cg.tensor._graph.is_grad_enabled() and func._depth() == 0


def test_vjp_and_jacobian_shapes():
    a = np.arange(6.0).reshape(2, 3) / 10
    f = lambda x: cg.tanh(x) * 2.0  # noqa: E731
    out, pull = func.vjp(f, a)
    np.testing.assert_allclose(out.data, np.tanh(a) * 2)
    ct = np.ones((2, 3))
    (g,) = pull(ct)
    np.testing.assert_allclose(g.data, 2 * (1 - np.tanh(a) ** 2))
    (g2,) = pull(ct * 2)  # callable again
    np.testing.assert_allclose(g2.data, 2 * g.data)
    j = func.jacobian(f)(a)
    assert j.shape == (2, 3, 2, 3)
    np.testing.assert_allclose(j.data.reshape(6, 6), np.diag(2 * (1 - np.tanh(a.ravel()) ** 2)))
    ja, jb = func.jacobian(lambda x, y: x * y, argnums=(0, 1))(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    np.testing.assert_allclose(ja.data, np.diag([3.0, 4.0]))
    np.testing.assert_allclose(jb.data, np.diag([1.0, 2.0]))


def _mlp_loss(sizes=(3, 4, 2), batch=5, seed=0):
    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal((batch, sizes[0])), dtype=np.float64)
    y = Tensor(rng.standard_normal((batch, sizes[-1])), dtype=np.float64)
    shapes = [(sizes[0], sizes[1]), (sizes[1],), (sizes[1], sizes[2]), (sizes[2],)]
    count = sum(int(np.prod(s)) for s in shapes)

    def loss(theta):
        parts, k = [], 0
        for s in shapes:
            n = int(np.prod(s))
            parts.append(theta[k:k + n].reshape(s))
            k += n
        w1, b1, w2, b2 = parts
        h = cg.tanh(x @ w1 + b1)
        return cg.mean((h @ w2 + b2 - y) ** 2)

    return loss, rng.standard_normal(count) * 0.5


def test_hessian_of_mlp_loss_is_symmetric_and_matches_finite_differences():
    loss, theta = _mlp_loss()
    h = func.hessian(loss)(theta).data
    assert h.shape == (theta.size, theta.size)
    np.testing.assert_allclose(h, h.T, rtol=1e-10, atol=1e-12)
    grad = lambda t: func.grad(loss)(t).data  # noqa: E731
    fd = np.stack([numeric_gradient(lambda t, i=i: grad(t)[i], theta, eps=1e-5) for i in range(theta.size)])
    np.testing.assert_allclose(h, fd, rtol=1e-6, atol=1e-7)
    v = np.random.default_rng(1).standard_normal(theta.size)
    np.testing.assert_allclose(func.hvp(loss, theta, v).data, h @ v, rtol=1e-10, atol=1e-12)


def test_hessian_with_two_arguments_gives_blocks():
    f = lambda a, b: cg.sum(a * a * b)  # noqa: E731
    a, b = np.array([1.0, 2.0]), np.array([3.0, 5.0])
    (haa, hab), (hba, hbb) = func.hessian(f, argnums=(0, 1))(a, b)
    np.testing.assert_allclose(haa.data, np.diag(2 * b))
    np.testing.assert_allclose(hab.data, np.diag(2 * a))
    np.testing.assert_allclose(hba.data, np.diag(2 * a))
    np.testing.assert_allclose(hbb.data, np.zeros((2, 2)))


# ----------------------------------------------------------------------------- guarantees
def test_threads_run_transforms_concurrently():
    loss, theta = _mlp_loss(seed=3)
    expected = func.hessian(loss)(theta).data
    results, errors = {}, []

    def work(k):
        try:
            with cg.no_grad() if k % 2 else cg.enable_grad():
                for _ in range(3):
                    results[k] = func.hessian(loss)(theta).data
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(results) == 4
    for r in results.values():
        np.testing.assert_allclose(r, expected, rtol=1e-12)


def test_nested_pass_inside_a_transform_does_not_deadlock():
    w = Tensor([1.0, 2.0], TensorType.PARAMETER, dtype=np.float64)

    def f(x):
        loss = cg.sum(w * w)
        loss.backward()  # a whole backward pass while the transform evaluates
        return cg.sum(x * x * w)

    g = func.grad(f)(np.array([1.0, 3.0]))
    np.testing.assert_allclose(g.data, 2 * np.array([1.0, 3.0]) * w.data)
    np.testing.assert_allclose(w.grad, 2 * w.data)
    done = []
    t = threading.Thread(target=lambda: done.append(func.hessian(lambda x: cg.sum(x ** 3))(np.ones(2))))
    t.start()
    t.join(30)
    assert done, "a transform in another thread did not finish"


def test_second_order_on_float32_mixed_with_float64():
    x32 = np.array([0.5, 1.5], dtype=np.float32)
    h = func.hessian(lambda x: cg.sum(cg.exp(x) * 2.0))(x32)
    assert h.dtype == np.float32
    np.testing.assert_allclose(h.data, np.diag(2 * np.exp(x32)), rtol=1e-6)


def test_tensor_vjp_refuses_kernel_only_ops():
    """The registry refuses differentiable=False ops by name (checked on a stand-in entry)."""
    op = OPS["exp"]
    saved = op.differentiable
    x = Tensor([0.5], TensorType.PARAMETER, dtype=np.float64)
    y = cg.exp(x)
    try:
        op.differentiable = False
        with pytest.raises(TypeError, match="exp"):
            func.gradients(y.sum(), x, create_graph=True)
    finally:
        op.differentiable = saved
    assert _registry.rule_of(y._grad_fn)[0] is op
