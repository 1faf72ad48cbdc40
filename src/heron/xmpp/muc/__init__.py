"""Group chat (XEP-0045 Multi-User Chat) on ``conference.<domain>``.

- ``model``: roles, affiliations, status codes, room configuration and its form,
  the records rooms give out, and the :class:`RoomStore` seam.
- ``room``: one room's core rules (§6.4, §7, §10.9), sans-IO, with beside it
  ``history`` (§7.2.15), ``moderation`` (muc#admin: §8, §9, §10.3–10.7) and
  ``owner`` (muc#owner: §10.1–10.2).
- ``service``: the :class:`MucService` component, async, routing and persisting.
"""

from heron.xmpp.muc.model import (
    Affiliated,
    Affiliation,
    Limits,
    MucStatus,
    Occupant,
    Outcome,
    Role,
    RoomConfig,
    RoomRecord,
    RoomStore,
    RoomSummary,
    Whois,
)
from heron.xmpp.muc.room import Room
from heron.xmpp.muc.service import MucService

__all__ = [
    "Affiliated",
    "Affiliation",
    "Limits",
    "MucService",
    "Occupant",
    "Outcome",
    "Role",
    "Room",
    "RoomConfig",
    "RoomRecord",
    "RoomStore",
    "RoomSummary",
    "MucStatus",
    "Whois",
]
