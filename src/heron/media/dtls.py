"""DTLS-SRTP (RFC 5763, RFC 5764), sans-IO: records in, records out, SRTP keys at the end.

pyOpenSSL runs the handshake over memory BIOs, so no socket is involved:
:meth:`DtlsSrtp.receive` feeds a datagram, :meth:`DtlsSrtp.datagrams` gives
what to send, :meth:`DtlsSrtp.handle_timer` retransmits a lost flight
(``DTLSv1_handle_timeout``). That timer is the one clock a media core does not
take as an argument: OpenSSL reads its own, so a test cannot step it. Once
the handshake is done, the peer's certificate must match the ``a=fingerprint``
of its SDP (RFC 8122 §5, RFC 5763 §5): otherwise the leg fails and carries
nothing. The keys come from the exporter (RFC 5764 §4.2) into two pylibsrtp
sessions, one per direction.

heron has one self-signed ECDSA P-256 certificate per process
(:class:`Certificate`), as browsers do: the fingerprint in the SDP, carried
over the signalling's TLS, is what authenticates it.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from enum import Enum

import pylibsrtp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL, crypto

__all__ = ["Certificate", "DtlsSrtp", "DtlsState", "SrtpKeys", "fingerprint_of"]

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha-1": hashes.SHA1,
    "sha-256": hashes.SHA256,
    "sha-384": hashes.SHA384,
    "sha-512": hashes.SHA512,
}
"""RFC 8122 §5 hash function names heron can check a peer's certificate with."""
_PROFILES = {
    b"SRTP_AEAD_AES_128_GCM": (pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 16, 12),
    b"SRTP_AES128_CM_SHA1_80": (pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 16, 14),
}
"""RFC 5764 §4.1.2 / RFC 7714 §14.2 profiles offered, best first: (libsrtp profile, key
bytes, salt bytes)."""
_MTU = 1200
"""Largest DTLS datagram: the handshake must cross any path a browser's media does."""
_READ = 65_536


def fingerprint_of(certificate: x509.Certificate, algorithm: str = "sha-256") -> str:
    """``algorithm AB:CD:...`` as an ``a=fingerprint`` line carries it (RFC 8122 §5)."""
    digest = certificate.fingerprint(_HASHES[algorithm]())
    return f"{algorithm} {digest.hex(':').upper()}"


@dataclass(frozen=True, slots=True)
class Certificate:
    """heron's DTLS identity: a self-signed ECDSA P-256 certificate and its key."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls, now: datetime.datetime, serial: int) -> Certificate:
        """A certificate valid from a day before ``now`` for 30 days, as browsers make."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "heron media")])
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256())
        )
        return cls(certificate, key)

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.certificate)

    def context(self) -> SSL.Context:
        """A DTLS context offering the SRTP profiles and asking the peer for its certificate
        (checked against the SDP's fingerprint, not a CA)."""
        context = SSL.Context(SSL.DTLS_METHOD)
        context.set_options(SSL.OP_NO_QUERY_MTU | SSL.OP_NO_TICKET)
        context.use_certificate(self.certificate)
        context.use_privatekey(self.key)
        context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, _any_certificate)
        context.set_tlsext_use_srtp(b":".join(_PROFILES))
        return context


def _any_certificate(
    _connection: SSL.Connection, _certificate: crypto.X509, _error: int, _depth: int, _ok: int
) -> bool:
    return True  # self-signed by design: the fingerprint check follows the handshake


def _session(key: bytes, ssrc_type: int, profile: int) -> pylibsrtp.Session:
    # The profile first: pylibsrtp checks the key's length against the profile it has.
    policy = pylibsrtp.Policy(ssrc_type=ssrc_type, srtp_profile=profile)
    policy.key = key
    return pylibsrtp.Session(policy)


class DtlsState(Enum):
    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    FAILED = "failed"


@dataclass(slots=True)
class SrtpKeys:
    """The two SRTP sessions of a leg: ``outbound`` protects, ``inbound`` unprotects."""

    outbound: pylibsrtp.Session
    inbound: pylibsrtp.Session


