"""Writing what a reader extracted: accounts merged, rosters' missing contacts added."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar
from xml.etree.ElementTree import Element

from heron.accounts import AccountPolicy, AccountService, Merged, Secrets, imported_secrets
from heron.accounts.bulk import Derivation
from heron.accounts.secrets import SCRAM_ITERATIONS
from heron.importers.model import Extracted, ImportedAccount
from heron.sip.registrar import Binding, LocationStore
from heron.xmpp.features.local import to_text
from heron.xmpp.jid import JID
from heron.xmpp.pep.model import Limits, StoredItem, default_config
from heron.xmpp.server import XmppStores
from heron.xmpp.stanza import NS, qname

__all__ = ["Report", "apply", "derivations"]

_T = TypeVar("_T")


@dataclass
class Report:
    accounts: Counter[Merged] = field(default_factory=Counter)
    contacts_added: int = 0
    contacts_kept: int = 0
    """Already in the roster: kept as heron has them."""
    requests_added: int = 0
    """Subscription requests waiting for an answer."""
    offline_added: int = 0
    offline_kept: int = 0
    """Of owners who have offline messages in heron already: left out, so a re-run
    cannot deliver them twice."""
    offline_full: int = 0
    """Beyond heron's offline_limit for the owner."""
    vcards_added: int = 0
    vcards_kept: int = 0
    """Of owners who have a vCard in heron already: kept as heron has it."""
    pep_added: int = 0
    pep_kept: int = 0
    """Items of nodes heron has already: kept as heron has them."""
    rooms_added: int = 0
    rooms_kept: int = 0
    """Already in heron: kept as heron has them."""
    bindings_added: int = 0
    bindings_kept: int = 0
    """Contacts the AOR has in heron already."""
    unusable: list[tuple[str, str]] = field(default_factory=list)
    """Accounts whose password heron cannot use, and why."""

    @property
    def changed(self) -> bool:
        return bool(
            self.accounts[Merged.ADDED]
            or self.accounts[Merged.COMPLETED]
            or self.contacts_added
            or self.requests_added
            or self.rooms_added
            or self.offline_added
            or self.vcards_added
            or self.pep_added
            or self.bindings_added
        )


def derivations(extracted: Extracted, policy: AccountPolicy) -> dict[str, Derivation]:
    """The accounts the source kept a password of, by address: every secret is derived,
    on every core (:func:`heron.accounts.derive_many`), before the database is opened."""
    return {
        address: Derivation(
            policy.identity(account.local, account.domain),
            account.password,
            os.urandom(16),
            SCRAM_ITERATIONS,
        )
        for address, account in extracted.accounts.items()
        if account.password is not None
    }


def _secrets(account: ImportedAccount, accounts: AccountService) -> Secrets:
    return imported_secrets(
        accounts.identity(account.local, account.domain),
        sip_ha1_md5=account.sip_ha1_md5,
        turn_key_md5=account.turn_key_md5,
        turn_key_sha256=account.turn_key_sha256,
        scram_sha1=account.scram_sha1,
        salt=accounts.salt(),
        iterations=accounts.iterations,
    )


async def apply(
    extracted: Extracted,
    accounts: AccountService,
    xmpp: XmppStores,
    location: LocationStore,
    derived: Mapping[str, Secrets | str],
    *,
    dry_run: bool,
    progress: Callable[[], None] = lambda: None,
) -> Report:
    """Merge every account (:meth:`AccountService.merge`), then add the roster contacts,
    subscription requests, offline messages, vCards, PEP items, rooms and SIP bindings
    heron does not have yet; with ``dry_run``, count what would change."""
    report = Report()
    rosters, offline, rooms = xmpp.roster, xmpp.offline, xmpp.rooms
    present: set[str] = set()
    for address, account in extracted.accounts.items():
        secrets = derived.get(address) or _secrets(account, accounts)
        if isinstance(secrets, str):
            report.unusable.append((address, secrets))
            progress()
            continue
        merged = await accounts.merge(
            account.local, account.domain, secrets, admin=account.admin, dry_run=dry_run
        )
        report.accounts[merged] += 1
        present.add(address)
        progress()
    for owner, items in _of_present(extracted.rosters, present):
        for item in items:
            if await rosters.get(owner, item.jid) is not None:
                report.contacts_kept += 1
                continue
            if not dry_run:
                await rosters.put(owner, item)
            report.contacts_added += 1
    for owner, requesters in _of_present(extracted.pending, present):
        for requester in requesters:
            if await rosters.has_pending(owner, requester):
                continue
            if not dry_run:
                await rosters.set_pending(owner, requester, _subscribe(requester, owner))
            report.requests_added += 1
    for owner, messages in _of_present(extracted.offline, present):
        if await offline.count(owner):
            report.offline_kept += len(messages)
            continue
        for stanza, stamp in messages:
            if dry_run or await offline.push(owner, stanza, stamp):
                report.offline_added += 1
            else:
                report.offline_full += 1
    for owner, vcard in _of_present(extracted.vcards, present):
        if await xmpp.vcards.get_vcard(str(owner)) is not None:
            report.vcards_kept += 1
            continue
        if not dry_run:
            await xmpp.vcards.set_vcard(str(owner), vcard, time.time())
        report.vcards_added += 1
    for owner, nodes in _of_present(extracted.pep, present):
        for node, (item_id, payload) in nodes.items():
            # Nodes are made with PEP's defaults, as a publish by the owner would make
            # them; nobody is online to notify. An avatar's data node comes first.
            if await xmpp.pep.node_config(str(owner), node) is not None:
                report.pep_kept += 1
                continue
            if not dry_run:
                config = default_config(node, Limits())
                now = time.time()
                await xmpp.pep.create_node(str(owner), node, config.to_json(), now)
                stored = StoredItem(item_id, payload)
                await xmpp.pep.publish(str(owner), node, stored, config.max_items, now)
            report.pep_added += 1
    for service, records in extracted.rooms.items():
        existing = {room.name for room in await rooms.load(service)}
        for room in records:
            if room.name in existing:
                report.rooms_kept += 1
                continue
            if not dry_run:
                await rooms.save(service, replace(room, created_at=time.time()))
            report.rooms_added += 1
    for address, bindings in extracted.bindings.items():
        if address in present:
            await _add_bindings(location, bindings, report, dry_run)
    return report


async def _add_bindings(
    location: LocationStore, bindings: list[Binding], report: Report, dry_run: bool
) -> None:
    """One AOR's imported bindings beside the ones heron has (a Contact heron has wins)."""
    aor = bindings[0].aor
    have = await location.get(aor)
    contacts = {binding.contact for binding in have}
    new = [binding for binding in bindings if binding.contact not in contacts]
    report.bindings_kept += len(bindings) - len(new)
    report.bindings_added += len(new)
    if new and not dry_run:
        await location.replace(aor, [*have, *new])


def _of_present(by_owner: Mapping[str, _T], present: set[str]) -> Iterator[tuple[JID, _T]]:
    """The owners' data of the accounts heron has (or, in a dry run, would have)."""
    for address, value in by_owner.items():
        if address in present:
            local, _, domain = address.partition("@")
            yield JID(local, domain), value


def _subscribe(sender: JID, owner: JID) -> str:
    """The request as heron keeps one, delivered again when the owner logs in."""
    stanza = Element(qname(NS.CLIENT, "presence"), {"type": "subscribe"})
    stanza.set("from", str(sender))
    stanza.set("to", str(owner))
    return to_text(stanza)
