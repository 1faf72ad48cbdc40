"""Server side of SIP digest authentication (RFC 3261 §22, RFC 8760, RFC 7616).

Sans-IO: ``now`` (Unix seconds: nonces cross processes), the nonce key and
each nonce's random salt are arguments. A nonce is ``expiry || issuer || salt ||
HMAC-SHA256(key, expiry || issuer || salt || realm)``: any process with the key
knows it for heron's, and only the process ``issuer`` names checks it, against the
highest nonce-count per nonce it remembers. Another process answers it stale, so
nonce counts need no shared store and a replay to another process is refused.

    auth = authenticator.credentials(request)         # MalformedValue: answer 400
    verdict = authenticator.verify(request.method, auth, ha1_or_none, now, source_ip)
    # OK: go on as verdict.username; STALE: challenge(stale=True);
    # INVALID: challenge again (or 403), the same answer whatever the reason.

Only parsing raises, and only :class:`MalformedValue` of the SIP tree; any
fault of parsed credentials is an INVALID verdict. Misuse (a short key, a
salt of the wrong length) raises :class:`SipLocalError`. No new exceptions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum

from heron.sip.errors import MalformedValue, SipLocalError, Status
from heron.sip.fields import Auth
from heron.sip.grammar import quote
from heron.sip.headers import HeaderName
from heron.sip.message import Method, Request
from heron.sip.uri import SipUri, parse_uri

__all__ = [
    "ISSUER_BYTES",
    "NONCE_SALT_BYTES",
    "Algorithm",
    "Challenge",
    "ChallengeKind",
    "DigestAuthenticator",
    "NonceCounts",
    "DigestOutcome",
    "StoredHa1",
    "Verdict",
    "challenge_kind",
    "digest_response",
    "issue_nonce",
]

NONCE_SALT_BYTES = 12
"""Fresh random bytes per nonce, so that two clients challenged in the same
second never share a nonce and their nonce-counts never collide."""
ISSUER_BYTES = 6
"""The tag naming the process that issued a nonce: random per process and per start,
so that neither two processes nor a restarted one (which forgot its nonce counts)
take each other's nonces for their own."""
_HEAD_BYTES = 8 + ISSUER_BYTES + NONCE_SALT_BYTES
_MAC_BYTES = 16  # HMAC-SHA256 truncated to 128 bits
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{56}")  # base64url of 8 + 6 + 12 + 16 bytes
_NC_RE = re.compile(r"[0-9A-Fa-f]{8}")  # nc-value = 8LHEX (RFC 7616 §3.4)
_HEX_RE = re.compile(r"[0-9A-Fa-f]{1,128}")
_LABEL = b"heron sip digest nonce\x00"  # keeps these MACs apart from other uses of the key


class Algorithm(StrEnum):
    """Digest algorithms heron verifies; the -sess variants are refused."""

    SHA_256 = "SHA-256"  # RFC 8760, RFC 7616 §3.3
    MD5 = "MD5"  # RFC 3261 §22.4, the default when absent


class DigestOutcome(StrEnum):
    OK = "ok"  # the credentials prove the password
    # Right password, nonce expired or nc reused, or a nonce another process issued
    # (unchecked): stale=true, the client retries with a fresh nonce (RFC 7616 §3.3).
    STALE = "stale"
    INVALID = "invalid"  # malformed, forged, wrong, unknown user or locked out


@dataclass(frozen=True, slots=True)
class Verdict:
    """What :meth:`DigestAuthenticator.verify` decided. ``username`` is the
    name claimed, authenticated only when OK; ``reason`` is fixed words for
    logs (never the wire), never a secret nor the peer's bytes.
    """

    outcome: DigestOutcome
    username: str | None
    reason: str
    checked: bool = False
    """The response was compared with the account's HA1 (or the dummy one): a password
    guess, for the guess throttle to count when it failed."""


