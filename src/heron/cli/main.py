"""Entry point: global options, one-line errors with exit status 2, no tracebacks."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from heron import __version__
from heron.acme import placeholder
from heron.app import serve as serve_forever
from heron.cli.backups import backup, restore
from heron.cli.context import CliContext, pass_context, run
from heron.cli.importing import import_
from heron.cli.media import media
from heron.cli.ops import cert, check, dns
from heron.cli.service import install_service, reload
from heron.cli.sip import sip
from heron.cli.tls import tls
from heron.cli.turn import turn
from heron.cli.users import admin, user
from heron.cli.xmpp import xmpp
from heron.config import Config, load_config
from heron.errors import HeronError
from heron.permissions import PRIVATE_UMASK
from heron.systemd import log_format
from heron.wiring import sip_worker_builders, turn_worker_builders

__all__ = ["cli", "main"]

EXIT_ERROR = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="HERON_CONFIG",
    help="TOML configuration file (default: built-in localhost settings; "
    "/etc/heron/heron.toml when run by systemd, or by root where it exists).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Data directory (default ./var, /var/lib/heron for the system service; "
    "or HERON_DATA_DIR).",
)
@click.version_option(__version__, prog_name="heron")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, data_dir: Path | None) -> None:
    """heron: STUN/TURN, SIP, XMPP and a web phone in one service."""
    ctx.obj = CliContext(config_path, data_dir)


@cli.command()
@click.option("--turn-worker", is_flag=True, hidden=True, help="Run one extra TURN worker.")
@click.option("--sip-node", hidden=True, help="Run one extra SIP worker of this node.")
@pass_context
def serve(ctx: CliContext, turn_worker: bool, sip_node: str | None) -> None:
    """Run every enabled service until SIGINT or SIGTERM."""
    config = ctx.config
    logging.basicConfig(
        level=config.log_level.upper(),
        format=log_format(sys.stderr),
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)

    def load() -> Config:
        return load_config(ctx.config_path, ctx.data_dir, system=ctx.system)

    if turn_worker:
        worker = turn_worker_builders
        run(serve_forever(config, builders_of=worker, control_socket=False, load=load))
        return
    if sip_node is not None:
        worker = sip_worker_builders
        run(
            serve_forever(
                config, builders_of=worker, control_socket=False, node=sip_node, load=load
            )
        )
        return
    if config.tls.acme and placeholder(config):
        logging.getLogger(__name__).info(
            "acme: serving a self-signed certificate until the CA issues one"
        )
    command = [sys.executable, "-m", "heron", "--data-dir", str(config.data_dir)]
    if ctx.config_path is not None:
        command += ["-c", str(ctx.config_path)]
    run(
        serve_forever(
            config,
            worker_command=[*command, "serve", "--turn-worker"],
            sip_worker_command=[*command, "serve"],
            load=load,
        )
    )


cli.add_command(user)
cli.add_command(admin)
cli.add_command(import_)
cli.add_command(dns)
cli.add_command(cert)
cli.add_command(check)
cli.add_command(backup)
cli.add_command(restore)
cli.add_command(install_service)
cli.add_command(reload)
cli.add_command(turn)
cli.add_command(sip)
cli.add_command(xmpp)
cli.add_command(media)
cli.add_command(tls)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; every error an administrator can cause is one line on stderr, status 2."""
    os.umask(PRIVATE_UMASK)
    try:
        cli.main(args=argv, prog_name="heron", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else "", err=True)
        sys.exit(EXIT_ERROR)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "heron"
        click.echo(f"{where}: {exc.format_message()}", err=True)
        sys.exit(EXIT_ERROR)
    except click.ClickException as exc:
        click.echo(f"heron: {exc.format_message()}", err=True)
        sys.exit(EXIT_ERROR)
    except click.Abort:
        click.echo("heron: aborted", err=True)
        sys.exit(1)
    except HeronError as exc:
        click.echo(f"heron: error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
