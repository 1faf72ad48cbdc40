"""SIP digest authentication, server side (RFC 3261 §22, RFC 8760, RFC 7616).

A client written here answers heron's challenges; the clock is a number.
"""

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heron.sip import Auth, Headers, MalformedValue, Params, SipError, SipLocalError, parse_auth
from heron.sip.digest import (
    ISSUER_BYTES,
    NONCE_SALT_BYTES,
    Algorithm,
    DigestAuthenticator,
    DigestOutcome,
    NonceCounts,
    StoredHa1,
    challenge_kind,
    digest_response,
    issue_nonce,
)
from heron.sip.errors import Status
from heron.sip.headers import HeaderName
from heron.sip.message import Request
from heron.sip.uri import parse_uri

REALM = "falcot.com"
KEY = b"k" * 32
NOW = 1_700_000_000.0
PASSWORD = "Circle of Life"
SALTS = iter(range(10**9))


def salt() -> bytes:
    return next(SALTS).to_bytes(NONCE_SALT_BYTES, "big")


def ha1s(user: str, password: str = PASSWORD, realm: str = REALM) -> StoredHa1:
    a1 = f"{user}:{realm}:{password}".encode()
    return StoredHa1(hashlib.md5(a1).hexdigest(), hashlib.sha256(a1).hexdigest())


def answer(
    challenge: str,
    *,
    user: str = "roland",
    password: str = PASSWORD,
    method: str = "REGISTER",
    uri: str = "sip:falcot.com",
    count: int = 1,
    cnonce: str = "0a4f113b",
    **override: str,
) -> Auth:
    """What a UAC sends back (RFC 7616 §3.4), computed from the password."""
    offer = parse_auth(challenge)
    realm, nonce = offer.param("realm") or "", offer.param("nonce") or ""
    algorithm = offer.param("algorithm") or "MD5"
    h = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}[algorithm]

    def hex_h(text: str) -> str:
        return h(text.encode()).hexdigest()

    ha1 = hex_h(f"{user}:{realm}:{password}")
    ha2 = hex_h(f"{method}:{uri}")
    response = hex_h(f"{ha1}:{nonce}:{count:08x}:{cnonce}:auth:{ha2}")
    params = {
        "username": f'"{user}"',
        "realm": f'"{realm}"',
        "nonce": f'"{nonce}"',
        "uri": f'"{uri}"',
        "response": f'"{response}"',
        "algorithm": algorithm,
        "cnonce": f'"{cnonce}"',
        "qop": "auth",
        "nc": f"{count:08x}",
    }
    params.update(override)
    return parse_auth("Digest " + ", ".join(f"{k}={v}" for k, v in params.items() if v))


def authenticator(**options: object) -> DigestAuthenticator:
    return DigestAuthenticator(REALM, KEY, **options)  # type: ignore[arg-type]


def challenge(auth: DigestAuthenticator, algorithm: Algorithm = Algorithm.SHA_256) -> str:
    values = [v for _, v in auth.challenge("REGISTER", NOW, salt()).headers]
    return next(v for v in values if v.endswith(f"algorithm={algorithm}"))


# RFC 7616 §3.9.1: the request-digest, no nonce check.

