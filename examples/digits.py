"""Train a 2-layer MLP on scikit-learn's handwritten digits with cross-entropy and Adam.

    pip install "clumsygrad[examples]"      # scikit-learn, for the data set (it ships inside it)
    python examples/digits.py               # about 98% test accuracy in 20 epochs, a few seconds
    python examples/digits.py --epochs 5 --checkpoint /tmp/digits.npz
    python examples/digits.py --help        # every option, its meaning and its default

The 1,797 8x8 images (pixel values 0..16) are split 80/20 into training and test sets with a
fixed seed.  The model is ``nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden,
10))``, the loss ``clumsygrad.loss.cross_entropy`` on the integer labels, the optimizer
``clumsygrad.optimizer.Adam`` over ``model.parameters()``, the mini-batches from
``clumsygrad.data.DataLoader``.  Each epoch prints one progress line (a bar over the epochs, the
mean training loss, training and test accuracy, the epoch's time in milliseconds); the total
time follows.  At the end the parameters and the optimizer state are saved with
``clumsygrad.save`` (into a temporary directory unless ``--checkpoint`` names a file, so a run
leaves the clone clean), loaded back with ``clumsygrad.load`` into a fresh model, and the
reloaded model's test accuracy is printed: it is the same.

The checkpoint keeps the layout of the 1.1.0 example, ``logits = relu(x @ W1 + b1) @ W2 + b2``:
``W1`` is the first ``Linear``'s weight transposed (and so are its Adam moments), so
checkpoints written by either version load and resume in the other.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Any, Dict, Optional, Sequence, TextIO, Tuple

import numpy as np

import clumsygrad
from clumsygrad import nn
from clumsygrad.data import DataLoader
from clumsygrad.loss import cross_entropy
from clumsygrad.optimizer import Adam
from clumsygrad.tensor import Tensor, TensorType, no_grad

PARAM_NAMES = ("W1", "b1", "W2", "b2")
# checkpoint name -> (the model's state_dict key, transposed?)
LAYOUT = {"W1": ("0.weight", True), "b1": ("0.bias", False), "W2": ("2.weight", True), "b2": ("2.bias", False)}


def load_data(seed: int = 0, test_fraction: float = 0.2) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)``: float32 pixels scaled to [0, 1], int64 labels."""
    from sklearn.datasets import load_digits  # the optional "examples" extra

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def build_model(n_in: int, hidden: int, n_out: int, seed: int = 0) -> nn.Sequential:
    """The MLP with He-initialised weights and zero biases."""
    model = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))
    rng = np.random.default_rng(seed)
    for layer in (model[0], model[2]):
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu", generator=rng)
        nn.init.zeros_(layer.bias)
    return model


def checkpoint_params(model: nn.Module) -> Dict[str, Tensor]:
    """The model's parameters under the 1.1.0 names and layout (PARAMETER tensors, copies)."""
    state = model.state_dict()
    return {name: Tensor(state[key].data.T if transposed else state[key].data, TensorType.PARAMETER)
            for name, (key, transposed) in LAYOUT.items()}


def model_from(params: Dict[str, Tensor]) -> nn.Sequential:
    """A model holding checkpoint ``params`` (the 1.1.0 layout)."""
    n_in, hidden = params["W1"].shape
    model = build_model(n_in, hidden, params["W2"].shape[1])
    model.load_state_dict({key: (params[name].data.T if transposed else params[name].data)
                           for name, (key, transposed) in LAYOUT.items()})
    return model


def optimizer_checkpoint(model: nn.Module, optimizer: Adam) -> Dict[str, Any]:
    """``optimizer.state_dict()`` with its per-parameter state in the order and layout of PARAM_NAMES."""
    state = optimizer.state_dict()
    index = {id(p): i for i, p in enumerate(optimizer.parameters)}
    params = dict(model.named_parameters())
    per_param = []
    for name in PARAM_NAMES:
        key, transposed = LAYOUT[name]
        entry = dict(state["state"][index[id(params[key])]])
        if transposed:
            entry = {k: (v.T.copy() if isinstance(v, np.ndarray) else v) for k, v in entry.items()}
        per_param.append(entry)
    return {**state, "state": per_param}


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with no_grad():  # evaluation records no graph
        return float(np.mean(model(Tensor(x)).data.argmax(axis=1) == y))


