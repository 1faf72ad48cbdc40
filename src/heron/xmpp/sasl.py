"""Server side SASL for XMPP (RFC 6120 §6): SCRAM (RFC 5802, RFC 7677), -PLUS, PLAIN (RFC 4616).

The mechanisms never see a password store: SCRAM asks the caller for the
account's stored keys (:class:`KeysNeeded`) and PLAIN hands the credentials
over for checking (:class:`PasswordCheckNeeded`), because both answers come
from the database, asynchronously. Every step returns what to do next::

    SaslServer.start / respond (base64 text of <auth/>, <response/>),
    provide_scram_keys / plain_verified (the caller's answers)
        -> Challenge      send <challenge/> with .data
        -> KeysNeeded     look the SCRAM keys up, then provide_scram_keys()
        -> PasswordCheckNeeded   verify the password, then plain_verified()
        -> Success        send <success/> with .data
        raises SaslFailure    send <failure/> with .condition (RFC 6120 §6.5)

An unknown user gets keys derived from ``server_secret`` and the account name,
so the server-first message looks like a real account's and names cannot be
enumerated: the same salt every time and for every SCRAM hash (a real account
has one salt for all, see :class:`heron.accounts.secrets.Secrets`), the same
iteration count; the exchange then fails at the proof.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from heron.accounts.scram import ScramHash, ScramKeys, client_proof_matches, server_signature
from heron.accounts.secrets import SCRAM_ITERATIONS

__all__ = [
    "Challenge",
    "KeysNeeded",
    "PasswordCheckNeeded",
    "SaslCondition",
    "SaslConfig",
    "SaslFailure",
    "SaslServer",
    "SaslStep",
    "Success",
    "decode_payload",
    "encode_payload",
]


class SaslCondition(StrEnum):
    """SASL failure conditions (RFC 6120 §6.5)."""

    ABORTED = "aborted"  # §6.5.1
    ACCOUNT_DISABLED = "account-disabled"  # §6.5.2
    CREDENTIALS_EXPIRED = "credentials-expired"  # §6.5.3
    ENCRYPTION_REQUIRED = "encryption-required"  # §6.5.4
    INCORRECT_ENCODING = "incorrect-encoding"  # §6.5.5
    INVALID_AUTHZID = "invalid-authzid"  # §6.5.6
    INVALID_MECHANISM = "invalid-mechanism"  # §6.5.7
    MALFORMED_REQUEST = "malformed-request"  # §6.5.8
    MECHANISM_TOO_WEAK = "mechanism-too-weak"  # §6.5.9
    NOT_AUTHORIZED = "not-authorized"  # §6.5.10
    TEMPORARY_AUTH_FAILURE = "temporary-auth-failure"  # §6.5.11


class SaslFailure(Exception):
    """The exchange failed: answer <failure/> with ``condition`` (and ``text``, for logs)."""

    def __init__(self, condition: SaslCondition, text: str = "") -> None:
        super().__init__(f"{condition}: {text}" if text else str(condition))
        self.condition = condition
        self.text = text


@dataclass(frozen=True, slots=True)
class Challenge:
    data: bytes


@dataclass(frozen=True, slots=True)
class Success:
    """Authenticated as ``username`` (as the client spelled it); ``data`` goes in <success/>."""

    username: str
    authzid: str
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class KeysNeeded:
    """Look up the SCRAM keys of ``username`` for ``hash``, None when there is no such user."""

    username: str
    hash: ScramHash


@dataclass(frozen=True, slots=True)
class PasswordCheckNeeded:
    """Check ``password`` for ``username`` (PLAIN) and report the verdict."""

    authzid: str
    username: str
    password: str = field(repr=False)


SaslStep = Challenge | Success | KeysNeeded | PasswordCheckNeeded


@dataclass(frozen=True, slots=True)
class SaslConfig:
    """What the server offers and the secrets it injects (no randomness is drawn here)."""

    server_secret: bytes
    """Derives the fake SCRAM keys of unknown users; a secret of 32 bytes that outlives a
    restart (a salt that changed with each restart would tell a fake account from a real)."""
    nonce: Callable[[], str]
    """Server nonces: printable ASCII without ',', 16 random bytes or more in base64."""
    scram_hashes: tuple[ScramHash, ...] = (ScramHash.SHA512, ScramHash.SHA256, ScramHash.SHA1)
    """In order of preference, strongest first."""
    plain: bool = True
    """Offer PLAIN; it is offered only over TLS whatever this says."""
    fake_iterations: int = SCRAM_ITERATIONS
    """The iteration count unknown users appear to have: what real accounts get."""
    max_failures: int = 3
    """Failed attempts before the stream is closed (RFC 6120 §6.4.5 suggests 2 to 5)."""


def decode_payload(text: str | None) -> bytes | None:
    """The base64 content of <auth/>, <response/> (RFC 6120 §6.4.2): None if absent, '=' empty."""
    if not text:
        return None
    if text == "=":
        return b""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise SaslFailure(SaslCondition.INCORRECT_ENCODING, "invalid base64") from None


def encode_payload(data: bytes) -> str:
    """Base64 for <challenge/> and <success/>; '=' stands for data of zero length (§6.3.10)."""
    return base64.b64encode(data).decode("ascii") if data else "="


_SALT_BYTES = 16
"""What :class:`heron.accounts.AccountService` draws for a real account's salt."""


