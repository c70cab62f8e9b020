"""Benchmarks of clumsygrad: ``python -m clumsygrad.bench`` (see ``--help``).

``workloads`` defines what is timed (an MLP training step at three sizes, its hand-written
NumPy twin, a deep scalar chain, kernel inputs); ``runner`` times it in interleaved rounds;
``suite`` runs everything on both backends; ``report`` prints and plots; ``compare021`` runs
the same workloads under clumsygrad 0.2.1 in a venv of its own.  The pytest-benchmark suites
in ``benchmarks/`` import the same workloads.
"""
