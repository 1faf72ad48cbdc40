"""What a reader extracts from a source, before anything is written."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from heron.accounts import ScramKeys
from heron.errors import InvalidInput
from heron.sip.registrar import Binding
from heron.xmpp.features.roster import RosterItem
from heron.xmpp.jid import JID
from heron.xmpp.muc.model import RoomRecord

__all__ = ["Extracted", "ImportedAccount", "Skipped", "SourceError"]


class SourceError(InvalidInput):
    """The source cannot be read at all: a missing file, not the daemon's database."""


@dataclass(frozen=True, slots=True)
class ImportedAccount:
    """One heron account and whatever the source kept of its password(s)."""

    local: str
    domain: str
    origin: str
    """Where it came from, for the report: "turnusers_lt roland/falcot.com"."""
    admin: bool = False
    password: str | None = None
    """Kept in clear (Kamailio's ``password``, Prosody's internal_plain): every secret."""
    sip_ha1_md5: str | None = None
    turn_key_md5: bytes | None = None
    turn_key_sha256: bytes | None = None
    scram_sha1: ScramKeys | None = None

    @property
    def address(self) -> str:
        return f"{self.local}@{self.domain}"

    def combined(self, other: ImportedAccount) -> ImportedAccount:
        """Two records of one account in one source (a coturn user who is also admin)."""
        return replace(
            self,
            origin=f"{self.origin}, {other.origin}",
            admin=self.admin or other.admin,
            password=self.password or other.password,
            sip_ha1_md5=self.sip_ha1_md5 or other.sip_ha1_md5,
            turn_key_md5=self.turn_key_md5 or other.turn_key_md5,
            turn_key_sha256=self.turn_key_sha256 or other.turn_key_sha256,
            scram_sha1=self.scram_sha1 or other.scram_sha1,
        )


@dataclass(frozen=True, slots=True)
class Skipped:
    what: str
    why: str


@dataclass
class Extracted:
    """Accounts (one per address), rosters by owner address, and what was skipped."""

    accounts: dict[str, ImportedAccount] = field(default_factory=dict)
    rosters: dict[str, list[RosterItem]] = field(default_factory=dict)
    pending: dict[str, list[JID]] = field(default_factory=dict)
    """Subscription requests an owner has not answered yet, by owner (RFC 6121 §3.1.3)."""
    offline: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    """Messages kept for an owner while away: the stanza's XML and its Unix time."""
    vcards: dict[str, str] = field(default_factory=dict)
    """vcard-temp vCards (XEP-0054) by owner, serialized, without their PHOTO."""
    pep: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    """PEP items by owner and node: the item id and payload XML. Avatars (XEP-0084, a
    vCard PHOTO's too: XEP-0398 §3.2) and vCard4 (XEP-0292)."""
    rooms: dict[str, list[RoomRecord]] = field(default_factory=dict)
    """Persistent group-chat rooms by service (heron's MUC domain)."""
    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    """Live SIP registrations by account address (Kamailio's ``location``)."""
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Imported, with a caveat the administrator must act on."""

    def add(self, account: ImportedAccount) -> None:
        known = self.accounts.get(account.address)
        self.accounts[account.address] = known.combined(account) if known else account

    def skip(self, what: str, why: str) -> None:
        self.skipped.append(Skipped(what, why))