RFC7616 = {
    "method": "GET",
    "uri": "/dir/index.html",
    "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    "nc": "00000001",
    "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    "qop": "auth",
}


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        (Algorithm.MD5, "8ca523f5e9506fed4657c9700eebdbec"),
        (Algorithm.SHA_256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_3_9_1_response(algorithm: Algorithm, expected: str) -> None:
    ha1 = ha1s("Mufasa", "Circle of Life", "http-auth@example.org")
    stored = ha1.sha256 if algorithm is Algorithm.SHA_256 else ha1.md5
    assert digest_response(algorithm, stored, **RFC7616) == expected


def test_rfc2069_response_without_qop() -> None:
    ha1 = ha1s("roland").md5
    ha2 = hashlib.md5(b"REGISTER:sip:falcot.com").hexdigest()
    expected = hashlib.md5(f"{ha1}:abc:{ha2}".encode()).hexdigest()
    assert digest_response(Algorithm.MD5, ha1, "REGISTER", "sip:falcot.com", "abc") == expected


# Challenges (RFC 3261 §22.1, §22.3; RFC 8760).


@pytest.mark.parametrize(
    ("method", "status", "field", "credentials"),
    [
        ("REGISTER", 401, "WWW-Authenticate", "Authorization"),
        ("INVITE", 407, "Proxy-Authenticate", "Proxy-Authorization"),
        ("MESSAGE", 407, "Proxy-Authenticate", "Proxy-Authorization"),
        ("SUBSCRIBE", 407, "Proxy-Authenticate", "Proxy-Authorization"),
    ],
)
def test_rfc3261_22_challenge_kind(method: str, status: int, field: str, credentials: str) -> None:
    kind = challenge_kind(method)
    assert (kind.status, kind.challenge_header, kind.credentials_header) == (
        status,
        field,
        credentials,
    )


def test_rfc8760_challenges_sha256_first_then_md5() -> None:
    result = authenticator().challenge("REGISTER", NOW, salt())
    assert result.status == Status.UNAUTHORIZED
    assert [name for name, _ in result.headers] == ["WWW-Authenticate"] * 2
    sha256, md5 = (value for _, value in result.headers)
    assert sha256.startswith('Digest realm="falcot.com", nonce="')
    assert sha256.endswith('", qop="auth", algorithm=SHA-256')
    assert md5.endswith('", qop="auth", algorithm=MD5')
    assert parse_auth(sha256).param("nonce") == parse_auth(md5).param("nonce")
    assert "stale" not in sha256 and "opaque" not in sha256


def test_rfc7616_3_3_stale_and_opaque() -> None:
    result = authenticator().challenge("INVITE", NOW, salt(), stale=True, opaque="x y")
    assert result.status == Status.PROXY_AUTHENTICATION_REQUIRED
    for name, value in result.headers:
        assert name == HeaderName.PROXY_AUTHENTICATE
        offer = parse_auth(value)
        assert (offer.param("stale"), offer.param("opaque")) == ("true", "x y")


def test_challenge_for_md5_only_clients() -> None:
    auth = authenticator(algorithms=(Algorithm.MD5,))
    (value,) = (v for _, v in auth.challenge("REGISTER", NOW, salt()).headers)
    assert value.endswith("algorithm=MD5")
    sha = answer(challenge(authenticator()), nonce=f'"{parse_auth(value).param("nonce")}"')
    assert auth.verify("REGISTER", sha, ha1s("roland"), NOW).reason == "algorithm not supported"


def test_nonces_differ_by_salt_and_are_quoted_string_safe() -> None:
    nonces = {issue_nonce(KEY, REALM, NOW, salt()) for _ in range(100)}
    assert len(nonces) == 100
    assert all(n.isascii() and '"' not in n and "\\" not in n for n in nonces)


def test_misuse_is_a_local_error() -> None:
    with pytest.raises(SipLocalError):
        issue_nonce(KEY, REALM, NOW, b"short")
    with pytest.raises(SipLocalError):
        DigestAuthenticator(REALM, b"short key")
    with pytest.raises(SipLocalError):
        DigestAuthenticator(REALM, KEY, algorithms=())


# Round trips: challenge, a client's answer, verification.


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_rfc3261_22_4_round_trip_register(algorithm: Algorithm) -> None:
    server = authenticator()
    credentials = answer(challenge(server, algorithm))
    request = Request(
        "REGISTER",
        parse_uri("sip:falcot.com"),
        Headers.of([("Authorization", str(credentials))]),
    )
    found = server.credentials(request)
    assert found == credentials
    verdict = server.verify("REGISTER", found, ha1s("roland"), NOW + 1, "192.0.2.1")
    assert (verdict.outcome, verdict.username, verdict.reason) == (DigestOutcome.OK, "roland", "ok")


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_rfc3261_22_3_round_trip_proxy(algorithm: Algorithm) -> None:
    server = authenticator()
    value = next(
        v for _, v in server.challenge("INVITE", NOW, salt()).headers if v.endswith(f"={algorithm}")
    )
    credentials = answer(value, method="INVITE", uri="sip:bob@falcot.com")
    other_realm = answer(challenge(authenticator()), realm='"elsewhere"')
    request = Request(
        "INVITE",
        parse_uri("sip:bob@falcot.com"),
        Headers.of(
            [
                ("Authorization", str(credentials)),  # not the field a 407 asks for
                ("Proxy-Authorization", str(other_realm)),
                ("Proxy-Authorization", str(credentials)),
            ]
        ),
    )
    found = server.credentials(request)
    assert found == credentials
    assert server.verify("INVITE", found, ha1s("roland"), NOW).outcome is DigestOutcome.OK
    assert server.verify(
        "BYE", answer(value, method="INVITE", count=2), ha1s("roland"), NOW
    ).reason == ("wrong response")


def test_credentials_absent_or_malformed() -> None:
    server = authenticator()
    bare = Request("REGISTER", parse_uri("sip:falcot.com"))
    assert server.credentials(bare) is None
    bad = Request("REGISTER", bare.uri, Headers.of([("Authorization", "Digest ,,")]))
    with pytest.raises(MalformedValue):
        server.credentials(bad)


def test_rfc3261_22_4_digest_uri_need_not_be_the_request_uri() -> None:
    server = authenticator()
    credentials = answer(challenge(server), uri="sip:192.0.2.7;transport=tcp")
    assert server.verify("REGISTER", credentials, ha1s("roland"), NOW).outcome is DigestOutcome.OK


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("/dir/index.html", "digest-uri malformed"),
        ("tel:+15551234", "digest-uri is not a SIP URI"),
        ("sip:", "digest-uri malformed"),
    ],
)
def test_rfc3261_22_4_digest_uri_must_be_sip(uri: str, reason: str) -> None:
    server = authenticator()
    credentials = answer(challenge(server), uri=uri)
    verdict = server.verify("REGISTER", credentials, ha1s("roland"), NOW)
    assert (verdict.outcome, verdict.reason) == (DigestOutcome.INVALID, reason)


