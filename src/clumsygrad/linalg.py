"""Products and diagonals of tensors: ``einsum``, ``tensordot``, ``dot``, ``outer``, ``diagonal``,
``trace``, ``triu``, ``tril``, with gradients.

Each op is a registry entry (forward on arrays, VJP beside it), reached by NumPy's names too
(``np.einsum(..., t)``, ``np.dot(a, t)``) and, where NumPy's arrays have them, as methods
(``t.dot(w)``, ``t.diagonal()``, ``t.trace()``).  The products' VJPs are einsums themselves
(built by ``_einsum_vjp``), so on Tensors they record einsums and can be differentiated again.
"""
from __future__ import annotations

import operator
import string

import numpy as np

from ._adjoint import is_array, normalize_axes, scatter, unbroadcast
from ._registry import OPS, as_tensors, defop, export

_LETTERS = string.ascii_letters


def _values(x):
    return x if is_array(x) else x._data


# ----------------------------------------------------------------------------- einsum
def parse_einsum(subscripts: str, shapes) -> tuple:
    """``subscripts`` in explicit form for operands of ``shapes``: ``(inputs, output)``, each a
    string of letters (ellipses spelt out right-aligned, the implicit output made explicit).

    A dimension of length 1 that broadcasts against a longer one gets a letter of its own (so
    the VJPs sum over it).  ``ValueError`` naming the subscripts when they do not fit the shapes.
    """
    if not isinstance(subscripts, str):
        raise TypeError(
            "einsum of Tensors takes the subscripts as a string first (np.einsum('ij,jk->ik', a, b)); "
            f"got {type(subscripts).__name__}"
        )
    spec = subscripts.replace(" ", "")
    if "->" in spec:
        lhs, out = spec.split("->")
        explicit = True
    else:
        lhs, out, explicit = spec, "", False
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(
            f"einsum {subscripts!r} names {len(terms)} operands, {len(shapes)} given"
        )
    used = set(c for c in spec if c in _LETTERS)
    free = [c for c in _LETTERS if c not in used]
    ell_len = 0
    for term, shape in zip(terms, shapes):
        if "..." in term:
            ell_len = max(ell_len, len(shape) - (len(term) - 3))
    ell = "".join(free[:ell_len])
    free = free[ell_len:]
    inputs = []
    for term, shape in zip(terms, shapes):
        if "..." in term:
            n = len(shape) - (len(term) - 3)
            if n < 0:
                raise ValueError(f"einsum {subscripts!r}: operand of shape {shape} has too few dimensions")
            term = term.replace("...", ell[ell_len - n:] if n else "")
        if len(term) != len(shape) or not all(c in _LETTERS for c in term):
            raise ValueError(
                f"einsum {subscripts!r}: subscripts {term!r} do not fit an operand of shape {shape}"
            )
        inputs.append(term)
    if explicit:
        out = out.replace("...", ell)
    else:
        counts = {}
        for term in inputs:
            for c in term:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c in counts if counts[c] == 1 and c not in ell))  # ASCII, as NumPy
    sizes = {}
    for term, shape in zip(inputs, shapes):
        for c, d in zip(term, shape):
            if d != 1:
                if sizes.get(c, d) != d:
                    raise ValueError(f"einsum {subscripts!r}: dimension {c!r} has lengths {sizes[c]} and {d}")
                sizes[c] = d
    renamed = []
    for term, shape in zip(inputs, shapes):
        letters = list(term)
        for i, (c, d) in enumerate(zip(term, shape)):
            if d == 1 and sizes.get(c, 1) > 1:  # broadcast: summed away in this operand's VJP
                letters[i] = free.pop(0)
        renamed.append("".join(letters))
    return renamed, out