@dataclass(frozen=True, slots=True)
class StoredHa1:
    """An account's hex HA1 = H(user:realm:password) per algorithm (RFC 7616 §3.4.2)."""

    md5: str
    sha256: str


@dataclass(frozen=True, slots=True)
class ChallengeKind:
    """Status and header fields of a challenge (RFC 3261 §22.1, §22.3)."""

    status: Status
    challenge_header: HeaderName
    credentials_header: HeaderName


_REGISTRAR = ChallengeKind(
    Status.UNAUTHORIZED, HeaderName.WWW_AUTHENTICATE, HeaderName.AUTHORIZATION
)
_PROXY = ChallengeKind(
    Status.PROXY_AUTHENTICATION_REQUIRED,
    HeaderName.PROXY_AUTHENTICATE,
    HeaderName.PROXY_AUTHORIZATION,
)


def challenge_kind(method: str) -> ChallengeKind:
    """401 and WWW-Authenticate for REGISTER, answered by the registrar as a
    UAS (RFC 3261 §22.2); 407 and Proxy-Authenticate for what heron proxies
    (RFC 3261 §22.3).
    """
    return _REGISTRAR if method == Method.REGISTER else _PROXY


@dataclass(frozen=True, slots=True)
class Challenge:
    """For ``request.response(challenge.status, headers=challenge.headers)``."""

    status: Status
    headers: tuple[tuple[str, str], ...]


def _h(algorithm: Algorithm, text: str) -> str:
    try:
        data = text.encode("utf-8", "surrogateescape")  # the peer's bytes, as they came
    except UnicodeEncodeError:
        data = text.encode("utf-8", "surrogatepass")
    return hashlib.new("sha256" if algorithm is Algorithm.SHA_256 else "md5", data).hexdigest()


