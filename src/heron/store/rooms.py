"""Persistent group-chat rooms in SQL, so they outlive a restart (what Prosody's
muc component keeps for rooms configured persistent, XEP-0045 §10.2).

One ``muc_rooms`` row per room, its configuration as one JSON object so a new
room option needs no migration, and one ``muc_affiliations`` row per affiliated
bare JID. :meth:`SqlRoomStore.save` replaces a room's row and affiliations in
one transaction. History is not kept, as in Prosody without MAM.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import fields
from typing import Any

from sqlalchemy import delete, insert, select, update

from heron.store.database import Database, database_errors
from heron.store.schema import muc_affiliations, muc_rooms
from heron.xmpp.errors import StanzaError
from heron.xmpp.jid import parse_jid
from heron.xmpp.muc.model import Affiliated, Affiliation, RoomConfig, RoomRecord, Whois

__all__ = ["SqlRoomStore"]

log = logging.getLogger(__name__)

_DEFAULT = RoomConfig()


def _config_json(config: RoomConfig) -> str:
    return json.dumps({f.name: getattr(config, f.name) for f in fields(RoomConfig)})


def _config(text: str) -> RoomConfig:
    """The stored configuration; a value of the wrong type falls back to the default."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return _DEFAULT
    values: dict[str, Any] = {}
    for field in fields(RoomConfig):
        value = data.get(field.name)
        if field.name == "whois" and value in tuple(Whois):
            values["whois"] = Whois(value)
        elif field.name != "whois" and type(value) is type(getattr(_DEFAULT, field.name)):
            values[field.name] = value
    return RoomConfig(**values)


def _affiliated(jid: str, affiliation: str, reason: str | None) -> Affiliated | None:
    try:
        return Affiliated(parse_jid(jid).bare, Affiliation(affiliation), reason or "")
    except (StanzaError, ValueError):
        log.warning("room affiliation %r of %r ignored", affiliation, jid)
        return None


class SqlRoomStore:
    """:class:`heron.xmpp.muc.model.RoomStore` on SQLite, PostgreSQL or MariaDB/MySQL."""

    def __init__(self, database: Database) -> None:
        self._engine = database.engine

    async def load(self, service: str) -> list[RoomRecord]:
        rooms_query = (
            select(muc_rooms).where(muc_rooms.c.service == service).order_by(muc_rooms.c.name)
        )
        ids = select(muc_rooms.c.id).where(muc_rooms.c.service == service)
        affiliations_query = (
            select(muc_affiliations)
            .where(muc_affiliations.c.room_id.in_(ids))
            .order_by(muc_affiliations.c.room_id, muc_affiliations.c.jid)
        )
        with database_errors(f"loading the rooms of {service}"):
            async with self._engine.connect() as connection:
                rooms = (await connection.execute(rooms_query)).all()
                affiliation_rows = (await connection.execute(affiliations_query)).all()
        by_room: dict[int, list[Affiliated]] = {}
        for row in affiliation_rows:
            entry = _affiliated(row.jid, row.affiliation, row.reason)
            if entry is not None:
                by_room.setdefault(row.room_id, []).append(entry)
        return [
            RoomRecord(
                name=row.name,
                config=_config(row.config),
                affiliations=tuple(by_room.get(row.id, ())),
                subject=row.subject or "",
                subject_nick=row.subject_nick or "",
                created_at=float(row.created_at),
            )
            for row in rooms
        ]

    async def save(self, service: str, room: RoomRecord) -> None:
        columns = {
            "config": _config_json(room.config),
            "subject": room.subject or None,
            "subject_nick": room.subject_nick or None,
            "updated_at": time.time(),
        }
        address = (muc_rooms.c.service == service) & (muc_rooms.c.name == room.name)
        with database_errors(f"saving room {room.name}@{service}"):
            async with self._engine.begin() as connection:
                room_id = await connection.scalar(select(muc_rooms.c.id).where(address))
                if room_id is None:
                    values = {"service": service, "name": room.name, **columns}
                    await connection.execute(
                        insert(muc_rooms).values(created_at=room.created_at, **values)
                    )
                    room_id = await connection.scalar(select(muc_rooms.c.id).where(address))
                else:
                    await connection.execute(
                        update(muc_rooms).where(muc_rooms.c.id == room_id).values(**columns)
                    )
                    await connection.execute(
                        delete(muc_affiliations).where(muc_affiliations.c.room_id == room_id)
                    )
                rows = [
                    {
                        "room_id": room_id,
                        "jid": str(entry.jid),
                        "affiliation": entry.affiliation.value,
                        "reason": entry.reason or None,
                    }
                    for entry in room.affiliations
                ]
                if rows:
                    await connection.execute(insert(muc_affiliations), rows)

    async def delete(self, service: str, name: str) -> None:
        address = (muc_rooms.c.service == service) & (muc_rooms.c.name == name)
        with database_errors(f"deleting room {name}@{service}"):
            async with self._engine.begin() as connection:
                room_id = await connection.scalar(select(muc_rooms.c.id).where(address))
                if room_id is None:
                    return
                await connection.execute(
                    delete(muc_affiliations).where(muc_affiliations.c.room_id == room_id)
                )
                await connection.execute(delete(muc_rooms).where(muc_rooms.c.id == room_id))
