"""Build the compiled modules: every ``src/clumsygrad/**/*.pyx`` becomes one extension module.

The extensions are optional: where no C compiler works (``CC=/bin/false pip install
clumsygrad-*.tar.gz``) the build says so and the package installs with the pure-Python
backend, which ``import clumsygrad`` then announces with one ``RuntimeWarning``.

Environment: ``CLUMSYGRAD_DEBUG_BUILD=1`` keeps the debug information (``-g``) that the
default build drops (it made the shared objects five times larger); the sanitizer build
(``scripts/sanitize.sh``) sets it.
"""
import os
import sys
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SRC = Path("src")

# The oldest NumPy C API the extensions may use: the lowest NumPy in pyproject.toml's
# ``dependencies`` (a test keeps the two equal). Built against NumPy 2.x headers with this
# target, one binary imports under NumPy 1.25+ and 2.x alike.
NUMPY_MIN = "1.25"
NPY_TARGET_VERSION = "NPY_{}_{}_API_VERSION".format(*NUMPY_MIN.split("."))

DEBUG_BUILD = os.environ.get("CLUMSYGRAD_DEBUG_BUILD", "") not in ("", "0")


class OptionalBuildExt(build_ext):
    """Compiler-specific flags, and a clear verdict when the optional extensions fail to build."""

    def build_extensions(self):
        msvc = self.compiler.compiler_type == "msvc"
        flags = ["/O2"] if msvc else ["-O3"] + ([] if DEBUG_BUILD else ["-g0"])
        for ext in self.extensions:
            ext.extra_compile_args = flags + list(ext.extra_compile_args)
        self.failed = []
        super().build_extensions()
        if self.failed:
            self.announce_fallback()

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # setuptools turns it into a warning: the extensions are optional
            error = f"{type(exc).__name__}: {exc}"
            self.failed.append((ext.name, error if len(error) <= 200 else error[:140] + " ... " + error[-55:]))
            raise

    def announce_fallback(self):
        bar = "!" * 78
        lines = [
            bar,
            f"clumsygrad: {len(self.failed)} of {len(self.extensions)} compiled modules could not be built:",
            *(f"  {name}: {error}" for name, error in self.failed),
            "clumsygrad installs WITHOUT its compiled kernels and uses the pure-Python backend",
            "('python'): same results, slower backward passes. For the compiled backend, install a",
            "wheel for this platform or a working C compiler, then reinstall.",
            bar,
        ]
        print("\n".join(lines), file=sys.stderr, flush=True)  # `pip install -v` shows it


extensions = [
    Extension(
        ".".join(pyx.relative_to(SRC).with_suffix("").parts),
        [str(pyx)],
        include_dirs=[np.get_include()],
        define_macros=[
            ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
            ("NPY_TARGET_VERSION", NPY_TARGET_VERSION),
        ],
    )
    for pyx in sorted(SRC.glob("clumsygrad/**/*.pyx"))
]
ext_modules = cythonize(
    extensions,
    compiler_directives={"language_level": "3", "embedsignature": True},
)
for ext in ext_modules:  # cythonize's copies drop the flag, so it is set on what setup() gets
    ext.optional = True

setup(ext_modules=ext_modules, cmdclass={"build_ext": OptionalBuildExt})
