"""Long-term credentials (RFC 8489 §9.2), nonces, rate limiting, and REST API credentials."""

from __future__ import annotations

import base64
import struct

import pytest

from heron.credentials import TurnSecret
from heron.guesses import GuessThrottle
from heron.stun import (
    ErrorCode,
    ErrorCodeAttribute,
    Integrity,
    Lifetime,
    Message,
    MessageClass,
    MessageIntegrity,
    MessageIntegritySha256,
    Method,
    Nonce,
    PasswordAlgorithm,
    PasswordAlgorithmId,
    PasswordAlgorithms,
    Realm,
    RequestedTransport,
    Software,
    Username,
)
from heron.turn.auth import Credentials
from heron.turn.nonce import NONCE_COOKIE, NonceIssuer, NonceState
from tests.unit.turn.harness import REALM, Turn, TurnClient, error_code, long_term_key

OFFERED = PasswordAlgorithms(
    (PasswordAlgorithm(PasswordAlgorithmId.MD5), PasswordAlgorithm(PasswordAlgorithmId.SHA256))
)


def first_challenge(client: TurnClient) -> Message:
    reply = client.send_raw(client.build(Method.ALLOCATE, [RequestedTransport()], sign=False))
    assert reply is not None
    return reply


# --- the challenge -----------------------------------------------------------------------------


def test_rfc8489_9_2_4_request_without_integrity_is_challenged(
    turn: Turn, alice: TurnClient
) -> None:
    reply = first_challenge(alice)

    assert reply.message_class is MessageClass.ERROR_RESPONSE
    assert error_code(reply) == ErrorCode.UNAUTHORIZED
    assert reply.find(Realm) == Realm(REALM)
    nonce = reply.find(Nonce)
    assert nonce is not None and nonce.value.startswith(NONCE_COOKIE)
    assert reply.find(PasswordAlgorithms) == OFFERED
    assert reply.find(MessageIntegrity) is None and reply.find(Username) is None
    assert turn.core.allocations == {}
    assert turn.relays.calls == []


@pytest.mark.parametrize("missing", [Username, Realm, Nonce])
def test_rfc8489_9_2_4_integrity_without_username_realm_or_nonce_is_400(
    turn: Turn, alice: TurnClient, missing: type
) -> None:
    alice.learn(first_challenge(alice))
    attributes = [
        RequestedTransport(),
        Username("alice"),
        Realm(REALM),
        Nonce(alice.nonce or ""),
    ]
    kept = tuple(a for a in attributes if not isinstance(a, missing))
    wire = Message(Method.ALLOCATE, MessageClass.REQUEST, b"m" * 12, kept).encode(
        alice.long_term_key
    )

    reply = alice.send_raw(wire)

    assert error_code(reply) == ErrorCode.BAD_REQUEST
    assert reply is not None and reply.find(Nonce) is None and reply.find(MessageIntegrity) is None
    assert turn.core.allocations == {}


def test_rfc8489_9_2_4_wrong_password_is_401_with_a_nonce(turn: Turn) -> None:
    mallory = turn.client("alice", "guess")

    reply = mallory.allocate()

    assert error_code(reply) == ErrorCode.UNAUTHORIZED
    assert reply.find(Nonce) is not None and reply.find(Realm) == Realm(REALM)
    assert turn.core.allocations == {}
    assert turn.core.counters.auth_failures == 1


def test_rfc8489_9_2_4_unknown_user_gets_the_same_bytes_as_a_wrong_password(turn: Turn) -> None:
    wrong_password = turn.client("alice", "guess", address=("192.0.2.50", 1000))
    unknown_user = turn.client("nobody", "guess", address=("192.0.2.50", 1001))
    tid = b"same-tid-123"

    wrong_password.allocate(transaction_id=tid)
    unknown_user.allocate(transaction_id=tid)

    assert wrong_password.last is not None
    assert unknown_user.last == wrong_password.last
    assert turn.core.counters.auth_failures == 2


