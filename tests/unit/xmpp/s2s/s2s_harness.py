"""Two S2SStream objects back to back in memory: falcot.com (heron) opens a stream to
example.org; TLS is simulated by calling start_tls_done on both ends."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from heron.xmpp.s2s import (
    DialbackVerifyNeeded,
    Role,
    S2SEvent,
    S2SStream,
    StartTlsRequested,
    key_matches,
)

FALCOT = "falcot.com"
CONFERENCE = "conference.falcot.com"
EXAMPLE = "example.org"
FALCOT_SECRET = b"falcot secret for dialback"
EXAMPLE_SECRET = b"example secret for dialback"


def outgoing(**options: object) -> S2SStream:
    arguments: dict[str, object] = {
        "role": Role.OUTGOING,
        "local_domains": [FALCOT, CONFERENCE],
        "stream_id": "",
        "local": FALCOT,
        "remote": EXAMPLE,
        "dialback_secret": FALCOT_SECRET,
    }
    arguments.update(options)
    return S2SStream(**arguments)  # type: ignore[arg-type]


def incoming(**options: object) -> S2SStream:
    arguments: dict[str, object] = {
        "role": Role.INCOMING,
        "local_domains": [EXAMPLE, "chat.example.org"],
        "stream_id": "D60000229F",
        "dialback_secret": EXAMPLE_SECRET,
    }
    arguments.update(options)
    return S2SStream(**arguments)  # type: ignore[arg-type]


def valid_for(*domains: str) -> Callable[[str], bool]:
    return lambda domain: domain in domains


@dataclass
class Pair:
    """The outgoing end (``out``) wired to the incoming end (``inc``).

    ``out_sees``/``inc_sees``: which domains each end's view of the peer's certificate
    names. ``auto_verify``: the incoming end's server answers dialback requests by
    asking falcot.com's secret, as the Authoritative Server would.
    """

    out: S2SStream = field(default_factory=outgoing)
    inc: S2SStream = field(default_factory=incoming)
    out_sees: Callable[[str], bool] = field(default_factory=lambda: valid_for(EXAMPLE))
    inc_sees: Callable[[str], bool] = field(default_factory=lambda: valid_for(FALCOT))
    auto_verify: bool = True
    chunk: int | None = None  # deliver the bytes in pieces of this size
    out_events: list[S2SEvent] = field(default_factory=list)
    inc_events: list[S2SEvent] = field(default_factory=list)
    wire_out: list[bytes] = field(default_factory=list)  # what falcot.com sent
    wire_in: list[bytes] = field(default_factory=list)  # what example.org sent

    def run(self) -> Pair:
        """start() the outgoing end and pump until nothing moves."""
        self.out.start()
        return self.pump()

    def pump(self, until: Callable[[], bool] | None = None) -> Pair:
        """Move bytes and events both ways until nothing moves, or ``until()`` holds
        after a round."""
        tls_requested = 0
        for _ in range(100):
            moved = False
            if data := self.out.data_to_send():
                self.wire_out.append(data)
                self._deliver(self.inc, data)
                moved = True
            if data := self.inc.data_to_send():
                self.wire_in.append(data)
                self._deliver(self.out, data)
                moved = True
            for stream, seen in ((self.out, self.out_events), (self.inc, self.inc_events)):
                while (event := stream.next_event()) is not None:
                    seen.append(event)
                    moved = True
                    if isinstance(event, StartTlsRequested):
                        tls_requested += 1
                    elif isinstance(event, DialbackVerifyNeeded) and self.auto_verify:
                        good = key_matches(
                            FALCOT_SECRET,
                            event.receiving,
                            event.originating,
                            event.stream_id,
                            event.key,
                        )
                        self.inc.dialback_verified(event.originating, event.receiving, good)
            if tls_requested == 2:
                tls_requested = 0
                self.inc.start_tls_done(self.inc_sees)
                self.out.start_tls_done(self.out_sees)
                moved = True
            if not moved or (until is not None and until()):
                return self
        raise AssertionError("the streams never settled")

    def _deliver(self, stream: S2SStream, data: bytes) -> None:
        step = self.chunk or len(data)
        for start in range(0, len(data), step):
            stream.receive_data(data[start : start + step])

    def sent_by_out(self) -> str:
        return b"".join(self.wire_out).decode()

    def sent_by_inc(self) -> str:
        return b"".join(self.wire_in).decode()
