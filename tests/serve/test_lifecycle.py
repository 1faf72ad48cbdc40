"""``heron serve`` as an administrator runs it: starts, answers, stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.config import free_port
from tests.support.heron import running_heron

HERON = [sys.executable, "-m", "heron"]


def heron(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HERON, "-c", str(config), *args], capture_output=True, text=True, timeout=60
    )


def wait_for_line(process: subprocess.Popen[str], marker: str) -> list[str]:
    """Read stderr until ``marker`` shows up; the server's own log is the readiness signal."""
    assert process.stderr is not None
    seen: list[str] = []
    for line in process.stderr:
        seen.append(line)
        if marker in line:
            return seen
    raise AssertionError(f"heron exited before logging {marker!r}:\n{''.join(seen)}")


@pytest.fixture
def config(write_config: Callable[..., Path]) -> Path:
    path = write_config()
    assert heron(path, "cert").returncode == 0
    return path


@pytest.fixture
def server(config: Path) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [*HERON, "-c", str(config), "serve"], stderr=subprocess.PIPE, text=True
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def web_port(config: Path) -> int:
    from heron.config import load_config

    return load_config(config).web.listen[0].port


def test_serve_answers_https_then_stops_cleanly_on_sigterm(
    config: Path, server: subprocess.Popen[str]
) -> None:
    startup = wait_for_line(server, "heron serving localhost")
    port = web_port(config)
    assert any(f"web listening on https://127.0.0.1:{port}/" in line for line in startup)
    context = ssl.create_default_context(cafile=str(config.parent / "var/tls/heron.crt"))
    with urllib.request.urlopen(f"https://localhost:{port}/healthz", context=context) as reply:
        assert reply.status == 200
        assert b'"status": "ok"' in reply.read()
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=30) == 0
    assert server.stderr is not None
    rest = server.stderr.read()
    assert "stopped" in rest
    assert "Traceback" not in rest
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # the listener is really closed


def test_sigint_stops_too(server: subprocess.Popen[str]) -> None:
    wait_for_line(server, "heron serving")
    server.send_signal(signal.SIGINT)
    assert server.wait(timeout=30) == 0


def test_port_in_use_is_one_line_and_status_2(write_config: Callable[..., Path]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = write_config(web={"listen": [f"127.0.0.1:{port}"]})
        assert heron(config, "cert").returncode == 0
        result = heron(config, "serve")
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    expected = f"web.listen: cannot listen on 127.0.0.1:{port}: address already in use"
    assert last == f"heron: error: {expected}"
    assert "Traceback" not in result.stderr


def test_serve_without_certificate_names_the_setting(write_config: Callable[..., Path]) -> None:
    result = heron(write_config(), "serve")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("heron: error: tls.certificate: ")
    assert "heron cert" in result.stderr
    assert "Traceback" not in result.stderr


def test_plain_http_only_where_configured_for_a_reverse_proxy(tmp_path: Path) -> None:
    https, plain = free_port(), free_port()
    settings = {"web": {"listen": [f"127.0.0.1:{https}"], "plain_listen": [f"127.0.0.1:{plain}"]}}
    with running_heron(tmp_path, settings) as running:
        with urllib.request.urlopen(f"http://127.0.0.1:{plain}/healthz") as reply:
            assert reply.status == 200
        assert any(f"http://127.0.0.1:{plain}/" in line for line in running.log)
        # The HTTPS port does not speak plain HTTP.
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{https}/healthz", timeout=10)
