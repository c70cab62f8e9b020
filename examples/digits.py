"""Train a 2-layer MLP on scikit-learn's handwritten digits with cross-entropy and Adam.

    pip install "clumsygrad[examples]"      # scikit-learn, for the data set (it ships inside it)
    python examples/digits.py               # about 98% test accuracy in 20 epochs, a few seconds
    python examples/digits.py --epochs 5 --checkpoint /tmp/digits.npz

The 1,797 8x8 images (pixel values 0..16) are split 80/20 into training and test sets with a
fixed seed.  The model is ``logits = relu(x @ W1 + b1) @ W2 + b2`` (64 -> hidden -> 10), the
loss ``clumsygrad.loss.cross_entropy`` on the integer labels, the optimizer
``clumsygrad.optimizer.Adam``.  Each epoch prints one progress line (a bar over the epochs,
the mean training loss, training and test accuracy).  At the end the parameters and the
optimizer state are saved with ``clumsygrad.save``, loaded back with ``clumsygrad.load`` into
a fresh model, and the reloaded model's test accuracy is printed: it is the same.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Dict, Optional, Sequence

import numpy as np

import clumsygrad
from clumsygrad.activation import relu
from clumsygrad.loss import cross_entropy
from clumsygrad.optimizer import Adam
from clumsygrad.tensor import Tensor, TensorType, no_grad

PARAM_NAMES = ("W1", "b1", "W2", "b2")


def load_data(seed: int = 0, test_fraction: float = 0.2):
    """``(x_train, y_train, x_test, y_test)``: float32 pixels scaled to [0, 1], int64 labels."""
    from sklearn.datasets import load_digits  # the optional "examples" extra

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def init_params(n_in: int, hidden: int, n_out: int, seed: int = 0) -> Dict[str, Tensor]:
    """He-initialised weights, zero biases, as PARAMETER tensors."""
    rng = np.random.default_rng(seed)
    arrays = {
        "W1": rng.standard_normal((n_in, hidden)) * np.sqrt(2.0 / n_in),
        "b1": np.zeros(hidden),
        "W2": rng.standard_normal((hidden, n_out)) * np.sqrt(2.0 / hidden),
        "b2": np.zeros(n_out),
    }
    return {k: Tensor(v, tensor_type=TensorType.PARAMETER) for k, v in arrays.items()}


def forward(params: Dict[str, Tensor], x: np.ndarray) -> Tensor:
    """The logits, shape ``(len(x), 10)``."""
    hidden = relu(Tensor(x) @ params["W1"] + params["b1"])
    return hidden @ params["W2"] + params["b2"]


def accuracy(params: Dict[str, Tensor], x: np.ndarray, y: np.ndarray) -> float:
    with no_grad():  # evaluation records no graph
        return float(np.mean(forward(params, x).data.argmax(axis=1) == y))


def progress_line(epoch: int, epochs: int, loss: float, train_acc: float, test_acc: float,
                  seconds: float, width: int = 20) -> str:
    done = int(round(width * epoch / epochs))
    bar = "#" * done + "." * (width - done)
    return (f"epoch {epoch:>{len(str(epochs))}}/{epochs} [{bar}] loss {loss:.4f}  "
            f"train {train_acc:6.2%}  test {test_acc:6.2%}  ({seconds:.2f} s)")


def train(epochs: int = 20, hidden: int = 64, lr: float = 0.01, batch_size: int = 32,
          seed: int = 0, checkpoint: Optional[str] = "digits_checkpoint.npz",
          out=sys.stdout) -> Dict[str, float]:
    """Train, print one line per epoch to ``out``, save and reload a checkpoint.

    Returns the final ``train_accuracy``, ``test_accuracy``, ``loss`` and, when a
    ``checkpoint`` path is given, ``reloaded_test_accuracy`` of the model loaded from it.
    """
    x_train, y_train, x_test, y_test = load_data(seed)
    params = init_params(x_train.shape[1], hidden, 10, seed)
    optimizer = Adam([params[k] for k in PARAM_NAMES], lr=lr)
    rng = np.random.default_rng(seed + 1)
    mean_loss = float("nan")
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = rng.permutation(len(x_train))
        losses = []
        for first in range(0, len(order), batch_size):
            batch = order[first:first + batch_size]
            loss = cross_entropy(forward(params, x_train[batch]), y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.data))
        mean_loss = float(np.mean(losses))
        line = progress_line(epoch, epochs, mean_loss, accuracy(params, x_train, y_train),
                             accuracy(params, x_test, y_test), time.perf_counter() - start)
        print(line, file=out, flush=True)
    result = {
        "loss": mean_loss,
        "train_accuracy": accuracy(params, x_train, y_train),
        "test_accuracy": accuracy(params, x_test, y_test),
    }
    if checkpoint:
        clumsygrad.save({"params": params, "optimizer": optimizer.state_dict(),
                         "hidden": hidden, "epochs": epochs}, checkpoint)
        restored = clumsygrad.load(checkpoint)
        result["reloaded_test_accuracy"] = accuracy(restored["params"], x_test, y_test)
        print(f"saved {checkpoint}; reloaded model: test {result['reloaded_test_accuracy']:.2%}",
              file=out, flush=True)
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default="digits_checkpoint.npz",
                        help="where to save the trained model ('' to skip saving)")
    args = parser.parse_args(argv)
    print(f"clumsygrad {clumsygrad.__version__}, backend {clumsygrad.get_backend()}")
    result = train(args.epochs, args.hidden, args.lr, args.batch_size, args.seed, args.checkpoint or None)
    print(f"final test accuracy {result['test_accuracy']:.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