# Nonces: stale, forged; nonce-counts: replay.


def test_rfc7616_3_3_expired_nonce_with_right_password_is_stale() -> None:
    server = authenticator(nonce_lifetime=300)
    value = challenge(server)
    assert (
        server.verify("REGISTER", answer(value), ha1s("roland"), NOW + 299).outcome
        is DigestOutcome.OK
    )
    verdict = server.verify("REGISTER", answer(value, count=2), ha1s("roland"), NOW + 300)
    assert (verdict.outcome, verdict.reason) == (DigestOutcome.STALE, "nonce expired")


def test_expired_nonce_with_wrong_password_is_invalid() -> None:
    server = authenticator()
    credentials = answer(challenge(server), password="guess")
    verdict = server.verify("REGISTER", credentials, ha1s("roland"), NOW + 3600)
    assert (verdict.outcome, verdict.reason) == (DigestOutcome.INVALID, "wrong response")


def tampered(nonce: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(nonce))
    raw[7] ^= 0x01  # the expiry's last byte
    return base64.urlsafe_b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(
    "forge",
    [
        lambda nonce: tampered(nonce),
        lambda nonce: issue_nonce(b"another key, 16+ bytes", REALM, NOW, salt()),
        lambda nonce: issue_nonce(KEY, "elsewhere.org", NOW, salt()),
        lambda nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        lambda nonce: nonce[:-1],
    ],
    ids=["tampered-expiry", "other-key", "other-realm", "foreign", "truncated"],
)
def test_forged_nonce_is_invalid(forge: object) -> None:
    server = authenticator()
    nonce = parse_auth(challenge(server)).param("nonce") or ""
    forged = forge(nonce)  # type: ignore[operator]
    credentials = answer(challenge(server), nonce=f'"{forged}"')
    verdict = server.verify("REGISTER", credentials, ha1s("roland"), NOW)
    assert (verdict.outcome, verdict.reason) == (DigestOutcome.INVALID, "nonce not issued by us")


