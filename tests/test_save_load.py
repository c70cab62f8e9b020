"""clumsygrad.save / clumsygrad.load: .npz checkpoints of tensors and optimizer state.

Round trips keep dtype, shape, values and tensor type; an optimizer restored from a
checkpoint steps exactly like the original; loading never unpickles; a corrupt, truncated
or foreign file gives a ValueError naming it.
"""
import json
import os
import zipfile

import numpy as np
import pytest

import clumsygrad
from clumsygrad.optimizer import SGD, Adam, AdamW
from clumsygrad.tensor import Tensor, TensorType

P = TensorType.PARAMETER


@pytest.fixture
def path(tmp_path):
    return tmp_path / "model.ckpt"


def test_tensors_keep_dtype_shape_values_and_type(path):
    rng = np.random.default_rng(0)
    obj = {
        "w": Tensor(rng.standard_normal((3, 4)), tensor_type=P),
        "w64": Tensor(rng.standard_normal((2,)), tensor_type=P, dtype=np.float64),
        "x": Tensor(rng.standard_normal((0, 5))),
        "scalar": Tensor(2.5, tensor_type=P),
    }
    clumsygrad.save(obj, path)
    back = clumsygrad.load(path)
    assert list(back) == list(obj)
    for key, t in obj.items():
        u = back[key]
        assert isinstance(u, Tensor) and u is not t
        assert u.dtype == t.dtype and u.shape == t.shape
        assert u._tensor_type is t._tensor_type and u.requires_grad == t.requires_grad
        np.testing.assert_array_equal(u.data, t.data)
        assert u.grad is None and u._grad_fn is None


def test_the_path_is_used_as_given(path):
    clumsygrad.save([Tensor([1.0])], path)
    assert path.exists() and not path.with_name(path.name + ".npz").exists()
    clumsygrad.save([Tensor([1.0])], str(path) + "2")
    assert (path.parent / "model.ckpt2").exists()


def test_nested_containers_and_plain_values_round_trip(path):
    obj = {
        "layers": [Tensor([1.0, 2.0], tensor_type=P), (np.arange(3), None)],
        3: {"name": "mlp", "flag": True, "lr": 0.1, "n": 7, "nan": float("nan"),
            "inf": -np.inf, "np": np.float32(0.5)},
        "int8": np.array([[1, -2]], dtype=np.int8),
    }
    clumsygrad.save(obj, path)
    back = clumsygrad.load(path)
    assert isinstance(back["layers"], list) and isinstance(back["layers"][1], tuple)
    np.testing.assert_array_equal(back["layers"][1][0], np.arange(3))
    assert back["layers"][1][1] is None
    inner = back[3]
    assert inner["name"] == "mlp" and inner["flag"] is True and inner["n"] == 7
    assert inner["lr"] == 0.1 and np.isnan(inner["nan"]) and inner["inf"] == -np.inf
    assert inner["np"] == 0.5
    assert back["int8"].dtype == np.int8 and back["int8"].shape == (1, 2)


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.1, momentum=0.9),
    lambda ps: Adam(ps, lr=0.05, weight_decay=0.01),
    lambda ps: AdamW(ps, lr=0.05),
], ids=["SGD", "Adam", "AdamW"])
def test_checkpoint_of_model_and_optimizer_resumes_identically(path, make):
    rng = np.random.default_rng(1)
    params = [Tensor(rng.standard_normal((4, 3)), tensor_type=P),
              Tensor(rng.standard_normal(3), tensor_type=P)]
    grads = [[rng.standard_normal(p.shape) for p in params] for _ in range(5)]
    opt = make(params)

    def steps(opt, params, gs):
        for g_step in gs:
            for p, g in zip(params, g_step):
                p.grad = g
            opt.step()

    steps(opt, params, grads[:2])
    clumsygrad.save({"params": params, "optimizer": opt.state_dict()}, path)
    back = clumsygrad.load(path)
    restored = back["params"]
    fresh = make(restored)
    fresh.load_state_dict(back["optimizer"])
    steps(opt, params, grads[2:])
    steps(fresh, restored, grads[2:])
    for p, q in zip(params, restored):
        np.testing.assert_array_equal(p.data, q.data)


def test_intermediate_tensors_and_unsupported_values_are_refused(path):
    w = Tensor([1.0], tensor_type=P)
    with pytest.raises(ValueError, match=r"cannot save the INTERMEDIATE tensor at obj\['y'\]"):
        clumsygrad.save({"y": w * 2.0}, path)
    with pytest.raises(TypeError, match="cannot store a set"):
        clumsygrad.save({"s": {1, 2}}, path)
    with pytest.raises(TypeError, match="real numeric arrays, got dtype object"):
        clumsygrad.save([np.array([None])], path)
    with pytest.raises(TypeError, match="str or int dict keys, got float"):
        clumsygrad.save({1.5: w}, path)
    assert not path.exists() and os.listdir(path.parent) == []  # no temporary left either