def _malformed(text: str) -> SaslFailure:
    return SaslFailure(SaslCondition.MALFORMED_REQUEST, text)


# RFC 5802 §7: printable = %x21-2B / %x2D-7E (no ','); cb-name = 1*(ALPHA / DIGIT / "." / "-")
_NONCE = re.compile(r"[\x21-\x2b\x2d-\x7e]+")
_CB_NAME = re.compile(r"[A-Za-z0-9.-]+")
_SASLNAME_ESCAPE = re.compile(r"=(2C|3D)?")


def _saslname(text: str) -> str:
    """RFC 5802 §5.1: ',' is sent as '=2C' and '=' as '=3D'; any other '=' fails."""

    def unescape(match: re.Match[str]) -> str:
        if match.group(1) is None:
            raise _malformed("'=' in a name must be =2C or =3D")
        return "," if match.group(1) == "2C" else "="

    name = _SASLNAME_ESCAPE.sub(unescape, text)
    if not name:
        raise _malformed("empty name")
    return name


def _utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed("not UTF-8") from None


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise _malformed("invalid base64 in a SCRAM attribute") from None


class _Scram:
    """One SCRAM exchange, server side (RFC 5802 §5), from stored keys only."""

    def __init__(
        self,
        hash_name: ScramHash,
        *,
        plus: bool,
        config: SaslConfig,
        channel_binding: Mapping[str, bytes],
    ) -> None:
        self._hash = hash_name
        self._plus = plus
        self._config = config
        self._channel_binding = channel_binding
        self._gs2_header = b""
        self._cb_data = b""
        self._client_first_bare = ""
        self._server_first = ""
        self._nonce = ""
        self._username = ""
        self._authzid = ""
        self._keys: ScramKeys | None = None
        self._known = False

    def client_first(self, message: bytes) -> KeysNeeded:
        text = _utf8(message)
        parts = text.split(",", 2)
        if len(parts) != 3:
            raise _malformed("client-first-message needs a GS2 header")
        flag, authzid, bare = parts
        self._check_cbind_flag(flag)
        if authzid:
            if not authzid.startswith("a="):
                raise _malformed("bad authzid in the GS2 header")
            self._authzid = _saslname(authzid[2:])
        attributes = bare.split(",")
        if attributes[0].startswith("m="):
            raise _malformed("unsupported mandatory extension")  # RFC 5802 §5.1 m=
        if len(attributes) < 2 or not attributes[0].startswith("n="):
            raise _malformed("client-first-message-bare must start n=,r=")
        if not attributes[1].startswith("r=") or not _NONCE.fullmatch(attributes[1][2:]):
            raise _malformed("bad client nonce")
        self._username = _saslname(attributes[0][2:])
        self._gs2_header = f"{flag},{authzid},".encode()
        self._client_first_bare = bare
        self._nonce = attributes[1][2:] + self._config.nonce()
        return KeysNeeded(self._username, self._hash)

    def _check_cbind_flag(self, flag: str) -> None:
        """RFC 5802 §6: 'p=' only with -PLUS; 'y' fails when the server offered -PLUS."""
        if flag.startswith("p="):
            name = flag[2:]
            if not self._plus:
                raise _malformed("channel binding requested with a non-PLUS mechanism")
            if not _CB_NAME.fullmatch(name) or name not in self._channel_binding:
                raise SaslFailure(
                    SaslCondition.NOT_AUTHORIZED, f"unsupported channel binding {name}"
                )
            self._cb_data = self._channel_binding[name]
        elif self._plus:
            raise _malformed("a -PLUS mechanism needs the 'p=' flag")
        elif flag == "y":
            if self._channel_binding:
                # The client could bind but believes we cannot: someone removed -PLUS.
                raise SaslFailure(SaslCondition.NOT_AUTHORIZED, "channel binding downgrade")
        elif flag != "n":
            raise _malformed("bad GS2 channel binding flag")

    def server_first(self, keys: ScramKeys | None, account: str | None = None) -> Challenge:
        """``account`` is the name the fake keys of an unknown user derive from: the account
        as the store spells it, so that ``Nobody`` and ``nobody`` get one salt as a real
        account's spellings do; the SCRAM username when None."""
        if keys is not None and keys.hash is self._hash:
            self._keys, self._known = keys, True
        else:
            self._keys = self._fake_keys(self._username if account is None else account)
        salt = base64.b64encode(self._keys.salt).decode()
        self._server_first = f"r={self._nonce},s={salt},i={self._keys.iterations}"
        return Challenge(self._server_first.encode())

    def _fake_keys(self, account: str) -> ScramKeys:
        """Stable per name, unguessable without the secret, and never matching a proof.

        The salt leaves the hash out: a real account's SCRAM-SHA-1, -256 and -512 keys
        share one salt of 16 bytes, so an unknown name's must too.
        """
        secret = self._config.server_secret

        def derive(label: str, hash_name: str) -> bytes:
            message = f"{label}\0{hash_name}\0{account}".encode()
            return hmac.digest(secret, message, self._hash.value)

        return ScramKeys(
            hash=self._hash,
            salt=hmac.digest(secret, f"salt\0{account}".encode(), "sha256")[:_SALT_BYTES],
            iterations=self._config.fake_iterations,
            stored_key=derive("stored", self._hash),
            server_key=derive("server", self._hash),
        )

    def client_final(self, message: bytes) -> Success:
        text = _utf8(message)
        without_proof, separator, proof = text.rpartition(",p=")
        attributes = without_proof.split(",")
        if not separator or len(attributes) < 2 or not attributes[0].startswith("c="):
            raise _malformed("client-final-message must be c=,r=,...,p=")
        if _b64(attributes[0][2:]) != self._gs2_header + self._cb_data:
            raise SaslFailure(SaslCondition.NOT_AUTHORIZED, "channel bindings do not match")
        if attributes[1] != f"r={self._nonce}":
            raise SaslFailure(SaslCondition.NOT_AUTHORIZED, "nonce mismatch")
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        keys = self._keys
        if keys is None or not client_proof_matches(keys, auth_message, _b64(proof)):
            raise SaslFailure(SaslCondition.NOT_AUTHORIZED, "wrong proof")
        if not self._known:
            raise SaslFailure(SaslCondition.NOT_AUTHORIZED, "unknown user")
        verifier = base64.b64encode(server_signature(keys, auth_message))
        return Success(self._username, self._authzid, b"v=" + verifier)