def einsum_vjp(inputs, output, operands, g, needs) -> tuple:
    """The gradients of ``einsum(",".join(inputs) + "->" + output, *operands)`` for cotangent ``g``.

    Each is an einsum of ``g`` with the other operands into the operand's subscripts: a letter
    only that operand has is summed in the forward pass, so its gradient is spread with a ones
    vector; a repeated letter (a diagonal) is written back onto the diagonal with an identity.
    """
    used = set("".join(inputs) + output)
    free = [c for c in _LETTERS if c not in used]
    dtype = _values(g).dtype
    grads = []
    for k, need in enumerate(needs):
        if not need:
            grads.append(None)
            continue
        term = inputs[k]
        shape = np.shape(operands[k])
        others = [t for j, t in enumerate(inputs) if j != k]
        present = set(output).union(*others) if others else set(output)
        terms, args = [output], [g]
        for j, t in enumerate(inputs):
            if j != k:
                terms.append(t)
                args.append(operands[j])
        target = []
        seen = {}
        for c, d in zip(term, shape):
            if c in seen:  # repeated letter: a fresh one tied to the first by an identity
                fresh = free.pop(0) if free else None
                if fresh is None:
                    raise ValueError("einsum: too many repeated subscripts to differentiate")
                terms.append(c + fresh)
                args.append(np.eye(seen[c], d, dtype=dtype))
                target.append(fresh)
                continue
            seen[c] = d
            if c not in present:
                terms.append(c)
                args.append(np.ones(d, dtype=dtype))
            target.append(c)
        grads.append(np.einsum(",".join(terms) + "->" + "".join(target), *args))
    return tuple(grads)


def _einsum_vjp(g, out, *operands, subscripts, needs, **_):
    inputs, output = parse_einsum(subscripts, [np.shape(x) for x in operands])
    return einsum_vjp(inputs, output, operands, g, needs)


defop("einsum", None, _einsum_vjp, module="linalg", public=False, params=["subscripts"])


def einsum(subscripts: str, *operands, optimize=False):
    """Einstein summation over ``operands`` as ``np.einsum`` (string subscripts): repeated
    indices (diagonals, traces), ``...`` with broadcasting, implicit or explicit output."""
    tensors = as_tensors(operands)
    inputs, output = parse_einsum(subscripts, [t._shape for t in tensors])
    explicit = ",".join(inputs) + "->" + output
    data = np.asarray(np.einsum(explicit, *[t._data for t in tensors], optimize=optimize))
    return _new_node(data, OPS["einsum"].backward, tensors, {"subscripts": explicit})


# ----------------------------------------------------------------------------- products
def _tensordot_terms(shape_a, shape_b, axes) -> tuple:
    """``tensordot``'s contraction as einsum subscripts ``([term_a, term_b], output)``."""
    na, nb = len(shape_a), len(shape_b)
    try:
        n = operator.index(axes)
    except TypeError:
        axes_a, axes_b = axes
        axes_a = [axes_a] if np.ndim(axes_a) == 0 else list(axes_a)
        axes_b = [axes_b] if np.ndim(axes_b) == 0 else list(axes_b)
    else:
        if n < 0 or n > min(na, nb):
            raise ValueError(f"tensordot: axes={n} does not fit shapes {shape_a} and {shape_b}")
        axes_a, axes_b = list(range(na - n, na)), list(range(n))
    if len(axes_a) != len(axes_b):
        raise ValueError(f"tensordot: {len(axes_a)} axes of a against {len(axes_b)} axes of b")
    axes_a = [operator.index(a) % max(na, 1) for a in axes_a]
    axes_b = [operator.index(b) % max(nb, 1) for b in axes_b]
    letters = iter(_LETTERS)
    term_a = [next(letters) for _ in range(na)]
    term_b = [next(letters) for _ in range(nb)]
    for a, b in zip(axes_a, axes_b):
        if shape_a[a] != shape_b[b]:
            raise ValueError(
                f"tensordot: shape mismatch for sum: axis {a} of {shape_a} and axis {b} of {shape_b}"
            )
        term_b[b] = term_a[a]
    output = [c for i, c in enumerate(term_a) if i not in axes_a] + [
        c for i, c in enumerate(term_b) if i not in axes_b]
    return ["".join(term_a), "".join(term_b)], "".join(output)


