"""The SIP message layer is sans-IO (ARCHITECTURE.md, STYLE.md practice 1)."""

import ast
from pathlib import Path

import pytest

import heron.sip

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
# server.py and transports/ are the asyncio adapter: the only SIP code allowed I/O.
MODULES = sorted(p for p in Path(heron.sip.__file__).parent.glob("*.py") if p.name != "server.py")


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_sip_core_imports_no_io(path: Path) -> None:
    assert not imported_roots(path) & FORBIDDEN


def test_sip_public_surface_is_declared() -> None:
    assert sorted(heron.sip.__all__) == sorted(set(heron.sip.__all__))
    for name in heron.sip.__all__:
        assert hasattr(heron.sip, name), name


def test_sip_error_tree() -> None:
    assert issubclass(heron.sip.SipLocalError, heron.sip.SipError)
    assert issubclass(heron.sip.SipRemoteError, heron.sip.SipError)
    for remote in (heron.sip.MalformedValue, heron.sip.BadRequest, heron.sip.UnanswerableMessage):
        assert issubclass(remote, heron.sip.SipRemoteError)
    assert issubclass(heron.sip.LimitExceeded, heron.sip.UnanswerableMessage)
    assert not issubclass(heron.sip.BadRequest, heron.sip.UnanswerableMessage)
