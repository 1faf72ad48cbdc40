"""Small pieces of the XMPP server: the keys derived from the server's secret (unknown
accounts' fake SCRAM keys, dialback keys), which outlive a restart."""

from __future__ import annotations

from pathlib import Path

from heron.config import Config
from heron.xmpp.server import _derived_secret


def test_derived_secrets_are_kept_in_the_data_directory(tmp_path: Path) -> None:
    config = Config(data_dir=tmp_path / "var")
    first = _derived_secret(config, b"SCRAM keys of unknown accounts")
    assert len(first) == 32
    # The next start derives the same key.
    assert _derived_secret(config, b"SCRAM keys of unknown accounts") == first
    other = Config(data_dir=tmp_path / "elsewhere")
    assert _derived_secret(other, b"SCRAM keys of unknown accounts") != first


def test_each_purpose_gets_its_own_key(tmp_path: Path) -> None:
    """A dialback key (XEP-0185) never equals a fake SCRAM salt's key."""
    config = Config(data_dir=tmp_path / "var")
    assert _derived_secret(config, b"dialback keys") != _derived_secret(
        config, b"SCRAM keys of unknown accounts"
    )
