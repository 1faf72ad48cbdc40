"""The sans-IO modules mypyc compiles, and the way back to their pure-Python source.

``setup.py`` compiles ``MODULES`` into one shared library (``heron/_cores__mypyc``) plus a
small extension per module beside its ``.py`` file, which Python's importer then prefers. The
``.py`` files stay the source of truth: they are what mypy, ruff and the sans-IO layer tests
read, and heron runs on them alone whenever the compiled set is unusable:

* nothing was built (a fresh checkout, or a machine without a C compiler);
* ``HERON_PURE_PYTHON=1`` asks for the pure modules (to compare, or to debug with pdb);
* the build is stale: a source is newer than the shared library (edited, or a branch checked
  out, since ``make install``). Running stale machine code would silently ignore the edit.

It is all or nothing: mypyc calls across the modules of one library directly in C and hands
its native class instances between them, so a compiled module beside a pure one would break.
This module imports nothing but the standard library, because ``setup.py`` and the Makefile run
it by path, before heron's dependencies are installed.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

# The cores a measurement showed faster compiled (README, Development). Each must stay plain
# typed Python that mypyc accepts: no monkeypatching, no attributes added at run time.
MODULES = (
    "heron.sip.errors",
    "heron.sip.grammar",
    "heron.sip.uri",
    "heron.sip.fields",
    "heron.sip.headers",
    "heron.sip.message",
    "heron.sip.parser",
    "heron.sip.digest",
    "heron.sip.transaction_states",
    "heron.sip.transaction_events",
    "heron.sip.transaction",
    "heron.sip.registrar",
    "heron.sip.proxy",
    "heron.sip.seal",
    "heron.sip.forwarding",
    "heron.sip.admission",
)
# mypyc names the shared library after the group: heron/_cores__mypyc.*.so.
GROUP = "heron._cores"
PURE_ENV = "HERON_PURE_PYTHON"
ROOT = Path(__file__).resolve().parent.parent


def source(module: str) -> Path:
    """The ``.py`` file of one of ``MODULES``."""
    return ROOT.joinpath(*module.split(".")).with_suffix(".py")


def sources() -> list[str]:
    """``MODULES``' files relative to the checkout, as setup.py and the Makefile name them."""
    return [str(source(module).relative_to(ROOT.parent)) for module in MODULES]


def extension(module: str) -> Path | None:
    """The built extension of ``module`` beside its source, if there is one."""
    stem = ROOT.joinpath(*module.split("."))
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = stem.with_name(stem.name + suffix)
        if path.exists():
            return path
    return None


def built() -> bool:
    """Whether any compiled module (or the shared library) is present beside the sources."""
    return any(extension(module) is not None for module in (*MODULES, GROUP + "__mypyc"))


def unusable_reason() -> str | None:
    """Why the compiled modules must not be used, or None when they are complete and fresh."""
    library = extension(GROUP + "__mypyc")
    if library is None or any(extension(module) is None for module in MODULES):
        return "not built (run `make install`)"
    built_at = library.stat().st_mtime
    stale = [module for module in MODULES if source(module).stat().st_mtime > built_at]
    if stale:
        return f"stale: {', '.join(stale)} changed since the build (run `make install`)"
    return None


class PureFinder:
    """Finds ``MODULES`` as their ``.py`` source, ahead of the extensions beside them."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in MODULES:
            return None
        return importlib.util.spec_from_file_location(fullname, source(fullname))


def install() -> None:
    """Use the compiled modules when they are usable and wanted, else hide them all.

    Called by ``heron/__init__.py``, before any of ``MODULES`` can be imported.
    """
    if not built():
        return
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        sys.meta_path.insert(0, PureFinder())
        return
    reason = unusable_reason()
    if reason is not None:
        warnings.warn(
            f"heron runs its pure-Python cores, the compiled ones are {reason}", stacklevel=2
        )
        sys.meta_path.insert(0, PureFinder())


def active() -> bool:
    """Whether ``MODULES`` are imported from their compiled extensions."""
    return all(
        Path(str(importlib.import_module(module).__file__)).suffix != ".py" for module in MODULES
    )