def tensordot(a, b, axes=2):
    """Sum of products over ``axes`` of ``a`` and ``b`` (an int: the last n of a with the first n of
    b; or a pair of axis lists), as ``np.tensordot``."""
    _tensordot_terms(np.shape(a), np.shape(b), axes)
    return np.tensordot(a, b, axes=axes)


def _tensordot_vjp(g, out, a, b, axes=2, needs=(True, True)):
    inputs, output = _tensordot_terms(np.shape(a), np.shape(b), axes)
    return einsum_vjp(inputs, output, (a, b), g, needs)


def _frozen_axes(out, a, b, axes=2):
    """The axes as tuples (a list the caller changes later cannot move the gradient)."""
    if isinstance(axes, (list, tuple)):
        axes = tuple(tuple(ax) if isinstance(ax, (list, tuple, np.ndarray)) else ax for ax in axes)
    return {"axes": axes}


defop("tensordot", tensordot, _tensordot_vjp, module="linalg", nin=2, numpy=(np.tensordot,),
      save=_frozen_axes)


def _dot_terms(shape_a, shape_b) -> tuple:
    """``np.dot``'s rules as einsum subscripts (0-d: a product; 1-D b: over a's last axis;
    else a's last axis against b's second-to-last)."""
    na, nb = len(shape_a), len(shape_b)
    letters = iter(_LETTERS)
    term_a = "".join(next(letters) for _ in range(na))
    term_b = "".join(next(letters) for _ in range(nb))
    if na == 0 or nb == 0:
        return [term_a, term_b], term_a + term_b
    k = 0 if nb == 1 else nb - 2
    if shape_a[-1] != shape_b[k]:
        raise ValueError(
            f"dot: shapes {shape_a} and {shape_b} not aligned: "
            f"{shape_a[-1]} (dim {na - 1}) != {shape_b[k]} (dim {k})"
        )
    term_b = term_b[:k] + term_a[-1] + term_b[k + 1:]
    return [term_a, term_b], term_a[:-1] + term_b[:k] + term_b[k + 1:]


def dot(a, b):
    """Dot product with ``np.dot``'s rules (scalars, vectors, matrices, N-D)."""
    _dot_terms(np.shape(a), np.shape(b))
    return np.asarray(np.dot(a, b))


def _dot_vjp(g, out, a, b, needs=(True, True)):
    inputs, output = _dot_terms(np.shape(a), np.shape(b))
    return einsum_vjp(inputs, output, (a, b), g, needs)


defop("dot", dot, _dot_vjp, module="linalg", nin=2, numpy=(np.dot,), method="dot")


def outer(a, b):
    """Outer product of ``a`` and ``b`` flattened: ``out[i, j] = a.flat[i] * b.flat[j]``."""
    return np.outer(a, b)


defop(
    "outer", outer,
    (lambda g, out, a, b: np.reshape(np.matmul(g, np.reshape(b, (-1,))), np.shape(a)),
     lambda g, out, a, b: np.reshape(np.matmul(np.reshape(a, (-1,)), g), np.shape(b))),
    module="linalg", nin=2, numpy=(np.outer,),
)


# ----------------------------------------------------------------------------- diagonals
def _diagonal_index(shape, offset, axis1, axis2) -> tuple:
    """Rows and columns of the diagonal ``offset`` of a matrix of ``shape`` (after its two axes
    were moved last), and the two axes normalised."""
    nd = len(shape)
    if nd < 2:
        raise ValueError(f"diagonal needs at least 2 dimensions, got shape {tuple(shape)}")
    a1, a2 = normalize_axes(axis1, nd, "axis1")[0], normalize_axes(axis2, nd, "axis2")[0]
    if a1 == a2:
        raise ValueError("diagonal: axis1 and axis2 cannot be the same")
    n1, n2 = shape[a1], shape[a2]
    offset = operator.index(offset)
    start_r, start_c = (0, offset) if offset >= 0 else (-offset, 0)
    k = max(0, min(n1 - start_r, n2 - start_c))
    rows = np.arange(start_r, start_r + k)
    cols = np.arange(start_c, start_c + k)
    rows.flags.writeable = cols.flags.writeable = False
    return rows, cols, a1, a2


