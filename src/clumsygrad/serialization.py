"""``clumsygrad.save`` / ``clumsygrad.load``: tensors and optimizer state in a ``.npz`` file.

A checkpoint is a NumPy ``.npz`` archive (a zip of ``.npy`` files) holding

* one array per tensor or ndarray in the saved object, named ``a0``, ``a1``, ...;
* ``__clumsygrad__``: a JSON text (stored as a NumPy unicode array) describing the object's
  structure: dicts, lists and tuples (nested to any depth), tensors (which array, which
  ``TensorType``), ndarrays, and plain values (None, bools, ints, floats, strings).
  Format version 1 nests the description as the object nests; an object nested deeper than
  100 containers is written as version 2, a flat list of nodes whose containers name their
  children by index (JSON cannot nest that deep).  Both are read.  An object that contains
  itself is refused with ``ValueError``.

Loading reads the archive with ``np.load(..., allow_pickle=False)`` and the structure with
``json.loads``: nothing in the file can run code.  Loading checks the structure completely
(every array referenced exists, tensor dtypes are float32/float64, types are known) and
raises ``ValueError`` naming the file for anything that is not an intact checkpoint (a
corrupt or truncated file, another ``.npz``, a malformed description).

What is saved of a tensor: its data (dtype and shape exactly) and its ``TensorType``
(INPUT or PARAMETER).  Gradients and graphs are not saved.  An INTERMEDIATE tensor carries
a graph that cannot be restored, so saving one raises ``ValueError``: save
``Tensor(t.data)`` (or ``t.data``) instead.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from typing import Any, Dict, Optional

import numpy as np

from .tensor import Tensor, TensorType

__all__ = ["save", "load"]

MANIFEST = "__clumsygrad__"
FORMAT = "clumsygrad-checkpoint"
VERSION = 2  # the newest format this module reads; save writes version 1 unless it nests too deep
VERSIONS = (1, 2)
_NESTED_DEPTH = 100  # containers nested deeper than this are saved flat (version 2)
_SAVED_TYPES = {TensorType.INPUT: "INPUT", TensorType.PARAMETER: "PARAMETER"}


# --------------------------------------------------------------------------- save
class _Encoder:
    """Walks an object into a JSON-able description, collecting its arrays.

    The walk is iterative (no recursion, any depth) and refuses an object that contains itself.
    It produces a flat list of nodes, each naming its children by their index in the list;
    children come before their parent and the root is the last node.
    """

    def __init__(self) -> None:
        self.arrays: Dict[str, np.ndarray] = {}
        self.nodes: list = []

    def _array(self, a: np.ndarray) -> str:
        if a.dtype.kind not in "biuf":
            raise TypeError(f"clumsygrad.save stores real numeric arrays, got dtype {a.dtype}")
        name = f"a{len(self.arrays)}"
        self.arrays[name] = a
        return name

    def _leaf(self, obj: Any, path: str) -> dict:
        if isinstance(obj, Tensor):
            kind = _SAVED_TYPES.get(obj._tensor_type)
            if kind is None:
                raise ValueError(
                    f"clumsygrad.save cannot save the INTERMEDIATE tensor at {path}: its graph is "
                    f"not saved; save Tensor(t.data) or t.data instead"
                )
            return {"tensor": self._array(obj._data), "type": kind}
        if isinstance(obj, np.ndarray):
            return {"ndarray": self._array(obj)}
        if obj is None or isinstance(obj, (bool, str)):
            return {"value": obj}
        if isinstance(obj, (np.bool_,)):
            return {"value": bool(obj)}
        if isinstance(obj, (int, np.integer)):
            return {"value": int(obj)}
        if isinstance(obj, (float, np.floating)):
            x = float(obj)
            # JSON has no NaN/inf: store them by name
            return {"float": repr(x)} if not math.isfinite(x) else {"value": x}
        raise TypeError(
            f"clumsygrad.save cannot store a {type(obj).__name__} (at {path}); it saves tensors, "
            f"ndarrays, numbers, strings, None and dicts/lists/tuples of them"
        )

    def _enter(self, obj: Any, path: str, stack: list, open_ids: set) -> Optional[int]:
        """A leaf's node index; or, for a container, None after pushing its frame on ``stack``."""
        if isinstance(obj, Tensor) or not isinstance(obj, (dict, list, tuple)):
            self.nodes.append(self._leaf(obj, path))
            return len(self.nodes) - 1
        if id(obj) in open_ids:
            raise ValueError(f"clumsygrad.save cannot save an object that contains itself (at {path})")
        if isinstance(obj, dict):
            for key in obj:
                if isinstance(key, bool) or not isinstance(key, (str, int)):
                    raise TypeError(
                        f"clumsygrad.save needs str or int dict keys, got {type(key).__name__} at {path}"
                    )
            kind, items = "dict", list(obj.items())
        else:
            kind, items = ("list" if isinstance(obj, list) else "tuple"), list(enumerate(obj))
        open_ids.add(id(obj))
        stack.append((obj, path, kind, iter(items), [], [key for key, _ in items]))
        return None

    def encode(self, obj: Any, path: str) -> int:
        """Describe ``obj`` into ``self.nodes``; returns the root's index (the last node)."""
        stack: list = []
        open_ids: set = set()
        child = self._enter(obj, path, stack, open_ids)
        while stack:
            container, where, kind, items, children, keys = stack[-1]
            if child is not None:
                children.append(child)
            item = next(items, None)
            if item is None:
                stack.pop()
                open_ids.discard(id(container))
                node = {"dict": [[k, c] for k, c in zip(keys, children)]} if kind == "dict" else {kind: children}
                self.nodes.append(node)
                child = len(self.nodes) - 1
            else:
                key, value = item
                child = self._enter(value, f"{where}[{key!r}]", stack, open_ids)
        return child

    def nested(self, root: int) -> Optional[Any]:
        """The version-1 (nested) description, or None when it would nest deeper than JSON allows."""
        built: list = []
        depth: list = []
        for node in self.nodes:
            kind = next(iter(node))
            if kind in ("list", "tuple"):
                built.append({kind: [built[c] for c in node[kind]]})
                depth.append(1 + max((depth[c] for c in node[kind]), default=0))
            elif kind == "dict":
                built.append({"dict": [[k, built[c]] for k, c in node["dict"]]})
                depth.append(1 + max((depth[c] for _, c in node["dict"]), default=0))
            else:
                built.append(node)
                depth.append(0)
        return built[root] if depth[root] <= _NESTED_DEPTH else None


