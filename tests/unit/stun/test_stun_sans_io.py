"""The STUN core is sans-IO (ARCHITECTURE.md, STYLE.md practice 1): no I/O, clock or randomness."""

import ast
from pathlib import Path

import pytest

import heron.stun

FORBIDDEN = {
    "asyncio",
    "socket",
    "ssl",
    "selectors",
    "time",
    "random",
    "secrets",
    "os",
    "threading",
}
MODULES = sorted(Path(heron.stun.__file__).parent.glob("*.py"))


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_stun_core_imports_no_io(path: Path) -> None:
    assert not imported_roots(path) & FORBIDDEN


def test_stun_public_surface_is_declared() -> None:
    assert sorted(heron.stun.__all__) == sorted(set(heron.stun.__all__))
    for name in heron.stun.__all__:
        assert hasattr(heron.stun, name), name