def digest_response(
    algorithm: Algorithm,
    ha1: str,
    method: str,
    uri: str,
    nonce: str,
    nc: str | None = None,
    cnonce: str | None = None,
    qop: str | None = None,
) -> str:
    """The request-digest (RFC 7616 §3.4.1, RFC 2617 §3.2.2.1): with qop,
    H(HA1:nonce:nc:cnonce:qop:HA2); without, RFC 2069's H(HA1:nonce:HA2);
    HA2 = H(method:digest-uri) (RFC 7616 §3.4.3). No nonce is checked here.
    """
    ha2 = _h(algorithm, f"{method}:{uri}")
    if qop is None:
        return _h(algorithm, f"{ha1}:{nonce}:{ha2}")
    return _h(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def _mac(key: bytes, head: bytes, realm: str) -> bytes:
    message = _LABEL + head + realm.encode("utf-8", "surrogatepass")
    return hmac.digest(key, message, "sha256")[:_MAC_BYTES]


def issue_nonce(
    key: bytes,
    realm: str,
    now: float,
    salt: bytes,
    lifetime: int = 300,
    issuer: bytes = bytes(ISSUER_BYTES),
) -> str:
    """A nonce of process ``issuer`` (:data:`ISSUER_BYTES`) for ``realm``, good until
    ``now + lifetime``; ``salt`` is :data:`NONCE_SALT_BYTES` from ``secrets.token_bytes``.
    """
    if len(salt) != NONCE_SALT_BYTES or len(issuer) != ISSUER_BYTES:
        raise SipLocalError("Nonce salt or issuer has the wrong length")
    head = struct.pack(">q", int(now) + lifetime) + issuer + salt
    return base64.urlsafe_b64encode(head + _mac(key, head, realm)).decode("ascii")


def _open_nonce(key: bytes, realm: str, nonce: str) -> tuple[int, bytes] | None:
    """The expiry and issuer sealed in a nonce heron issued for ``realm``; None for any
    other (a forged issuer among them: the MAC covers it)."""
    if not _NONCE_RE.fullmatch(nonce):
        return None
    raw = base64.urlsafe_b64decode(nonce)
    head, mac = raw[:_HEAD_BYTES], raw[_HEAD_BYTES:]
    if not hmac.compare_digest(mac, _mac(key, head, realm)):
        return None
    expiry: int = struct.unpack(">q", head[:8])[0]
    return expiry, head[8 : 8 + ISSUER_BYTES]


class NonceCounts:
    """The highest nonce-count per nonce, refusing any nc not above it
    (RFC 7616 §3.4; RFC 2617 §3.2.2: it lets the server detect replays).

    Only verified credentials enter, so forgeries cannot fill it. Expired
    nonces are forgotten; over ``capacity`` the first-used goes, and every
    unseen nonce expiring no later than it is refused: forgetting makes a
    nonce stale, never replayable.
    """

    __slots__ = ("_capacity", "_counts", "_floor")

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._counts: OrderedDict[str, tuple[int, int]] = OrderedDict()  # nonce: expiry, nc
        self._floor = -(2**63)

    def __len__(self) -> int:
        return len(self._counts)

    def advance(self, nonce: str, nc: int, expiry: int, now: float) -> bool:
        """Record ``nc`` for ``nonce`` if it is higher than any before it."""
        while self._counts and next(iter(self._counts.values()))[0] <= now:
            self._counts.popitem(last=False)
        seen = self._counts.get(nonce)
        if nc <= (seen[1] if seen else 0) or (seen is None and expiry <= self._floor):
            return False
        self._counts[nonce] = (expiry, nc)
        if len(self._counts) > self._capacity:
            self._floor = max(self._floor, self._counts.popitem(last=False)[1][0])
        return True


_DUMMY_HA1 = {Algorithm.MD5: "0" * 32, Algorithm.SHA_256: "0" * 64}


class DigestAuthenticator:
    """Challenges and verifies digest credentials for one realm.

    ``algorithms`` are offered in this order, preferred first (RFC 8760 §2.4);
    a client that reads only the first challenge and knows only MD5 needs
    MD5 first. ``require_qop=False`` admits RFC 2069 credentials, which
    nothing protects from replay while the nonce lives. ``issuer`` names this
    process in its nonces (:data:`ISSUER_BYTES`, random per process); credentials
    on another's nonce are answered stale, unchecked.
    """

    def __init__(
        self,
        realm: str,
        key: bytes,
        *,
        nonce_lifetime: int = 300,
        require_qop: bool = True,
        algorithms: tuple[Algorithm, ...] = (Algorithm.SHA_256, Algorithm.MD5),
        nonce_counts: NonceCounts | None = None,
        issuer: bytes = bytes(ISSUER_BYTES),
    ) -> None:
        if len(key) < 16 or not algorithms or len(issuer) != ISSUER_BYTES:
            raise SipLocalError("Digest needs a key of 16 bytes or more, an algorithm, an issuer")
        self.realm, self.algorithms, self._key = realm, algorithms, key
        self._issuer = issuer
        self._lifetime, self._require_qop = nonce_lifetime, require_qop
        self.nonce_counts = NonceCounts() if nonce_counts is None else nonce_counts

    def challenge(
        self,
        method: str,
        now: float,
        salt: bytes,
        *,
        stale: bool = False,
        opaque: str | None = None,
    ) -> Challenge:
        """A fresh nonce, challenged once per algorithm."""
        kind = challenge_kind(method)
        nonce = issue_nonce(self._key, self.realm, now, salt, self._lifetime, self._issuer)
        extra = ", stale=true" if stale else ""
        extra += "" if opaque is None else f", opaque={quote(opaque)}"
        value = f'Digest realm={quote(self.realm)}, nonce="{nonce}", qop="auth", algorithm='
        headers = tuple((kind.challenge_header, f"{value}{a}{extra}") for a in self.algorithms)
        return Challenge(kind.status, headers)

    def credentials(self, request: Request) -> Auth | None:
        """The Digest credentials for our realm in the field the method's
        challenge asks for (RFC 3261 §22.4); MalformedValue for a bad field.
        """
        headers = request.headers
        found = (
            headers.authorizations
            if challenge_kind(request.method) is _REGISTRAR
            else headers.proxy_authorizations
        )
        realm = self.realm
        return next(
            (a for a in found if a.scheme.lower() == "digest" and a.param("realm") == realm), None
        )

    def verify(
        self, method: str, auth: Auth, ha1: StoredHa1 | None, now: float, source: str | None = None
    ) -> Verdict:
        """Check ``auth`` on a request of ``method`` from address ``source``.

        ``ha1`` is None for an unknown user: the same work is done and the
        same INVALID given as for a wrong password; ``checked`` tells both from
        credentials that guessed nothing (a nonce not ours). Slowing guesses is
        the caller's (:class:`heron.guesses.GuessThrottle`); ``source`` is for logs.
        """
        user = auth.param("username")
        if (problem := self._malformed(auth)) is not None:
            return Verdict(DigestOutcome.INVALID, user, problem)
        nonce, nc, cnonce, qop = (auth.param(n) or "" for n in ("nonce", "nc", "cnonce", "qop"))
        if (opened := _open_nonce(self._key, self.realm, nonce)) is None:
            return Verdict(DigestOutcome.INVALID, user, "nonce not issued by us")
        expiry, issuer = opened
        if issuer != self._issuer:  # its nonce counts are in the issuer's memory only
            return Verdict(DigestOutcome.STALE, user, "nonce issued by another process")
        algorithm = Algorithm((auth.param("algorithm") or "MD5").upper())
        if ha1 is None:  # the same hashing as for a known user
            stored = _DUMMY_HA1[algorithm]
        else:
            stored = ha1.sha256 if algorithm is Algorithm.SHA_256 else ha1.md5
        uri, rest = auth.param("uri") or "", (nc, cnonce, qop) if qop else ()
        expected = digest_response(algorithm, stored, method, uri, nonce, *rest)
        matches = hmac.compare_digest(expected, (auth.param("response") or "").lower())
        if ha1 is None or not matches:
            reason = "wrong response" if ha1 else "unknown user"
            return Verdict(DigestOutcome.INVALID, user, reason, checked=True)
        if expiry <= now:
            return Verdict(DigestOutcome.STALE, user, "nonce expired", checked=True)
        if qop and not self.nonce_counts.advance(nonce, int(nc, 16), expiry, now):
            reason = "nonce-count not above the last, or forgotten"
            return Verdict(DigestOutcome.STALE, user, reason, checked=True)
        return Verdict(DigestOutcome.OK, user, "ok", checked=True)

    def _malformed(self, auth: Auth) -> str | None:
        """Why ``auth`` cannot be checked at all; None when it can."""
        if auth.scheme.lower() != "digest":
            return "scheme is not Digest"
        for name in ("username", "realm", "nonce", "uri", "response"):
            if not auth.param(name):
                return f"{name} missing"
        if auth.param("realm") != self.realm:
            return "realm mismatch"
        if (auth.param("algorithm") or "MD5").upper() not in self.algorithms:
            return "algorithm not supported"  # the -sess variants among them
        if (auth.param("userhash") or "false").lower() != "false":
            return "userhash not supported"
        qop = auth.param("qop")
        if qop is None and self._require_qop:
            return "qop missing"
        if qop is not None and qop != "auth":
            return "qop not supported"  # auth-int would need the body
        if qop and not (_NC_RE.fullmatch(auth.param("nc") or "") and auth.param("cnonce")):
            return "nc or cnonce missing or malformed"
        if not _HEX_RE.fullmatch(auth.param("response") or ""):
            return "response is not hex"
        try:
            uri = parse_uri(auth.param("uri") or "")
        except MalformedValue:
            return "digest-uri malformed"
        # Any SIP URI, not byte for byte the Request-URI: proxies may rewrite that (§22.4).
        return None if isinstance(uri, SipUri) else "digest-uri is not a SIP URI"