class DtlsSrtp:
    """One leg's DTLS handshake, as the client (our ``a=setup:active``) or the server."""

    __slots__ = ("_connection", "_fingerprints", "_out", "failure", "keys", "server", "state")

    def __init__(self, context: SSL.Context, server: bool, fingerprints: tuple[str, ...]) -> None:
        """``fingerprints``: the peer's ``a=fingerprint`` values; one must match."""
        self.server = server
        self._fingerprints = fingerprints
        self._connection = SSL.Connection(context, None)
        self._connection.set_ciphertext_mtu(_MTU)
        if server:
            self._connection.set_accept_state()
        else:
            self._connection.set_connect_state()
        self._out: list[bytes] = []
        self.state = DtlsState.NEW
        self.keys: SrtpKeys | None = None
        self.failure = ""

    def start(self) -> None:
        """Begin the handshake: the client sends its ClientHello; the server waits."""
        if self.state is DtlsState.NEW:
            self.state = DtlsState.CONNECTING
            self._step()

    def receive(self, data: bytes) -> None:
        """Feed one datagram of DTLS records."""
        if self.state is DtlsState.FAILED:
            return
        if self.state is DtlsState.NEW:
            self.state = DtlsState.CONNECTING
        self._connection.bio_write(data)
        if self.state is DtlsState.CONNECTING:
            self._step()
        else:  # after the handshake: alerts (close_notify) or retransmitted finished flights
            try:
                self._connection.recv(_READ)
            except SSL.ZeroReturnError:
                self._fail("the peer closed DTLS")
            except (SSL.WantReadError, SSL.Error):
                pass
            self._drain()

    def handle_timer(self) -> None:
        """Retransmit the last flight if its timeout passed (RFC 6347 §4.2.4)."""
        if self.state is DtlsState.CONNECTING:
            timeout = self._connection.DTLSv1_get_timeout()
            if timeout is not None and timeout <= 0:
                self._connection.DTLSv1_handle_timeout()
                self._drain()

    def datagrams(self) -> list[bytes]:
        """What to send to the peer, taken once."""
        out, self._out = self._out, []
        return out

    def _step(self) -> None:
        try:
            self._connection.do_handshake()
        except SSL.WantReadError:
            self._drain()
            return
        except SSL.Error as exc:
            self._drain()
            self._fail(f"DTLS handshake failed: {exc}")
            return
        self._drain()
        self._connected()

    def _connected(self) -> None:
        peer = self._connection.get_peer_certificate()
        if peer is None or not self._matches(peer.to_cryptography()):
            self._fail("the peer's certificate does not match its SDP fingerprint")
            return
        profile = self._connection.get_selected_srtp_profile()
        if profile not in _PROFILES:
            self._fail("no SRTP profile was negotiated")
            return
        srtp_profile, key_size, salt_size = _PROFILES[profile]
        material = self._connection.export_keying_material(
            b"EXTRACTOR-dtls_srtp", 2 * (key_size + salt_size)
        )
        client_key, server_key = material[:key_size], material[key_size : 2 * key_size]
        salts = material[2 * key_size :]
        client_salt, server_salt = salts[:salt_size], salts[salt_size:]
        client, server = client_key + client_salt, server_key + server_salt
        ours, theirs = (server, client) if self.server else (client, server)
        self.keys = SrtpKeys(
            outbound=_session(ours, pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile),
            inbound=_session(theirs, pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile),
        )
        self.state = DtlsState.CONNECTED

    def _matches(self, certificate: x509.Certificate) -> bool:
        for value in self._fingerprints:
            algorithm, _, digest = value.strip().partition(" ")
            algorithm = algorithm.lower()
            if algorithm in _HASHES:
                expected = fingerprint_of(certificate, algorithm).partition(" ")[2]
                if digest.strip().upper() == expected:
                    return True
        return False

    def _fail(self, reason: str) -> None:
        self.state = DtlsState.FAILED
        self.failure = reason
        self.keys = None

    def _drain(self) -> None:
        while True:
            try:
                data = self._connection.bio_read(_READ)
            except SSL.WantReadError:
                return
            if not data:
                return
            self._out.append(data)
