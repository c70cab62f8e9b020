"""Train a small convolutional network on scikit-learn's 8x8 handwritten digits.

    pip install "clumsygrad[examples]"        # scikit-learn, for the data set
    python examples/cnn_digits.py             # about 99% test accuracy in 12 epochs, a few seconds
    python examples/cnn_digits.py --epochs 5 --checkpoint /tmp/cnn.npz

The model is ``clumsygrad.nn``: two 3x3 convolutions (1 -> 16 -> 32 channels, "same"
padding, ReLU), a 2x2 max pooling, and a linear head (32*4*4 -> 10), trained with Adam and a
cosine learning-rate schedule on mini-batches from ``clumsygrad.data.DataLoader``, each
training image shifted by up to one pixel (a fresh random shift per batch).  The
split is the one of ``examples/digits.py`` (1,438 training and 359 test images, fixed seed).
At the end the model's ``state_dict`` is saved with ``clumsygrad.save`` (by default into a
temporary directory, so a run leaves the clone clean), loaded into a fresh model, and the
reloaded model's test accuracy printed: it is the same.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Dict, Optional, Sequence, TextIO, Tuple

import numpy as np

import clumsygrad
from clumsygrad import nn
from clumsygrad.data import DataLoader
from clumsygrad.lr_scheduler import CosineAnnealingLR
from clumsygrad.optimizer import Adam
from clumsygrad.tensor import Tensor, no_grad


def load_data(seed: int = 0, test_fraction: float = 0.2) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)``: (N, 1, 8, 8) float32 images in [0, 1], int64 labels."""
    from sklearn.datasets import load_digits  # the optional "examples" extra

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def build_model(seed: int = 0) -> nn.Module:
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding="same", generator=rng), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding="same", generator=rng), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 10, generator=rng),
    )


def shifted(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each image moved by -1, 0 or +1 pixel in each direction (zeros fill in): cheap augmentation."""
    n = len(x)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    dy, dx = rng.integers(0, 3, n), rng.integers(0, 3, n)
    rows = dy[:, None] + np.arange(8)  # (n, 8)
    cols = dx[:, None] + np.arange(8)
    shifted: np.ndarray = padded[np.arange(n)[:, None, None], 0, rows[:, :, None], cols[:, None, :]][:, None]
    return shifted


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    with no_grad():
        predicted = model(Tensor(x)).data.argmax(axis=1)
    model.train()
    return float(np.mean(predicted == y))


def train(epochs: int = 12, lr: float = 3e-3, batch_size: int = 32, seed: int = 0,
          checkpoint: Optional[str] = None, augment: bool = True,
          out: Optional[TextIO] = None) -> Dict[str, float]:
    """Train, print one line per epoch, save and reload the model; the final accuracies.

    ``checkpoint`` None saves into a temporary directory that is removed afterwards; "" skips
    saving.
    """
    out = sys.stdout if out is None else out
    x_train, y_train, x_test, y_test = load_data(seed)
    model = build_model(seed)
    optimizer = Adam(model.parameters(), lr=lr)
    scheduler = CosineAnnealingLR(optimizer, T_max=epochs)
    loader = DataLoader(x_train, y_train, batch_size=batch_size, shuffle=True, seed=seed + 1)
    augment_rng = np.random.default_rng(seed + 2)
    total = time.perf_counter()
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        losses = []
        for xb, yb in loader:
            if augment:
                xb = shifted(xb, augment_rng)
            loss = clumsygrad.cross_entropy(model(Tensor(xb)), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.data))
        scheduler.step()
        print(f"epoch {epoch:>{len(str(epochs))}}/{epochs} loss {np.mean(losses):.4f}  "
              f"test {accuracy(model, x_test, y_test):6.2%}  ({(time.perf_counter() - start) * 1e3:.0f} ms)",
              file=out, flush=True)
    result = {"train_accuracy": accuracy(model, x_train, y_train), "test_accuracy": accuracy(model, x_test, y_test),
              "seconds": time.perf_counter() - total}
    print(f"trained in {result['seconds'] * 1e3:.0f} ms: test accuracy {result['test_accuracy']:.2%}", file=out)
    if checkpoint != "":
        with tempfile.TemporaryDirectory() as tmp:
            path = checkpoint or os.path.join(tmp, "cnn_digits.npz")
            clumsygrad.save(model.state_dict(), path)
            restored = build_model(seed + 100)  # other initial values: the checkpoint must replace them
            restored.load_state_dict(clumsygrad.load(path))
            result["reloaded_test_accuracy"] = accuracy(restored, x_test, y_test)
            print(f"saved {path if checkpoint else 'a temporary checkpoint'}; reloaded model: "
                  f"test {result['reloaded_test_accuracy']:.2%}", file=out, flush=True)
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--epochs", type=int, default=12, help="passes over the training set")
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam's initial learning rate (cosine-annealed)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per mini-batch")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the initial weights and the shuffling")
    parser.add_argument("--checkpoint", default=None,
                        help="where to save the trained model (default: a temporary file, removed after "
                             "the reload check; '' to skip saving)")
    parser.add_argument("--backend", choices=("cython", "python"), default=None,
                        help="kernel backend (default: the active one)")
    args = parser.parse_args(argv)
    if args.backend:
        clumsygrad.set_backend(args.backend)
    print(f"clumsygrad {clumsygrad.__version__}, backend {clumsygrad.get_backend()}")
    result = train(args.epochs, args.lr, args.batch_size, args.seed, args.checkpoint)
    print(f"final test accuracy {result['test_accuracy']:.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
