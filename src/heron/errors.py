"""Errors an administrator sees.

Every error that reaches the command line is a :class:`HeronError`: the CLI
prints its message as one line and exits with status 2, never a traceback.

    HeronError
     +-- ConfigError        a bad configuration file, key or value
 +-- InvalidInput       a command-line value that cannot be used
     +-- TlsError           a certificate or key that cannot be used
     +-- StoreError         the database cannot be reached or used
     |    +-- AccountExists
     |    +-- AccountNotFound
     +-- ListenError        a listen address cannot be bound
"""

from __future__ import annotations

import os

__all__ = [
    "AccountExists",
    "AccountNotFound",
    "ConfigError",
    "HeronError",
    "InvalidInput",
    "ListenError",
    "StoreError",
    "TlsError",
    "listen_error",
]


class HeronError(Exception):
    """An error whose message is fit to show an administrator as one line."""


class ConfigError(HeronError):
    """The configuration file or one of its values is wrong."""


class InvalidInput(HeronError):
    """A value given on the command line or in a form cannot be used."""


class TlsError(HeronError):
    """A certificate or private key is missing, unreadable or unusable."""


class StoreError(HeronError):
    """The account database cannot be reached or refused an operation."""


class AccountExists(StoreError):
    """An account with that address already exists."""


class AccountNotFound(StoreError):
    """No account has that address."""


class ListenError(HeronError):
    """A listener could not be opened (address in use, permission denied)."""


def listen_error(key: str, address: object, exc: OSError) -> ListenError:
    """The one line for a listener that failed to open, naming its config key."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    return ListenError(f"{key}: cannot listen on {address}: {reason.lower()}")