def _diagonal_adjoint(g, shape, offset, axis1, axis2):
    """Zeros of ``shape`` with ``g`` (diagonal last) written onto the diagonal."""
    rows, cols, a1, a2 = _diagonal_index(shape, offset, axis1, axis2)
    rest = [d for i, d in enumerate(shape) if i not in (a1, a2)]
    moved = scatter(g, (Ellipsis, rows, cols), tuple(rest) + (shape[a1], shape[a2]))
    return np.moveaxis(moved, (-2, -1), (a1, a2))


def diagonal(x, offset: int = 0, axis1: int = 0, axis2: int = 1):
    """The diagonal ``offset`` over ``axis1`` and ``axis2``, as the last axis (``np.diagonal``)."""
    _diagonal_index(np.shape(x), offset, axis1, axis2)
    return np.diagonal(x, offset=offset, axis1=axis1, axis2=axis2).copy()


def _diagonal_vjp(g, out, x, offset=0, axis1=0, axis2=1):
    return _diagonal_adjoint(g, np.shape(x), offset, axis1, axis2)


defop("diagonal", diagonal, (_diagonal_vjp,), module="linalg", numpy=(np.diagonal,), method="diagonal")


def trace(x, offset: int = 0, axis1: int = 0, axis2: int = 1):
    """Sum of the diagonal ``offset`` over ``axis1`` and ``axis2`` (``np.trace``)."""
    _diagonal_index(np.shape(x), offset, axis1, axis2)
    return np.asarray(np.trace(x, offset=offset, axis1=axis1, axis2=axis2))


def _trace_vjp(g, out, x, offset=0, axis1=0, axis2=1):
    rows = _diagonal_index(np.shape(x), offset, axis1, axis2)[0]
    spread = np.broadcast_to(np.expand_dims(g, -1), np.shape(g) + (len(rows),))
    return _diagonal_adjoint(spread, np.shape(x), offset, axis1, axis2)


defop("trace", trace, (_trace_vjp,), module="linalg", numpy=(np.trace,), method="trace")


def _triangle_mask(shape, k, upper: bool, dtype):
    rows, cols = shape[-2:] if len(shape) >= 2 else (shape[-1], shape[-1])
    ones = np.ones((rows, cols), dtype=dtype)
    mask = np.triu(ones, k) if upper else np.tril(ones, k)
    mask.flags.writeable = False
    return mask


def triu(x, k: int = 0):
    """``x`` with the elements below the ``k``-th diagonal set to 0 (the last two axes)."""
    return np.triu(x, k)


def tril(x, k: int = 0):
    """``x`` with the elements above the ``k``-th diagonal set to 0 (the last two axes)."""
    return np.tril(x, k)


def _triangle_vjp(upper: bool):
    def vjp(g, out, x, k=0):
        return unbroadcast(g * _triangle_mask(np.shape(g), k, upper, _values(g).dtype), np.shape(x))

    return vjp


defop("triu", triu, (_triangle_vjp(True),), module="linalg", numpy=(np.triu,))
defop("tril", tril, (_triangle_vjp(False),), module="linalg", numpy=(np.tril,))


__all__ = export(globals(), "linalg") + ["einsum"]

from ._backend import graph as _graph  # noqa: E402
from ._registry import FUNCTIONS as _FUNCTIONS  # noqa: E402

_new_node = _graph.new_node
_FUNCTIONS[np.einsum] = einsum
