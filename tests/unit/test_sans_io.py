"""Protocol cores are sans-IO (ARCHITECTURE.md, STYLE.md practice 1): no I/O, clock or randomness.

Every module of ``stun``, ``turn``, ``sip``, ``xmpp``, ``mux`` and ``media`` (and ACME's
``messages`` and ``renewal``) is checked, except
the asyncio adapters: ``server.py``, the ``transports`` packages, ``turn/adapters`` and the media
bridge's sockets and component (``media/bridge.py``, ``media/component.py``). Subpackages are
not globbed: ``xmpp/features`` holds the async features that reach the store
(their sans-IO rules live in the modules beside them), so it is no core.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import heron

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
ROOT = Path(heron.__file__).parent
CORES = sorted(
    [
        path
        for package in ("stun", "turn", "sip", "xmpp", "mux")
        for path in (ROOT / package).glob("*.py")
        if path.name != "server.py"
    ]
    # A group-chat room's rules are a core too; the MUC service around them is async.
    + [path for path in (ROOT / "xmpp" / "muc").glob("*.py") if path.name != "service.py"]
    # The media bridge's SDP, ICE, DTLS and packet path; bridge.py holds its sockets.
    + [
        path
        for path in (ROOT / "media").glob("*.py")
        if path.name not in ("bridge.py", "component.py", "__init__.py")
    ]
    # The s2s stream core, its location and identity rules; server.py is the asyncio side
    # (and dns.py the adapter to the shared resolver, which imports no I/O module itself).
    + [path for path in (ROOT / "xmpp" / "s2s").glob("*.py") if path.name != "server.py"]
    # ACME's messages and the renewal rule; client, alpn, files and component do the I/O.
    + [ROOT / "acme" / "messages.py", ROOT / "acme" / "renewal.py"]
    # PEP's node model and XEP-0115 caps; service.py is the feature around them.
    + [path for path in (ROOT / "xmpp" / "pep").glob("*.py") if path.name != "service.py"]
)


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots


def test_every_core_package_is_checked() -> None:
    assert {path.parent.name for path in CORES} == {
        "stun",
        "turn",
        "sip",
        "xmpp",
        "mux",
        "muc",
        "s2s",
        "media",
        "pep",
        "acme",
    }
    assert ROOT / "turn" / "core.py" in CORES
    assert ROOT / "xmpp" / "stream.py" in CORES
    assert ROOT / "mux" / "classify.py" in CORES
    assert ROOT / "media" / "call.py" in CORES
    assert ROOT / "xmpp" / "s2s" / "stream.py" in CORES
    assert not any(path.parent.name == "features" for path in CORES)


@pytest.mark.parametrize("path", CORES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_core_module_imports_no_io_clock_or_randomness(path: Path) -> None:
    assert not imported_roots(path) & FORBIDDEN
