"""Fixtures for the browser tests: Debian's Chromium driven by Playwright, and heron to test.

Every heron started here serves one certificate made once per session, so one
browser launched with that key's SPKI pinned (``--ignore-certificate-errors-spki-list``,
trap 3 of shared/browser-testing.md) trusts the pages, ``wss://`` and ``turns:`` of all
of them, and nothing else. A missing Chromium or Playwright fails on CI and skips
elsewhere (:func:`tests.support.tools.missing`).

Use :func:`web_heron` for a server of your own (other users, admins, click-to-call
settings), or the session-wide ``phone_heron`` with the staff users of ``STAFF``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.support.config import free_port, render_toml
from tests.support.heron import RunningHeron, heron_cli, merge, provision, serving
from tests.support.tools import missing

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
LOCALHOST = "127.0.0.1"
"""Never ``localhost`` in URLs the browser uses: it also resolves to ::1 (trap 4)."""
DOMAIN = "localhost"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
"""Screenshots for a person to look at (gitignored; CI may keep them)."""

STAFF = {"alice": "alice-web-secret", "bob": "bob-web-secret"}
"""``phone_heron``'s users by local part, with their passwords."""

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    # Without it Chromium gathers no candidates on loopback at all (trap 1).
    "--allow-loopback-in-peer-connection",
]


@dataclass(frozen=True)
class TlsFiles:
    certificate: Path
    key: Path
    spki: str
    """Base64 SHA-256 of the key's SubjectPublicKeyInfo, as Chromium's SPKI list wants it."""


@dataclass
class WebHeron:
    """A running heron with SIP (WebSocket included), TURN and HTTPS on free loopback ports
    (or where ``host`` says, such as a network namespace's)."""

    heron: RunningHeron
    web_port: int
    sip_port: int
    turn_port: int
    turn_tls_port: int
    host: str = LOCALHOST

    @property
    def base_url(self) -> str:
        port = "" if self.web_port == 443 else f":{self.web_port}"  # as browsers write it
        return f"https://{self.host}{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def log(self) -> str:
        return "".join(self.heron.log)


def spki_hash(certificate: Path) -> str:
    loaded = x509.load_pem_x509_certificate(certificate.read_bytes())
    der = loaded.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")


@pytest.fixture(scope="session")
def browser_tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """One self-signed certificate (``heron cert``) for every heron of the session."""
    directory = tmp_path_factory.mktemp("browser-tls")
    config = directory / "heron.toml"
    config.write_text(render_toml({"data_dir": str(directory / "var")}))
    made = heron_cli(config, "cert")
    assert made.returncode == 0, made.stderr
    certificate = directory / "var" / "tls" / "heron.crt"
    return TlsFiles(certificate, directory / "var" / "tls" / "heron.key", spki_hash(certificate))


@pytest.fixture(scope="module")
def browser_args() -> list[str]:
    """More Chromium arguments for a module's browser; a module overrides this fixture
    (the media tests' ``--use-file-for-fake-audio-capture``)."""
    return []


@pytest.fixture(scope="module")
def browser(browser_tls: TlsFiles, browser_args: list[str]) -> Iterator[Browser]:
    """Debian's headless Chromium with fake camera and microphone, trusting our key only.

    One per module, not per session: Playwright's sync API keeps an event loop running
    while it lives, and the asyncio tests an xdist worker runs next need their own.
    Keep asyncio tests out of modules that use it.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is missing: `make test-deps` installs the test extra")
        raise AssertionError("unreachable") from None  # pragma: no cover
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is missing: `make test-deps` installs Debian's chromium")
    args = [
        *CHROMIUM_ARGS,
        f"--ignore-certificate-errors-spki-list={browser_tls.spki}",
        *browser_args,
    ]
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=args
        )
        try:
            yield launched
        finally:
            launched.close()


@contextmanager
def web_heron(
    directory: Path,
    tls: TlsFiles,
    users: Mapping[str, str],
    settings: Mapping[str, Any] | None = None,
) -> Iterator[WebHeron]:
    """Start heron with SIP, TURN and web on loopback; ``users`` maps local part to password.

    TURN allows loopback peers (127.0.0.0/8), which a real deployment refuses: both
    browsers of a test relay to each other on this machine (trap 2). ``settings`` are
    merged over these, one section level deep (``{"admins": [...]}``, ``{"web": {...}}``).
    """
    web_port, sip_port, turn_port, turn_tls_port = (free_port() for _ in range(4))
    base: dict[str, Any] = {
        "data_dir": str(directory / "var"),
        "domain": DOMAIN,
        "tls": {"certificate": str(tls.certificate), "key": str(tls.key)},
        "turn": {
            "listen": [f"{LOCALHOST}:{turn_port}"],
            "tls_listen": [f"{LOCALHOST}:{turn_tls_port}"],
            "allowed_peer_ranges": ["127.0.0.0/8"],
        },
        "sip": {"listen": [f"{LOCALHOST}:{sip_port}"], "tls_listen": []},
        "xmpp": {"enabled": False},
        "web": {"listen": [f"{LOCALHOST}:{web_port}"]},
    }
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "heron.toml"
    config.write_text(render_toml(merge(base, dict(settings or {}))))
    provision(config, {f"{user}@{DOMAIN}": password for user, password in users.items()})
    with serving(config) as running:
        yield WebHeron(running, web_port, sip_port, turn_port, turn_tls_port)
    log = "".join(running.log)
    assert running.process.returncode == 0, "heron did not stop cleanly:\n" + log
    assert "Traceback" not in log, log


@pytest.fixture(scope="session")
def phone_heron(
    tmp_path_factory: pytest.TempPathFactory, browser_tls: TlsFiles
) -> Iterator[WebHeron]:
    """One heron for the session with the staff users of ``STAFF``."""
    with web_heron(tmp_path_factory.mktemp("heron-phone"), browser_tls, STAFF) as server:
        yield server


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """test-artifacts/<test name>/, for screenshots."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    path = ARTIFACTS / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def login(page: Page, server: WebHeron, user: str, password: str, next_path: str = "/") -> None:
    """Log in through heron's /login form and wait for the page it sends us to."""
    page.goto(server.url(f"/login?next={quote(next_path, safe='')}"))
    page.fill("input[name=address]", f"{user}@{DOMAIN}")
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url == server.url(next_path), page.url
