"""Accounts: one user@domain, with the derived secrets every protocol checks."""

from heron.accounts.bulk import derive_many
from heron.accounts.cache import MISSING, AccountCache, Missing
from heron.accounts.model import Account, AccountStore
from heron.accounts.saslprep import saslprep
from heron.accounts.scram import (
    ScramHash,
    ScramKeys,
    client_proof_matches,
    derive_scram_keys,
    server_signature,
)
from heron.accounts.secrets import (
    Identity,
    Secret,
    Secrets,
    complete_secrets,
    derive_secrets,
    digest_ha1,
    imported_secrets,
    placeholder_secrets,
    turn_long_term_key,
    verify_password,
)
from heron.accounts.service import (
    AccountChange,
    AccountListener,
    AccountPolicy,
    AccountService,
    Merged,
)

__all__ = [
    "MISSING",
    "Account",
    "AccountCache",
    "AccountChange",
    "AccountListener",
    "AccountPolicy",
    "AccountService",
    "AccountStore",
    "Identity",
    "Merged",
    "Missing",
    "ScramHash",
    "ScramKeys",
    "Secret",
    "Secrets",
    "client_proof_matches",
    "complete_secrets",
    "derive_scram_keys",
    "derive_secrets",
    "derive_many",
    "digest_ha1",
    "imported_secrets",
    "placeholder_secrets",
    "saslprep",
    "server_signature",
    "turn_long_term_key",
    "verify_password",
]
