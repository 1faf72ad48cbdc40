"""``heron tls``: the ACME certificate of the running server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from heron.acme import RENEW_COMMAND, STATUS_VIEW
from heron.cli.context import CliContext, pass_context, run
from heron.config import Config
from heron.control import query
from heron.errors import HeronError, TlsError
from heron.tls import inspect_certificate

__all__ = ["acme_warnings", "tls"]

_POLL = 0.5
"""Seconds between two looks at the order ``heron tls renew`` asked for."""


@click.group()
def tls() -> None:
    """The certificate ``[tls] acme`` obtains (what certbot does)."""


@tls.command("status")
@pass_context
def status(ctx: CliContext) -> None:
    """Show the running server's ACME state and the certificate's expiry."""
    _echo(run(query(_acme(ctx.config).data_dir, STATUS_VIEW))[0])


@tls.command("renew")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait for the CA.")
@pass_context
def renew(ctx: CliContext, timeout: float) -> None:
    """Order a new certificate now and wait until every TLS listener serves it."""
    row = run(_renew(_acme(ctx.config).data_dir, timeout))
    _echo(row)
    if row["error"]:
        raise HeronError(f"tls renew: {row['error']}")


def _acme(config: Config) -> Config:
    if not config.tls.acme:
        raise HeronError("tls.acme is off: heron obtains no certificate (see `heron cert`)")
    return config


async def _renew(data_dir: Path, timeout: float) -> dict[str, Any]:
    ticket = (await query(data_dir, f"{RENEW_COMMAND} now"))[0]["ticket"]
    try:
        async with asyncio.timeout(timeout):
            while True:
                row = (await query(data_dir, STATUS_VIEW))[0]
                if row["done"] >= ticket:
                    return row
                await asyncio.sleep(_POLL)
    except TimeoutError:
        raise HeronError(f"tls renew: no certificate within {timeout:g} s") from None


def _echo(row: dict[str, Any]) -> None:
    click.echo(f"state:     {row['state']}")
    click.echo(f"expires:   {row['not_after'] or '-'}")
    click.echo(f"issued:    {row['issued']} since start")
    if row["error"]:
        click.echo(f"error:     {row['error']}")


def acme_warnings(config: Config, serving: bool) -> list[str]:
    """What ``heron check`` says of ``tls.acme`` beyond the certificate's own checks: the
    validation port, a certificate the CA has not replaced yet, the last order's error."""
    if not config.tls.acme:
        return []
    found = []
    if all(address.port != 443 for address in config.mux.listen):
        found.append(
            "tls.acme: no [mux] listen address has port 443, where a public CA validates "
            "TLS-ALPN-01 (RFC 8737 §3); fix: listen on 443"
        )
    try:
        self_signed = inspect_certificate(config.certificate_path).self_signed
    except TlsError:
        self_signed = False
    if self_signed:
        found.append(
            "tls.acme: the certificate is still the self-signed one heron starts with; "
            "`heron tls status` says why the CA has not issued one"
        )
    if serving:
        try:
            row = run(query(config.data_dir, STATUS_VIEW))[0]
        except HeronError:
            return found
        if row["error"]:
            found.append(f"tls.acme: the last order failed: {row['error']}")
    return found