def test_rfc8489_9_2_4_wrong_realm_is_401(turn: Turn, alice: TurnClient) -> None:
    alice.learn(first_challenge(alice))
    attributes = (RequestedTransport(), Username("alice"), Realm("other"), Nonce(alice.nonce or ""))
    key = long_term_key("alice", "other", alice.password)
    wire = Message(Method.ALLOCATE, MessageClass.REQUEST, b"r" * 12, attributes).encode(key)

    assert error_code(alice.send_raw(wire)) == ErrorCode.UNAUTHORIZED
    assert turn.core.allocations == {}


def test_rfc8489_9_2_4_success_is_signed_with_the_users_key(turn: Turn, alice: TurnClient) -> None:
    reply = alice.allocate()

    assert reply.message_class is MessageClass.SUCCESS_RESPONSE
    assert reply.find(MessageIntegrity) is not None
    assert reply.verify_integrity(alice.long_term_key)
    assert not reply.verify_integrity(turn.client("bob").long_term_key)


def test_rfc8489_9_2_4_errors_after_authentication_are_signed(alice: TurnClient) -> None:
    alice.allocate()

    reply = alice.allocate()  # a new transaction: 437

    assert error_code(reply) == ErrorCode.ALLOCATION_MISMATCH
    assert reply.verify_integrity(alice.long_term_key)


# --- nonces -------------------------------------------------------------------------------------


def test_rfc8489_9_2_4_expired_nonce_gets_438_with_a_fresh_nonce(
    turn: Turn, alice: TurnClient
) -> None:
    alice.allocate(lifetime=3600)
    old = alice.nonce
    turn.advance(901)  # past lifetime * 1.5, the longest a nonce can live

    reply = alice.request(Method.REFRESH, Lifetime(3600), retry_stale=False)

    assert error_code(reply) == ErrorCode.STALE_NONCE
    fresh = reply.find(Nonce)
    assert fresh is not None and fresh.value != old
    assert reply.find(Realm) == Realm(REALM) and reply.find(PasswordAlgorithms) == OFFERED
    assert turn.core.counters.auth_failures == 0
    alice.learn(reply)
    assert alice.refresh(3600).message_class is MessageClass.SUCCESS_RESPONSE


def test_rfc8489_9_2_nonce_is_bound_to_the_client_ip(turn: Turn, alice: TurnClient) -> None:
    alice.allocate()
    elsewhere = turn.client("alice", address=("192.0.2.77", 40000))
    elsewhere.nonce, elsewhere.offered = alice.nonce, alice.offered

    reply = elsewhere.allocate(retry_stale=False)

    assert error_code(reply) == ErrorCode.STALE_NONCE
    assert reply.find(Nonce) != Nonce(alice.nonce or "")
    assert elsewhere.allocate().message_class is MessageClass.SUCCESS_RESPONSE


def test_rfc8489_9_2_nonce_is_valid_from_another_port_of_the_same_ip(
    turn: Turn, alice: TurnClient
) -> None:
    alice.allocate()
    same_ip = turn.client("alice", address=(alice.address[0], alice.address[1] + 1))
    same_ip.nonce, same_ip.offered = alice.nonce, alice.offered

    assert same_ip.allocate(retry_stale=False).message_class is MessageClass.SUCCESS_RESPONSE


def test_nonce_issuer_hands_out_one_nonce_per_half_lifetime() -> None:
    issuer = NonceIssuer(b"s" * 32, lifetime=600)

    first = issuer.issue("192.0.2.1", 1200.0)

    assert issuer.issue("192.0.2.1", 1499.0) == first
    assert issuer.issue("192.0.2.1", 1500.0) != first
    assert issuer.issue("192.0.2.2", 1200.0) != first


@pytest.mark.parametrize("age", [0.0, 300.0, 600.0])
def test_nonce_issuer_nonce_lives_at_least_its_lifetime(age: float) -> None:
    issuer = NonceIssuer(b"s" * 32, lifetime=600)
    nonce = issuer.issue("192.0.2.1", 1299.0)

    assert issuer.check(nonce, "192.0.2.1", 1299.0 + age) is NonceState.VALID
    assert issuer.check(nonce, "192.0.2.1", 1299.0 + 901) is NonceState.STALE