def test_nonce_from_another_authenticator_of_the_same_issuer() -> None:
    value = challenge(authenticator(issuer=b"proc-1"))
    verdict = authenticator(issuer=b"proc-1").verify("REGISTER", answer(value), ha1s("roland"), NOW)
    assert verdict.outcome is DigestOutcome.OK


@pytest.mark.parametrize("password", [PASSWORD, "guess"])
def test_rfc7616_3_3_a_nonce_of_another_process_is_stale_and_unchecked(password: str) -> None:
    value = challenge(authenticator(issuer=b"proc-1"))
    other = authenticator(issuer=b"proc-2")
    credentials = answer(value, password=password)
    verdict = other.verify("REGISTER", credentials, ha1s("roland"), NOW)
    assert (verdict.outcome, verdict.reason, verdict.checked) == (
        DigestOutcome.STALE,
        "nonce issued by another process",
        False,
    )
    assert len(other.nonce_counts) == 0  # nothing of it remembered, nothing counted


def test_a_forged_issuer_tag_is_refused() -> None:
    """Rewriting the tag to name the process that checks breaks the MAC."""
    nonce = parse_auth(challenge(authenticator(issuer=b"proc-1"))).param("nonce") or ""
    raw = bytearray(base64.urlsafe_b64decode(nonce))
    raw[8 : 8 + ISSUER_BYTES] = b"proc-2"
    forged = base64.urlsafe_b64encode(bytes(raw)).decode()
    other = authenticator(issuer=b"proc-2")
    credentials = answer(challenge(other), nonce=f'"{forged}"')
    verdict = other.verify("REGISTER", credentials, ha1s("roland"), NOW)
    assert (verdict.outcome, verdict.reason, verdict.checked) == (
        DigestOutcome.INVALID,
        "nonce not issued by us",
        False,
    )


def test_rfc7616_3_4_replayed_nonce_count_is_refused() -> None:
    server = authenticator()
    value = challenge(server)
    ok = [server.verify("REGISTER", answer(value, count=n), ha1s("roland"), NOW) for n in (1, 2, 5)]
    assert [v.outcome for v in ok] == [DigestOutcome.OK] * 3
    for nc in (5, 4, 1):
        verdict = server.verify("REGISTER", answer(value, count=nc), ha1s("roland"), NOW)
        assert verdict.outcome is DigestOutcome.STALE
    assert (
        server.verify("REGISTER", answer(value, count=6), ha1s("roland"), NOW).outcome
        is DigestOutcome.OK
    )


def test_nc_zero_is_refused() -> None:
    server = authenticator()
    verdict = server.verify("REGISTER", answer(challenge(server), count=0), ha1s("roland"), NOW)
    assert verdict.outcome is DigestOutcome.STALE


def test_forged_nc_does_not_burn_the_nonce() -> None:
    server = authenticator()
    value = challenge(server)
    forged = answer(value, count=0xFFFFFFFF, password="guess")
    assert server.verify("REGISTER", forged, ha1s("roland"), NOW).outcome is DigestOutcome.INVALID
    assert server.verify("REGISTER", answer(value), ha1s("roland"), NOW).outcome is DigestOutcome.OK


def test_two_clients_challenged_in_the_same_second_do_not_collide() -> None:
    server = authenticator()
    first, second = challenge(server), challenge(server)
    for value, user in ((first, "roland"), (second, "rhertzog")):
        verdict = server.verify("REGISTER", answer(value, user=user), ha1s(user), NOW)
        assert verdict.outcome is DigestOutcome.OK


def test_nonce_counts_forget_expired_nonces() -> None:
    counts = NonceCounts()
    assert counts.advance("a", 1, expiry=100, now=0)
    assert counts.advance("b", 1, expiry=200, now=50)
    assert len(counts) == 2
    assert counts.advance("c", 1, expiry=400, now=150)
    assert len(counts) == 2  # "a" expired at 100


