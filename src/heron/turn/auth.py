"""The long-term credential mechanism of TURN requests (RFC 8489 §9.2), sans-IO.

:class:`LongTermAuth` checks a request's USERNAME, REALM, NONCE, password
algorithm and MESSAGE-INTEGRITY(-SHA256) against the keys the server looked
up, and answers what fails with the 401, 438 or 400 RFC 8489 §9.2.4 gives.

Password guesses count in the throttle every protocol shares (:class:`Guesses`,
per account and per source network): while either must wait, a signed request
is refused unchecked. :meth:`LongTermAuth.worth_keys` tells the core whether a
message is worth a key lookup at all, so that a stranger's datagram costs no
database query before its shape, realm, nonce and the throttle have been checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from heron.guesses import network_key
from heron.stun import (
    Attribute,
    ErrorCode,
    Message,
    MessageIntegrity,
    MessageIntegritySha256,
    Nonce,
    PasswordAlgorithm,
    PasswordAlgorithmId,
    PasswordAlgorithms,
    Realm,
    Software,
    Username,
)
from heron.turn.challenge import Challenges
from heron.turn.nonce import NonceIssuer, NonceState
from heron.turn.replies import Refusal

__all__ = ["Authenticated", "AuthCounters", "Credentials", "Guesses", "LongTermAuth"]

_OFFERED = PasswordAlgorithms(
    (
        PasswordAlgorithm(PasswordAlgorithmId.MD5),
        PasswordAlgorithm(PasswordAlgorithmId.SHA256),
    )
)


@dataclass(frozen=True, slots=True)
class Credentials:
    """Keys for one USERNAME, looked up by the server before calling the core."""

    username: str
    key_md5: bytes
    key_sha256: bytes


@dataclass(frozen=True, slots=True)
class Authenticated:
    """Who sent a request that passed, and the key its answer is signed with."""

    username: str
    key: bytes | None
    """None for anonymous credentials: the answer goes unsigned."""
    account: str
    """The quota key: an account, or ``visitor <network>`` for anonymous credentials."""


class Guesses(Protocol):
    """The guess throttle all protocols share (:class:`heron.guesses.GuessThrottle`), with
    the clock bound by the server: it counts in Unix time, the core in its own."""

    def wait(self, account: str | None, source: str) -> float:
        """Seconds before a guess for ``account`` from ``source`` may be checked."""

    def failure(self, account: str | None, source: str) -> None: ...

    def success(self, account: str, source: str) -> None: ...


class _NoGuesses:
    """No throttle: every guess is checked (unit tests that do not look at guessing)."""

    def wait(self, account: str | None, source: str) -> float:
        return 0.0

    def failure(self, account: str | None, source: str) -> None:
        pass

    def success(self, account: str, source: str) -> None:
        pass


class AuthCounters(Protocol):
    """Where failures are counted (the core's ``TurnCounters``)."""

    auth_failures: int
    auth_throttled: int


class LongTermAuth:
    """Checks signed requests for one realm and challenges unsigned ones."""

    def __init__(
        self,
        realm: str,
        software: str,
        nonces: NonceIssuer,
        counters: AuthCounters,
        guesses: Guesses | None = None,
        *,
        allow_anonymous: bool = False,
    ) -> None:
        self._realm = realm
        self._realm_attribute = Realm(realm)
        self._software_attribute = Software(software)
        """Attributes of every challenge, built once (they are immutable)."""
        self._challenges = Challenges(self._challenge_attributes)
        self._nonces = nonces
        self._counters = counters
        self._guesses: Guesses = guesses if guesses is not None else _NoGuesses()
        self._allow_anonymous = allow_anonymous

    def worth_keys(self, message: Message, client_ip: str, account: str | None, now: float) -> bool:
        """Whether checking ``message`` needs its USERNAME's keys: signed, with our realm
        and a valid nonce for this client, and neither account nor source must wait."""
        if message.find(MessageIntegrity) is None and message.find(MessageIntegritySha256) is None:
            return False
        realm, nonce = message.find(Realm), message.find(Nonce)
        if realm is None or nonce is None or realm.value != self._realm:
            return False
        if self._nonces.check(nonce.value, client_ip, now) is not NonceState.VALID:
            return False
        return self._guesses.wait(account, client_ip) <= 0

    def check(
        self,
        message: Message,
        client_ip: str,
        credentials: Credentials | None,
        account: str | None,
        holder: str | None,
        now: float,
    ) -> Authenticated:
        """Who sent ``message``; raises :class:`Refusal` with the answer otherwise.

        ``account`` is the account the USERNAME names, None for anonymous REST
        credentials (a visitor). ``holder`` is the USERNAME that made the
        allocation on this 5-tuple, if there is one.
        """
        has_integrity = message.find(MessageIntegrity) or message.find(MessageIntegritySha256)
        username = message.find(Username)
        if not has_integrity:
            if self._allow_anonymous and username is None:
                return Authenticated("", None, _visitor(client_ip))
            raise self._challenge(message, client_ip, ErrorCode.UNAUTHORIZED, now)
        realm, nonce = message.find(Realm), message.find(Nonce)
        if username is None or realm is None or nonce is None:
            raise Refusal(ErrorCode.BAD_REQUEST)
        state = self._nonces.check(nonce.value, client_ip, now)
        if state is not NonceState.VALID:
            raise self._challenge(message, client_ip, ErrorCode.STALE_NONCE, now)
        algorithm = _password_algorithm(message, nonce.value)
        if algorithm is None:
            raise Refusal(ErrorCode.BAD_REQUEST)
        # The 5-tuple of an allocation this USERNAME made proved the password already
        # (an answer to a spoofed UDP source goes to its owner), so its Refreshes and
        # permissions skip the throttle's wait and need not prove it again.
        proven = holder == username.value
        if not proven and self._guesses.wait(account, client_ip) > 0:
            # A guesser, or someone guessing this account: refuse unchecked, without a
            # nonce, so the client learns at once and does not retry in a loop (coturn's
            # uclient takes a 401 with a nonce as "try again").
            self._counters.auth_throttled += 1
            raise Refusal(ErrorCode.UNAUTHORIZED, reason="Too many failed attempts")
        key = None
        if (
            credentials is not None
            and credentials.username == username.value
            and realm.value == self._realm
        ):
            key = (
                credentials.key_sha256
                if algorithm == PasswordAlgorithmId.SHA256
                else credentials.key_md5
            )
        if key is None or not message.verify_integrity(key):
            self._counters.auth_failures += 1
            self._guesses.failure(account, client_ip)
            raise self._challenge(message, client_ip, ErrorCode.UNAUTHORIZED, now)
        if account is None:
            return Authenticated(username.value, key, _visitor(client_ip))
        if not proven:
            self._guesses.success(account, client_ip)
        return Authenticated(username.value, key, account)

    def _challenge(self, message: Message, client_ip: str, code: int, now: float) -> Refusal:
        nonce = self._nonces.issue(client_ip, now)
        return Refusal(code, data=self._challenges.encode(message, code, nonce))

    def _challenge_attributes(self, nonce: str) -> tuple[Attribute, ...]:
        return (self._realm_attribute, Nonce(nonce), _OFFERED, self._software_attribute)


def _visitor(client_ip: str) -> str:
    """The quota key of anonymous credentials: the visitor's network."""
    return "visitor " + network_key(client_ip)


def _password_algorithm(message: Message, nonce: str) -> int | None:
    """The agreed algorithm, or None for a downgrade attempt (RFC 8489 §9.2.4)."""
    chosen = message.find(PasswordAlgorithm)
    offered = message.find(PasswordAlgorithms)
    if not NonceIssuer.offers_password_algorithms(nonce) or (chosen is None and offered is None):
        return PasswordAlgorithmId.MD5
    if chosen is None or offered != _OFFERED or chosen not in _OFFERED.algorithms:
        return None
    return chosen.algorithm