def test_nonce_issuer_remembers_a_checked_nonce_for_its_client_and_its_life_only() -> None:
    """A nonce checked once is remembered (no HMAC again), but for the address it was
    made for and until its expiry, as if checked afresh; a forged one is never kept."""
    issuer = NonceIssuer(b"s" * 32, lifetime=600)
    nonce = issuer.issue("192.0.2.1", 1299.0)
    forged = nonce[:-2] + ("AA" if nonce[-2:] != "AA" else "BB")

    for _ in range(2):
        assert issuer.check(nonce, "192.0.2.1", 1300.0) is NonceState.VALID
        assert issuer.check(nonce, "192.0.2.9", 1300.0) is NonceState.INVALID
        assert issuer.check(forged, "192.0.2.1", 1300.0) is NonceState.INVALID
    assert issuer.check(nonce, "192.0.2.1", 1299.0 + 901) is NonceState.STALE
    assert issuer.issue("192.0.2.1", 1400.0) == nonce
    assert NonceIssuer(b"s" * 32, lifetime=600).issue("192.0.2.1", 1400.0) == nonce


def extend_expiry(nonce: str, seconds: int) -> str:
    """The same nonce with its expiry pushed back and the MAC left alone."""
    prefix = nonce[: len(NONCE_COOKIE) + 4]
    raw = base64.urlsafe_b64decode(nonce[len(prefix) :])
    expiry = struct.unpack("!Q", raw[:8])[0] + seconds
    return prefix + base64.urlsafe_b64encode(struct.pack("!Q", expiry) + raw[8:]).decode()


@pytest.mark.parametrize(
    "tamper",
    [
        lambda n: n[:-2] + ("AA" if n[-2:] != "AA" else "BB"),
        lambda n: NONCE_COOKIE,
        lambda n: "",
        lambda n: extend_expiry(n, 10**6),
        lambda n: n[: len(NONCE_COOKIE) + 4] + "!!!!not base64",
        lambda n: n[: len(NONCE_COOKIE) + 4] + "ünïcödé",
        lambda n: n.replace(NONCE_COOKIE, "xxxxxxxxx"),
    ],
    ids=["mac", "cookie-only", "empty", "expiry-extended", "not-base64", "non-ascii", "no-cookie"],
)
def test_nonce_issuer_refuses_forged_nonces(tamper: object) -> None:
    issuer = NonceIssuer(b"s" * 32)
    nonce = issuer.issue("192.0.2.1", 1000.0)

    forged = tamper(nonce)  # type: ignore[operator]

    assert issuer.check(forged, "192.0.2.1", 1000.0) is NonceState.INVALID
    assert issuer.check(nonce, "192.0.2.9", 1000.0) is NonceState.INVALID


def test_forged_nonce_is_answered_438_with_a_real_one(turn: Turn, alice: TurnClient) -> None:
    alice.nonce = NONCE_COOKIE + "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    alice.offered = OFFERED

    reply = alice.allocate(retry_stale=False)

    assert error_code(reply) == ErrorCode.STALE_NONCE
    nonce = reply.find(Nonce)
    assert nonce is not None
    assert turn.nonces.check(nonce.value, alice.address[0], turn.now) is NonceState.VALID


# --- password algorithms (RFC 8489 §9.2.4, §14.11, §14.12) ----------------------------------------


@pytest.mark.parametrize("sha256_key", [False, True], ids=["md5-key", "sha256-key"])
@pytest.mark.parametrize("integrity", [Integrity.SHA1, Integrity.SHA256], ids=["mi", "mi-sha256"])
def test_rfc8489_9_2_4_password_algorithm_and_integrity_combinations(
    turn: Turn, sha256_key: bool, integrity: Integrity
) -> None:
    client = turn.client("alice", sha256=sha256_key)
    client.learn(first_challenge(client))
    attributes = [RequestedTransport(), Username("alice"), Realm(REALM), Nonce(client.nonce or "")]
    if sha256_key:
        attributes += [OFFERED, PasswordAlgorithm(PasswordAlgorithmId.SHA256)]
    message = Message(Method.ALLOCATE, MessageClass.REQUEST, b"a" * 12, tuple(attributes))

    reply = client.send_raw(message.encode(client.long_term_key, integrity=integrity))

    assert reply is not None and reply.message_class is MessageClass.SUCCESS_RESPONSE
    assert reply.integrity == integrity  # mirrored
    assert reply.verify_integrity(client.long_term_key)
    other_key = long_term_key("alice", REALM, client.password, sha256=not sha256_key)
    assert not reply.verify_integrity(other_key)


