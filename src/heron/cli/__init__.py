"""The ``heron`` command: serve, accounts, DNS records, certificates, checks."""

from heron.cli.main import cli, main

__all__ = ["cli", "main"]
