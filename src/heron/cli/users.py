"""``heron user`` and ``heron admin``: what turnadmin, kamctl add and prosodyctl adduser do."""

from __future__ import annotations

import sys
from typing import TextIO

import click
from rich.console import Console
from rich.table import Table

from heron.accounts import Secret, Secrets
from heron.accounts.bulk import Derivation
from heron.cli.context import CliContext, address_argument, open_accounts, pass_context, run
from heron.cli.progress import derive_with_progress
from heron.errors import AccountExists, InvalidInput

__all__ = ["admin", "user"]


def _read_password(password: str | None, from_stdin: bool) -> str:
    if password is not None and from_stdin:
        raise InvalidInput("give either --password or --password-stdin, not both")
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise InvalidInput("--password-stdin: no password on standard input")
        return line
    if password is not None:
        return password
    prompted: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return prompted


_password_options = (
    click.option("--password", help="The password (visible to other local users: prefer stdin)."),
    click.option("--password-stdin", is_flag=True, help="Read the password from standard input."),
)


def _with_password_options(function: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(_password_options):
        function = option(function)
    return function


@click.group()
def user() -> None:
    """Add, remove, list accounts and change passwords."""


@user.command("add")
@click.argument("address")
@_with_password_options
@click.option("--admin", "make_admin", is_flag=True, help="Give the account admin rights.")
@pass_context
def user_add(
    ctx: CliContext, address: str, password: str | None, password_stdin: bool, make_admin: bool
) -> None:
    """Create ADDRESS (user@domain) for SIP, XMPP, TURN and the web at once."""
    local, domain = address_argument(address)
    config = ctx.config  # a bad config fails before the password prompt
    secret = _read_password(password, password_stdin)

    async def add() -> None:
        async with open_accounts(config) as accounts:
            await accounts.add(local, domain, secret, admin=make_admin)

    run(add())
    click.echo(f"added {local}@{domain}" + (" (admin)" if make_admin else ""))


@user.command("del")
@click.argument("address")
@pass_context
def user_del(ctx: CliContext, address: str) -> None:
    """Delete ADDRESS and all its secrets."""
    local, domain = address_argument(address)

    async def remove() -> None:
        async with open_accounts(ctx.config) as accounts:
            await accounts.remove(local, domain)

    run(remove())
    click.echo(f"deleted {local}@{domain}")


@user.command("passwd")
@click.argument("address")
@_with_password_options
@pass_context
def user_passwd(ctx: CliContext, address: str, password: str | None, password_stdin: bool) -> None:
    """Set a new password for ADDRESS; every protocol's secret changes at once."""
    local, domain = address_argument(address)
    config = ctx.config  # a bad config fails before the password prompt
    secret = _read_password(password, password_stdin)

    async def change() -> None:
        async with open_accounts(config) as accounts:
            await accounts.get(local, domain)
            await accounts.change_password(local, domain, secret)

    run(change())
    click.echo(f"changed the password of {local}@{domain}")


@user.command("import")
@click.argument("source", type=click.File("r", encoding="utf-8"))
@pass_context
def user_import(ctx: CliContext, source: TextIO) -> None:
    """Create many accounts from SOURCE (a file, or - for stdin): one "user@domain password" a line.

    Blank lines and lines starting with # are skipped. Every line is parsed, and
    every address checked free, before anything is written. The secrets are derived
    on every core (a progress bar on a terminal), then written; where ``kamctl add``
    or ``prosodyctl adduser`` run once a user.
    """
    config = ctx.config
    wanted: dict[tuple[str, str], str] = {}
    where = getattr(source, "name", "<stdin>")
    for number, line in enumerate(source, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        address, _, password = text.partition(" ")
        if not password.strip():
            raise InvalidInput(f'{where}:{number}: expected "user@domain password"')
        local, domain = address_argument(address)
        if (local, domain) in wanted:
            raise InvalidInput(f"{where}:{number}: {local}@{domain} is listed twice")
        wanted[local, domain] = password.strip()

    async def check() -> list[Derivation]:
        """Every refusal before the minutes of derivation: other domains, taken names."""
        async with open_accounts(config) as accounts:
            jobs = []
            for (local, domain), password in wanted.items():
                accounts.policy.check_domain(domain)
                if await accounts.exists(local, domain):
                    raise AccountExists(f"{local}@{domain} already exists")
                identity = accounts.identity(local, domain)
                jobs.append(Derivation(identity, password, accounts.salt(), accounts.iterations))
            return jobs

    jobs = run(check())
    derived = derive_with_progress(jobs, "deriving secrets")
    for (local, domain), secrets in zip(wanted, derived, strict=True):
        if isinstance(secrets, str):
            raise InvalidInput(f"{local}@{domain}: {secrets}")

    async def add_all() -> None:
        async with open_accounts(config) as accounts:
            for (local, domain), secrets in zip(wanted, derived, strict=True):
                assert not isinstance(secrets, str)
                await accounts.add_derived(local, domain, secrets)

    run(add_all())
    click.echo(f"added {len(wanted)} account(s)")


@user.command("list")
@click.option("--domain", help="Only accounts of this domain.")
@pass_context
def user_list(ctx: CliContext, domain: str | None) -> None:
    """List accounts, with their admin rights, creation time and, for accounts imported
    without every secret, the ones they have (the next password change derives all)."""

    async def rows() -> list[tuple[str, str, str, str]]:
        async with open_accounts(ctx.config) as accounts:
            found = await accounts.list(domain.lower() if domain else None)
            return [
                (
                    account.address,
                    "yes" if accounts.is_admin(account) else "",
                    account.created.strftime("%Y-%m-%d %H:%M UTC"),
                    _secrets_held(account.secrets),
                )
                for account in found
            ]

    table = Table("Account", "Admin", "Created", "Secrets", box=None, header_style="bold")
    for row in run(rows()):
        table.add_row(*row)
    Console(width=100 if not sys.stdout.isatty() else None).print(table)


def _secrets_held(secrets: Secrets) -> str:
    if not secrets.missing:
        return "all"
    held = [kind.value for kind in Secret if kind not in secrets.missing]
    return "only " + ", ".join(held) if held else "none: set a password"


@click.group()
def admin() -> None:
    """Give or take administrator rights (web admin pages, XMPP admin commands)."""


def _set_admin(ctx: CliContext, address: str, value: bool) -> None:
    local, domain = address_argument(address)

    async def apply() -> None:
        async with open_accounts(ctx.config) as accounts:
            await accounts.set_admin(local, domain, value)

    run(apply())


@admin.command("add")
@click.argument("address")
@pass_context
def admin_add(ctx: CliContext, address: str) -> None:
    """Make the existing account ADDRESS an administrator."""
    _set_admin(ctx, address, True)
    click.echo(f"{address.lower()} is an administrator")


@admin.command("del")
@click.argument("address")
@pass_context
def admin_del(ctx: CliContext, address: str) -> None:
    """Take administrator rights away from ADDRESS (config admins keep theirs)."""
    _set_admin(ctx, address, False)
    click.echo(f"{address.lower()} is no longer an administrator")
