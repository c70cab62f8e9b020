"""``python -m clumsygrad.bench``: see :mod:`clumsygrad.bench.cli`."""
import sys

from .cli import main

sys.exit(main())