def test_rfc8489_9_2_4_sha256_client_through_the_helper(turn: Turn) -> None:
    client = turn.client("bob", sha256=True)

    reply = client.allocate()

    assert reply.find(MessageIntegritySha256) is not None
    assert reply.find(MessageIntegrity) is None
    assert reply.verify_integrity(long_term_key("bob", REALM, "builder", sha256=True))


def test_rfc8489_9_2_4_no_algorithm_attributes_means_md5(turn: Turn, alice: TurnClient) -> None:
    alice.learn(first_challenge(alice))
    attributes = (RequestedTransport(), Username("alice"), Realm(REALM), Nonce(alice.nonce or ""))

    def signed(sha256: bool, tid: bytes) -> bytes:
        key = long_term_key("alice", REALM, alice.password, sha256=sha256)
        return Message(Method.ALLOCATE, MessageClass.REQUEST, tid, attributes).encode(key)

    assert error_code(alice.send_raw(signed(True, b"s" * 12))) == ErrorCode.UNAUTHORIZED
    assert error_code(alice.send_raw(signed(False, b"m" * 12))) is None


@pytest.mark.parametrize(
    "algorithm_attributes",
    [
        (
            PasswordAlgorithms((PasswordAlgorithm(PasswordAlgorithmId.MD5),)),
            PasswordAlgorithm(PasswordAlgorithmId.MD5),
        ),
        (
            PasswordAlgorithms(tuple(reversed(OFFERED.algorithms))),
            PasswordAlgorithm(PasswordAlgorithmId.MD5),
        ),
        (PasswordAlgorithm(PasswordAlgorithmId.MD5),),
        (OFFERED,),
        (OFFERED, PasswordAlgorithm(0x0003)),
    ],
    ids=["list-stripped", "list-reordered", "algorithm-alone", "list-alone", "not-offered"],
)
def test_rfc8489_9_2_4_password_algorithm_downgrade_is_400(
    turn: Turn, alice: TurnClient, algorithm_attributes: tuple[object, ...]
) -> None:
    alice.learn(first_challenge(alice))
    attributes = (
        RequestedTransport(),
        Username("alice"),
        Realm(REALM),
        Nonce(alice.nonce or ""),
        *algorithm_attributes,
    )
    message = Message(Method.ALLOCATE, MessageClass.REQUEST, b"d" * 12, attributes)  # type: ignore[arg-type]

    reply = alice.send_raw(message.encode(alice.long_term_key))

    assert error_code(reply) == ErrorCode.BAD_REQUEST
    assert turn.core.allocations == {}


# --- guesses, counted in the throttle every protocol shares -------------------------------------


def failing(turn: Turn, address: tuple[str, int]) -> TurnClient:
    return turn.client("alice", "guess", address=address)


def throttled(free: int = 3) -> Turn:
    return Turn(guesses=GuessThrottle(account_free=free, source_free=free))


def test_guesses_beyond_the_free_ones_are_refused_without_a_nonce() -> None:
    turn = throttled(3)
    guesser = failing(turn, ("192.0.2.66", 1000))
    for _ in range(4):  # three free, the fourth sets a wait
        assert error_code(guesser.allocate()) == ErrorCode.UNAUTHORIZED
    honest_same_ip = turn.client("alice", address=("192.0.2.66", 1001))
    honest_same_ip.nonce, honest_same_ip.offered = guesser.nonce, guesser.offered

    reply = honest_same_ip.allocate(retry_stale=False)

    error = reply.find(ErrorCodeAttribute)
    assert error is not None and error.code == ErrorCode.UNAUTHORIZED
    assert error.reason == "Too many failed attempts"
    assert reply.find(Nonce) is None and reply.find(Realm) is None
    assert turn.core.allocations == {}
    assert turn.core.counters.auth_failures == 4
    assert turn.core.counters.auth_throttled == 1