def test_nonce_counts_capacity_never_reopens_a_nonce() -> None:
    counts = NonceCounts(capacity=3)
    for i, nonce in enumerate("abcd"):
        assert counts.advance(nonce, 1, expiry=1000 + i, now=0)
    assert len(counts) == 3
    assert not counts.advance("a", 2, expiry=1000, now=0)  # evicted: refused, not replayable
    assert counts.advance("b", 2, expiry=1001, now=0)
    assert counts.advance("e", 1, expiry=2000, now=0)  # a newer nonce is fine


def test_nonce_counts_memory_is_capped() -> None:
    counts = NonceCounts(capacity=1000)
    for i in range(10_000):
        counts.advance(f"n{i}", 1, expiry=10**6 + i, now=0)
    assert len(counts) == 1000


# Verification faults.


def test_wrong_password_is_invalid_and_reason_holds_no_secret() -> None:
    server = authenticator()
    credentials = answer(challenge(server), password="guess")
    stored = ha1s("roland")
    verdict = server.verify("REGISTER", credentials, stored, NOW)
    assert (verdict.outcome, verdict.username, verdict.reason) == (
        DigestOutcome.INVALID,
        "roland",
        "wrong response",
    )
    for secret in (stored.md5, stored.sha256, PASSWORD, "guess", KEY.decode()):
        assert secret not in verdict.reason and secret not in repr(verdict)


def test_unknown_user_is_invalid_like_a_wrong_password() -> None:
    server = authenticator()
    unknown = server.verify("REGISTER", answer(challenge(server), user="ghost"), None, NOW, "x")
    wrong = server.verify(
        "REGISTER", answer(challenge(server), password="guess"), ha1s("roland"), NOW, "x"
    )
    assert unknown.outcome is wrong.outcome is DigestOutcome.INVALID
    assert unknown.reason == "unknown user"
    # Both are password guesses, for the guess throttle to count alike.
    assert unknown.checked and wrong.checked


def test_realm_mismatch_is_invalid() -> None:
    server = authenticator()
    credentials = answer(challenge(server), realm='"elsewhere.org"')
    verdict = server.verify("REGISTER", credentials, ha1s("roland"), NOW)
    assert (verdict.outcome, verdict.reason) == (DigestOutcome.INVALID, "realm mismatch")


@pytest.mark.parametrize("algorithm", ["MD5-sess", "SHA-256-sess", "SHA-512-256", "AKAv1-MD5"])
def test_rfc8760_sess_and_unknown_algorithms_are_refused(algorithm: str) -> None:
    server = authenticator()
    credentials = answer(challenge(server, Algorithm.MD5), algorithm=algorithm)
    verdict = server.verify("REGISTER", credentials, ha1s("roland"), NOW)
    assert (verdict.outcome, verdict.reason) == (DigestOutcome.INVALID, "algorithm not supported")


def test_algorithm_absent_means_md5() -> None:
    server = authenticator()
    credentials = answer(challenge(server, Algorithm.MD5), algorithm="")
    assert "algorithm" not in credentials.params
    assert server.verify("REGISTER", credentials, ha1s("roland"), NOW).outcome is DigestOutcome.OK


def test_algorithm_and_response_case_do_not_matter() -> None:
    server = authenticator()
    credentials = answer(challenge(server, Algorithm.SHA_256), algorithm="sha-256")
    shouted = Auth(
        credentials.scheme.upper(),
        credentials.params.set("response", (credentials.params.get("response") or "").upper()),
    )
    assert server.verify("REGISTER", shouted, ha1s("roland"), NOW).outcome is DigestOutcome.OK


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"qop": ""}, "qop missing"),
        ({"qop": "auth-int"}, "qop not supported"),
        ({"nc": ""}, "nc or cnonce missing or malformed"),
        ({"nc": "1"}, "nc or cnonce missing or malformed"),
        ({"nc": "0000000g"}, "nc or cnonce missing or malformed"),
        ({"cnonce": ""}, "nc or cnonce missing or malformed"),
        ({"username": ""}, "username missing"),
        ({"username": '""'}, "username missing"),
        ({"response": ""}, "response missing"),
        ({"response": '"zz"'}, "response is not hex"),
        ({"response": '"ab\\u00e9"'}, "response is not hex"),
        ({"response": '"abé"'}, "response is not hex"),
        ({"uri": ""}, "uri missing"),
        ({"nonce": ""}, "nonce missing"),
        ({"userhash": "true"}, "userhash not supported"),
    ],
)
def test_malformed_credentials_are_invalid(override: dict[str, str], reason: str) -> None:
    server = authenticator()
    credentials = answer(challenge(server))
    params = credentials.params
    for name, value in override.items():
        params = params.set(name, value) if value else params.remove(name)
    credentials = Auth(credentials.scheme, params)
    verdict = server.verify("REGISTER", credentials, ha1s("roland"), NOW)
    assert (verdict.outcome, verdict.reason) == (DigestOutcome.INVALID, reason)


