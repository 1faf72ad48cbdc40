"""slixmpp clients of the reference peers, and what the peers say about their s2s streams."""

from __future__ import annotations

import re
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, ExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slixmpp import JID

from tests.interop.xmpp.support import Client, log_out, login
from tests.support.federation.ca import CertFiles, TestCa
from tests.support.federation.dns import FederationDns
from tests.support.federation.reference import ReferenceServer

# Not .test: libunbound, Prosody's resolver, answers NXDOMAIN for .test itself (a locally
# served zone, RFC 6761) without asking any server. .example (RFC 2606) reaches the stub.
HERON_DOMAIN = "heron.example"
PROSODY_DOMAIN = "prosody.example"
EJABBERD_DOMAIN = "ejabberd.example"
PEER_USERS = {name: f"{name} secret" for name in ("alice", "bob", "carol", "dave", "erin")}
"""Accounts on every peer; each test keeps to its own, as peers live for a module."""


def _peer_tls(ca: TestCa, domain: str) -> CertFiles:
    """A valid certificate for ``domain`` and its ``conference.`` MUC service."""
    return ca.issue(domain, dns_ids=(domain, f"conference.{domain}"))


@dataclass
class StartPeer:
    """``start(domain, *, tls=None, **options)``: a Prosody or ejabberd for ``domain`` with
    MUC ``conference.DOMAIN`` and :data:`PEER_USERS`; ``tls`` defaults to a valid certificate,
    other options go to :func:`~tests.support.federation.reference.prosody` or
    :func:`~tests.support.federation.reference.ejabberd`. Stopped with the fixture."""

    run: Callable[..., AbstractContextManager[ReferenceServer]]
    directory: Path
    ca: TestCa
    dns: FederationDns
    stack: ExitStack
    started: list[ReferenceServer] = field(default_factory=list)

    def __call__(
        self, domain: str, *, tls: CertFiles | None = None, **options: Any
    ) -> ReferenceServer:
        options.setdefault("muc_domain", f"conference.{domain}")
        options.setdefault("users", PEER_USERS)
        server = self.stack.enter_context(
            self.run(
                self.directory / domain,
                domain,
                tls=tls or _peer_tls(self.ca, domain),
                cafile=self.ca.cafile,
                dns=self.dns,
                **options,
            )
        )
        self.started.append(server)
        return server


async def peer_login(
    server: ReferenceServer,
    user: str,
    resource: str = "test",
    *,
    check_hostname: bool = True,
    **options: Any,
) -> Client:
    """``user`` of a peer logged in over STARTTLS, the test CA trusted; ``check_hostname``
    false for a server whose certificate names another domain (other options as for
    :func:`tests.interop.xmpp.support.login`)."""
    context = ssl.create_default_context(cafile=str(server.cafile))
    context.check_hostname = check_hostname
    jid = server.jid(user, resource)
    return await login(jid, server.users[user], server.c2s_port, context, **options)


@asynccontextmanager
async def on_peers(
    *accounts: tuple[ReferenceServer, str], **options: Any
) -> AsyncIterator[list[Client]]:
    """Clients for ``(server, user)`` pairs (options as for :func:`peer_login`), logged out
    at the end."""
    clients: list[Client] = []
    try:
        for server, user in accounts:
            clients.append(await peer_login(server, user, **options))
        yield clients
    finally:
        await log_out(clients)


async def chat_both_ways(first: Client, second: Client) -> None:
    """A chat message from each to the other, each arriving from the right bare JID."""
    for sender, receiver in ((first, second), (second, first)):
        body = f"hello {receiver.boundjid.bare} from {sender.boundjid.bare}"
        sender.send_message(mto=receiver.boundjid.bare, mbody=body, mtype="chat")
        assert (await receiver.next_message(body))["from"].bare == sender.boundjid.bare


async def chat_in_room(room: JID, *occupants: tuple[Client, str]) -> None:
    """Each ``(client, nick)`` in ``room`` says something; every occupant hears it from the
    speaker's occupant JID (XEP-0045 §7.4)."""
    for speaker, nick in occupants:
        body = f"{nick} says hello"
        speaker.send_message(mto=room, mbody=body, mtype="groupchat")
        for client, _ in occupants:
            assert (await client.next_message(body))["from"] == JID(f"{room}/{nick}")


def prosody_s2s(server: ReferenceServer, remote: ReferenceServer) -> list[dict[str, str]]:
    """Prosody's live s2s sessions with ``remote`` from ``s2s:show()``: one dict per row, keyed
    by its header: Dir (``-->`` out, ``<--`` in), Security (TLS version), SASL (``Succeeded``
    is EXTERNAL, XEP-0178), Dialback (``Completed`` or ``Not used``), ... Only an outgoing
    stream shows dialback: an incoming one it authenticated has SASL empty and ``Not used``."""
    assert server.kind == "prosody"
    # Matched by Prosody, not on the Remote column: it cuts names past 22 characters.
    shown = server.ctl("shell", f's2s:show("{remote.domain}")')
    assert shown.returncode == 0, shown.stdout + shown.stderr
    rows = [[cell.strip() for cell in line.split("|")] for line in shown.stdout.splitlines()]
    rows = [row for row in rows if len(row) > 1]
    if not rows:
        return []
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


_EJABBERD_S2S = re.compile(
    r"Accepted (?P<dir>inbound|outbound) s2s (?P<method>\S+) authentication"
    r" (?P<local>\S+) -> (?P<remote>\S+)"
)


def ejabberd_s2s(server: ReferenceServer) -> set[tuple[str, str, str, str]]:
    """The s2s streams ejabberd authenticated, from its log: (``inbound``/``outbound``,
    ``EXTERNAL``/``dialback``, from domain, to domain)."""
    assert server.kind == "ejabberd"
    return {
        (m["dir"], m["method"], m["local"], m["remote"])
        for m in _EJABBERD_S2S.finditer(server.logs())
    }


def heron_s2s(server: ReferenceServer, remote: str | None = None) -> list[dict[str, str]]:
    """heron's live s2s streams (with the domain ``remote`` only, when given) from ``heron
    xmpp s2s``: one dict per row, keyed by its header: Dir (``out``, ``in``, ``out bidi``,
    ``in bidi``), Local, Remote (domains joined by ``, ``), Auth (``external`` is SASL
    EXTERNAL, XEP-0178; ``dialback``, XEP-0220; ``pending``), TLS, Address, Stanzas, Queued."""
    assert server.kind == "heron"
    shown = server.ctl("xmpp", "s2s")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    header, *lines = shown.stdout.splitlines()[:-1]  # the last line counts the streams
    # Columns are aligned under their headers; cells such as "a, b" hold single spaces.
    columns = [(found[0], found.start()) for found in re.finditer(r"\S+", header)]
    ends = [start for _, start in columns[1:]] + [None]
    rows = [
        {name: line[start:end].strip() for (name, start), end in zip(columns, ends, strict=True)}
        for line in lines
    ]
    return [row for row in rows if remote is None or remote in row["Remote"].split(", ")]


def heron_streams(server: ReferenceServer, remote: str) -> set[tuple[str, str]]:
    """(direction, auth) of heron's s2s streams with the domain ``remote``."""
    return {(row["Dir"], row["Auth"]) for row in heron_s2s(server, remote)}
