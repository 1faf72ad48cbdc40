"""``heron turn credentials``, ``heron turn allocations`` and ``heron turn counters``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from pathlib import Path

from tests.support.config import free_port
from tests.support.heron import running_heron

SECRET = "0123456789abcdef0123"


def test_credentials_follow_the_rest_api_scheme(tmp_path: Path) -> None:
    settings = {"turn": {"enabled": True, "listen": [], "tls_listen": [], "auth_secret": SECRET}}
    with running_heron(tmp_path, settings) as heron:
        before = time.time()
        result = heron.cli("turn", "credentials", "Roland@localhost", "--ttl", "600")
    assert result.returncode == 0, result.stderr
    fields = dict(line.split(":", 1) for line in result.stdout.splitlines())
    username, password = fields["username"].strip(), fields["password"].strip()
    expiry, user = username.split(":")
    assert user == "roland"
    assert int(before) + 600 <= int(expiry) <= time.time() + 601
    expected = hmac.digest(SECRET.encode(), username.encode(), "sha1")
    assert base64.b64decode(password) == expected


def test_credentials_without_a_configured_secret_make_one_private_file(tmp_path: Path) -> None:
    with running_heron(tmp_path, {}) as heron:
        first = heron.cli("turn", "credentials", "someone")
        second = heron.cli("turn", "credentials", "someone")
    secret_file = tmp_path / "var" / "turn_secret"
    assert first.returncode == second.returncode == 0
    assert secret_file.stat().st_mode & 0o777 == 0o600
    username = first.stdout.splitlines()[0].split()[1]
    password = first.stdout.splitlines()[1].split()[1]
    digest = hmac.digest(secret_file.read_bytes().strip(), username.encode(), hashlib.sha1)
    assert base64.b64encode(digest).decode() == password


def test_allocations_of_a_running_server_and_of_none(tmp_path: Path) -> None:
    port = free_port()
    settings = {"turn": {"enabled": True, "listen": [f"127.0.0.1:{port}"], "tls_listen": []}}
    with running_heron(tmp_path, settings) as heron:
        live = heron.cli("turn", "allocations")
        counted = heron.cli("turn", "counters")
    assert counted.returncode == 0, counted.stderr
    figures = dict(line.split() for line in counted.stdout.splitlines())
    assert figures["allocations_active"] == "0" and "key_lookups" in figures
    assert live.returncode == 0, live.stderr
    assert live.stdout.strip().endswith("0 allocation(s)")
    stopped = heron.cli("turn", "allocations")
    assert stopped.returncode == 2
    assert "heron is not running" in stopped.stderr
