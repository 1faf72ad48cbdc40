"""Server side SASL: SCRAM from stored keys (RFC 5802, RFC 7677), -PLUS, PLAIN (RFC 4616)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heron.accounts import ScramHash, ScramKeys, derive_scram_keys
from heron.xmpp.sasl import (
    Challenge,
    KeysNeeded,
    PasswordCheckNeeded,
    SaslCondition,
    SaslConfig,
    SaslFailure,
    SaslServer,
    Success,
    decode_payload,
    encode_payload,
)

SECRET = b"s" * 32


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def nonces(*values: str) -> Iterator[str]:
    yield from values
    while True:
        yield "servernonce"


def server(
    *server_nonces: str,
    tls: bool = True,
    channel_binding: dict[str, bytes] | None = None,
    **options: object,
) -> SaslServer:
    source = nonces(*server_nonces)
    config = SaslConfig(server_secret=SECRET, nonce=lambda: next(source), **options)  # type: ignore[arg-type]
    return SaslServer(config, tls_active=tls, channel_binding=channel_binding or {})


def failure_of(call: object, *args: object) -> SaslCondition:
    with pytest.raises(SaslFailure) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value.condition


def rfc_keys(hash_name: ScramHash, salt: str) -> ScramKeys:
    return derive_scram_keys("pencil", base64.b64decode(salt), 4096, hash_name)


# --- RFC vectors -------------------------------------------------------------------------


def test_rfc5802_5_scram_sha1_server_messages_byte_for_byte() -> None:
    sasl = server("3rfcNHYJY1ZVvWVs7j")
    step = sasl.start("SCRAM-SHA-1", b64("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"))
    assert step == KeysNeeded("user", ScramHash.SHA1)
    first = sasl.provide_scram_keys(rfc_keys(ScramHash.SHA1, "QSXCR+Q6sek8bf92"))
    assert first == Challenge(
        b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
    )
    final = sasl.respond(
        b64("c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")
    )
    assert final == Success("user", "", b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")


def test_rfc7677_3_scram_sha256_server_messages_byte_for_byte() -> None:
    sasl = server("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
    step = sasl.start("SCRAM-SHA-256", b64("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"))
    assert step == KeysNeeded("user", ScramHash.SHA256)
    first = sasl.provide_scram_keys(rfc_keys(ScramHash.SHA256, "W22ZaJ0SNY7soEsUEjb6gQ=="))
    assert first.data == (
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    )
    final = sasl.respond(
        b64(
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
            "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        )
    )
    assert final == Success("user", "", b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")


# --- a SCRAM client, for what the RFCs have no vector of ---------------------------------


def client_final(
    hash_name: ScramHash,
    password: str,
    client_first_bare: str,
    server_first: bytes,
    gs2_header: bytes = b"n,,",
    cb_data: bytes = b"",
) -> tuple[str, bytes]:
    """RFC 5802 §3 client side: the client-final message and the expected ServerSignature."""
    fields = dict(item.split("=", 1) for item in server_first.decode().split(","))
    salted = hashlib.pbkdf2_hmac(
        hash_name.value, password.encode(), base64.b64decode(fields["s"]), int(fields["i"])
    )
    client_key = hmac.digest(salted, b"Client Key", hash_name.value)
    stored_key = hashlib.new(hash_name.value, client_key).digest()
    without_proof = f"c={b64(gs2_header + cb_data)},r={fields['r']}"
    auth_message = f"{client_first_bare},{server_first.decode()},{without_proof}".encode()
    signature = hmac.digest(stored_key, auth_message, hash_name.value)
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    server_key = hmac.digest(salted, b"Server Key", hash_name.value)
    expected = hmac.digest(server_key, auth_message, hash_name.value)
    return f"{without_proof},p={b64(proof)}", b"v=" + base64.b64encode(expected)


KEYS = {h: derive_scram_keys("secret", b"salt-of-roland", 4096, h) for h in ScramHash}


@pytest.mark.parametrize("hash_name", list(ScramHash))
def test_scram_login_for_every_hash(hash_name: ScramHash) -> None:
    sasl = server("SNONCE")
    bare = "n=roland,r=CNONCE"
    assert sasl.start(hash_name.mechanism, b64("n,," + bare)) == KeysNeeded("roland", hash_name)
    first = sasl.provide_scram_keys(KEYS[hash_name])
    final, expected = client_final(hash_name, "secret", bare, first.data)
    assert sasl.respond(b64(final)) == Success("roland", "", expected)
    assert sasl.failures == 0


def test_scram_without_initial_response_sends_an_empty_challenge_first() -> None:
    sasl = server()
    assert sasl.start("SCRAM-SHA-256", None) == Challenge(b"")
    assert sasl.respond(b64("n,,n=roland,r=abc")) == KeysNeeded("roland", ScramHash.SHA256)


def test_scram_wrong_password_fails_at_the_proof() -> None:
    sasl = server()
    sasl.start("SCRAM-SHA-256", b64("n,,n=roland,r=abc"))
    first = sasl.provide_scram_keys(KEYS[ScramHash.SHA256])
    final, _ = client_final(ScramHash.SHA256, "wrong", "n=roland,r=abc", first.data)
    assert failure_of(sasl.respond, b64(final)) == SaslCondition.NOT_AUTHORIZED
    assert sasl.failures == 1


def test_scram_unknown_user_gets_stable_fake_salt_and_fails_at_the_proof() -> None:
    salts = []
    for _ in range(2):
        sasl = server()
        sasl.start("SCRAM-SHA-256", b64("n,,n=nobody,r=abc"))
        first = sasl.provide_scram_keys(None)
        fields = dict(item.split("=", 1) for item in first.data.decode().split(","))
        salts.append(fields["s"])
        assert fields["i"] == "10000"  # what real accounts get (SCRAM_ITERATIONS)
        final, _ = client_final(ScramHash.SHA256, "any", "n=nobody,r=abc", first.data)
        assert failure_of(sasl.respond, b64(final)) == SaslCondition.NOT_AUTHORIZED
    assert salts[0] == salts[1]
    other = server()
    other.start("SCRAM-SHA-256", b64("n,,n=somebody,r=abc"))
    assert f"s={salts[0]}".encode() not in other.provide_scram_keys(None).data


def server_first_fields(mechanism: str, name: str, account: str | None = None) -> dict[str, str]:
    sasl = server()
    sasl.start(mechanism, b64(f"n,,n={name},r=abc"))
    first = sasl.provide_scram_keys(None, account)
    return dict(item.split("=", 1) for item in first.data.decode().split(","))


def test_scram_unknown_user_has_one_salt_for_every_hash_as_real_accounts_do() -> None:
    # A real account's SCRAM-SHA-1, -256 and -512 keys share one salt (Secrets.scram); a
    # fake salt per hash would tell an unknown name from a real one.
    salts = {server_first_fields(h.mechanism, "nobody")["s"] for h in ScramHash}
    assert len(salts) == 1
    assert len(base64.b64decode(salts.pop())) == 16  # what AccountService draws


def test_scram_unknown_user_fake_keys_follow_the_account_name_the_caller_gives() -> None:
    # "Nobody" and "nobody" are one account in the store: one salt, as for a real account.
    upper = server_first_fields("SCRAM-SHA-256", "Nobody", "nobody@falcot.com")
    lower = server_first_fields("SCRAM-SHA-1", "nobody", "nobody@falcot.com")
    other = server_first_fields("SCRAM-SHA-1", "nobody", "nobody@other.example")
    assert upper["s"] == lower["s"] != other["s"]


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1))
@settings(max_examples=50)
def test_scram_fake_salt_never_depends_on_the_mechanism(name: str) -> None:
    sasl_names = {h: name.replace("=", "=3D").replace(",", "=2C") for h in ScramHash}
    salts = {server_first_fields(h.mechanism, sasl_names[h], name)["s"] for h in ScramHash}
    assert len(salts) == 1


def test_scram_keys_of_another_hash_are_treated_as_no_account() -> None:
    sasl = server()
    sasl.start("SCRAM-SHA-256", b64("n,,n=roland,r=abc"))
    first = sasl.provide_scram_keys(KEYS[ScramHash.SHA1])
    final, _ = client_final(ScramHash.SHA256, "secret", "n=roland,r=abc", first.data)
    assert failure_of(sasl.respond, b64(final)) == SaslCondition.NOT_AUTHORIZED


def test_scram_replayed_client_final_fails_on_a_new_server_nonce() -> None:
    sasl = server("first")
    sasl.start("SCRAM-SHA-256", b64("n,,n=roland,r=abc"))
    first = sasl.provide_scram_keys(KEYS[ScramHash.SHA256])
    final, _ = client_final(ScramHash.SHA256, "secret", "n=roland,r=abc", first.data)
    assert isinstance(sasl.respond(b64(final)), Success)
    # The same bytes again: no exchange is under way.
    assert failure_of(sasl.respond, b64(final)) == SaslCondition.MALFORMED_REQUEST
    # A new exchange has a new server nonce, so the old final no longer fits.
    sasl.start("SCRAM-SHA-256", b64("n,,n=roland,r=abc"))
    sasl.provide_scram_keys(KEYS[ScramHash.SHA256])
    assert failure_of(sasl.respond, b64(final)) == SaslCondition.NOT_AUTHORIZED


def test_scram_username_escapes_are_decoded() -> None:
    sasl = server()
    step = sasl.start("SCRAM-SHA-1", b64("n,,n=a=2Cb=3Dc,r=abc"))
    assert step == KeysNeeded("a,b=c", ScramHash.SHA1)


@pytest.mark.parametrize(
    ("message", "condition"),
    [
        ("n=user,r=abc", SaslCondition.MALFORMED_REQUEST),  # no GS2 header
        ("x,,n=user,r=abc", SaslCondition.MALFORMED_REQUEST),  # bad flag
        ("n,b=x,n=user,r=abc", SaslCondition.MALFORMED_REQUEST),  # bad authzid
        ("n,,m=ext,n=user,r=abc", SaslCondition.MALFORMED_REQUEST),  # mandatory extension
        ("n,,r=abc,n=user", SaslCondition.MALFORMED_REQUEST),  # order
        ("n,,n=user", SaslCondition.MALFORMED_REQUEST),  # no nonce
        ("n,,n=user,r=", SaslCondition.MALFORMED_REQUEST),  # empty nonce
        ("n,,n=user,r=a\x7fb", SaslCondition.MALFORMED_REQUEST),  # nonce not printable
        ("n,,n=,r=abc", SaslCondition.MALFORMED_REQUEST),  # empty name
        ("n,,n=us=er,r=abc", SaslCondition.MALFORMED_REQUEST),  # bad escape
        ("n,,n=us=2cer,r=abc", SaslCondition.MALFORMED_REQUEST),  # escapes are upper case
        ("p=tls-exporter,,n=user,r=abc", SaslCondition.MALFORMED_REQUEST),  # p without PLUS
    ],
)
def test_scram_client_first_is_validated(message: str, condition: SaslCondition) -> None:
    sasl = server()
    assert failure_of(sasl.start, "SCRAM-SHA-256", b64(message)) == condition
    assert sasl.failures == 1


def test_scram_client_first_must_be_utf8() -> None:
    sasl = server()
    payload = b64(b"n,,n=\xff,r=abc")
    assert failure_of(sasl.start, "SCRAM-SHA-256", payload) == SaslCondition.MALFORMED_REQUEST


def _exchange(sasl: SaslServer, mechanism: str = "SCRAM-SHA-256") -> bytes:
    sasl.start(mechanism, b64("n,,n=roland,r=abc"))
    return sasl.provide_scram_keys(KEYS[ScramHash.SHA256]).data


@pytest.mark.parametrize(
    ("final", "condition"),
    [
        ("r={r},p=AAAA", SaslCondition.MALFORMED_REQUEST),  # no c=
        ("c=biws,r={r}", SaslCondition.MALFORMED_REQUEST),  # no proof
        ("c=biws,r={r}x,p=AAAA", SaslCondition.NOT_AUTHORIZED),  # nonce changed
        ("c=eSws,r={r},p=AAAA", SaslCondition.NOT_AUTHORIZED),  # y,, instead of n,,
        ("c=!!,r={r},p=AAAA", SaslCondition.MALFORMED_REQUEST),  # c= not base64
        ("c=biws,r={r},p=!!", SaslCondition.MALFORMED_REQUEST),  # proof not base64
        ("c=biws,r={r},p=AAAA", SaslCondition.NOT_AUTHORIZED),  # short proof
    ],
)
def test_scram_client_final_is_validated(final: str, condition: SaslCondition) -> None:
    sasl = server()
    fields = dict(item.split("=", 1) for item in _exchange(sasl).decode().split(","))
    assert failure_of(sasl.respond, b64(final.format(r=fields["r"]))) == condition


# --- channel binding (RFC 5802 §6, RFC 9266, RFC 5929) ------------------------------------

CB = {"tls-exporter": b"exporter-bytes", "tls-server-end-point": b"cert-hash"}


def test_plus_mechanisms_are_offered_only_with_channel_binding_data() -> None:
    assert server(channel_binding=CB).mechanisms == (
        "SCRAM-SHA-512-PLUS",
        "SCRAM-SHA-256-PLUS",
        "SCRAM-SHA-1-PLUS",
        "SCRAM-SHA-512",
        "SCRAM-SHA-256",
        "SCRAM-SHA-1",
        "PLAIN",
    )
    assert server().mechanisms == ("SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN")
    assert server(channel_binding=CB).channel_binding_types == tuple(CB)


@pytest.mark.parametrize("cb_type", list(CB))
def test_scram_plus_binds_to_the_channel(cb_type: str) -> None:
    sasl = server(channel_binding=CB)
    gs2 = f"p={cb_type},,".encode()
    sasl.start("SCRAM-SHA-256-PLUS", b64(gs2 + b"n=roland,r=abc"))
    first = sasl.provide_scram_keys(KEYS[ScramHash.SHA256])
    final, expected = client_final(
        ScramHash.SHA256, "secret", "n=roland,r=abc", first.data, gs2, CB[cb_type]
    )
    assert sasl.respond(b64(final)) == Success("roland", "", expected)


def test_scram_plus_with_other_channel_data_fails() -> None:
    sasl = server(channel_binding=CB)
    gs2 = b"p=tls-exporter,,"
    sasl.start("SCRAM-SHA-256-PLUS", b64(gs2 + b"n=roland,r=abc"))
    first = sasl.provide_scram_keys(KEYS[ScramHash.SHA256])
    final, _ = client_final(
        ScramHash.SHA256, "secret", "n=roland,r=abc", first.data, gs2, b"the attacker's channel"
    )
    assert failure_of(sasl.respond, b64(final)) == SaslCondition.NOT_AUTHORIZED


@pytest.mark.parametrize(
    ("mechanism", "gs2", "condition"),
    [
        ("SCRAM-SHA-256-PLUS", "n,,", SaslCondition.MALFORMED_REQUEST),
        ("SCRAM-SHA-256-PLUS", "y,,", SaslCondition.MALFORMED_REQUEST),
        ("SCRAM-SHA-256-PLUS", "p=tls-unique,,", SaslCondition.NOT_AUTHORIZED),
        ("SCRAM-SHA-256-PLUS", "p=bad name,,", SaslCondition.NOT_AUTHORIZED),
        ("SCRAM-SHA-256", "y,,", SaslCondition.NOT_AUTHORIZED),  # downgrade
        ("SCRAM-SHA-256", "p=tls-exporter,,", SaslCondition.MALFORMED_REQUEST),
    ],
)
def test_channel_binding_flags(mechanism: str, gs2: str, condition: SaslCondition) -> None:
    sasl = server(channel_binding=CB)
    assert failure_of(sasl.start, mechanism, b64(gs2 + "n=roland,r=abc")) == condition


def test_y_flag_is_fine_when_the_server_offers_no_plus() -> None:
    sasl = server()
    gs2 = b"y,,"
    sasl.start("SCRAM-SHA-256", b64(gs2 + b"n=roland,r=abc"))
    first = sasl.provide_scram_keys(KEYS[ScramHash.SHA256])
    final, expected = client_final(ScramHash.SHA256, "secret", "n=roland,r=abc", first.data, gs2)
    assert sasl.respond(b64(final)) == Success("roland", "", expected)


def test_scram_authzid_is_reported() -> None:
    sasl = server()
    gs2 = b"n,a=roland@falcot.com,"
    sasl.start("SCRAM-SHA-1", b64(gs2 + b"n=roland,r=abc"))
    first = sasl.provide_scram_keys(KEYS[ScramHash.SHA1])
    final, _ = client_final(ScramHash.SHA1, "secret", "n=roland,r=abc", first.data, gs2)
    success = sasl.respond(b64(final))
    assert isinstance(success, Success)
    assert success.authzid == "roland@falcot.com"


# --- PLAIN (RFC 4616) ---------------------------------------------------------------------


def test_rfc4616_plain_reports_credentials_and_accepts_the_verdict() -> None:
    sasl = server()
    step = sasl.start("PLAIN", b64("\0roland\0secret"))
    assert step == PasswordCheckNeeded("", "roland", "secret")
    assert "secret" not in repr(step)
    assert sasl.waiting_for_verdict
    assert sasl.plain_verified(True) == Success("roland", "")


def test_plain_wrong_password_is_not_authorized() -> None:
    sasl = server()
    sasl.start("PLAIN", b64("admin\0roland\0wrong"))
    assert failure_of(sasl.plain_verified, False) == SaslCondition.NOT_AUTHORIZED
    assert sasl.failures == 1


def test_plain_without_initial_response_asks_with_an_empty_challenge() -> None:
    sasl = server()
    assert sasl.start("PLAIN", None) == Challenge(b"")
    assert sasl.respond(b64("\0roland\0pw")) == PasswordCheckNeeded("", "roland", "pw")


@pytest.mark.parametrize(
    "message", [b"roland\0secret", b"\0\0secret", b"\0roland\0", b"\0a\0b\0c", b"\0\xff\0pw"]
)
def test_plain_malformed_messages(message: bytes) -> None:
    assert failure_of(server().start, "PLAIN", b64(message)) == SaslCondition.MALFORMED_REQUEST


def test_plain_is_only_offered_over_tls() -> None:
    sasl = server(tls=False)
    assert "PLAIN" not in sasl.mechanisms
    assert failure_of(sasl.start, "PLAIN", b64("\0a\0b")) == SaslCondition.ENCRYPTION_REQUIRED
    assert "PLAIN" not in server(plain=False).mechanisms
    no_plain = server(plain=False)
    assert failure_of(no_plain.start, "PLAIN", b64("\0a\0b")) == SaslCondition.INVALID_MECHANISM


# --- the negotiation --------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["DIGEST-MD5", "", "scram-sha-1", "SCRAM-SHA-1-PLUS"])
def test_unknown_or_unoffered_mechanism_is_invalid(mechanism: str) -> None:
    assert failure_of(server().start, mechanism, None) == SaslCondition.INVALID_MECHANISM


@pytest.mark.parametrize("payload", ["!!!", "YQ", "Y Q==", "é"])
def test_bad_base64_is_incorrect_encoding(payload: str) -> None:
    sasl = server()
    assert failure_of(sasl.start, "PLAIN", payload) == SaslCondition.INCORRECT_ENCODING
    assert sasl.failures == 1


def test_payload_codec_rfc6120_6_4_2_equals_sign_means_empty() -> None:
    assert decode_payload(None) is None
    assert decode_payload("") is None
    assert decode_payload("=") == b""
    assert decode_payload("YWI=") == b"ab"
    assert encode_payload(b"") == "="
    assert encode_payload(b"ab") == "YWI="


def test_a_second_auth_during_an_exchange_fails_it() -> None:
    sasl = server()
    sasl.start("SCRAM-SHA-256", None)
    assert failure_of(sasl.start, "PLAIN", None) == SaslCondition.MALFORMED_REQUEST
    assert failure_of(sasl.respond, b64("n,,n=a,r=b")) == SaslCondition.MALFORMED_REQUEST


def test_abort_ends_the_exchange_and_counts() -> None:
    sasl = server()
    sasl.start("SCRAM-SHA-256", b64("n,,n=roland,r=abc"))
    assert sasl.waiting_for_keys
    assert sasl.abort().condition == SaslCondition.ABORTED
    assert not sasl.waiting_for_keys
    assert sasl.failures == 1
    with pytest.raises(RuntimeError):
        sasl.provide_scram_keys(KEYS[ScramHash.SHA256])
    with pytest.raises(RuntimeError):
        sasl.plain_verified(True)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256-PLUS"]), st.binary(max_size=80))
def test_any_client_message_succeeds_asks_or_fails_with_a_condition(
    mechanism: str, data: bytes
) -> None:
    sasl = server(channel_binding=CB)
    try:
        step = sasl.start(mechanism, b64(data))
        if isinstance(step, KeysNeeded):
            sasl.provide_scram_keys(None)
            sasl.respond(b64(data))
    except SaslFailure as failure:
        assert isinstance(failure.condition, SaslCondition)
