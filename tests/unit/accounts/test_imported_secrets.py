"""Accounts imported with some secrets: placeholders match nothing, completion fills gaps."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heron.accounts import (
    Identity,
    ScramHash,
    ScramKeys,
    Secret,
    complete_secrets,
    derive_scram_keys,
    derive_secrets,
    digest_ha1,
    imported_secrets,
    placeholder_secrets,
    saslprep,
    turn_long_term_key,
    verify_password,
)

IDENTITY = Identity("roland", "falcot.com", "roland", "falcot.com")
SALT = b"08859bcb-fc5b-4e72-9807-07f3dcc92d80"  # Prosody's salts are UUIDs
PASSWORD = "old prosody password"


def prosody_keys(password: str = PASSWORD, iterations: int = 4096) -> ScramKeys:
    return derive_scram_keys(saslprep(password), SALT, iterations, ScramHash.SHA1)


def test_placeholders_are_fresh_random_values_marked_missing() -> None:
    one = placeholder_secrets(IDENTITY, salt=SALT, iterations=4096)
    two = placeholder_secrets(IDENTITY, salt=SALT, iterations=4096)
    assert one.missing == frozenset(Secret)
    assert one.sip_ha1_md5 != two.sip_ha1_md5 and one.turn_key_md5 != two.turn_key_md5
    assert len(one.turn_key_md5) == 16 and len(one.turn_key_sha256) == 32
    assert [len(k.stored_key) for k in one.scram] == [20, 32, 64]


@settings(max_examples=20, deadline=None)
@given(st.text(min_size=1, max_size=20).filter(lambda p: p.strip() and p.isprintable()))
def test_no_password_matches_a_placeholder(password: str) -> None:
    empty = placeholder_secrets(IDENTITY, salt=SALT, iterations=1)
    assert not verify_password(empty, password)
    assert digest_ha1("roland", "falcot.com", password, "md5") != empty.sip_ha1_md5


def test_imported_turn_key_is_kept_and_the_rest_marked_missing() -> None:
    key = turn_long_term_key("roland", "falcot.com", "coturn pw")
    secrets = imported_secrets(IDENTITY, turn_key_md5=key, salt=SALT, iterations=4096)
    assert secrets.turn_key_md5 == key
    assert secrets.missing == frozenset(Secret) - {Secret.TURN_MD5}


def test_imported_scram_keys_keep_their_salt_and_count() -> None:
    keys = prosody_keys(iterations=10_000)
    secrets = imported_secrets(IDENTITY, scram_sha1=keys, salt=b"other", iterations=1)
    assert secrets.scram_keys(ScramHash.SHA1) == keys
    assert {k.salt for k in secrets.scram} == {SALT}
    assert {k.iterations for k in secrets.scram} == {10_000}
    assert Secret.SCRAM_SHA1 not in secrets.missing and Secret.SCRAM_SHA256 in secrets.missing


def test_plain_login_of_a_prosody_account_is_checked_against_its_scram_sha1_keys() -> None:
    secrets = imported_secrets(IDENTITY, scram_sha1=prosody_keys(), salt=SALT, iterations=1)
    assert verify_password(secrets, PASSWORD)
    assert not verify_password(secrets, "wrong")


def test_plain_login_of_an_account_without_password_or_scram_fails() -> None:
    key = turn_long_term_key("roland", "falcot.com", "coturn pw")
    secrets = imported_secrets(IDENTITY, turn_key_md5=key, salt=SALT, iterations=1)
    assert not verify_password(secrets, "coturn pw")


def test_completion_fills_only_what_is_missing_with_the_accounts_salt() -> None:
    coturn_key = turn_long_term_key("roland", "falcot.com", "coturn pw")
    imported = imported_secrets(
        IDENTITY,
        turn_key_md5=coturn_key,
        scram_sha1=prosody_keys(),
        salt=SALT,
        iterations=1,
    )
    derived = derive_secrets(IDENTITY, PASSWORD, salt=SALT, iterations=4096)
    completed = complete_secrets(imported, derived)
    assert completed.missing == frozenset()
    assert completed.turn_key_md5 == coturn_key  # the old TURN password keeps working
    assert completed.turn_key_sha256 == derived.turn_key_sha256
    assert completed.scram == derived.scram
    assert completed.sip_ha1_md5 == derived.sip_ha1_md5
    assert verify_password(completed, PASSWORD)


def test_completion_takes_no_scram_keys_of_another_salt() -> None:
    imported = imported_secrets(IDENTITY, scram_sha1=prosody_keys(), salt=SALT, iterations=1)
    derived = derive_secrets(IDENTITY, PASSWORD, salt=b"another salt", iterations=4096)
    completed = complete_secrets(imported, derived)
    assert completed.scram_keys(ScramHash.SHA1) == imported.scram_keys(ScramHash.SHA1)
    assert completed.missing == {Secret.SCRAM_SHA256, Secret.SCRAM_SHA512}


def test_an_account_without_scram_keys_takes_them_with_their_salt() -> None:
    key = turn_long_term_key("roland", "falcot.com", "coturn pw")
    imported = imported_secrets(IDENTITY, turn_key_md5=key, salt=b"placeholder", iterations=1)
    prosody = imported_secrets(IDENTITY, scram_sha1=prosody_keys(), salt=SALT, iterations=1)
    merged = complete_secrets(imported, prosody)
    assert merged.scram_keys(ScramHash.SHA1) == prosody.scram_keys(ScramHash.SHA1)
    assert merged.missing == frozenset(Secret) - {Secret.TURN_MD5, Secret.SCRAM_SHA1}


def test_completing_a_complete_account_changes_nothing() -> None:
    full = derive_secrets(IDENTITY, "pw", salt=SALT, iterations=4096)
    assert (
        complete_secrets(full, derive_secrets(IDENTITY, "other", salt=SALT, iterations=4096))
        == full
    )


@pytest.mark.parametrize("kind", list(Secret))
def test_every_secret_kind_has_a_stable_name(kind: Secret) -> None:
    assert Secret(kind.value) is kind
