"""Storage is chosen in one place (ARCHITECTURE.md): :mod:`heron.wiring` builds the
stores and hands them to each service typed as the Protocols beside its model.

The protocol packages, the port-443 demultiplexer, the media bridge, the web component
and the component seam never import :mod:`heron.store` (it imports their record types to
implement their Protocols, so the other way round would be a cycle), and no module
outside ``store/`` but ``wiring.py`` constructs a SQL store.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import heron

ROOT = Path(heron.__file__).parent
STORELESS = sorted(
    [
        path
        for package in ("sip", "xmpp", "turn", "web", "mux", "media", "acme")
        for path in (ROOT / package).rglob("*.py")
    ]
    + [ROOT / "component.py"]
)


def imported_modules(tree: ast.AST) -> set[str]:
    """Every module an import names, ``from a import b`` counting as ``a`` and ``a.b``."""
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module)
            modules |= {f"{node.module}.{alias.name}" for alias in node.names}
    return modules


def constructed(tree: ast.AST) -> set[str]:
    """Names of the classes a module calls by name."""
    return {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }


def test_every_package_is_checked() -> None:
    checked = {path.relative_to(ROOT).parts[0] for path in STORELESS}
    assert checked == {"sip", "xmpp", "turn", "web", "mux", "media", "acme", "component.py"}
    assert ROOT / "xmpp" / "features" / "roster.py" in STORELESS
    assert ROOT / "sip" / "transports" / "flows.py" in STORELESS


@pytest.mark.parametrize("path", STORELESS, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_does_not_import_the_store(path: Path) -> None:
    modules = imported_modules(ast.parse(path.read_text()))
    assert not {m for m in modules if m == "heron.store" or m.startswith("heron.store.")}


def test_only_wiring_constructs_sql_stores() -> None:
    builders = {
        str(path.relative_to(ROOT))
        for path in ROOT.rglob("*.py")
        if path.relative_to(ROOT).parts[0] != "store"
        and any(
            name.startswith("Sql") and name.endswith("Store")
            for name in constructed(ast.parse(path.read_text()))
        )
    }
    assert builders == {"wiring.py"}


def test_sip_steers_the_media_bridge_only_through_its_protocol() -> None:
    """``sip/media.py`` is the seam (as Kamailio's rtpengine module speaks a protocol):
    no SIP module imports :mod:`heron.media`, which wiring binds to it."""
    importers = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "sip").rglob("*.py")
        if any(
            m == "heron.media" or m.startswith("heron.media.")
            for m in imported_modules(ast.parse(path.read_text()))
        )
    }
    assert importers == set()
