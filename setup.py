"""Compiled parts of heron; everything else is in pyproject.toml."""

from setuptools import Extension, setup

# recvmmsg/sendmmsg for the TURN relay path (heron.turn.transports.udp). Optional: where
# it cannot be built, heron relays through socket.recvfrom/sendto instead.
MMSG = Extension(
    "heron.turn._mmsg",
    ["src/heron/turn/_mmsg.c"],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
    optional=True,
)

setup(ext_modules=[MMSG])
