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
from heron.xmpp.pep.avatar import AVATAR_DATA, AVATAR_METADATA, Avatar
from heron.xmpp.pep.model import Limits, PepStore, StoredItem, default_config
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
    avatars_added: int = 0
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
            or self.avatars_added
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
    subscription requests, offline messages, vCards, avatars, rooms and SIP bindings heron
    does not have yet; with ``dry_run``, count what would change."""
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
    for owner, avatar in _of_present(extracted.avatars, present):
        if await xmpp.pep.node_config(str(owner), AVATAR_METADATA) is None:
            if not dry_run:
                await _publish_avatar(xmpp.pep, str(owner), avatar)
            report.avatars_added += 1
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


async def _publish_avatar(pep: PepStore, owner: str, avatar: Avatar) -> None:
    """XEP-0398 §3.2 as the vCard handler does it, on the store: the data item, then the
    metadata naming it, in nodes made with PEP's defaults. Nobody is online to notify."""
    now = time.time()
    for node, payload in (
        (AVATAR_DATA, avatar.data_item()),
        (AVATAR_METADATA, avatar.metadata_item()),
    ):
        config = default_config(node, Limits())
        if await pep.node_config(owner, node) is None:
            await pep.create_node(owner, node, config.to_json(), now)
        item = StoredItem(avatar.id, to_text(payload))
        await pep.publish(owner, node, item, config.max_items, now)


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