def _plain(message: bytes) -> PasswordCheckNeeded:
    """RFC 4616 §2: [authzid] NUL authcid NUL passwd, UTF-8, no NUL inside."""
    parts = _utf8(message).split("\0")
    if len(parts) != 3 or not parts[1] or not parts[2]:
        raise _malformed("PLAIN is authzid NUL authcid NUL password")
    return PasswordCheckNeeded(authzid=parts[0], username=parts[1], password=parts[2])


class _Phase(StrEnum):
    IDLE = "idle"
    CLIENT_FIRST = "waiting for client-first"
    KEYS = "waiting for the keys"
    CLIENT_FINAL = "waiting for client-final"
    VERDICT = "waiting for the password verdict"


class SaslServer:
    """The mechanisms offered on one stream and the exchange in progress, if any.

    ``channel_binding`` maps RFC 5056 binding types ("tls-exporter",
    "tls-server-end-point") to the connection's data; -PLUS mechanisms are
    offered only when there is some. Calling ``provide_scram_keys`` or
    ``plain_verified`` when nothing was asked is a programming error.
    """

    def __init__(
        self, config: SaslConfig, *, tls_active: bool, channel_binding: Mapping[str, bytes]
    ) -> None:
        self._config = config
        self._tls = tls_active
        self._channel_binding = dict(channel_binding)
        self._phase = _Phase.IDLE
        self._scram: _Scram | None = None
        self._plain: PasswordCheckNeeded | None = None
        self.failures = 0
        """Failed attempts so far, aborts included."""

    @property
    def mechanisms(self) -> tuple[str, ...]:
        """What <mechanisms/> lists, strongest first (RFC 6120 §6.4.1)."""
        scram = [hash_name.mechanism for hash_name in self._config.scram_hashes]
        plus = [f"{name}-PLUS" for name in scram] if self._channel_binding else []
        plain = ["PLAIN"] if self._config.plain and self._tls else []
        return (*plus, *scram, *plain)

    @property
    def channel_binding_types(self) -> tuple[str, ...]:
        """For XEP-0440's <sasl-channel-binding/> feature."""
        return tuple(self._channel_binding)

    @property
    def waiting_for_keys(self) -> bool:
        return self._phase is _Phase.KEYS

    @property
    def waiting_for_verdict(self) -> bool:
        return self._phase is _Phase.VERDICT

    def start(self, mechanism: str, payload: str | None) -> SaslStep:
        """<auth mechanism=...> with its base64 text (RFC 6120 §6.4.2), None when empty."""
        if self._phase is not _Phase.IDLE:
            raise self._failed(_malformed("an exchange is under way"))
        if mechanism not in self.mechanisms:
            if mechanism == "PLAIN" and self._config.plain:
                failure = SaslFailure(SaslCondition.ENCRYPTION_REQUIRED, "PLAIN needs TLS")
                raise self._failed(failure)
            raise self._failed(SaslFailure(SaslCondition.INVALID_MECHANISM, mechanism))
        initial = self._decode(payload)
        if mechanism != "PLAIN":
            name = mechanism.removesuffix("-PLUS")
            self._scram = _Scram(
                next(h for h in self._config.scram_hashes if h.mechanism == name),
                plus=mechanism.endswith("-PLUS"),
                config=self._config,
                channel_binding=self._channel_binding,
            )
        if initial is None:
            # §6.4.2: no initial response, so an empty challenge asks for it.
            self._phase = _Phase.CLIENT_FIRST
            return Challenge(b"")
        return self._first(initial)

    def respond(self, payload: str | None) -> SaslStep:
        """<response/> with its base64 text (RFC 6120 §6.4.3)."""
        data = self._decode(payload) or b""
        if self._phase is _Phase.CLIENT_FIRST:
            return self._first(data)
        if self._phase is _Phase.CLIENT_FINAL and self._scram is not None:
            try:
                success = self._scram.client_final(data)
            except SaslFailure as failure:
                raise self._failed(failure) from None
            return self._done(success)
        raise self._failed(_malformed("unexpected response"))

    def _decode(self, payload: str | None) -> bytes | None:
        try:
            return decode_payload(payload)
        except SaslFailure as failure:
            raise self._failed(failure) from None

    def provide_scram_keys(self, keys: ScramKeys | None, account: str | None = None) -> Challenge:
        """The caller's answer to :class:`KeysNeeded`: the server-first message. For an
        unknown user (``keys`` None) ``account`` names the fake keys' account, as the store
        would spell it (the SCRAM username if None)."""
        if self._phase is not _Phase.KEYS or self._scram is None:
            raise RuntimeError("no SCRAM keys were asked for")
        self._phase = _Phase.CLIENT_FINAL
        return self._scram.server_first(keys, account)

    def plain_verified(self, ok: bool) -> Success:
        """The caller's verdict on :class:`PasswordCheckNeeded`."""
        plain = self._plain
        if self._phase is not _Phase.VERDICT or plain is None:
            raise RuntimeError("no password check was asked for")
        if not ok:
            raise self._failed(SaslFailure(SaslCondition.NOT_AUTHORIZED, "wrong password"))
        return self._done(Success(plain.username, plain.authzid))

    def abort(
        self, condition: SaslCondition = SaslCondition.ABORTED, text: str = ""
    ) -> SaslFailure:
        """End the exchange as failed: the client's <abort/>, or the caller's own trouble."""
        return self._failed(SaslFailure(condition, text))

    def _first(self, data: bytes) -> KeysNeeded | PasswordCheckNeeded:
        try:
            if self._scram is None:
                self._plain = _plain(data)
                self._phase = _Phase.VERDICT
                return self._plain
            step = self._scram.client_first(data)
        except SaslFailure as failure:
            raise self._failed(failure) from None
        self._phase = _Phase.KEYS
        return step

    def _done(self, success: Success) -> Success:
        self._phase = _Phase.IDLE
        self._scram = self._plain = None
        return success

    def _failed(self, failure: SaslFailure) -> SaslFailure:
        self._phase = _Phase.IDLE
        self._scram = self._plain = None
        self.failures += 1
        return failure
