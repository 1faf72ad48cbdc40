"""``heron sip``: the live registrations (what ``kamctl ul show`` prints)."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.table import Table

from heron.cli.context import CliContext, pass_context, run
from heron.control import query

__all__ = ["sip"]


@click.group()
def sip() -> None:
    """SIP registrations of the running server."""


@sip.command("registrations")
@pass_context
def registrations(ctx: CliContext) -> None:
    """List live bindings: address of record, contact, transport, expiry."""
    rows = run(query(ctx.config.data_dir, "sip.registrations"))
    table = Table(
        "AOR", "Contact", "Via", "Expires in", "User agent", box=None, header_style="bold"
    )
    for row in rows:
        table.add_row(
            row["aor"],
            row["contact"],
            f"{row['transport']}://{row['source']}",
            f"{row['expires_in']} s",
            row["user_agent"],
        )
    Console(width=160 if not sys.stdout.isatty() else None).print(table)
    click.echo(f"{len(rows)} binding(s)")
