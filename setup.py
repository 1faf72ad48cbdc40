"""Builds heron's compiled cores: mypyc compiles the modules ``heron.compiled.MODULES`` lists.

Everything else about the package is in pyproject.toml. Another C extension is one more plain
setuptools ``Extension`` appended to ``ext_modules``.
"""

import runpy

from mypyc.build import mypycify
from setuptools import setup

# Read by path: heron's own imports need its dependencies, which may not be installed yet.
compiled = runpy.run_path("src/heron/compiled.py")
sources = [f"src/{module.replace('.', '/')}.py" for module in compiled["MODULES"]]

setup(ext_modules=mypycify(sources, group_name=compiled["GROUP"]))
