"""What one XMPP user, or a stranger, may cost the server and its log (issue 10, item 10).

Offline storage and group-chat rooms are bounded per account, so one account
cannot fill the disk or take every room; text a peer chooses cannot forge a
log line.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from tests.security.support import USERS, Target, target
from tests.security.xmpp_client import SASL, TIMEOUT, connected, logged_in

MUC = "conference.localhost"


async def _logged(heron: Target, text: str) -> None:
    """Wait for ``text`` in heron's log (it arrives through a pipe, a little later)."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while text not in heron.log():
        assert asyncio.get_running_loop().time() < deadline, f"{text!r} never logged"
        await asyncio.sleep(0.05)


async def test_a_peer_cannot_forge_log_lines(heron: Target) -> None:
    forged = "2026-01-01 00:00:00,000 CRITICAL heron.app: FORGED"
    async with connected(heron) as connection:
        await connection.open_stream()
        name, answer = await connection.sasl(
            f"<auth xmlns='{SASL}' mechanism='X&#13;&#10;{forged}'>=</auth>"
        )
        assert name == "failure" and b"<invalid-mechanism/>" in answer, answer
    await _logged(heron, "SASL failed")
    assert not any(line.startswith(forged) for line in heron.log().splitlines())
    assert "\\r\\n" + forged in heron.log()  # escaped, on the line of the failure


async def test_offline_messages_are_capped_per_account(tmp_path: Path) -> None:
    with target(tmp_path / "heron", {"xmpp": {"offline_limit": 3}}) as heron:
        async with logged_in(heron, "mallory", USERS["mallory"]) as mallory:
            for n in range(1, 5):
                await mallory.send(
                    f"<message to='roland@localhost' type='chat' id='m{n}'>"
                    f"<body>{'x' * 1000}</body></message>".encode()
                )
            bounce = await mallory.until(re.compile(rb"<message [^>]*type=\"error\".*?</message>"))
        assert b'id="m4"' in bounce[0]
        assert b"<service-unavailable " in bounce[0]
        assert b'type="error"' not in mallory.received  # m1 to m3 were kept


async def test_rooms_one_account_owns_are_capped(tmp_path: Path) -> None:
    with target(tmp_path / "heron", {"xmpp": {"rooms_per_user": 2}}) as heron:
        async with logged_in(heron, "mallory", USERS["mallory"]) as mallory:
            answers = []
            for n in range(1, 4):
                await mallory.send(
                    f"<presence to='room{n}@{MUC}/m'>"
                    "<x xmlns='http://jabber.org/protocol/muc'/></presence>".encode()
                )
                answers.append(
                    (await mallory.until(re.compile(rb"<presence [^>]*>.*?</presence>", re.S)))[0]
                )
            assert [b'type="error"' in answer for answer in answers] == [False, False, True]
            assert b"<resource-constraint " in answers[2]
        # Another account still creates rooms.
        async with logged_in(heron, "roland", USERS["roland"]) as roland:
            await roland.send(
                f"<presence to='room3@{MUC}/r'><x xmlns='http://jabber.org/protocol/muc'/>"
                "</presence>".encode()
            )
            answer = await roland.until(re.compile(rb"<presence [^>]*>.*?</presence>", re.S))
            assert b'type="error"' not in answer[0]
        assert "xmpp.rooms_per_user" in heron.log()


async def test_a_flooding_client_is_read_more_slowly(tmp_path: Path) -> None:
    # Prosody's mod_limits for c2s: past its rate (and a burst of one largest stanza, 256 KiB
    # by default) heron pauses reading that connection; the client's bytes wait in its socket.
    with target(tmp_path / "heron", {"xmpp": {"read_rate": 16_384}}) as heron:
        async with logged_in(heron, "mallory", USERS["mallory"]) as mallory:
            mallory.writer.write(b" " * 1_000_000)  # whitespace between stanzas is allowed
            await _logged(heron, "slowed to 16384 bytes/s (xmpp.read_rate)")
            # Everyone else is served meanwhile.
            async with logged_in(heron, "roland", USERS["roland"]):
                pass


async def test_a_client_that_never_acks_cannot_hold_memory(tmp_path: Path) -> None:
    """XEP-0198: a session that enabled stream management and never answers <r/> holds at
    most ``xmpp.sm_queue`` stanzas; the next ends its stream (Prosody's mod_smacks does so),
    and the messages it never acknowledged go to offline storage, not lost."""
    with target(tmp_path / "heron", {"xmpp": {"sm_queue": 5}}) as heron:
        async with logged_in(heron, "mallory", USERS["mallory"]) as hoarder:
            await hoarder.send(b"<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
            enabled = await hoarder.until(re.compile(rb"<enabled [^>]*id=\"([^\"]*)\"[^>]*/>"))
            assert re.fullmatch(rb"[A-Za-z0-9_-]{32,}", enabled[1])  # 192 random bits
            await hoarder.send(b"<presence/>")  # its own presence comes back: one unacked
            await hoarder.until(re.compile(rb"<presence [^>]*/>"))
            async with logged_in(heron, "roland", USERS["roland"]) as sender:
                for n in range(5):
                    await sender.send(
                        f"<message to='mallory@localhost' type='chat' id='m{n}'>"
                        f"<body>{n}</body></message>".encode()
                    )
                ended = await hoarder.closed()
        assert b"<resource-constraint " in ended
        async with logged_in(heron, "mallory", USERS["mallory"]) as later:
            await later.send(b"<presence/>")
            stored = await later.until(re.compile(rb"(<message .*?</message>\s*){5}", re.S))
        assert re.findall(rb"<body>(\d)</body>", stored[0]) == [b"0", b"1", b"2", b"3", b"4"]
