"""Builds heron's compiled cores: mypyc compiles the modules ``heron.compiled.MODULES`` lists.

Everything else about the package is in pyproject.toml. ``HERON_PURE_PYTHON=1`` builds no
cores: the Makefile installs heron that way, then compiles them in place with
``setup.py build_ext --inplace`` (README, Development). Another C extension is one more
setuptools ``Extension`` appended to ``ext_modules``.
"""

import os
import runpy

from setuptools import setup

# Read by path: heron's own imports need its dependencies, which may not be installed yet.
compiled = runpy.run_path("src/heron/compiled.py")
cores = []
if os.environ.get(compiled["PURE_ENV"], "") in ("", "0"):
    from mypyc.build import mypycify

    # --config-file= : pyproject's [tool.mypy] is for `make lint`; its pydantic plugin is not
    # installed where pip builds a wheel, and the cores import nothing but the standard library.
    cores = mypycify(["--config-file=", *compiled["sources"]()], group_name=compiled["GROUP"])

setup(ext_modules=cores)
