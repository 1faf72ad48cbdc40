"""SIP bindings in Redis: the location service every SIP process and node reads.

One hash field per AOR holds the AOR's whole binding set (JSON), so an AOR is read and
written in one command, as :class:`heron.sip.bindings.BindingCache` replaces it. The
database stays the durable copy, written behind by the process that took the REGISTER;
Redis is what the other processes find a phone by, and each keeps a replica in memory,
told of every change over the bus (:meth:`change` and :meth:`changed`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from heron.cluster.redis import Shared
from heron.errors import StoreError
from heron.sip.errors import SipError
from heron.sip.registrar import Binding, BindingSource

__all__ = ["SharedLocation", "decode", "encode"]

MAX_CHANGE = 256 * 1024
"""Bytes of one announced change; the registrar keeps sets far smaller (``max_contacts``)."""


def encode(bindings: Sequence[Binding]) -> str:
    return json.dumps([asdict(binding) for binding in bindings], separators=(",", ":"))


def decode(text: str | bytes) -> list[Binding]:
    """The bindings of :func:`encode`'s text; :class:`StoreError` for anything else."""
    try:
        rows: list[dict[str, Any]] = json.loads(text)
        return [
            Binding(
                **{
                    **row,
                    "received": BindingSource(**row["received"]),
                    "path": tuple(row["path"]),
                }
            )
            for row in rows
        ]
    except (ValueError, TypeError, KeyError, SipError) as exc:
        raise StoreError(f"redis: a binding set that is not heron's: {exc}") from None


class SharedLocation:
    """The ``sip:bindings`` hash; :meth:`change` is the message announcing a new set."""

    def __init__(self, shared: Shared) -> None:
        self._shared = shared
        self._key = shared.key("sip", "bindings")

    async def all(self) -> list[Binding]:
        sets = await self._shared.client.hgetall(self._key)
        return [binding for text in sets.values() for binding in decode(text)]

    async def get(self, aor: str) -> list[Binding]:
        text = await self._shared.client.hget(self._key, aor)
        return [] if text is None else decode(text)

    async def put(self, aor: str, bindings: Sequence[Binding]) -> None:
        async with self._shared.client.pipeline(transaction=False) as pipe:
            self.queue_put(pipe, aor, bindings)
            await pipe.execute()

    def queue_put(self, pipe: Any, aor: str, bindings: Sequence[Binding]) -> None:
        """Add the command that stores the AOR's set (none: deletes it) to ``pipe``."""
        if bindings:
            pipe.hset(self._key, aor, encode(bindings))
        else:
            pipe.hdel(self._key, aor)

    async def fill(self, bindings: Sequence[Binding]) -> None:
        """Sets for AORs Redis has none of yet (the first node to start, from the database)."""
        by_aor: dict[str, list[Binding]] = {}
        for binding in bindings:
            by_aor.setdefault(binding.aor, []).append(binding)
        async with self._shared.client.pipeline(transaction=False) as pipe:
            for aor, aor_bindings in by_aor.items():
                pipe.hsetnx(self._key, aor, encode(aor_bindings))
            await pipe.execute()

    @staticmethod
    def change(aor: str, bindings: Sequence[Binding]) -> bytes:
        return json.dumps({"aor": aor, "set": encode(bindings)}).encode()

    @staticmethod
    def changed(payload: bytes) -> tuple[str, list[Binding]]:
        """The AOR and its new set from a :meth:`change`; :class:`StoreError` if malformed."""
        if len(payload) > MAX_CHANGE:
            raise StoreError("redis: an announced binding change is too long")
        try:
            message = json.loads(payload)
            return str(message["aor"]), decode(message["set"])
        except (ValueError, TypeError, KeyError) as exc:
            raise StoreError(f"redis: an announced binding change is not heron's: {exc}") from None
