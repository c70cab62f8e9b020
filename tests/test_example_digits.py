"""examples/digits.py trains a classifier on scikit-learn's digits, saves it and reloads it.

A short run (a few epochs) must already classify most of the held-out images, print one
progress line per epoch, and give the same test accuracy from the reloaded checkpoint.
"""
import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")  # the "examples" extra (also in the "test" extra)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits.py"


@pytest.fixture(scope="module")
def digits():
    spec = importlib.util.spec_from_file_location("digits_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_few_epochs_reach_high_accuracy_and_the_checkpoint_reloads(digits, tmp_path):
    out = io.StringIO()
    checkpoint = tmp_path / "digits.npz"
    result = digits.train(epochs=6, checkpoint=str(checkpoint), out=out)
    assert result["test_accuracy"] >= 0.93, result
    assert result["reloaded_test_accuracy"] == result["test_accuracy"]
    lines = out.getvalue().splitlines()
    assert [line.split()[1] for line in lines[:6]] == [f"{e}/6" for e in range(1, 7)]
    assert "[######" in lines[5] and "test" in lines[5]
    assert checkpoint.exists()


def test_the_checkpoint_holds_parameters_and_optimizer_state(digits, tmp_path):
    import clumsygrad
    from clumsygrad.optimizer import Adam
    from clumsygrad.tensor import TensorType

    checkpoint = tmp_path / "digits.npz"
    digits.train(epochs=1, hidden=16, checkpoint=str(checkpoint), out=io.StringIO())
    saved = clumsygrad.load(checkpoint)
    params = saved["params"]
    assert sorted(params) == sorted(digits.PARAM_NAMES)
    assert params["W1"].shape == (64, 16) and params["W2"].shape == (16, 10)
    assert all(p._tensor_type is TensorType.PARAMETER and p.dtype == np.float32 for p in params.values())
    opt = Adam([params[k] for k in digits.PARAM_NAMES])
    opt.load_state_dict(saved["optimizer"])  # resumable
    assert opt.lr == 0.01 and opt.t == 45 and saved["epochs"] == 1


def test_the_split_is_fixed_and_disjoint(digits):
    x_train, y_train, x_test, y_test = digits.load_data(seed=0)
    assert len(x_train) + len(x_test) == 1797 and len(x_test) == 359
    assert x_train.dtype == np.float32 and 0.0 <= x_train.min() and x_train.max() <= 1.0
    again = digits.load_data(seed=0)
    np.testing.assert_array_equal(again[3], y_test)