def test_guesses_from_many_sources_make_the_account_wait_everywhere() -> None:
    turn = throttled(3)
    for host in range(4):
        assert error_code(failing(turn, (f"192.0.2.{60 + host}", 1000)).allocate()) == 401
    newcomer = turn.client("alice", address=("192.0.2.70", 1000))

    reply = newcomer.allocate()

    assert error_code(reply) == ErrorCode.UNAUTHORIZED
    assert reply.find(Nonce) is None
    assert turn.core.allocations == {}


def test_a_network_that_logged_in_before_keeps_working_while_the_account_waits() -> None:
    turn = throttled(3)
    device = turn.client("alice", address=("192.0.2.80", 1000))
    assert device.allocate().message_class is MessageClass.SUCCESS_RESPONSE
    for host in range(4):
        failing(turn, (f"192.0.2.{60 + host}", 1000)).allocate()

    assert device.refresh(600).message_class is MessageClass.SUCCESS_RESPONSE
    again = turn.client("alice", address=("192.0.2.80", 1001))
    assert again.allocate().message_class is MessageClass.SUCCESS_RESPONSE


def test_guesses_count_in_the_throttle_other_protocols_read() -> None:
    throttle = GuessThrottle(account_free=2, source_free=50)
    turn = Turn(guesses=throttle)
    for _ in range(3):
        failing(turn, ("192.0.2.66", 1000)).allocate()

    assert throttle.wait("alice", "198.51.100.1", turn.now) > 0


def test_guesses_made_elsewhere_stop_turn_logins() -> None:
    throttle = GuessThrottle(account_free=2, source_free=50)
    turn = Turn(guesses=throttle)
    for _ in range(3):
        throttle.failure("alice", "198.51.100.1", turn.now)  # over SIP, say

    reply = turn.client("alice", address=("192.0.2.90", 1000)).allocate()

    assert error_code(reply) == ErrorCode.UNAUTHORIZED
    assert reply.find(Nonce) is None


def test_the_wait_ends() -> None:
    turn = throttled(2)
    guesser = failing(turn, ("192.0.2.66", 1000))
    for _ in range(3):
        guesser.allocate()
    assert first_challenge(guesser).find(Nonce) is not None  # unsigned: still challenged
    turn.advance(61)

    honest = turn.client("alice", address=("192.0.2.66", 1001))

    assert honest.allocate().message_class is MessageClass.SUCCESS_RESPONSE


def test_binding_is_answered_for_a_throttled_ip() -> None:
    turn = throttled(1)
    guesser = failing(turn, ("192.0.2.66", 1000))
    guesser.allocate()
    guesser.allocate()

    reply = guesser.request(Method.BINDING, sign=False)

    assert reply.message_class is MessageClass.SUCCESS_RESPONSE


# --- which messages are worth a key lookup (before any database query) ---------------------------


def signed_allocate(client: TurnClient, **changes: str) -> Message:
    """An Allocate signed by ``client`` (which has a nonce), with USERNAME/REALM/NONCE replaced."""
    attributes = [
        RequestedTransport(),
        Username(changes.get("username", client.username)),
        Realm(changes.get("realm", REALM)),
        Nonce(changes.get("nonce", client.nonce or "")),
    ]
    message = Message(Method.ALLOCATE, MessageClass.REQUEST, bytes(12), tuple(attributes))
    return Message.decode(message.encode(client.long_term_key))


def test_only_a_signed_request_with_realm_and_live_nonce_needs_keys() -> None:
    turn = throttled(3)
    alice = turn.client("alice", address=("192.0.2.66", 1000))
    alice.learn(first_challenge(alice))
    ip = alice.address[0]
    needs = turn.core.needs_keys

    assert needs(signed_allocate(alice), ip, "alice", turn.now)
    assert not needs(signed_allocate(alice), "192.0.2.67", "alice", turn.now)  # not its nonce
    assert not needs(signed_allocate(alice, realm="elsewhere"), ip, "alice", turn.now)
    assert not needs(signed_allocate(alice, nonce="forged"), ip, "alice", turn.now)
    assert not needs(signed_allocate(alice), ip, "alice", turn.now + 3600)  # stale
    unsigned = Message(Method.ALLOCATE, MessageClass.REQUEST, bytes(12), (Username("alice"),))
    assert not needs(unsigned, ip, "alice", turn.now)
    binding = Message(Method.BINDING, MessageClass.REQUEST, bytes(12), (Username("alice"),))
    assert not needs(binding, ip, "alice", turn.now)


