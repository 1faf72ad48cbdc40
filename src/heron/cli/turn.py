"""``heron turn``: short-lived TURN credentials and the live allocations."""

from __future__ import annotations

import sys
import time

import click
from rich.console import Console
from rich.table import Table

from heron.cli.context import CliContext, address_argument, pass_context, run
from heron.control import query
from heron.credentials import DEFAULT_TTL, turn_secret

__all__ = ["turn"]


@click.group()
def turn() -> None:
    """TURN credentials and allocations (what turnadmin and coturn's CLI do)."""


@turn.command("credentials")
@click.argument("user")
@click.option("--ttl", default=DEFAULT_TTL, show_default=True, help="Validity in seconds.")
@pass_context
def credentials(ctx: CliContext, user: str, ttl: int) -> None:
    """Print a REST-API username and password for USER (coturn's use-auth-secret scheme).

    USER is an account address or any name; the pair works on heron's TURN
    server and on any TURN server sharing turn.auth_secret.
    """
    config = ctx.config
    if "@" in user:
        local, domain = address_argument(user)
        user = local if domain == config.domain else f"{local}@{domain}"
    issued = turn_secret(config).issue(user, now=time.time(), ttl=ttl)
    click.echo(f"username: {issued.username}")
    click.echo(f"password: {issued.password}")
    click.echo(f"expires:  {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(issued.expires))}")


@turn.command("allocations")
@pass_context
def allocations(ctx: CliContext) -> None:
    """List the live allocations of the running server (coturn CLI's "ps")."""
    rows = run(query(ctx.config.data_dir, "turn.allocations"))
    table = Table(
        "Client",
        "User",
        "Relay",
        "Expires in",
        "Perms",
        "Chans",
        "To peers",
        "To client",
        box=None,
        header_style="bold",
    )
    for row in rows:
        table.add_row(
            f"{row['transport']}://{row['client']}",
            row["user"] or "(anonymous)",
            " ".join(row["relays"]),
            f"{row['expires_in']} s",
            str(row["permissions"]),
            str(row["channels"]),
            f"{row['bytes_to_peer']} B",
            f"{row['bytes_to_client']} B",
        )
    Console(width=140 if not sys.stdout.isatty() else None).print(table)
    click.echo(f"{len(rows)} allocation(s)")


@turn.command("counters")
@pass_context
def counters(ctx: CliContext) -> None:
    """Print the running server's TURN counters, summed over its turn.workers processes
    (what /metrics serves as heron_turn_*): allocations, authentication failures and
    refusals, key lookups, packets received and relayed, and every packet dropped, by
    reason (packets_dropped_REASON)."""
    rows = run(query(ctx.config.data_dir, "turn.counters"))
    for name, value in (rows[0] if rows else {}).items():
        click.echo(f"{name} {value}")


@turn.command("workers")
@pass_context
def workers(ctx: CliContext) -> None:
    """Print, per TURN process (the main one first, then each turn.workers process as of its
    last report, at most a second old), the packets it received, relayed and dropped."""
    rows = run(query(ctx.config.data_dir, "turn.workers"))
    click.echo("pid allocations_active packets_received packets_relayed packets_dropped")
    for row in rows:
        click.echo(
            f"{row['pid']} {row['allocations_active']} {row['packets_received']} "
            f"{row['packets_relayed']} {row['packets_dropped']}"
        )
