"""Build step for the optional compiled inner loops; everything else is in pyproject.toml.

``_aggregator_speedups`` is optional: without a C compiler the build skips
it and aggregator runs the same code in Python, only slower.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "_aggregator_speedups", ["speedups/_aggregator_speedups.c"],
    extra_compile_args=["-O2"], optional=True,
)])
