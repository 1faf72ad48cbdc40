"""``heron backup`` while heron serves and accounts change; ``heron restore`` into a new
data directory; the restored heron logs the old accounts in with their passwords."""

from __future__ import annotations

import http.client
import ssl
import stat
import tarfile
import threading
import urllib.parse
from pathlib import Path

from heron.config import load_config
from tests.support.config import render_toml
from tests.support.heron import base_settings, heron_cli, running_heron, serving

PASSWORD = "kept-in-the-backup"
DOMAIN = "localhost"


def web_login(config: Path, address: str, password: str) -> int:
    """POST /login over HTTPS, trusting only the data directory's certificate; the status."""
    settings = load_config(config)
    context = ssl.create_default_context(cafile=str(settings.certificate_path))
    connection = http.client.HTTPSConnection(
        "localhost", settings.web.listen[0].port, context=context, timeout=30
    )
    form = urllib.parse.urlencode({"address": address, "password": password})
    try:
        connection.request(
            "POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"}
        )
        return connection.getresponse().status
    finally:
        connection.close()


def test_a_backup_taken_while_serving_restores_into_a_new_data_dir_that_logs_old_accounts_in(
    tmp_path: Path,
) -> None:
    users = {f"old{n}@{DOMAIN}": PASSWORD for n in range(3)}
    archive = tmp_path / "heron-backup.tar.gz"
    (tmp_path / "first").mkdir()
    with running_heron(tmp_path / "first", {}, users) as first:
        changes: list[int] = []

        def change_accounts() -> None:
            for n in range(3):
                added = first.cli(
                    "user", "add", f"new{n}@{DOMAIN}", "--password-stdin", stdin=PASSWORD + "\n"
                )
                changes.append(added.returncode)

        changing = threading.Thread(target=change_accounts)
        changing.start()
        made = first.cli("backup", str(archive))
        changing.join()
        assert made.returncode == 0, made.stderr
        assert changes == [0, 0, 0]
        assert stat.S_IMODE(archive.stat().st_mode) == 0o600
        with tarfile.open(archive) as tar:
            names = set(tar.getnames())
        assert {"heron.db", "sip_secret", "tls/heron.key", "tls/heron.crt"} <= names

        refused = first.cli("restore", "--force", str(archive))
        assert refused.returncode == 2
        assert "heron is running on" in refused.stderr

    second = tmp_path / "second"
    second.mkdir()
    config = second / "heron.toml"
    config.write_text(render_toml(base_settings(second)))
    restored = heron_cli(config, "restore", str(archive))
    assert restored.returncode == 0, restored.stderr
    again = heron_cli(config, "restore", str(archive))
    assert again.returncode == 2
    assert "--force replaces it" in again.stderr
    with serving(config):
        for address in users:
            assert web_login(config, address, PASSWORD) == 302
        assert web_login(config, f"old0@{DOMAIN}", "not-the-password") != 302


def test_restore_refuses_a_file_that_is_not_a_heron_backup(tmp_path: Path) -> None:
    config = tmp_path / "heron.toml"
    config.write_text(render_toml(base_settings(tmp_path)))
    bogus = tmp_path / "bogus.tar.gz"
    with tarfile.open(bogus, "w:gz") as tar:
        tar.add(config, arcname="../../etc/heron.db")
    result = heron_cli(config, "restore", str(bogus))
    assert result.returncode == 2
    assert "not a heron backup" in result.stderr
    assert not (tmp_path / "var").exists()
