"""RFC 5780 NAT behaviour discovery with a second address, against coturn's own clients."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.interop.turn.support import tool
from tests.support.config import free_port
from tests.support.heron import running_heron

pytestmark = pytest.mark.interop


def settings(port: int) -> dict[str, object]:
    # Port P+1 must be free too: RFC 5780 uses two ports on each address.
    return {
        "turn": {
            "enabled": True,
            "listen": [f"127.0.0.1:{port}"],
            "tls_listen": [],
            "relay_addresses": ["127.0.0.1"],
            "other_address": "127.0.0.2",
        }
    }


def test_rfc5780_7_stunclient_sees_response_origin_and_other_address(tmp_path: Path) -> None:
    port = free_port()
    with running_heron(tmp_path, settings(port)) as heron:
        assert any("udp://127.0.0.2:" in line for line in heron.log)
        result = subprocess.run(
            [tool("turnutils_stunclient"), "-p", str(port), "127.0.0.1"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Other addr: : 127.0.0.2:{port + 1}" in result.stdout
    # CHANGE-REQUEST answered from the other address and port, RESPONSE-PORT honoured.
    assert f"Response origin: : 127.0.0.2:{port + 1}" in result.stdout
    assert "UDP reflexive addr: 127.0.0.1:" in result.stdout


def test_rfc5780_4_natdiscovery_finds_loopback_endpoint_independent(tmp_path: Path) -> None:
    port = free_port()
    with running_heron(tmp_path, settings(port)):
        result = subprocess.run(
            [tool("turnutils_natdiscovery"), "-m", "-f", "-p", str(port), "127.0.0.1"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert "NAT with Endpoint Independent Mapping!" in result.stdout, result.stdout
    assert "NAT with Endpoint Independent Filtering!" in result.stdout, result.stdout


def test_without_a_second_address_change_request_is_unknown(tmp_path: Path) -> None:
    port = free_port()
    plain = {"turn": {"enabled": True, "listen": [f"127.0.0.1:{port}"], "tls_listen": []}}
    with running_heron(tmp_path, plain):
        result = subprocess.run(
            [tool("turnutils_natdiscovery"), "-m", "-p", str(port), "127.0.0.1"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    # The binding works, but without OTHER-ADDRESS there is nothing to discover with.
    assert "UDP reflexive addr: 127.0.0.1:" in result.stdout
    assert "Endpoint Independent Mapping" not in result.stdout
