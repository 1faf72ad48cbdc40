"""Builds heron's compiled parts: the cores mypyc compiles (``heron.compiled.MODULES``) and
``heron.turn._mmsg``, a small C extension for the TURN relay path.

Everything else about the package is in pyproject.toml. ``HERON_PURE_PYTHON=1`` builds no
cores: the Makefile installs heron that way, then compiles them in place with
``setup.py build_ext --inplace`` (README, Development).
"""

import os
import runpy

from setuptools import Extension, setup

# recvmmsg/sendmmsg for the TURN relay path (heron.turn.transports.udp). Optional: where
# it cannot be built, heron relays through socket.recvfrom/sendto instead.
MMSG = Extension(
    "heron.turn._mmsg",
    ["src/heron/turn/_mmsg.c"],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
    optional=True,
)

# Read by path: heron's own imports need its dependencies, which may not be installed yet.
compiled = runpy.run_path("src/heron/compiled.py")
cores = []
if os.environ.get(compiled["PURE_ENV"], "") in ("", "0"):
    from mypyc.build import mypycify

    # --config-file= : pyproject's [tool.mypy] is for `make lint`; its pydantic plugin is not
    # installed where pip builds a wheel, and the cores import nothing but the standard library.
    cores = mypycify(["--config-file=", *compiled["sources"]()], group_name=compiled["GROUP"])

setup(ext_modules=[*cores, MMSG])