def test_not_digest_is_invalid() -> None:
    verdict = authenticator().verify("REGISTER", parse_auth("Basic a=b"), ha1s("roland"), NOW)
    assert (verdict.outcome, verdict.username) == (DigestOutcome.INVALID, None)


def test_rfc2069_credentials_only_when_allowed() -> None:
    strict, lenient = authenticator(), authenticator(require_qop=False)
    for server, outcome in ((strict, DigestOutcome.INVALID), (lenient, DigestOutcome.OK)):
        value = challenge(server, Algorithm.MD5)
        nonce = parse_auth(value).param("nonce") or ""
        response = digest_response(
            Algorithm.MD5, ha1s("roland").md5, "REGISTER", "sip:falcot.com", nonce
        )
        credentials = answer(value, qop="", nc="", cnonce="", response=f'"{response}"')
        assert server.verify("REGISTER", credentials, ha1s("roland"), NOW).outcome is outcome


def test_only_a_checked_response_is_a_guess() -> None:
    server = authenticator()
    forged = answer(challenge(server), nonce='"' + "A" * 56 + '"')
    verdict = server.verify("REGISTER", forged, ha1s("roland"), NOW, "x")
    assert verdict.outcome is DigestOutcome.INVALID and not verdict.checked
    good = server.verify("REGISTER", answer(challenge(server)), ha1s("roland"), NOW, "x")
    assert good.outcome is DigestOutcome.OK and good.checked


# Whatever the peer writes, only the SIP error tree comes out, and never OK.

PIECES = [
    "Digest", "digest", " ", ",", "=", '"', "\\", "username", "realm", "nonce", "uri",
    "response", "nc", "cnonce", "qop", "auth", "algorithm", "MD5", "SHA-256", "sip:a",
    "falcot.com", "00000001", "\x00", "\udcff", "\ud800", "é", "0" * 64, "-sess",
]  # fmt: skip
NAMES = ["username", "realm", "nonce", "uri", "response", "nc", "cnonce", "qop", "algorithm"]


@settings(max_examples=500)
@given(st.lists(st.sampled_from(PIECES) | st.text(max_size=8), max_size=30))
def test_arbitrary_header_strings_raise_only_sip_errors(parts: list[str]) -> None:
    server = authenticator()
    try:
        credentials = parse_auth("".join(parts))
    except SipError:
        return
    for ha1 in (ha1s("roland"), None):
        verdict = server.verify("REGISTER", credentials, ha1, NOW, "".join(parts))
        assert verdict.outcome is not DigestOutcome.OK


@settings(max_examples=500)
@given(
    st.lists(
        st.tuples(st.sampled_from(NAMES), st.sampled_from(PIECES) | st.text(max_size=12)),
        max_size=12,
    )
)
def test_arbitrary_auth_params_never_raise_nor_pass(params: list[tuple[str, str]]) -> None:
    server = authenticator(require_qop=False)
    credentials = Auth("Digest", Params(tuple(params)))
    verdict = server.verify("REGISTER", credentials, ha1s("roland"), NOW, "192.0.2.1")
    assert verdict.outcome is not DigestOutcome.OK
