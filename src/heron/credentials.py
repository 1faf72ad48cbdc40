"""Short-lived TURN credentials, the "TURN REST API" scheme of coturn's ``use-auth-secret``.

The username is ``expiry:user`` (expiry in Unix seconds) and the password
``base64(HMAC-SHA1(secret, username))``. The web phone's ``/config.js`` and
XMPP's XEP-0215 hand these out, so no user ever types a TURN password, and a
TURN server that knows the same secret checks them without a database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heron.config import Config, ListenAddress
from heron.errors import ConfigError

__all__ = [
    "TurnCredentials",
    "TurnSecret",
    "WebPhoneCredentials",
    "ice_servers",
    "load_or_create_secret",
    "turn_secret",
    "web_phone_secret",
]

DEFAULT_TTL = 86_400
"""One day, as coturn's documentation suggests for the REST API scheme."""


@dataclass(frozen=True, slots=True)
class TurnCredentials:
    username: str
    password: str
    expires: int
    """Unix time after which the TURN server refuses them."""


class TurnSecret:
    """Issues and checks REST API credentials with one shared secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ConfigError("turn.auth_secret: must be at least 16 bytes long")
        self._secret = secret

    def password(self, username: str) -> str:
        digest = hmac.digest(self._secret, username.encode(), "sha1")
        return base64.b64encode(digest).decode("ascii")

    def issue(self, user: str, *, now: float, ttl: int = DEFAULT_TTL) -> TurnCredentials:
        expires = int(now) + ttl
        username = f"{expires}:{user}"
        return TurnCredentials(username, self.password(username), expires)

    def long_term_keys(
        self, username: str, realm: str, *, now: float
    ) -> tuple[bytes, bytes] | None:
        """MD5 and SHA-256 long-term keys (RFC 8489 §9.2.2) for a live REST username.

        None if expired or malformed. coturn puts the timestamp first and the
        user after the first colon; heron does the same, so both servers take
        the same credentials.
        """
        expiry, sep, user = username.partition(":")
        if not sep or not expiry.isdigit() or not user or int(expiry) < now:
            return None
        text = f"{username}:{realm}:{self.password(username)}".encode()
        return hashlib.md5(text).digest(), hashlib.sha256(text).digest()


def load_or_create_secret(path: Path) -> bytes:
    """Read the shared secret, creating a random one readable by the owner only if absent."""
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConfigError(f"turn.auth_secret_file: cannot read {path}: {exc.strerror}") from None
    value = secrets.token_urlsafe(32).encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"turn.auth_secret_file: cannot create {path}: {exc.strerror}") from None
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(value + b"\n")
    return value


def turn_secret(config: Config) -> TurnSecret:
    """The one secret behind every TURN REST credential: ``turn.auth_secret`` (shared with
    other TURN servers, as coturn's static-auth-secret), else the generated file."""
    if config.turn.auth_secret:
        return TurnSecret(config.turn.auth_secret.encode())
    return TurnSecret(load_or_create_secret(config.turn_secret_path))


def _turn_host(config: Config, address: ListenAddress) -> str:
    """Where browsers reach a TURN listener: the NAT's outside address if configured,
    a specific listen address, else this machine's DNS name."""
    if config.turn.external_address is not None:
        host = str(config.turn.external_address)
    elif address.host == "localhost":
        host = "127.0.0.1"  # localhost also names ::1, where a v4-only listener is not
    elif ipaddress.ip_address(address.host).is_unspecified:
        return config.host_name
    else:
        host = address.host
    return f"[{host}]" if ":" in host else host


def ice_servers(
    config: Config, secret: TurnSecret | None, user: str | None, *, now: float, ttl: int
) -> list[dict[str, Any]]:
    """RTCIceServer entries for heron's own STUN/TURN: STUN only without a ``user``
    (anonymous) or a ``secret``, else TURN over UDP and TCP, and TLS when listening, with
    REST credentials for ``user`` that live ``ttl`` seconds; none when TURN is off.

    With ``[mux] listen``, TURN over TLS and over UDP on the mux port come first. The
    browser gathers a relay candidate from every URL at once, and of two relays over one
    transport libwebrtc prefers the one listed first; TLS on the mux port is the way out
    of a hotel network that lets only HTTPS through a proxy, UDP on it the way out of one
    that opens 443 alone."""
    turn = config.turn
    mux = [f"{_turn_host(config, a)}:{a.port}" for a in config.mux.listen]
    if not turn.enabled or not turn.listen and not turn.tls_listen and not mux:
        return []
    plain = [f"{_turn_host(config, a)}:{a.port}" for a in turn.listen]
    tls = [f"{_turn_host(config, a)}:{a.port}" for a in turn.tls_listen]
    stun = [f"stun:{hostport}" for hostport in dict.fromkeys(plain or mux)]
    servers: list[dict[str, Any]] = [{"urls": stun}] if stun else []
    if user is None or secret is None:
        return servers
    urls = [
        *(f"turns:{h}?transport=tcp" for h in dict.fromkeys(mux)),
        *(f"turn:{h}?transport=udp" for h in dict.fromkeys(mux)),
        *(f"turn:{h}?transport={t}" for h in dict.fromkeys(plain) for t in ("udp", "tcp")),
        *(f"turns:{h}?transport=tcp" for h in dict.fromkeys(tls)),
    ]
    issued = secret.issue(user, now=now, ttl=ttl)
    servers.append(
        {
            "urls": list(dict.fromkeys(urls)),
            "username": issued.username,
            "credential": issued.password,
        }
    )
    return servers


def web_phone_secret(sip_secret: bytes) -> TurnSecret:
    """The key of the web phone's short-lived SIP digest credentials.

    A browser logged in to the web gets ``expiry:user`` and an HMAC password in
    the REST scheme above (Kamailio's auth_ephemeral), never the account's own.
    The key is derived from the SIP secret, which only this server holds, so a
    TURN credential (whose secret other TURN servers may share) is never a SIP one.
    """
    return TurnSecret(hmac.digest(sip_secret, b"heron web phone SIP credentials", "sha256"))


class WebPhoneCredentials:
    """The web phone's SIP credentials, which end with the web session that got them.

    The username is ``expiry.grant:user`` and the password the REST scheme's HMAC
    of it under :func:`web_phone_secret`. ``grant`` names one issue; the web
    component revokes a session's grants at logout, and every grant of a user
    whose password changes or who is removed, so a credential copied out of a
    browser stops working then, not hours later at its expiry. Grants live in
    this process only: a restart ends them, as it ends the web sessions.
    """

    def __init__(self, sip_secret: bytes, capacity: int = 100_000) -> None:
        self._secret = web_phone_secret(sip_secret)
        self._grants: dict[str, tuple[str, int]] = {}
        """grant -> (user, expiry), oldest issue first."""
        self._capacity = capacity

    def __len__(self) -> int:
        """Live grants."""
        return len(self._grants)

    def issue(self, user: str, *, now: float, ttl: int) -> tuple[TurnCredentials, str]:
        """Credentials for ``user`` (a SIP user name) and the grant that revokes them."""
        while self._grants and (
            len(self._grants) >= self._capacity or next(iter(self._grants.values()))[1] < now
        ):
            del self._grants[next(iter(self._grants))]
        grant = secrets.token_hex(8)
        expires = int(now) + ttl
        self._grants[grant] = (user, expires)
        username = f"{expires}.{grant}:{user}"
        return TurnCredentials(username, self._secret.password(username), expires), grant

    def revoke(self, grant: str) -> None:
        self._grants.pop(grant, None)

    def revoke_user(self, user: str) -> None:
        for grant in [g for g, (u, _) in self._grants.items() if u == user]:
            del self._grants[grant]

    def check(self, username: str, realm: str, *, now: float) -> tuple[str, bytes, bytes] | None:
        """The user and the MD5 and SHA-256 digest HA1 for a live, unrevoked
        ``expiry.grant:user``; None for anything else, forged, expired or revoked alike."""
        stamp, sep, user = username.partition(":")
        expiry, dot, grant = stamp.partition(".")
        if not (sep and dot and user and expiry.isdigit()) or int(expiry) < now:
            return None
        if self._grants.get(grant) != (user, int(expiry)):
            return None
        text = f"{username}:{realm}:{self._secret.password(username)}".encode()
        return user, hashlib.md5(text).digest(), hashlib.sha256(text).digest()
