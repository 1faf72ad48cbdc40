"""``heron install-service``: the hardened systemd unit, pointed at this heron; and
``heron reload``, its ``ExecReload``."""

from __future__ import annotations

import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import click

import heron
from heron.cli.context import CliContext, pass_context, run
from heron.config import SYSTEM_CONFIG, SYSTEM_DATA_DIR
from heron.control import query
from heron.errors import HeronError
from heron.reload import RELOAD_COMMAND

__all__ = ["install_service", "reload"]

UNIT = Path(heron.__file__).parent / "heron.service"
UNIT_EXECUTABLE = "/usr/local/bin/heron"
"""The path the shipped unit names; replaced by the heron that installs it."""
USER = "heron"


def _executable() -> Path:
    """The ``heron`` script of the Python running this command (a venv's), else PATH's."""
    beside = Path(sys.executable).parent / "heron"
    found = beside if beside.is_file() else shutil.which("heron")
    if found is None:
        raise HeronError("cannot find the heron command to run: install heron first")
    return Path(found).absolute()


def _add_user() -> str:
    try:
        pwd.getpwnam(USER)
    except KeyError:
        command = ["adduser", "--system", "--group", "--no-create-home"]
        command += ["--home", str(SYSTEM_DATA_DIR), USER]
        try:
            subprocess.run(command, check=True, capture_output=True, text=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise HeronError(f"cannot add the system user {USER}: {exc}") from None
        return f"added the system user {USER}"
    return f"the system user {USER} exists"


@click.command("install-service")
@click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("/"),
    show_default=True,
    help="Install under this directory (an image being built); no user is added then.",
)
def install_service(root: Path) -> None:
    """Install heron.service for this heron and add its system user; then run
    `systemctl daemon-reload && systemctl enable --now heron`."""
    unit = root / "etc/systemd/system/heron.service"
    unit.parent.mkdir(parents=True, exist_ok=True)
    unit.write_text(UNIT.read_text().replace(UNIT_EXECUTABLE, str(_executable())))
    unit.chmod(0o644)  # systemd reads units as any user; heron's umask is 077
    click.echo(f"wrote {unit}")
    if root == Path("/"):
        click.echo(_add_user())
    click.echo(
        f"heron reads {SYSTEM_CONFIG} and keeps its data in {SYSTEM_DATA_DIR}; "
        "start it with: systemctl daemon-reload && systemctl enable --now heron"
    )


@click.command()
@pass_context
def reload(ctx: CliContext) -> None:
    """Make the running heron read its configuration and certificates again, keeping
    calls, allocations, registrations and sessions; say which changes need a restart.
    A configuration that does not validate is refused (status 2) and the server keeps
    serving the previous one."""
    rows = run(query(ctx.config.data_dir, RELOAD_COMMAND))
    restart = rows[0]["restart_needed"] if rows else []
    click.echo("reloaded" + (f"; restart needed for: {', '.join(restart)}" if restart else ""))
