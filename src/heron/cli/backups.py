"""``heron backup`` and ``heron restore``: the data directory in one file."""

from __future__ import annotations

from pathlib import Path

import click

from heron.backup import backup as write_backup
from heron.backup import restore as read_backup
from heron.backup import running
from heron.cli.context import CliContext, pass_context, run

__all__ = ["backup", "restore"]


@click.command()
@click.argument("archive", type=click.Path(path_type=Path, dir_okay=False))
@pass_context
def backup(ctx: CliContext, archive: Path) -> None:
    """Copy the SQLite database (consistently, while heron serves), the secrets and the
    TLS key into ARCHIVE (mode 0600). PostgreSQL and MariaDB: see the README's dumps."""
    config = ctx.config
    for member in write_backup(config, archive):
        click.echo(f"saved {member.path}")
    if config.sqlite_path is None:
        click.echo("the database is not SQLite: dump it too (README, Backups)")
    click.echo(f"wrote {archive}")


@click.command()
@click.argument("archive", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--force", is_flag=True, help="Replace files that exist.")
@pass_context
def restore(ctx: CliContext, archive: Path, force: bool) -> None:
    """Put a backup's files back into the data directory; heron must not run on it."""
    config = ctx.config
    for member in read_backup(config, archive, force=force, serving=run(running(config))):
        click.echo(f"restored {member.path}")
