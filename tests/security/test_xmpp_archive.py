"""Message archives (XEP-0313) under attack over real sockets: one account reading
another's archive, ids borrowed from another archive, forged stanza ids (XEP-0359), and
queries too large or malformed."""

from __future__ import annotations

import re
from pathlib import Path

from tests.security.support import USERS, Target, target
from tests.security.xmpp_client import Connection, logged_in

MAM = "urn:xmpp:mam:2"
SID = "urn:xmpp:sid:0"
_IQ = rb"^.*?<iq [^>]*id=\"%s\"[^>]*(/>|>.*?</iq>)"
"""The iq of an id, with what came before it (an archive's results)."""
_STANZA_ID = re.compile(rb"<stanza-id [^>]*/>")


async def answer(connection: Connection, id_: str, query: str, to: str = "") -> bytes:
    """Send an iq set carrying ``query`` (to ``to`` if given); the iq that answers it, and
    what arrived before it."""
    address = f" to='{to}'" if to else ""
    await connection.send(f"<iq type='set' id='{id_}'{address}>{query}</iq>".encode())
    return (await connection.until(re.compile(_IQ % id_.encode(), re.S)))[0]


def form(*fields: tuple[str, str]) -> str:
    values = "".join(f"<field var='{var}'><value>{value}</value></field>" for var, value in fields)
    return f"<x xmlns='jabber:x:data' type='submit'>{values}</x>"


async def chat(sender: Connection, receiver: Connection, to: str, body: str) -> bytes:
    """``body`` from ``sender`` to the account ``to``, as ``receiver`` gets it."""
    await sender.send(f"<message to='{to}' type='chat'><body>{body}</body></message>".encode())
    pattern = re.compile(
        rb"<message [^>]*>(?:(?!</message>).)*%s.*?</message>" % body.encode(), re.S
    )
    return (await receiver.until(pattern))[0]


async def test_an_account_cannot_read_another_accounts_archive(heron: Target) -> None:
    async with (
        logged_in(heron, "roland", USERS["roland"]) as roland,
        logged_in(heron, "mallory", USERS["mallory"]) as mallory,
    ):
        for connection in (roland, mallory):
            await connection.send(b"<presence/>")
        got = await chat(mallory, roland, "roland@localhost", "secret-for-roland")
        ids = _STANZA_ID.findall(got)
        assert len(ids) == 1 and b'by="roland@localhost"' in ids[0]
        roland_id = re.search(rb'id="([^"]+)"', ids[0])
        assert roland_id is not None
        stolen = roland_id[1].decode()

        # The archive of another account: forbidden, whatever the query says.
        refused = await answer(mallory, "q1", f"<query xmlns='{MAM}'/>", to="roland@localhost")
        assert b'type="error"' in refused and b"<forbidden " in refused
        # Nor does the form or the preferences leak.
        await mallory.send(
            f"<iq type='get' id='q2' to='roland@localhost'><prefs xmlns='{MAM}'/></iq>".encode()
        )
        prefs = (await mallory.until(re.compile(_IQ % b"q2", re.S)))[0]
        assert b"<forbidden " in prefs
        # An id from roland's archive means nothing in mallory's: paging from it is
        # item-not-found, and asking for it by id finds nothing.
        paged = await answer(
            mallory,
            "q3",
            f"<query xmlns='{MAM}'><set xmlns='http://jabber.org/protocol/rsm'>"
            f"<after>{stolen}</after></set></query>",
        )
        assert b"<item-not-found " in paged
        by_id = await answer(mallory, "q4", f"<query xmlns='{MAM}'>{form(('ids', stolen))}</query>")
        assert b'complete="true"' in by_id and b"<count>0</count>" in by_id
        assert b"secret-for-roland" not in by_id + paged + refused
        # Roland reads his own, by that id.
        mine = await answer(roland, "q5", f"<query xmlns='{MAM}'>{form(('ids', stolen))}</query>")
        assert b"<count>1</count>" in mine and b"secret-for-roland" in mine


async def test_a_forged_stanza_id_is_replaced(heron: Target) -> None:
    async with (
        logged_in(heron, "roland", USERS["roland"]) as roland,
        logged_in(heron, "mallory", USERS["mallory"]) as mallory,
    ):
        await roland.send(b"<presence/>")
        # XEP-0359 §3.3: a stanza-id claiming to be by roland's archive comes from mallory.
        await mallory.send(
            (
                "<message to='roland@localhost' type='chat'><body>forged</body>"
                f"<stanza-id xmlns='{SID}' by='roland@localhost' id='forged-id'/>"
                f"<stanza-id xmlns='{SID}' by='elsewhere.example' id='theirs'/>"
                "</message>"
            ).encode()
        )
        got = (await roland.until(re.compile(rb"<message [^>]*>.*?forged.*?</message>", re.S)))[0]
        ids = _STANZA_ID.findall(got)
        assert len(ids) == 2 and b"forged-id" not in got
        assert any(b'by="roland@localhost"' in found for found in ids)
        assert any(b'id="theirs"' in found for found in ids)  # not heron's to remove


async def test_huge_and_malformed_queries_are_capped_or_refused(tmp_path: Path) -> None:
    with target(tmp_path / "heron", {"xmpp": {"archive_page": 5}}) as heron:
        async with (
            logged_in(heron, "roland", USERS["roland"]) as roland,
            logged_in(heron, "mallory", USERS["mallory"]) as mallory,
        ):
            await roland.send(b"<presence/>")
            for n in range(12):
                await chat(mallory, roland, "roland@localhost", f"flood-{n:02}")
            rsm = "<set xmlns='http://jabber.org/protocol/rsm'><max>999999999</max></set>"
            capped = await answer(roland, "big", f"<query xmlns='{MAM}' queryid='x'>{rsm}</query>")
            # XEP-0059 §2.1: fewer than asked, and the client is told there are more.
            assert b"complete" not in capped and b"<count>12</count>" in capped
            assert len(re.findall(rb"<result ", capped)) == 5
            for name, query in (
                ("max-long", "<set xmlns='http://jabber.org/protocol/rsm'><max>1" + "0" * 40),
                ("max-minus", "<set xmlns='http://jabber.org/protocol/rsm'><max>-1"),
            ):
                refused = await answer(
                    roland, name, f"<query xmlns='{MAM}'>{query}</max></set></query>"
                )
                assert b"<bad-request " in refused, refused
            for name, fields in (
                ("unknown-field", form(("drop-table", "1"))),
                ("bad-start", form(("start", "yesterday"))),
                ("naive-start", form(("start", "2026-01-01T00:00:00"))),
                ("bad-with", form(("with", "@@@"))),
                ("form-type", form(("FORM_TYPE", "urn:xmpp:mam:1"))),
            ):
                refused = await answer(roland, name, f"<query xmlns='{MAM}'>{fields}</query>")
                assert b'type="error"' in refused, (name, refused)
            many = "".join(f"<value>i{n}</value>" for n in range(1000))
            ids = f"<x xmlns='jabber:x:data' type='submit'><field var='ids'>{many}</field></x>"
            refused = await answer(roland, "many-ids", f"<query xmlns='{MAM}'>{ids}</query>")
            assert b"<policy-violation " in refused
            # Still serving afterwards.
            fine = await answer(roland, "after", f"<query xmlns='{MAM}'/>")
            assert b'type="result"' in fine
