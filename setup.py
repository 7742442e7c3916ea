"""Build the Cython extensions (the data plane and RC4/MPPE).

Options (environment):
  FASTL2TP_DEBUG=1     bounds-checked, assertion-enabled build (CI tests it too)
  FASTL2TP_ANNOTATE=1  write Cython's HTML annotation next to each .pyx
"""
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("FASTL2TP_DEBUG") == "1"

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}
# -UNDEBUG: Python's own CFLAGS carry -DNDEBUG, which would compile the C assert()s out of the debug build
cflags = ["-O0", "-g", "-UNDEBUG"] if DEBUG else ["-O3"]
macros = [] if DEBUG else [("NDEBUG", "1")]

extensions = [
    Extension(name, [src], extra_compile_args=cflags, define_macros=macros)
    for name, src in (
        ("fastl2tp._dp", "fastl2tp/_dp.pyx"),
        ("fastl2tp._rc4", "fastl2tp/_rc4.pyx"),
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        annotate=os.environ.get("FASTL2TP_ANNOTATE") == "1",
    ),
)
