"""The Debian defaults' one rule, and logs without timestamps in the journal."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from heron.config import SYSTEM_DATA_DIR, load_config, system_service
from heron.systemd import Notifier, log_format


def test_systemd_s_own_child_is_the_system_service(tmp_path: Path) -> None:
    absent = tmp_path / "heron.toml"
    unit = {"INVOCATION_ID": "0123abcd"}
    assert system_service(unit, parent=1, euid=117, system_config=absent)
    # A CI runner started by systemd hands INVOCATION_ID to its jobs; they are not heron's unit.
    assert not system_service(unit, parent=4242, euid=1000, system_config=absent)


def test_root_is_the_system_service_only_where_etc_heron_heron_toml_exists(
    tmp_path: Path,
) -> None:
    etc = tmp_path / "heron.toml"
    assert not system_service({}, parent=4242, euid=0, system_config=etc)
    etc.write_text("")
    assert system_service({}, parent=4242, euid=0, system_config=etc)
    assert not system_service({}, parent=4242, euid=1000, system_config=etc)


def test_the_system_service_keeps_its_data_in_var_lib_heron_unless_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HERON_DATA_DIR", raising=False)
    assert load_config(system=True).data_dir == SYSTEM_DATA_DIR
    assert load_config(system=False).data_dir == Path("var")
    assert load_config(data_dir=tmp_path, system=True).data_dir == tmp_path
    file = tmp_path / "heron.toml"
    file.write_text(f'data_dir = "{tmp_path / "mine"}"\n')
    assert load_config(file, system=True).data_dir == tmp_path / "mine"


def test_logs_have_no_timestamp_when_stderr_is_the_journal_s_stream(tmp_path: Path) -> None:
    with (tmp_path / "journal").open("w") as stream:
        status = os.fstat(stream.fileno())
        journal = {"JOURNAL_STREAM": f"{status.st_dev}:{status.st_ino}"}
        assert "asctime" not in log_format(stream, journal)
        # Inherited from a parent whose stderr went to the journal; this one's does not.
        other = {"JOURNAL_STREAM": f"{status.st_dev}:{status.st_ino + 1}"}
        assert "asctime" in log_format(stream, other)
        assert "asctime" in log_format(stream, {"JOURNAL_STREAM": "garbage"})
        assert "asctime" in log_format(stream, {})


def test_the_notify_socket_is_taken_from_the_environment_so_workers_never_see_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        environ = {"NOTIFY_SOCKET": str(path)}
        notifier = Notifier.from_environment(environ)
        assert environ == {}
        notifier.tell("STATUS=serving")
        assert sock.recv(100) == b"STATUS=serving\n"


def test_a_missing_or_odd_notify_socket_never_stops_heron(tmp_path: Path) -> None:
    Notifier.from_environment({"NOTIFY_SOCKET": str(tmp_path / "gone")}).ready()
    Notifier.from_environment({"NOTIFY_SOCKET": "relative/name"}).ready()
    Notifier.from_environment({}).stopping()
