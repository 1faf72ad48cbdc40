"""CPU per SIP message in heron's parser and serialiser, without a network.

The messages are what sipp sends and heron answers in ``bench.sip``: the
REGISTER pair with its 401 and 200, and an INVITE through the proxy with the
edits a proxy makes (stamp the top Via, push its own Via and Record-Route,
decrement Max-Forwards). Branch, tag and Call-ID change with every message, as
they do on the wire, so the parsers' caches only help where a real run's would.

Run: ``python -m bench.sip.parse_cost [--count N] [--rounds R]``. Prints process CPU
microseconds (user + system, ``time.process_time``) per message for each case; the machine may be
loaded, so compare figures from one run, not across runs.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from bench.report import emit
from heron.sip.fields import Via, parse_address
from heron.sip.grammar import Params
from heron.sip.message import Request, Response
from heron.sip.parser import parse_datagram

REGISTER = (
    "REGISTER sip:localhost SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-{n}-1-0;rport\r\n"
    "From: <sip:user{u}@localhost>;tag={n}SIPpTag001\r\n"
    "To: <sip:user{u}@localhost>\r\n"
    "Call-ID: {n}-1@127.0.0.1\r\n"
    "CSeq: 2 REGISTER\r\n"
    "Contact: <sip:user{u}@127.0.0.1:5061;transport=UDP>\r\n"
    'Authorization: Digest username="user{u}",realm="localhost",'
    'nonce="dGhpcyBpcyBhIG5vbmNl{n}",uri="sip:localhost",'
    'response="0123456789abcdef0123456789abcdef",algorithm=MD5\r\n'
    "Max-Forwards: 70\r\n"
    "Expires: 3600\r\n"
    "Content-Length: 0\r\n\r\n"
)

SDP = (
    "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\n"
    "c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)

INVITE = (
    "INVITE sip:user{u}@localhost SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-{n}-1-2;rport\r\n"
    "From: <sip:caller{u}@localhost>;tag={n}SIPpTag001\r\n"
    "To: <sip:user{u}@localhost>\r\n"
    "Call-ID: {n}-1@127.0.0.1\r\n"
    "CSeq: 2 INVITE\r\n"
    "Contact: <sip:caller{u}@127.0.0.1:5061;transport=UDP>\r\n"
    "Max-Forwards: 70\r\n"
    "Content-Type: application/sdp\r\n"
    f"Content-Length: {len(SDP)}\r\n\r\n"
    f"{SDP}"
)

OK = (
    "SIP/2.0 200 OK\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK{n}c0ffee\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-{n}-1-2;rport=5061;received=127.0.0.1\r\n"
    "Record-Route: <sip:127.0.0.1:5060;lr>\r\n"
    "From: <sip:caller{u}@localhost>;tag={n}SIPpTag001\r\n"
    "To: <sip:user{u}@localhost>;tag={n}SIPpTag012\r\n"
    "Call-ID: {n}-1@127.0.0.1\r\n"
    "CSeq: 2 INVITE\r\n"
    "Contact: <sip:user{u}@127.0.0.1:5062;transport=UDP>\r\n"
    "Content-Type: application/sdp\r\n"
    f"Content-Length: {len(SDP)}\r\n\r\n"
    f"{SDP}"
)


def _messages(template: str, count: int) -> list[bytes]:
    return [template.format(n=n, u=n % 100).encode() for n in range(count)]


def _parse(data: list[bytes]) -> None:
    for message in data:
        parse_datagram(message)


def _register(data: list[bytes]) -> None:
    """What a registrar reads of a REGISTER, then its 200 on the wire."""
    for message in data:
        request = parse_datagram(message)
        assert isinstance(request, Request)
        request = request.received_from("127.0.0.1", 5061)
        headers = request.headers
        _ = (headers.call_id, headers.cseq, headers.to, headers.from_, headers.authorizations)
        _ = (headers.contacts, headers.expires, headers.top_via.branch)
        request.response(200, to_tag="abc", headers=[("Expires", "3600")]).encode()


_RECORD_ROUTE = parse_address("<sip:127.0.0.1:5060;lr>")


def _proxy_invite(data: list[bytes]) -> None:
    """An INVITE forwarded by a record-routing proxy, bytes in to bytes out."""
    for index, message in enumerate(data):
        request = parse_datagram(message)
        assert isinstance(request, Request)
        request = request.received_from("127.0.0.1", 5061)
        _ = (request.headers.call_id, request.headers.cseq, request.headers.top_via.branch)
        via = Via("UDP", "127.0.0.1", 5060, Params((("branch", f"z9hG4bK{index}"),)))
        request = request.decrement_max_forwards().push_record_route(_RECORD_ROUTE)
        request.push_via(via).encode()


def _proxy_response(data: list[bytes]) -> None:
    """A 200 to the INVITE forwarded back: parse, pop the top Via, encode."""
    for message in data:
        response = parse_datagram(message)
        assert isinstance(response, Response)
        _ = (response.headers.top_via.branch, response.headers.cseq)
        response.pop_via().encode()


CASES: dict[str, tuple[str, Callable[[list[bytes]], None]]] = {
    "parse REGISTER": (REGISTER, _parse),
    "parse INVITE": (INVITE, _parse),
    "parse 200": (OK, _parse),
    "register: parse+read+200 encode": (REGISTER, _register),
    "proxy INVITE: parse+edit+encode": (INVITE, _proxy_invite),
    "proxy 200: parse+pop+encode": (OK, _proxy_response),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000, help="messages per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the best is printed")
    args = parser.parse_args()
    for name, (template, run) in CASES.items():
        best = float("inf")
        for round_ in range(args.rounds):
            # A fresh offset each round: the caches see new texts, as on the wire.
            data = _messages(template.replace("{n}", f"{round_}x{{n}}"), args.count)
            before = time.process_time()
            run(data)
            best = min(best, (time.process_time() - before) / args.count)
        emit(f"{name:36} {best * 1e6:8.1f} us CPU per message")


if __name__ == "__main__":
    main()
