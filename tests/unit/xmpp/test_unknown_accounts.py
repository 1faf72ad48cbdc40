"""The key of unknown accounts' fake SCRAM keys outlives a restart, as real salts do."""

from __future__ import annotations

from pathlib import Path

from heron.config import Config
from heron.xmpp.server import _unknown_accounts_secret


def test_the_fake_keys_secret_is_kept_in_the_data_directory(tmp_path: Path) -> None:
    config = Config(data_dir=tmp_path / "var")
    first = _unknown_accounts_secret(config)
    assert len(first) == 32
    assert _unknown_accounts_secret(config) == first  # the next start derives the same
    other = Config(data_dir=tmp_path / "elsewhere")
    assert _unknown_accounts_secret(other) != first