def test_no_keys_are_needed_while_the_source_must_wait() -> None:
    turn = throttled(3)
    guesser = turn.client("nobody", "guess", address=("192.0.2.66", 1000))
    for name in ("x1", "x2", "x3", "x4"):
        guesser.username = name
        guesser.allocate()

    assert not turn.core.needs_keys(signed_allocate(guesser), "192.0.2.66", "x9", turn.now)
    turn.advance(60)
    assert turn.core.needs_keys(signed_allocate(guesser), "192.0.2.66", "x9", turn.now)


def test_stale_nonces_are_not_counted_as_failures(turn: Turn, alice: TurnClient) -> None:
    alice.allocate(lifetime=3600)
    for _ in range(3):
        turn.advance(901)
        alice.refresh(3600)

    assert turn.core.counters.auth_failures == 0


# --- REST API credentials (coturn use-auth-secret) -----------------------------------------------

UNIX_NOW = 1_700_000_000.0


def rest_turn(secret: TurnSecret, unix_now: float) -> Turn:
    """A core whose key lookup is the server's for ``expiry:user`` names."""
    turn = Turn()

    def lookup(username: str) -> Credentials | None:
        keys = secret.long_term_keys(username, REALM, now=unix_now)
        return None if keys is None else Credentials(username, *keys)

    turn.lookup = lookup
    return turn


SECRET = TurnSecret(b"shared-secret-of-heron-tests")


def test_rest_api_credentials_authenticate() -> None:
    issued = SECRET.issue("alice", now=UNIX_NOW, ttl=3600)
    turn = rest_turn(SECRET, UNIX_NOW + 10)

    reply = turn.client(issued.username, issued.password).allocate()

    assert reply.message_class is MessageClass.SUCCESS_RESPONSE
    assert reply.find(Software) is not None
    assert turn.core.allocations[next(iter(turn.core.allocations))].username == issued.username


def test_rest_api_credentials_refused_after_expiry() -> None:
    issued = SECRET.issue("alice", now=UNIX_NOW, ttl=3600)
    turn = rest_turn(SECRET, UNIX_NOW + 3601)

    assert error_code(turn.client(issued.username, issued.password).allocate()) == 401


def test_rest_api_credentials_refused_under_another_secret() -> None:
    forged = TurnSecret(b"a-different-secret-entirely").issue("alice", now=UNIX_NOW)
    turn = rest_turn(SECRET, UNIX_NOW)

    assert error_code(turn.client(forged.username, forged.password).allocate()) == 401


def test_rest_api_password_does_not_carry_to_another_user() -> None:
    issued = SECRET.issue("alice", now=UNIX_NOW)
    expiry = issued.username.partition(":")[0]
    turn = rest_turn(SECRET, UNIX_NOW)

    reply = turn.client(f"{expiry}:bob", issued.password).allocate()

    assert error_code(reply) == ErrorCode.UNAUTHORIZED


def test_an_allocations_own_5_tuple_keeps_working_while_its_network_waits() -> None:
    turn = throttled(3)
    alice = turn.client("alice", address=("192.0.2.80", 1000))
    assert alice.allocate().message_class is MessageClass.SUCCESS_RESPONSE
    for name in ("x1", "x2", "x3", "x4"):  # someone behind the same NAT address guesses
        stranger = turn.client(name, "guess", address=("192.0.2.80", 2000))
        stranger.allocate()

    assert alice.refresh(600).message_class is MessageClass.SUCCESS_RESPONSE
    newcomer = turn.client("bob", address=("192.0.2.80", 3000))
    assert error_code(newcomer.allocate()) == ErrorCode.UNAUTHORIZED
