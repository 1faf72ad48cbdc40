"""``heron xmpp``: who is online, which rooms exist and which servers are connected (what
``prosodyctl shell`` shows)."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.table import Table

from heron.cli.context import CliContext, pass_context, run
from heron.control import query

__all__ = ["xmpp"]


@click.group()
def xmpp() -> None:
    """XMPP sessions and group-chat rooms of the running server."""


def _print(table: Table) -> None:
    Console(width=160 if not sys.stdout.isatty() else None).print(table)


@xmpp.command("sessions")
@pass_context
def sessions(ctx: CliContext) -> None:
    """List bound client sessions: full JID, transport, address, presence."""
    rows = run(query(ctx.config.data_dir, "xmpp.sessions"))
    table = Table("JID", "Via", "Presence", box=None, header_style="bold")
    for row in rows:
        table.add_row(row["jid"], f"{row['transport']}://{row['address']}", row["presence"])
    _print(table)
    click.echo(f"{len(rows)} session(s)")


@xmpp.command("rooms")
@pass_context
def rooms(ctx: CliContext) -> None:
    """List group-chat rooms: address, occupants, persistence."""
    rows = run(query(ctx.config.data_dir, "xmpp.rooms"))
    table = Table("Room", "Occupants", "Persistent", box=None, header_style="bold")
    for row in rows:
        table.add_row(row["room"], str(row["occupants"]), "yes" if row["persistent"] else "no")
    _print(table)
    click.echo(f"{len(rows)} room(s)")


@xmpp.command("s2s")
@pass_context
def s2s(ctx: CliContext) -> None:
    """List server-to-server streams: direction, domains, authentication, TLS, queue."""
    rows = run(query(ctx.config.data_dir, "xmpp.s2s"))
    table = Table(
        "Dir",
        "Local",
        "Remote",
        "Auth",
        "TLS",
        "Address",
        "Stanzas",
        "Queued",
        box=None,
        header_style="bold",
    )
    for row in rows:
        table.add_row(
            row["direction"] + (" bidi" if row.get("bidi") else ""),
            row["local"],
            row["remote"],
            row["auth"],
            row["tls"],
            row["address"],
            str(row["stanzas"]),
            str(row["queued"]),
        )
    _print(table)
    click.echo(f"{len(rows)} stream(s)")