def save(obj: Any, path) -> None:
    """Write ``obj`` to ``path`` as a ``.npz`` checkpoint (the path is used as given).

    ``obj`` is typically a dict such as ``{"W1": W1, "b1": b1, "optimizer":
    opt.state_dict()}``; dicts (str or int keys), lists and tuples nest to any depth, and
    their leaves may be tensors (INPUT or PARAMETER), ndarrays, numbers, strings or None.
    The file is written to a temporary name and renamed, so a failed save never leaves a
    half-written checkpoint in place of an old one.
    """
    encoder = _Encoder()
    root = encoder.encode(obj, "obj")
    nested = encoder.nested(root)
    if nested is not None:  # the format every clumsygrad since 1.1.0 reads
        manifest = json.dumps({"format": FORMAT, "version": 1, "root": nested})
    else:  # deeper than JSON nests: flat nodes
        manifest = json.dumps({"format": FORMAT, "version": 2, "nodes": encoder.nodes, "root": root})
    arrays = dict(encoder.arrays)
    arrays[MANIFEST] = np.array(manifest)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".clumsygrad-", suffix=".npz.tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; give it a new file's mode
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------- load
class _Corrupt(Exception):
    """A checkpoint whose content does not make sense; reported as ValueError by ``load``."""


class _Decoder:
    def __init__(self, archive) -> None:
        self.archive = archive
        self.names = set(archive.files)

    def _array(self, name) -> np.ndarray:
        if not isinstance(name, str) or name not in self.names or name == MANIFEST:
            raise _Corrupt(f"the description names an array {name!r} that the archive lacks")
        a = self.archive[name]
        if a.dtype.kind not in "biuf":
            raise _Corrupt(f"array {name!r} has dtype {a.dtype}")
        return a

    def decode(self, node) -> Any:
        if not isinstance(node, dict) or len(node) not in (1, 2):
            raise _Corrupt(f"malformed entry {str(node)[:80]!r}")
        if "tensor" in node:
            a = self._array(node["tensor"])
            kind = node.get("type")
            if kind not in ("INPUT", "PARAMETER") or len(node) != 2:
                raise _Corrupt(f"unknown tensor type {kind!r}")
            if a.dtype not in (np.float32, np.float64):
                raise _Corrupt(f"tensor array has dtype {a.dtype}, not float32 or float64")
            return Tensor(a, tensor_type=TensorType[kind], dtype=a.dtype)
        if len(node) != 1:
            raise _Corrupt(f"malformed entry {str(node)[:80]!r}")
        (kind, value), = node.items()
        if kind == "ndarray":
            return self._array(value)
        if kind in ("list", "tuple"):
            if not isinstance(value, list):
                raise _Corrupt(f"malformed {kind}")
            items = [self.decode(v) for v in value]
            return items if kind == "list" else tuple(items)
        if kind == "dict":
            if not isinstance(value, list):
                raise _Corrupt("malformed dict")
            out = {}
            for item in value:
                if (not isinstance(item, list) or len(item) != 2 or isinstance(item[0], bool)
                        or not isinstance(item[0], (str, int))):
                    raise _Corrupt("malformed dict item")
                out[item[0]] = self.decode(item[1])
            return out
        if kind == "value":
            if value is None or isinstance(value, (bool, int, float, str)):
                return value
            raise _Corrupt(f"malformed value {str(value)[:80]!r}")
        if kind == "float":
            if value not in ("nan", "inf", "-inf"):
                raise _Corrupt(f"malformed float {value!r}")
            return float(value)
        raise _Corrupt(f"unknown entry kind {kind!r}")

    def decode_flat(self, nodes, root) -> Any:
        """Version 2: ``nodes`` a list whose containers name their children by index.

        Each child comes before its parent and belongs to exactly one parent; the root is the
        last node.  Built in one loop, without recursion.
        """
        if not isinstance(nodes, list) or not nodes or root != len(nodes) - 1 or isinstance(root, bool):
            raise _Corrupt("malformed node list")
        built: list = []
        used = [False] * len(nodes)

        def take(child, parent: int) -> Any:
            if isinstance(child, bool) or not isinstance(child, int) or not 0 <= child < parent or used[child]:
                raise _Corrupt(f"node {parent} names a child {str(child)[:20]!r} it cannot have")
            used[child] = True
            return built[child]

        for index, node in enumerate(nodes):
            if not isinstance(node, dict) or len(node) != 1 or next(iter(node)) not in ("list", "tuple", "dict"):
                built.append(self.decode(node))  # a leaf: tensor, ndarray, value, float
                continue
            (kind, value), = node.items()
            if not isinstance(value, list):
                raise _Corrupt(f"malformed {kind}")
            if kind == "dict":
                out = {}
                for item in value:
                    if (not isinstance(item, list) or len(item) != 2 or isinstance(item[0], bool)
                            or not isinstance(item[0], (str, int))):
                        raise _Corrupt("malformed dict item")
                    out[item[0]] = take(item[1], index)
                built.append(out)
            else:
                items = [take(c, index) for c in value]
                built.append(items if kind == "list" else tuple(items))
        if not all(used[:-1]):
            raise _Corrupt("a node belongs to no container")
        return built[root]