def test_a_failed_save_keeps_the_previous_checkpoint(path):
    clumsygrad.save({"w": Tensor([1.0])}, path)
    with pytest.raises(TypeError):
        clumsygrad.save({"w": Tensor([2.0]), "bad": object()}, path)
    np.testing.assert_array_equal(clumsygrad.load(path)["w"].data, [1.0])


# --------------------------------------------------------------------------- hostile files
def _saved_bytes(tmp_path):
    p = tmp_path / "good.npz"
    clumsygrad.save({"w": Tensor(np.arange(1000.0), tensor_type=P), "lr": 0.1}, p)
    return p.read_bytes()


@pytest.mark.parametrize("cut", [0, 10, 100, 0.5, 0.9, -1])
def test_truncated_files_raise_value_error_naming_the_file(tmp_path, path, cut):
    data = _saved_bytes(tmp_path)
    n = int(len(data) * cut) if isinstance(cut, float) else (cut if cut >= 0 else len(data) + cut)
    path.write_bytes(data[:n])
    with pytest.raises(ValueError, match=f"{path} is not an intact clumsygrad checkpoint"):
        clumsygrad.load(path)


def test_corrupted_bytes_raise_value_error(tmp_path, path):
    data = bytearray(_saved_bytes(tmp_path))
    rng = np.random.default_rng(3)
    for i in rng.integers(0, len(data), size=50):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="is not an intact clumsygrad checkpoint"):
        clumsygrad.load(path)


def test_foreign_files_raise_value_error(tmp_path, path):
    np.savez(path.with_suffix(".npz"), w=np.ones(3))  # an .npz without a description
    with pytest.raises(ValueError, match="not written by clumsygrad.save"):
        clumsygrad.load(path.with_suffix(".npz"))
    np.save(path.with_suffix(".npy"), np.ones(3))
    with pytest.raises(ValueError, match="not an .npz archive"):
        clumsygrad.load(path.with_suffix(".npy"))
    path.write_text("hello")
    with pytest.raises(ValueError, match="is not an intact clumsygrad checkpoint"):
        clumsygrad.load(path)
    with pytest.raises(FileNotFoundError):
        clumsygrad.load(path.with_name("missing.npz"))


def _write_archive(path, manifest, **arrays):
    with open(path, "wb") as f:
        np.savez(f, __clumsygrad__=np.array(json.dumps(manifest)), **arrays)


@pytest.mark.parametrize("root, arrays, message", [
    ({"tensor": "a9", "type": "PARAMETER"}, {}, "names an array 'a9' that the archive lacks"),
    ({"tensor": "a0", "type": "INTERMEDIATE"}, {"a0": np.ones(2)}, "unknown tensor type"),
    ({"tensor": "a0", "type": "INPUT"}, {"a0": np.ones(2, np.int32)}, "not float32 or float64"),
    ({"tensor": "__clumsygrad__", "type": "INPUT"}, {}, "names an array"),
    ({"eval": "__import__('os')"}, {}, "unknown entry kind 'eval'"),
    ({"value": {"a": 1}}, {}, "malformed value"),
    ({"dict": [[None, {"value": 1}]]}, {}, "malformed dict item"),
    ([1, 2], {}, "malformed entry"),
])
def test_malformed_descriptions_raise_value_error(path, root, arrays, message):
    _write_archive(path, {"format": "clumsygrad-checkpoint", "version": 1, "root": root}, **arrays)
    with pytest.raises(ValueError, match=message):
        clumsygrad.load(path)


def test_unknown_format_version_is_refused(path):
    _write_archive(path, {"format": "clumsygrad-checkpoint", "version": 99, "root": {"value": 1}})
    with pytest.raises(ValueError, match="format version 99 is not supported"):
        clumsygrad.load(path)


def test_loading_never_unpickles(path):
    # an object array (which only pickle can restore) inside the archive is refused, and the
    # payload's __reduce__ never runs
    ran = []

    class Payload:
        def __reduce__(self):
            return (ran.append, ("executed",))

    with open(path, "wb") as f:
        np.savez(f, __clumsygrad__=np.array(json.dumps(
            {"format": "clumsygrad-checkpoint", "version": 1, "root": {"ndarray": "a0"}})),
            a0=np.array([Payload()], dtype=object))
    ran.clear()  # np.savez pickled (and so ran nothing) but be explicit
    with pytest.raises(ValueError, match="allow_pickle=False"):
        clumsygrad.load(path)
    assert ran == []
    assert zipfile.is_zipfile(path)
