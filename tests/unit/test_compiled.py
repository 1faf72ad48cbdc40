"""The mypyc-compiled cores (heron/compiled.py): in use when built, and never needed.

The rest of the suite runs whichever set is imported (compiled after `make install`), so these
tests prove the other half: that CI really built and imports the compiled modules, and that
the SIP core tests also pass on the pure-Python source with the compiled modules present.
"""

from __future__ import annotations

import importlib.machinery
import os
import subprocess
import sys
from pathlib import Path

import pytest

from heron import compiled
from tests.support.tools import missing
from tests.unit.test_sans_io import CORES

REPO = Path(__file__).resolve().parents[2]
# SIP's parse/serialise property tests, RFC 4475's torture messages, the registrar and proxy.
CORE_TESTS = [
    "tests/unit/sip/test_sip_properties.py",
    "tests/unit/sip/test_rfc4475.py",
    "tests/unit/sip/test_registrar.py",
    "tests/unit/sip/test_proxy.py",
]


def pure_env() -> dict[str, str]:
    return {**os.environ, compiled.PURE_ENV: "1"}


def test_only_sans_io_cores_are_compiled() -> None:
    assert {compiled.source(module) for module in compiled.MODULES} <= set(CORES)


def test_the_compiled_cores_are_in_use_when_built() -> None:
    if os.environ.get(compiled.PURE_ENV, "") not in ("", "0"):
        pytest.skip(f"{compiled.PURE_ENV} is set")
    reason = compiled.unusable_reason()
    if reason is not None:
        missing(f"the compiled cores are {reason}")
    assert compiled.active()
    for module in compiled.MODULES:
        assert str(sys.modules[module].__file__).endswith(".so"), module


def test_a_partial_or_stale_build_is_unusable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compiled, "ROOT", tmp_path)
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    for module in compiled.MODULES:
        compiled.source(module).parent.mkdir(parents=True, exist_ok=True)
        compiled.source(module).write_text("")
    assert not compiled.built()
    assert compiled.unusable_reason() == "not built (run `make install`)"

    library = tmp_path / "heron" / f"_cores__mypyc{suffix}"
    library.write_bytes(b"")
    assert compiled.built()
    assert compiled.unusable_reason() == "not built (run `make install`)"

    for module in compiled.MODULES:
        compiled.source(module).with_suffix(suffix).write_bytes(b"")
    built_at = library.stat().st_mtime
    for module in compiled.MODULES:
        os.utime(compiled.source(module), (built_at - 60, built_at - 60))
    assert compiled.unusable_reason() is None

    os.utime(compiled.source("heron.sip.parser"), (built_at + 60, built_at + 60))
    reason = compiled.unusable_reason()
    assert reason is not None and reason.startswith("stale: heron.sip.parser changed")


def test_the_pure_finder_finds_only_the_compiled_modules_sources() -> None:
    finder = compiled.PureFinder()
    spec = finder.find_spec("heron.sip.parser", None)
    assert spec is not None
    assert spec.origin == str(compiled.source("heron.sip.parser"))
    assert spec.origin.endswith(".py")
    assert finder.find_spec("heron.sip.server", None) is None


def test_heron_pure_python_hides_the_compiled_modules() -> None:
    check = "import heron.compiled as c, sys; sys.exit(0 if not c.active() else 1)"
    subprocess.run([sys.executable, "-c", check], env=pure_env(), cwd=REPO, check=True)


@pytest.mark.timeout(600)  # a hang guard for the child suite on a loaded machine, not a timing
def test_the_sip_core_tests_pass_on_the_pure_python_source() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", *CORE_TESTS],
        env=pure_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert " passed" in result.stdout
