"""SIP location bindings in SQL, so registrations survive a restart (what
Kamailio's usrloc does with ``db_mode``; its WITH_USRLOCDB configuration).

One row per binding. :meth:`SqlLocationStore.replace` swaps an AOR's rows in
one transaction, and takes a per-AOR lock first, so that two replaces of the
same AOR run one after the other instead of leaving the rows of both: an
advisory lock on PostgreSQL, a named lock on MariaDB/MySQL; SQLite lets one
writer in at a time anyway.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import BigInteger, Row, delete, func, insert, literal, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from heron.errors import StoreError
from heron.sip.errors import SipLocalError
from heron.sip.registrar import Binding, BindingSource
from heron.store.database import Database
from heron.store.schema import sip_bindings

__all__ = ["SqlLocationStore"]

_LOCK_TIMEOUT = 10  # seconds MariaDB/MySQL waits for another replace of the AOR
_IN_LIST = 500
"""AORs per DELETE (SQLite's old builds bind 999 parameters at most) and per
PostgreSQL lock statement."""


def _columns(binding: Binding) -> dict[str, Any]:
    return {
        "aor": binding.aor,
        "contact": binding.contact,
        "expires_at": binding.expires_at,
        "q": binding.q,
        "call_id": binding.call_id,
        "cseq": binding.cseq,
        "path": json.dumps(list(binding.path)),
        "instance": binding.instance,
        "reg_id": binding.reg_id,
        "received_transport": binding.received.transport,
        "received_host": binding.received.host,
        "received_port": binding.received.port,
        "flow": binding.received.flow,
        "user_agent": binding.user_agent,
        "updated_at": binding.updated_at,
    }


def _binding(row: Row[Any]) -> Binding:
    return Binding(
        aor=row.aor,
        contact=row.contact,
        expires_at=float(row.expires_at),
        q=None if row.q is None else float(row.q),
        call_id=row.call_id,
        cseq=int(row.cseq),
        received=BindingSource(
            row.received_transport, row.received_host, int(row.received_port), row.flow
        ),
        updated_at=float(row.updated_at),
        path=tuple(json.loads(row.path)),
        instance=row.instance,
        reg_id=None if row.reg_id is None else int(row.reg_id),
        user_agent=row.user_agent,
    )


def _lock_name(aor: str) -> str:
    # MySQL lock names are at most 64 characters; an AOR may be longer.
    return "heron.sip." + hashlib.sha1(aor.encode("utf-8", "surrogateescape")).hexdigest()


def _lock_key(aor: str) -> int:
    digest = hashlib.sha256(aor.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class SqlLocationStore:
    """:class:`heron.sip.registrar.LocationStore` on SQLite, PostgreSQL or MariaDB/MySQL."""

    def __init__(self, database: Database) -> None:
        self._engine = database.engine
        self._backend = database.backend

    async def get(self, aor: str) -> list[Binding]:
        query = select(sip_bindings).where(sip_bindings.c.aor == aor).order_by(sip_bindings.c.id)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [_binding(row) for row in rows]

    async def replace(self, aor: str, bindings: Sequence[Binding]) -> None:
        if any(b.aor != aor for b in bindings):
            raise SipLocalError("Binding for another AOR", detail=aor)
        rows = [_columns(b) for b in bindings]
        async with self._engine.connect() as connection, self._locked(connection, aor):
            async with connection.begin():
                if self._backend == "postgresql":
                    # Held until the transaction ends.
                    lock = func.pg_advisory_xact_lock(literal(_lock_key(aor), BigInteger))
                    await connection.execute(select(lock))
                await connection.execute(delete(sip_bindings).where(sip_bindings.c.aor == aor))
                if rows:
                    await connection.execute(insert(sip_bindings), rows)

    async def replace_all(self, sets: Mapping[str, Sequence[Binding]]) -> None:
        """Every AOR's set in one transaction: one DELETE per :data:`_IN_LIST` AORs and
        one INSERT, where a replace each took a transaction, two statements and a
        connection of the pool (the write-behind's flush, a second's worth of REGISTERs).
        PostgreSQL takes the AORs' advisory locks a statement per :data:`_IN_LIST`, in the
        order of their keys, so two flushes cannot deadlock. MariaDB/MySQL's named locks
        belong to the session and are taken outside a transaction: there each AOR is
        replaced alone.
        """
        for aor, bindings in sets.items():
            if any(b.aor != aor for b in bindings):
                raise SipLocalError("Binding for another AOR", detail=aor)
        if self._backend == "mysql":
            for aor, bindings in sets.items():
                await self.replace(aor, bindings)
            return
        aors = sorted(sets)
        if not aors:
            return
        rows = [_columns(b) for aor in aors for b in sets[aor]]
        async with self._engine.begin() as connection:
            if self._backend == "postgresql":
                keys = sorted({_lock_key(aor) for aor in aors})
                for start in range(0, len(keys), _IN_LIST):  # a select list holds 1,664
                    locks = [
                        func.pg_advisory_xact_lock(literal(k, BigInteger))
                        for k in keys[start : start + _IN_LIST]
                    ]
                    await connection.execute(select(*locks))
            for start in range(0, len(aors), _IN_LIST):
                chunk = aors[start : start + _IN_LIST]
                await connection.execute(delete(sip_bindings).where(sip_bindings.c.aor.in_(chunk)))
            if rows:
                await connection.execute(insert(sip_bindings), rows)

    async def all(self, now: float) -> list[Binding]:
        query = (
            select(sip_bindings)
            .where(sip_bindings.c.expires_at > now)
            .order_by(sip_bindings.c.aor, sip_bindings.c.id)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [_binding(row) for row in rows]

    async def sweep(self, now: float) -> int:
        statement = delete(sip_bindings).where(sip_bindings.c.expires_at <= now)
        async with self._engine.begin() as connection:
            result = await connection.execute(statement)
        return int(result.rowcount)

    @asynccontextmanager
    async def _locked(self, connection: AsyncConnection, aor: str) -> AsyncIterator[None]:
        """MariaDB/MySQL's named lock around a transaction: it belongs to the
        session, not the transaction, so it is taken and released outside it.
        """
        if self._backend != "mysql":
            yield
            return
        name = _lock_name(aor)
        taken = await connection.scalar(
            text("SELECT GET_LOCK(:name, :timeout)"), {"name": name, "timeout": _LOCK_TIMEOUT}
        )
        await connection.commit()
        if taken != 1:
            raise StoreError(f"SIP bindings of {aor} stayed locked for {_LOCK_TIMEOUT} s")
        try:
            yield
        finally:
            await connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})
            await connection.commit()