def progress_line(epoch: int, epochs: int, loss: float, train_acc: float, test_acc: float,
                  milliseconds: float, width: int = 20) -> str:
    done = int(round(width * epoch / epochs))
    bar = "#" * done + "." * (width - done)
    return (f"epoch {epoch:>{len(str(epochs))}}/{epochs} [{bar}] loss {loss:.4f}  "
            f"train {train_acc:6.2%}  test {test_acc:6.2%}  ({milliseconds:.0f} ms)")


def train(epochs: int = 20, hidden: int = 64, lr: float = 0.01, batch_size: int = 32,
          seed: int = 0, checkpoint: Optional[str] = None,
          out: Optional[TextIO] = None) -> Dict[str, float]:
    """Train, print one line per epoch and the total time to ``out``, save and reload a checkpoint.

    ``checkpoint`` is the file to write; None writes into a temporary directory (removed after
    the reload check), "" skips saving.  Returns the final ``train_accuracy``,
    ``test_accuracy``, ``loss``, ``milliseconds`` and, when saved, ``reloaded_test_accuracy``.
    """
    out = sys.stdout if out is None else out
    x_train, y_train, x_test, y_test = load_data(seed)
    model = build_model(x_train.shape[1], hidden, 10, seed)
    optimizer = Adam(model.parameters(), lr=lr)
    loader = DataLoader(x_train, y_train, batch_size=batch_size, shuffle=True, seed=seed + 1)
    mean_loss = float("nan")
    total = time.perf_counter()
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        losses = []
        for xb, yb in loader:
            loss = cross_entropy(model(Tensor(xb)), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.data))
        mean_loss = float(np.mean(losses))
        line = progress_line(epoch, epochs, mean_loss, accuracy(model, x_train, y_train),
                             accuracy(model, x_test, y_test), (time.perf_counter() - start) * 1e3)
        print(line, file=out, flush=True)
    result = {
        "loss": mean_loss,
        "train_accuracy": accuracy(model, x_train, y_train),
        "test_accuracy": accuracy(model, x_test, y_test),
        "milliseconds": (time.perf_counter() - total) * 1e3,
    }
    print(f"total {result['milliseconds']:.0f} ms for {epochs} epochs", file=out, flush=True)
    if checkpoint != "":
        with tempfile.TemporaryDirectory() as tmp:
            path = checkpoint or os.path.join(tmp, "digits_checkpoint.npz")
            clumsygrad.save({"params": checkpoint_params(model), "optimizer": optimizer_checkpoint(model, optimizer),
                             "hidden": hidden, "epochs": epochs}, path)
            restored = clumsygrad.load(path)
            result["reloaded_test_accuracy"] = accuracy(model_from(restored["params"]), x_test, y_test)
        where = checkpoint if checkpoint else "a temporary checkpoint (pass --checkpoint to keep one)"
        print(f"saved {where}; reloaded model: test {result['reloaded_test_accuracy']:.2%}",
              file=out, flush=True)
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20, help="passes over the training set")
    parser.add_argument("--hidden", type=int, default=64, help="units in the hidden layer")
    parser.add_argument("--lr", type=float, default=0.01, help="Adam's learning rate")
    parser.add_argument("--batch-size", type=int, default=32, help="images per mini-batch")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the initial weights and the shuffling")
    parser.add_argument("--checkpoint", default=None,
                        help="file to save the trained model and optimizer state to (default: a temporary "
                             "file, removed after the reload check; '' to skip saving)")
    args = parser.parse_args(argv)
    print(f"clumsygrad {clumsygrad.__version__}, backend {clumsygrad.get_backend()}")
    result = train(args.epochs, args.hidden, args.lr, args.batch_size, args.seed, args.checkpoint)
    print(f"final test accuracy {result['test_accuracy']:.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
