"""Timing: interleaved rounds of samples, medians, and a plain-text progress bar.

Standard library only and no relative imports: ``compare021`` runs it under clumsygrad 0.2.1.
"""
from __future__ import annotations

import gc
import math
import statistics
import sys
import time
from typing import Callable, Dict, List, NamedTuple, Optional


class Contender(NamedTuple):
    """One implementation of a workload.

    ``sample(number)`` runs the work ``number`` times and returns seconds per unit of work
    for each metric it measures (e.g. ``{"step": 1.2e-4}``).  ``prepare`` runs, untimed,
    before every sample (it selects the backend: contenders take turns in one process).
    """

    name: str
    sample: Callable[[int], Dict[str, float]]
    prepare: Optional[Callable[[], None]] = None
    calibrate: bool = True  # False: one unit per sample (e.g. a backward that consumes its graph)


def loop_sample(fn: Callable[[], object], metric: str = "step") -> Callable[[int], Dict[str, float]]:
    """A ``sample`` that times ``number`` back-to-back calls of ``fn``."""

    def sample(number: int) -> Dict[str, float]:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        return {metric: (time.perf_counter() - start) / number}

    return sample


def terminal_columns(stream=None) -> int:
    """Columns of the terminal ``stream`` writes to (``COLUMNS`` first; 80 when unknown)."""
    import os
    import shutil

    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return os.get_terminal_size((stream or sys.stderr).fileno()).columns
    except (AttributeError, ValueError, OSError):  # not a real file, or not a terminal
        return shutil.get_terminal_size((80, 24)).columns


def fmt_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    """A live ``[#####.....] 12/40 0:05 eta 0:12  mlp-medium python`` bar on a terminal's stderr.

    On a terminal the bar is redrawn in place, and the whole line is cut to one column less than
    the terminal is wide, so it never wraps and never leaves a line behind; the bar shrinks in
    narrow terminals.  In a log (stderr not a terminal) it writes one line per finished workload
    instead of a line per sample: :func:`run_interleaved` calls :meth:`finished` once per workload.
    The ETA assumes the remaining samples take as long, on average, as those taken so far.
    """

    def __init__(self, total: int, stream=None, width: int = 30):
        self.total, self.done, self.width = max(total, 1), 0, width
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.perf_counter()
        self.columns = terminal_columns(self.stream) if self.tty else 0
        self.drawn = 0  # characters of the bar now on the terminal line

    def _line(self, label: str) -> str:
        elapsed = time.perf_counter() - self.started
        eta = elapsed / self.done * (self.total - self.done) if self.done else None
        counts = f"{self.done}/{self.total} {fmt_seconds(elapsed):>5}"
        counts += f" eta {fmt_seconds(eta):>5}" if eta is not None and self.done < self.total else ""
        width = self.width
        if self.tty:  # leave the label at least 12 columns of what is left
            width = max(5, min(width, self.columns - 1 - len(counts) - 3 - 12 - 2))
        filled = width * self.done // self.total
        line = f"[{'#' * filled}{'.' * (width - filled)}] {counts}  {label}"
        return line[: self.columns - 1] if self.tty else line

    def advance(self, label: str, steps: int = 1) -> None:
        """One more sample taken (``label``: workload and contender)."""
        self.done = min(self.done + steps, self.total)
        if self.tty:
            line = self._line(label)
            self.stream.write("\r" + line.ljust(self.drawn))  # blanks over a longer previous line
            self.drawn = len(line)
            self.stream.flush()

    def finished(self, label: str) -> None:
        """Every sample of workload ``label`` is taken: its line in a log."""
        if not self.tty:
            self.stream.write(self._line(label) + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Erase the bar on a terminal (no line left behind); say how long it all took."""
        if self.tty:
            self.stream.write("\r" + " " * self.drawn + "\r")
        self.stream.write(f"done in {time.perf_counter() - self.started:.0f}s\n")
        self.stream.flush()


def calibrate(contender: Contender, target: float) -> int:
    """How many units make one sample last about ``target`` seconds (after one warm-up unit)."""
    if not contender.calibrate:
        return 1
    if contender.prepare:
        contender.prepare()
    once = min(contender.sample(1).values())  # also the warm-up (caches, allocator, first calls)
    if once < target:  # a second, warm measurement, unless one unit already fills a sample
        once = min(once, min(contender.sample(1).values()))
    return max(1, math.ceil(target / max(once, 1e-9)))


def run_interleaved(
    contenders: List[Contender],
    rounds: int,
    target: float,
    progress: Optional[Progress] = None,
    label: str = "",
) -> Dict[str, Dict[str, float]]:
    """Median seconds per unit, ``{contender: {metric: median}}``, over ``rounds`` rounds.

    Each round takes one sample of every contender, starting with a different one each
    round, so slow drift (thermal, other load) affects all of them alike.
    """
    numbers = {c.name: calibrate(c, target) for c in contenders}
    samples: Dict[str, Dict[str, List[float]]] = {c.name: {} for c in contenders}
    for r in range(rounds):
        for i in range(len(contenders)):
            c = contenders[(r + i) % len(contenders)]
            if c.prepare:
                c.prepare()
            gc.collect()  # start every sample with the same garbage: none
            for metric, value in c.sample(numbers[c.name]).items():
                samples[c.name].setdefault(metric, []).append(value)
            if progress:
                progress.advance(f"{label} {c.name}".strip())
    if progress:
        progress.finished(label)
    return {
        name: {metric: statistics.median(values) for metric, values in metrics.items()}
        for name, metrics in samples.items()
    }
