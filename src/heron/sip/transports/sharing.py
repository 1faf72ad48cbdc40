"""What one SIP process tells the others, and hears from them, over Redis.

Two primitives on the bus (:class:`heron.cluster.Bus`), both carrying SIP bytes:

- *in*: "receive this as if it had reached you from this source": a response that met
  the wrong process (its branch is another's) goes to the process holding the client
  transaction;
- *out*: "send this over your connection to that address": a request or response for
  a phone whose TCP/TLS/WebSocket connection another process (or node) holds.

and the binding changes every process applies to its replica. A process's identity is
``node.index`` (``node`` random per ``heron serve``); a flow token ends in it, so the
owner of a binding's connection is read from the binding.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from redis.exceptions import RedisError

from heron.cluster import Bus, SetWriter, Shared, SharedGuesses, SharedLocation
from heron.config import Config
from heron.errors import StoreError
from heron.sip.bindings import BindingCache
from heron.sip.errors import SipError
from heron.sip.message import Request, Response
from heron.sip.parser import Event, MessageLimits, parse_datagram
from heron.sip.registrar import Binding
from heron.sip.transports.flows import FlowTable, Source
from heron.sip.workers import fork_owner

__all__ = ["Sharing"]

log = logging.getLogger(__name__)

_IN, _OUT = "in", "out"
BRANCHES_KEPT = 10_000
"""Branches of requests sent over our connections for other processes, whose responses
go back to them (a transaction's life, 32 s, at a few hundred calls/s)."""


def flow_suffix(me: str) -> str:
    """Ends every flow token of process ``me``: unique across its restarts, and naming it."""
    return f"-{secrets.token_hex(3)}@{me}"


def owner_of(token: str) -> str | None:
    return token.rpartition("@")[2] or None if "@" in token else None


class Sharing:
    """One SIP process's side of the bus: relays, binding replicas, shared guesses."""

    def __init__(self, shared: Shared, config: Config, node: str, index: int) -> None:
        self.node, self.index, self.count = node, index, config.sip_workers
        self.me = f"{node}.{index}"
        self.bus = Bus(shared, self.me)
        self.location = SharedLocation(shared)
        self.guesses = SharedGuesses(shared, config.limits)
        self._writer = SetWriter(shared, self.location, self._announcement)
        self._sets: dict[str, tuple[Binding, ...]] = {}
        """Each AOR's set as every process last heard it, refresh fields blanked."""
        self._limits = MessageLimits()
        self._owners: dict[tuple[str, str, int], str] = {}
        """Address of a binding's connection held by another process, to that process."""
        self._held: dict[str, list[tuple[str, str, int]]] = {}
        """An AOR's addresses in :attr:`_owners`."""
        self._branches: OrderedDict[str, str] = OrderedDict()
        """Branches we sent over our connections for other processes, to them."""
        self._receive: Callable[[Event, Source], None] = lambda event, source: None
        self._flows = FlowTable()
        self._bindings: BindingCache | None = None
        self._ban: Callable[[str, float], None] = lambda source, until: None
        self.relayed = dict.fromkeys(("in_sent", "in_received", "out_sent", "out_received"), 0)

    async def start(
        self,
        receive: Callable[[Event, Source], None],
        flows: FlowTable,
        bindings: BindingCache,
        ban: Callable[[str, float], None],
    ) -> None:
        """``ban(source, until)`` applies a flood ban another process started."""
        self._receive, self._flows, self._bindings, self._ban = receive, flows, bindings, ban
        await self.bus.start(self._direct, self._everyone)

    async def stop(self) -> None:
        await self._writer.stop()
        await self.bus.stop()

    # --- bindings ---------------------------------------------------------------------

    async def load(self) -> list[Binding] | None:
        """Every binding Redis holds; None when it holds none (the database's are put in)."""
        found = await self.location.all()
        return found or None

    async def put(self, aor: str, bindings: Sequence[Binding]) -> None:
        """The AOR's new set, in Redis and in every process's replica, before the answer
        unless only its expiry moved (:class:`heron.cluster.SetWriter`). Redis failing
        leaves it to this process and the database (logged)."""
        self.learn(aor, bindings)
        shape = _shape(bindings)
        due = self._sets.get(aor) != shape
        self._sets[aor] = shape
        await self._writer.put(aor, bindings, due=due)

    def _announcement(self, aor: str, bindings: Sequence[Binding]) -> bytes:
        change = self.location.change(aor, bindings)
        return self._envelope({"k": "set", "from": self.me}, change)

    async def fetch(self, aor: str) -> list[Binding]:
        """The AOR's set as Redis has it; none when Redis fails (logged)."""
        try:
            return await self.location.get(aor)
        except (RedisError, OSError, StoreError) as exc:
            log.warning("sip: cannot read the bindings of %s: %s", aor, exc)
            return []

    def learn(self, aor: str, bindings: Sequence[Binding]) -> None:
        """Which of the AOR's connections other processes hold."""
        for key in self._held.pop(aor, ()):
            self._owners.pop(key, None)
        held = []
        for binding in bindings:
            received = binding.received
            owner = owner_of(received.flow)
            if received.transport != "udp" and owner is not None and owner != self.me:
                key = (received.transport, received.host, received.port)
                self._owners[key] = owner
                held.append(key)
        if held:
            self._held[aor] = held

    def banned(self, source: str, until: float) -> None:
        """A flood ban this process started holds in every other one too."""
        self.bus.broadcast(
            self._envelope({"k": "ban", "from": self.me}, f"{source} {until}".encode())
        )

    def holds(self, token: str) -> bool:
        """Whether another process (or node) holds the flow ``token`` names."""
        owner = owner_of(token)
        return owner is not None and owner != self.me

    def to(self, transport: str, host: str, port: int) -> RemoteFlow | None:
        """The connection to that address another process holds, as a flow of ours."""
        owner = self._owners.get((transport, host, port))
        if owner is None:
            return None
        return RemoteFlow(self, owner, transport, (host, port))

    # --- relays ---------------------------------------------------------------------------

    def send_out(
        self, owner: str, data: bytes, transport: str, destination: tuple[str, int]
    ) -> None:
        """Hand ``data`` to ``owner``, the process holding the connection to ``destination``."""
        header = {
            "k": _OUT,
            "from": self.me,
            "t": transport,
            "h": destination[0],
            "p": destination[1],
        }
        self.bus.send(owner, self._envelope(header, data))
        self.relayed["out_sent"] += 1

    def elsewhere(self, response: Response, source: Source) -> bool:
        """Send a response to the process whose branch it names, before any transaction
        of ours sees it; False when that is us (or no one)."""
        via = response.headers.top_via
        branch = via.branch if via is not None else None
        if branch is None:
            return False
        owner = self._branches.get(branch)
        if owner is None:
            index = fork_owner(branch, self.count)
            if index is None or index == self.index:
                return False
            owner = f"{self.node}.{index}"
        header = {
            "k": _IN,
            "t": source.transport,
            "h": source.host,
            "p": source.port,
            "f": source.flow,
            "lh": source.local_host,
            "lp": source.local_port,
        }
        self.bus.send(owner, self._envelope(header, response.encode()))
        self.relayed["in_sent"] += 1
        return True

    @staticmethod
    def _envelope(header: dict[str, Any], data: bytes) -> bytes:
        return json.dumps(header, separators=(",", ":")).encode() + b"\n" + data

    def _open(self, payload: bytes) -> tuple[dict[str, Any], bytes] | None:
        head, _, data = payload.partition(b"\n")
        try:
            header = json.loads(head)
        except ValueError:
            return None
        return (header, data) if isinstance(header, dict) else None

    def _direct(self, payload: bytes) -> None:
        opened = self._open(payload)
        if opened is None:
            return
        header, data = opened
        try:
            event = parse_datagram(data, self._limits)
            kind, transport, host, port = header["k"], header["t"], header["h"], int(header["p"])
            source = None
            if kind == _IN:
                source = Source(transport, host, port, header["f"], header["lh"], int(header["lp"]))
        except (SipError, KeyError, ValueError, TypeError):
            return  # not a message of heron's
        if source is not None and isinstance(event, Response):
            self.relayed["in_received"] += 1
            self._receive(event, source)
        elif kind == _OUT:
            flow = self._flows.here(transport, host, port)
            if flow is None:
                return  # the connection closed meanwhile: the sender's transaction times out
            self.relayed["out_received"] += 1
            if isinstance(event, Request) and (via := event.headers.top_via) and via.branch:
                self._remember(via.branch, str(header.get("from", "")))
            flow.send(data)

    def _remember(self, branch: str, process: str) -> None:
        if process:
            self._branches[branch] = process
            while len(self._branches) > BRANCHES_KEPT:
                self._branches.popitem(last=False)

    def _everyone(self, payload: bytes) -> None:
        opened = self._open(payload)
        if opened is None or self._bindings is None:
            return
        header, data = opened
        if header.get("from") == self.me:
            return
        if header.get("k") == "ban":
            source, _, until = data.decode(errors="replace").partition(" ")
            with contextlib.suppress(ValueError):
                self._ban(source, float(until))
            return
        if header.get("k") != "set":
            return
        try:
            aor, bindings = self.location.changed(data)
        except StoreError as exc:
            log.warning("sip: %s", exc)
            return
        self._bindings.apply(aor, bindings)
        self._sets[aor] = _shape(bindings)
        self.learn(aor, bindings)


def _shape(bindings: Sequence[Binding]) -> tuple[Binding, ...]:
    """The set without what a refresh changes (expiry, Call-ID and CSeq, time of writing):
    two sets of one shape reach the same phones the same way. Another process's copy of
    them lags by :data:`heron.cluster.writer.LAZY_DELAY` at most: a stale REGISTER that
    reaches that process within it passes the Call-ID and CSeq check (RFC 3261 §10.3
    step 7) it would fail here, and refreshes the binding once more."""
    return tuple(replace(b, expires_at=0.0, call_id="", cseq=0, updated_at=0.0) for b in bindings)


class RemoteFlow:
    """A connection another process holds: what is sent on it goes to that process."""

    __slots__ = ("_destination", "_owner", "_sharing", "token", "transport")

    def __init__(
        self, sharing: Sharing, owner: str, transport: str, destination: tuple[str, int]
    ) -> None:
        self._sharing, self._owner, self._destination = sharing, owner, destination
        self.token, self.transport = f"{transport}@{owner}", transport

    def send(self, data: bytes) -> None:
        self._sharing.send_out(self._owner, data, self.transport, self._destination)

    def close(self) -> None:
        """Another process's connection is that process's to close."""
