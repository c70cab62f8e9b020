"""Mini-batches over arrays: ``DataLoader(x, y, batch_size=32, shuffle=True, seed=0)``.

Each pass (``for xb, yb in loader``) yields batches of the same rows of every array, in order
or, with ``shuffle``, in a new permutation drawn from the loader's own generator (``seed`` or
``generator``; its state advances per pass and pickles with the loader, so a resumed run
sees the same orders).  ``drop_last`` leaves out a last batch smaller than ``batch_size``.
NumPy arrays (and lists) give NumPy batches; a ``Tensor`` gives INPUT tensors of its dtype.
"""
from __future__ import annotations

import math
import numbers
from typing import Iterator, Optional

import numpy as np

from .tensor import Tensor

__all__ = ["DataLoader"]


class DataLoader:
    """An iterable of mini-batches over one or more arrays with the same first dimension."""

    def __init__(self, *arrays, batch_size: int = 1, shuffle: bool = False, drop_last: bool = False,
                 seed: Optional[int] = None, generator: Optional[np.random.Generator] = None) -> None:
        if not arrays:
            raise ValueError("DataLoader needs at least one array")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size!r}")
        self.arrays = tuple(a if isinstance(a, Tensor) else np.asarray(a) for a in arrays)
        lengths = [a.shape[0] if a.shape else None for a in self.arrays]
        if None in lengths or len(set(lengths)) != 1:
            shapes = [tuple(a.shape) for a in self.arrays]
            raise ValueError(f"DataLoader needs arrays with the same first dimension, got shapes {shapes}")
        self.n = lengths[0]
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.generator = generator if generator is not None else np.random.default_rng(seed)

    def __len__(self) -> int:
        """The number of batches per pass."""
        if self.drop_last:
            return self.n // self.batch_size
        return math.ceil(self.n / self.batch_size)

    def _take(self, a, rows):
        if isinstance(a, Tensor):
            return Tensor(a.data[rows], dtype=a.dtype)
        return a[rows]

    def __iter__(self) -> Iterator:
        order = self.generator.permutation(self.n) if self.shuffle else np.arange(self.n)
        for i in range(len(self)):
            rows = order[i * self.batch_size:(i + 1) * self.batch_size]
            batch = tuple(self._take(a, rows) for a in self.arrays)
            yield batch[0] if len(batch) == 1 else batch

    def __repr__(self) -> str:
        return (f"DataLoader({len(self.arrays)} arrays of {self.n} rows, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last})")
