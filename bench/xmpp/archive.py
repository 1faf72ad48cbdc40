"""heron's message archive store alone: archive writes per second on a fresh SQLite file.

Run from the repository root::

    .venv/bin/python -m bench.xmpp.archive                 # 5,000 writes, 20 at a time
    .venv/bin/python -m bench.xmpp.archive --writes 20000 --concurrency 1

Each write is what the router does for one archived message (XEP-0313): one
``SqlArchiveStore.append`` of a chat message of about 300 bytes with the default
per-archive limit (``xmpp.archive_max``), spread over 50 owners, ``--concurrency``
writes in flight. The end-to-end figure, messages through heron and through Prosody
with mod_mam, is ``python -m bench.xmpp --loads messages,muc --archive``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import secrets
import tempfile
import time
from pathlib import Path

from bench.report import emit
from heron.store import Database
from heron.store.archive import SqlArchiveStore
from heron.xmpp.archive import ArchivedItem
from heron.xmpp.jid import parse_jid

OWNERS = 50
MESSAGE = (
    '<message xmlns="jabber:client" type="chat" to="user{n}@localhost" '
    'from="user{m}@localhost/phone" id="{id}"><body>{body}</body>'
    '<origin-id xmlns="urn:xmpp:sid:0" id="{id}"/></message>'
)


async def measure(url: str, writes: int, concurrency: int, limit: int) -> float:
    """Writes per second of ``writes`` appends, ``concurrency`` at a time."""
    database = Database(url)
    await database.open()
    store = SqlArchiveStore(database)
    owners = [parse_jid(f"user{n}@localhost") for n in range(OWNERS)]
    counter = itertools.count()

    async def writer() -> None:
        while (n := next(counter)) < writes:
            body = f"message {n} " + "x" * 150
            stanza = MESSAGE.format(n=n % OWNERS, m=n + 1, id=secrets.token_hex(8), body=body)
            item = ArchivedItem(secrets.token_urlsafe(12), time.time(), stanza)
            await store.append(owners[n % OWNERS], owners[(n + 1) % OWNERS], item, limit)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(concurrency)))
        return writes / (time.perf_counter() - started)
    finally:
        await database.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--writes", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--limit", type=int, default=10_000, help="xmpp.archive_max (0: none)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-archive-") as workdir:
        url = f"sqlite:///{Path(workdir) / 'heron.db'}"
        rate = asyncio.run(measure(url, args.writes, args.concurrency, args.limit))
    emit(
        f"archive writes/s: {rate:,.0f} ({args.writes} writes, {args.concurrency} in flight, "
        f"limit {args.limit}, SQLite)"
    )


if __name__ == "__main__":
    main()
