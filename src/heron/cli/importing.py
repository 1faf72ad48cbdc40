"""``heron import``: accounts (and rosters) from coturn, Kamailio and Prosody."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import click

from heron.accounts import AccountPolicy, Merged, Secrets, placeholder_secrets
from heron.app import account_policy
from heron.cli.context import CliContext, open_accounts, pass_context, run
from heron.cli.progress import derive_with_progress, progress_bar
from heron.config import Config
from heron.errors import InvalidInput
from heron.importers import (
    Extracted,
    Report,
    Source,
    apply,
    derivations,
    read_coturn,
    read_kamailio,
    read_prosody,
    shown,
)
from heron.store import Database
from heron.wiring import sql_stores

__all__ = ["import_"]

_READERS: dict[str, Callable[[Source, AccountPolicy], Extracted]] = {
    "coturn": read_coturn,
    "kamailio": read_kamailio,
    "prosody": read_prosody,
}


@click.command("import")
@click.argument("kind", type=click.Choice(sorted(_READERS)))
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option(
    "--db",
    "url",
    metavar="URL",
    help="The daemon's database instead of PATH: postgresql://..., mysql://...",
)
@click.option("--dry-run", is_flag=True, help="Report what would change; write nothing.")
@pass_context
def import_(ctx: CliContext, kind: str, path: Path | None, url: str | None, dry_run: bool) -> None:
    """Import accounts from another server's data: PATH is coturn's turndb (SQLite),
    Kamailio's SQLite database (kamdbctl's), or Prosody's data directory; --db URL is
    coturn's, Kamailio's or Prosody's (storage = "sql") PostgreSQL or MySQL database.

    Accounts get the secrets the source kept: coturn's TURN key, Kamailio's SIP HA1
    (every secret where it kept the password) and live UDP registrations (``location``),
    Prosody's SCRAM-SHA-1 keys, roster, vCards, avatars and offline messages.
    Their users log in with their old passwords; ``heron user list`` shows which
    secrets each has, and a password change (or a PLAIN or web login) completes them.
    Existing accounts only gain secrets they miss: running it again changes nothing.
    """
    sources: list[Source] = [given for given in (path, url) if given is not None]
    if len(sources) != 1:
        raise InvalidInput("heron import: give either PATH or --db URL")
    source = sources[0]
    config = ctx.config
    policy = account_policy(config)
    extracted = (
        read_prosody(source, policy, config.muc_domain)
        if kind == "prosody"
        else _READERS[kind](source, policy)
    )
    jobs = derivations(extracted, policy)
    derived: dict[str, Secrets | str]
    if dry_run:
        # Which secrets are missing is all a dry run looks at: none, once derived.
        derived = {
            address: replace(
                placeholder_secrets(job.identity, salt=job.salt, iterations=job.iterations),
                missing=frozenset(),
            )
            for address, job in jobs.items()
        }
    else:
        results = derive_with_progress(list(jobs.values()), "deriving secrets")
        derived = dict(zip(jobs, results, strict=True))
    report = run(_apply(config, extracted, derived, dry_run))
    for line in _report(kind, shown(source), extracted, report, dry_run):
        click.echo(line)


async def _apply(
    config: Config, extracted: Extracted, derived: dict[str, Secrets | str], dry_run: bool
) -> Report:
    async with open_accounts(config) as accounts:
        database = Database(config.database_url)
        await database.open()
        try:
            stores = sql_stores(database, config)
            with progress_bar("importing accounts", len(extracted.accounts)) as bar:
                task = bar.task_ids[0]
                return await apply(
                    extracted,
                    accounts,
                    stores.xmpp,
                    stores.location,
                    derived,
                    dry_run=dry_run,
                    progress=lambda: bar.advance(task),
                )
        finally:
            await database.close()


def _report(
    kind: str, source: str, extracted: Extracted, report: Report, dry_run: bool
) -> list[str]:
    counts = report.accounts
    if dry_run:
        head = (
            f"dry run, nothing written: {kind} {source} would add {counts[Merged.ADDED]} "
            f"account(s), complete {counts[Merged.COMPLETED]}, leave "
            f"{counts[Merged.UNCHANGED]} unchanged, add {report.contacts_added} roster "
            f"contact(s), {report.requests_added} subscription request(s), "
            f"{report.offline_added} offline message(s), {report.vcards_added} vCard(s), "
            f"{report.pep_added} PEP item(s) and {report.rooms_added} room(s)"
        )
    elif report.changed:
        head = (
            f"imported from {kind} {source}: {counts[Merged.ADDED]} account(s) added, "
            f"{counts[Merged.COMPLETED]} completed, {counts[Merged.UNCHANGED]} unchanged; "
            f"{report.contacts_added} roster contact(s), {report.requests_added} "
            f"subscription request(s), {report.offline_added} offline message(s), "
            f"{report.vcards_added} vCard(s), {report.pep_added} PEP item(s) and "
            f"{report.rooms_added} room(s) added"
        )
    else:
        head = (
            f"nothing to import from {kind} {source}: its {counts[Merged.UNCHANGED]} "
            f"account(s), {report.contacts_kept} roster contact(s) and {report.rooms_kept} "
            "room(s) are here already"
        )
    lines = [head]
    lines += [f"not imported: {address}: {why}" for address, why in report.unusable]
    if report.bindings_added or report.bindings_kept:
        verb = "would add" if dry_run else "added"
        lines.append(
            f"SIP registrations: {verb} {report.bindings_added}, kept "
            f"{report.bindings_kept} heron has already"
        )
    if report.offline_kept:
        lines.append(
            f"kept out: {report.offline_kept} offline message(s) of users who have some "
            "in heron already"
        )
    if report.vcards_kept or report.pep_kept:
        lines.append(
            f"kept: {report.vcards_kept} vCard(s) and {report.pep_kept} PEP item(s) "
            "heron has already"
        )
    if report.offline_full:
        lines.append(f"not imported: {report.offline_full} offline message(s) beyond the limit")
    lines += [f"skipped {skip.what}: {skip.why}" for skip in extracted.skipped]
    lines += [f"note: {note}" for note in extracted.notes]
    return lines