def load(path) -> Any:
    """Read a checkpoint written by :func:`save`; returns the saved object rebuilt.

    Tensors come back with their dtype, shape and ``TensorType``; ndarrays, numbers,
    strings, None, dicts, lists and tuples as saved.  Nothing in the file is executed
    (``allow_pickle=False``).  ``FileNotFoundError`` when ``path`` does not exist;
    ``ValueError`` naming ``path`` when it is not an intact clumsygrad checkpoint.
    """
    path = os.fspath(path)
    try:
        # The file is opened here, so that it is closed on every error path (np.load would
        # leave it open inside a half-built NpzFile until the error is collected).
        with open(path, "rb") as file:
            magic = file.read(len(_NPY_MAGIC))
            file.seek(0)
            if magic == _NPY_MAGIC:
                raise _Corrupt("a single .npy array, not an .npz archive")
            if not magic.startswith(_ZIP_MAGIC):
                raise _Corrupt("not a .npz archive (no zip header), so not a file clumsygrad.save wrote")
            return _load_archive(np.load(file, allow_pickle=False))
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as exc:  # anything a damaged archive can make zipfile, NumPy or json raise
        detail = str(exc) or type(exc).__name__
        raise ValueError(f"{path} is not an intact clumsygrad checkpoint: {detail}") from exc


_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first entry, or an empty zip


def _load_archive(archive) -> Any:
    """The object described in an open ``NpzFile`` (closed on return)."""
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise _Corrupt("not an .npz archive")
    with archive:
        if MANIFEST not in archive.files:
            raise _Corrupt("no clumsygrad description inside (not written by clumsygrad.save)")
        text = archive[MANIFEST]
        if text.dtype.kind != "U" or text.ndim != 0:
            raise _Corrupt("malformed description")
        manifest = json.loads(text.item())
        if (not isinstance(manifest, dict) or manifest.get("format") != FORMAT
                or "root" not in manifest):
            raise _Corrupt("malformed description")
        version = manifest.get("version")
        if isinstance(version, bool) or version not in VERSIONS:
            raise _Corrupt(f"format version {version!r} is not supported "
                           f"(this clumsygrad reads versions {', '.join(map(str, VERSIONS))})")
        if version == 1:
            return _Decoder(archive).decode(manifest["root"])
        return _Decoder(archive).decode_flat(manifest.get("nodes"), manifest["root"])
