"""``heron media``: the calls the media bridge relays (as ``rtpengine-ctl list sessions``)."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.table import Table

from heron.cli.context import CliContext, pass_context, run
from heron.control import query

__all__ = ["media"]


@click.group()
def media() -> None:
    """The media bridge of the running server (WebRTC ⇄ RTP, plain RTP, echo)."""


@media.command("calls")
@pass_context
def calls(ctx: CliContext) -> None:
    """List bridged calls: Call-ID, each side's transport, heron's port, the peer and the
    packets relayed from it."""
    rows = run(query(ctx.config.data_dir, "media.calls"))
    table = Table("Call-ID", "Caller", "Callee", "Age", "Silent", box=None, header_style="bold")
    for row in rows:
        sides = [
            f"{row[f'{side}_transport']} :{row[f'{side}_port']} ⇄ {row[f'{side}_peer'] or '-'}"
            f" ({row[f'{side}_packets']} pkts)"
            if row[f"{side}_transport"]
            else ("echo" if row["echo"] else "-")
            for side in ("caller", "callee")
        ]
        table.add_row(row["call_id"], *sides, f"{row['age']} s", f"{row['silent']} s")
    Console(width=160 if not sys.stdout.isatty() else None).print(table)
    click.echo(f"{len(rows)} call(s)")
