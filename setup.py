"""Build the compiled kernels: every ``src/clumsygrad/_kernels/*.pyx`` becomes one extension module."""
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

KERNEL_DIR = Path("src", "clumsygrad", "_kernels")

extensions = [
    Extension(
        f"clumsygrad._kernels.{pyx.stem}",
        [str(pyx)],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3"],
    )
    for pyx in sorted(KERNEL_DIR.glob("*.pyx"))
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={"language_level": "3", "embedsignature": True},
    ),
)
