"""Small pieces of the XMPP server: the key of unknown accounts' fake SCRAM keys, which
outlives a restart as real salts do, and the read rate of one connection."""

from __future__ import annotations

from pathlib import Path

from heron.config import Config
from heron.xmpp.server import _ReadRate, _unknown_accounts_secret


def test_the_fake_keys_secret_is_kept_in_the_data_directory(tmp_path: Path) -> None:
    config = Config(data_dir=tmp_path / "var")
    first = _unknown_accounts_secret(config)
    assert len(first) == 32
    assert _unknown_accounts_secret(config) == first  # the next start derives the same
    other = Config(data_dir=tmp_path / "elsewhere")
    assert _unknown_accounts_secret(other) != first


def test_the_read_rate_pauses_a_connection_past_its_burst() -> None:
    rate = _ReadRate(1000, 4000)
    assert rate.pause(4000, now=10.0) == 0.0  # the burst
    assert rate.pause(1000, now=10.0) == 1.0  # one second's worth over it
    assert rate.pause(0, now=11.0) == 0.0  # drained meanwhile
    assert rate.pause(500, now=20.0) == 0.0
    assert _ReadRate(0, 0).pause(10**9, now=0.0) == 0.0  # 0: unlimited
