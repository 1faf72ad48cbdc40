"""Malformed HTTP to the web port, as a fuzzer sends it.

Seen on the old code (HTTPS): 500 for a multipart POST /login without its boundary,
a url-encoded body that is not UTF-8, a non-ASCII X-CSRF-Token and a JSON body
nested 1,000 deep (a RecursionError); ``Server: Python/3.11 aiohttp/...`` on every
answer; 400 bodies that echoed the parser's internals; and a traceback logged at
ERROR for every request aiohttp could not parse, which lets anyone flood the log.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.security.support import DOMAIN, HOST, USERS, Target, target
from tests.security.web_support import Answer, Browser

FORM = "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """One server for this module: no test here changes any state but its own session."""
    with target(tmp_path_factory.mktemp("malformed") / "heron") as running:
        yield running


@pytest.fixture(scope="module")
def admin(server: Target) -> Browser:
    browser = Browser(server, "127.0.0.20")
    browser.login_ok(f"admin@{DOMAIN}", USERS["admin"])
    return browser


def _short_400(answer: Answer) -> None:
    assert answer.status == 400, (answer.status, answer.text)
    assert len(answer.body) < 100, answer.text
    assert answer.headers["Server"] == "heron"


def test_multipart_login_without_a_boundary_is_a_400(server: Target) -> None:
    body = b'--x\r\nContent-Disposition: form-data; name="address"\r\n\r\na@b\r\n--x--\r\n'
    answer = Browser(server).request(
        "POST", "/login", body, {"Content-Type": "multipart/form-data"}
    )
    _short_400(answer)


def test_a_form_that_is_not_utf8_is_a_400(server: Target) -> None:
    answer = Browser(server).request(
        "POST", "/login", b"address=\xff\xfe%00&password=\xc3", {"Content-Type": FORM}
    )
    _short_400(answer)


def test_a_logout_form_that_is_not_utf8_is_a_400(admin: Browser) -> None:
    other = Browser(admin.target, admin.source, token=admin.token)
    answer = other.request("POST", "/logout", b"csrf=\xff", {"Content-Type": FORM})
    _short_400(answer)
    assert admin.request("GET", "/api/session").status == 200  # still logged in


def test_a_non_ascii_csrf_token_is_a_400(admin: Browser) -> None:
    answer = admin.request(
        "POST",
        "/api/users",
        b'{"address": "x@localhost", "password": "x"}',
        # http.client sends str headers as Latin-1: these are the UTF-8 bytes of "é".
        {"Content-Type": "application/json", "X-CSRF-Token": "é".encode().decode("latin-1")},
    )
    _short_400(answer)


def test_json_nested_a_thousand_deep_is_a_400(admin: Browser) -> None:
    for body in (b"[" * 1000 + b"]" * 1000, b'{"a":' * 1000 + b"1" + b"}" * 1000):
        answer = admin.request(
            "POST",
            "/api/users",
            body,
            {"Content-Type": "application/json", "X-CSRF-Token": admin.csrf or ""},
        )
        _short_400(answer)


def test_every_answer_says_only_heron(server: Target, admin: Browser) -> None:
    for path in ("/", "/healthz", "/login", "/nowhere", "/api/users", "/metrics"):
        answer = Browser(server).request("GET", path)
        assert answer.headers["Server"] == "heron", (path, answer.headers["Server"])
    assert admin.request("GET", "/api/users").headers["Server"] == "heron"


def _raw(server: Target, request: bytes) -> bytes:
    """``request`` as bytes on a TLS connection; all heron answers until it closes."""
    raw = socket.create_connection((HOST, server.ports["web.listen"]), timeout=10)
    with server.tls_context().wrap_socket(raw) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    return answer


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
        b"GET /\x00\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 20000 + b"\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["method", "length", "target", "header", "long", "chunk"],
)
def test_broken_http_is_a_short_400_and_no_traceback(server: Target, request_bytes: bytes) -> None:
    answer = _raw(server, request_bytes)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ")[1][:1] == b"4", answer[:300]
    assert b"\r\nServer: heron\r\n" in head + b"\r\n", head
    assert len(body) < 60, body  # "400 Bad Request", not the parser's account of it
    assert b"aiohttp" not in answer and b"Python" not in answer
    log = server.log()
    assert "Traceback" not in log and "Error handling request" not in log, log[-3000:]


def test_pages_cannot_be_framed(server: Target, admin: Browser) -> None:
    for answer in (Browser(server).request("GET", "/login"), admin.request("GET", "/admin")):
        assert answer.status == 200
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
