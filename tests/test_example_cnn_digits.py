"""examples/cnn_digits.py reaches its accuracy on the active backend, saves and reloads; the
examples' command lines document their options and leave the working directory clean."""
import importlib.util
import io
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(f"{name}_example", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cnn():
    return load("cnn_digits")


@pytest.fixture(scope="module")
def digits():
    return load("digits")


def test_cnn_reaches_98_5_percent_and_the_checkpoint_reloads(cnn, tmp_path):
    out = io.StringIO()
    checkpoint = tmp_path / "cnn.npz"
    result = cnn.train(checkpoint=str(checkpoint), out=out)
    assert result["test_accuracy"] >= 0.985, result
    assert result["reloaded_test_accuracy"] == result["test_accuracy"]
    assert checkpoint.exists()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("epoch  1/12") and lines[0].endswith(" ms)")
    import clumsygrad

    state = clumsygrad.load(checkpoint)
    assert state["0.weight"].shape == (16, 1, 3, 3) and state["6.weight"].shape == (10, 512)


def test_default_runs_leave_the_working_directory_clean(cnn, digits, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert digits.main(["--epochs", "1", "--hidden", "8"]) == 0
    assert cnn.main(["--epochs", "1"]) == 0
    assert os.listdir(tmp_path) == []
    out = capsys.readouterr().out
    assert "total " in out and " ms for 1 epochs" in out and "reloaded model" in out


@pytest.mark.parametrize("name", ["digits", "cnn_digits"])
def test_help_gives_each_options_meaning_and_default(name, capsys):
    module = load(name)
    with pytest.raises(SystemExit):
        module.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--epochs", "--lr", "--batch-size", "--seed", "--checkpoint"):
        assert option in text
    assert "(default: 0)" in text and "passes over the training set" in text
    assert "temporary file" in text


def test_a_1_1_0_checkpoint_resumes_in_the_rewritten_example(digits, tmp_path):
    import clumsygrad
    from clumsygrad.optimizer import Adam

    path = tmp_path / "d.npz"
    digits.train(epochs=1, hidden=8, checkpoint=str(path), out=io.StringIO())
    saved = clumsygrad.load(path)
    model = digits.model_from(saved["params"])
    x = np.random.default_rng(0).random((3, 64)).astype(np.float32)
    p = saved["params"]
    manual = np.maximum(x @ p["W1"].data + p["b1"].data, 0) @ p["W2"].data + p["b2"].data
    np.testing.assert_allclose(model(clumsygrad.tensor.Tensor(x)).data, manual, rtol=1e-5, atol=1e-6)
    opt = Adam([p[k] for k in digits.PARAM_NAMES])
    opt.load_state_dict(saved["optimizer"])
    assert opt.biased_first_moment[0].shape == (64, 8) and opt.t == 45
