"""What one account may make heron's PEP keep (XEP-0163): items, nodes and bytes are
bounded, a refusal says why and is logged, and another account's private nodes stay
private; all against a running heron over its real listener."""

from __future__ import annotations

import re
from pathlib import Path

from tests.security.support import USERS, Target, target
from tests.security.xmpp_client import logged_in

PUBSUB = "http://jabber.org/protocol/pubsub"


def _publish(node: str, n: int, payload: str) -> bytes:
    return (
        f"<iq type='set' id='p{n}'><pubsub xmlns='{PUBSUB}'><publish node='{node}'>"
        f"<item id='i{n}'>{payload}</item></publish></pubsub></iq>"
    ).encode()


def _answer(n: int) -> re.Pattern[bytes]:
    iq_id = rb'id="p' + str(n).encode() + rb'"'
    return re.compile(rb"<iq [^>]*" + iq_id + rb"(?:[^>]*/>|.*?</iq>)", re.S)


async def test_pep_items_nodes_and_bytes_are_capped_per_account(tmp_path: Path) -> None:
    # 4.7 MB of publications: read at 64 KiB/s (the default) they would take over a minute.
    with target(tmp_path / "heron", {"xmpp": {"read_rate": 0}}) as heron:
        await _fill(heron)
    assert "PEP item refused to mallory@localhost" in heron.log()
    assert "PEP item of 2000" in heron.log()


async def _fill(heron: Target) -> None:
    async with logged_in(heron, "mallory", USERS["mallory"]) as mallory:
        # 200 KiB is under the stanza limit but over an item's 128 KiB.
        await mallory.send(_publish("big", 0, f"<x xmlns='urn:x'>{'a' * 200_000}</x>"))
        refused = (await mallory.until(_answer(0)))[0]
        assert b'type="error"' in refused and b"payload-too-big" in refused
        # 4 MiB per account: about 33 items of 120 KB, spread over nodes.
        answers = []
        for n in range(1, 40):
            await mallory.send(_publish(f"n{n}", n, f"<x xmlns='urn:x'>{'b' * 120_000}</x>"))
            answers.append((await mallory.until(_answer(n)))[0])
        kinds = [b'type="error"' in answer for answer in answers]
        assert kinds[:30] == [False] * 30 and kinds[-1]
        assert b"<resource-constraint " in answers[-1]


async def test_another_accounts_whitelist_node_is_not_readable(heron: Target) -> None:
    async with logged_in(heron, "roland", USERS["roland"]) as roland:
        await roland.send(
            f"<iq type='set' id='p1'><pubsub xmlns='{PUBSUB}'>"
            "<publish node='urn:xmpp:bookmarks:1'><item id='r@conference.localhost'>"
            "<conference xmlns='urn:xmpp:bookmarks:1' name='secret'/></item></publish>"
            "</pubsub></iq>".encode()
        )
        assert b'type="result"' in (await roland.until(_answer(1)))[0]
    async with logged_in(heron, "mallory", USERS["mallory"]) as mallory:
        await mallory.send(
            f"<iq type='get' id='p2' to='roland@localhost'><pubsub xmlns='{PUBSUB}'>"
            "<items node='urn:xmpp:bookmarks:1'/></pubsub></iq>".encode()
        )
        answer = (await mallory.until(_answer(2)))[0]
        assert b"<not-allowed " in answer and b"secret" not in answer
