"""RFC 4475 torture tests: every message of the Appendix A archive, byte-exact.

``test_rfc4475`` runs each message through the datagram parser (and, when it
has a Content-Length, the stream framer fed whole and byte by byte) and checks
the outcome class; the ``test_rfc4475_<section>_<file>`` tests check what the
RFC says an element must notice about that message.
"""

import base64
import gzip
import io
import tarfile
from pathlib import Path

import pytest

from heron.sip import (
    AbsoluteUri,
    BadRequest,
    Event,
    Method,
    Request,
    Response,
    SipLocalError,
    SipUri,
    Status,
    StreamFramer,
    Transport,
    UnanswerableMessage,
    parse_datagram,
)

VECTORS = Path(__file__).parents[2] / "vectors" / "rfc4475"

VALID = "parses"
DROP = "dropped"

# (section, file, outcome): "parses", "dropped", or the status of the BadRequest.
CASES = [
    ("3.1.1.1", "wsinv", VALID),
    ("3.1.1.2", "intmeth", VALID),
    ("3.1.1.3", "esc01", VALID),
    ("3.1.1.4", "escnull", VALID),
    ("3.1.1.5", "esc02", VALID),
    ("3.1.1.6", "lwsdisp", VALID),
    ("3.1.1.7", "longreq", VALID),
    ("3.1.1.8", "dblreq", VALID),
    ("3.1.1.9", "semiuri", VALID),
    ("3.1.1.10", "transports", VALID),
    ("3.1.1.11", "mpart01", VALID),
    ("3.1.1.12", "unreason", VALID),
    ("3.1.1.13", "noreason", VALID),
    ("3.1.2.1", "badinv01", DROP),
    ("3.1.2.2", "clerr", 400),
    ("3.1.2.3", "ncl", 400),
    ("3.1.2.4", "scalar02", 400),
    ("3.1.2.5", "scalarlg", DROP),
    ("3.1.2.6", "quotbal", 400),
    ("3.1.2.7", "ltgtruri", 400),
    ("3.1.2.8", "lwsruri", 400),
    ("3.1.2.9", "lwsstart", 400),
    ("3.1.2.10", "trws", 400),
    ("3.1.2.11", "escruri", 400),
    ("3.1.2.12", "baddate", 400),
    ("3.1.2.13", "regbadct", 400),
    ("3.1.2.14", "badaspec", 400),
    ("3.1.2.15", "baddn", 400),
    ("3.1.2.16", "badvers", 505),
    ("3.1.2.17", "mismatch01", 400),
    ("3.1.2.18", "mismatch02", 400),
    ("3.1.2.19", "bigcode", DROP),
    ("3.2.1", "badbranch", VALID),
    ("3.3.1", "insuf", 400),
    ("3.3.2", "unkscm", VALID),
    ("3.3.3", "novelsc", VALID),
    ("3.3.4", "unksm2", VALID),
    ("3.3.5", "bext01", VALID),
    ("3.3.6", "invut", VALID),
    ("3.3.7", "regaut01", VALID),
    ("3.3.8", "multi01", 400),
    ("3.3.9", "mcl01", 400),
    ("3.3.10", "bcast", VALID),
    ("3.3.11", "zeromf", VALID),
    ("3.3.12", "cparam01", VALID),
    ("3.3.13", "cparam02", VALID),
    ("3.3.14", "regescrt", VALID),
    ("3.3.15", "sdp01", VALID),
    ("3.4.1", "inv2543", VALID),
    ("archive", "test", DROP),
]


def vector(name: str) -> bytes:
    return (VECTORS / f"{name}.dat").read_bytes()


def request(name: str) -> Request:
    message = parse_datagram(vector(name))
    assert isinstance(message, Request)
    return message


def response(name: str) -> Response:
    message = parse_datagram(vector(name))
    assert isinstance(message, Response)
    return message


def bad_request(name: str) -> BadRequest:
    with pytest.raises(BadRequest) as caught:
        parse_datagram(vector(name))
    return caught.value


def stream_events(data: bytes, chunk: int) -> list[Event]:
    framer, events = StreamFramer(), list[Event]()
    for start in range(0, len(data), chunk):
        framer.feed(data[start : start + chunk])
        while (event := framer.next_event()) is not None:
            events.append(event)
    return events


def test_rfc4475_appendix_a_archive_is_the_dat_files() -> None:
    archive = base64.b64decode((VECTORS / "appendix-a.b64").read_text(), validate=False)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(archive))) as tar:
        members = {Path(m.name).stem: tar.extractfile(m) for m in tar.getmembers() if m.isfile()}
        contents = {name: f.read() for name, f in members.items() if f is not None}
    assert contents == {path.stem: path.read_bytes() for path in VECTORS.glob("*.dat")}
    assert sorted(contents) == sorted(name for _, name, _ in CASES)


@pytest.mark.parametrize(
    ("name", "outcome"),
    [(name, outcome) for _, name, outcome in CASES],
    ids=[f"{section.replace('.', '_')}_{name}" for section, name, _ in CASES],
)
def test_rfc4475(name: str, outcome: str | int) -> None:
    data = vector(name)
    if outcome == VALID:
        message = parse_datagram(data)
        assert isinstance(message, Request | Response)
        again = parse_datagram(message.encode())
        assert isinstance(again, Request | Response) and again.encode() == message.encode()
        if has_content_length(data) and name != "dblreq":  # on a stream, §3.1.1.8's
            # trailing octets would be the next message
            assert stream_events(data, len(data)) == [again] == stream_events(data, 1)
    elif outcome == DROP:
        with pytest.raises(UnanswerableMessage):
            parse_datagram(data)
    else:
        assert bad_request(name).status == outcome


def has_content_length(data: bytes) -> bool:
    """Whether a stream could frame this message (RFC 3261 §18.3)."""
    head = data.split(b"\r\n\r\n")[0].lower()
    return any(f"\r\n{name}".encode() in head for name in ("content-length", "l:", "l :"))


def test_rfc4475_3_1_1_1_wsinv() -> None:
    message = request("wsinv")
    headers = message.headers
    assert message.method == Method.INVITE
    assert isinstance(message.uri, SipUri)
    assert message.uri.params.items == (("unknownparam", None),)
    assert headers.to.tag == "1918181833n"
    assert headers.from_.display_name == 'J Rosenberg \\"'
    assert headers.from_.tag == "98asjd8"
    assert headers.max_forwards == 68  # leading zeros
    assert (headers.cseq.seq, headers.cseq.method) == (9, "INVITE")
    # "Via" and "v" lines, one of them holding two comma-separated values.
    assert [(v.transport, v.sent_by, v.branch) for v in headers.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert headers.get("Subject") == ""
    assert headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    route = headers.routes[0].uri
    assert isinstance(route, SipUri) and route.lr
    assert route.params.get("unknownwith") == "value" and "unknown-no-value" in route.params
    (contact,) = headers.contacts
    assert contact.display_name == 'Quoted string ""'
    assert contact.params.get("newparam") == "newvalue" and "secondparam" in contact.params
    assert contact.q == 0.33
    assert len(message.body) == 150
    # Proxies forward the unknown field with its unusual value unchanged.
    assert b"\r\nUnknownHeaderWithUnusualValue: ;;,,;;,;\r\n" in message.encode()


def test_rfc4475_3_1_1_2_intmeth() -> None:
    message = request("intmeth")
    headers = message.headers
    assert message.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert message.method not in set(Method)
    assert isinstance(message.uri, SipUri)
    assert message.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert message.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert headers.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    assert headers.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert headers.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert headers.from_.params.get("fromParam''~+*_!.-%") == '"работающий"'
    assert headers.from_.tag == "_token~1'+`*%!-."
    assert headers.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert headers.cseq.method == message.method
    assert headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"


def test_rfc4475_3_1_1_3_esc01() -> None:
    message = request("esc01")
    headers = message.headers
    assert isinstance(message.uri, SipUri)
    assert message.uri.user == "sips:user@example.com"
    assert str(message.uri) == "sip:sips%3Auser%40example.com@example.net"
    assert headers.to.uri == SipUri("example.com", "user")
    assert headers.from_.uri == SipUri("example.net", "I have spaces")
    contact = headers.contacts[0].uri
    assert isinstance(contact, SipUri)
    assert contact.user == "caller" and contact.lr
    assert contact.params.get("name") == "value%41"  # unescaped once, never twice
    assert headers.call_id == "esc01.239409asdfakjkn23onasd0-3234"  # compact "i"
    assert headers.content_type == "application/sdp"  # compact "C"


def test_rfc4475_3_1_1_4_escnull() -> None:
    headers = request("escnull").headers
    assert isinstance(headers.to.uri, SipUri)
    assert headers.to.uri.user == "null-\x00-null"  # not shortened at the NUL
    users = [c.uri.user for c in headers.contacts if isinstance(c.uri, SipUri)]
    assert users == ["\x00", "\x00\x00"]  # two distinct bindings
    assert headers.content_length == 0  # compact "L"


def test_rfc4475_3_1_1_5_esc02() -> None:
    message = request("esc02")
    headers = message.headers
    assert message.method == "RE%47IST%45R"
    assert message.method not in set(Method)  # not REGISTER
    assert headers.to.display_name == headers.from_.display_name == "%Z%45"
    assert [str(c.uri) for c in headers.contacts] == [
        "sip:alias1@host1.example.com",
        "sip:alias3@host3.example.com",
    ]
    assert headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    assert headers.top_via.branch == "z9hG4bK209%fzsnel234"


def test_rfc4475_3_1_1_6_lwsdisp() -> None:
    from_ = request("lwsdisp").headers.from_
    assert (from_.display_name, str(from_.uri), from_.tag) == (
        "caller",
        "sip:caller@example.com",
        "323",
    )


def test_rfc4475_3_1_1_7_longreq() -> None:
    headers = request("longreq").headers
    assert headers.to.display_name == f"I have a user name of {'extreme' * 10} proportion"
    to = headers.to.uri
    assert isinstance(to, SipUri) and to.port == 6000
    assert to.params.get("unknownparam1") == f"very{'long' * 20}value"
    assert headers.from_.tag == f"12{'982' * 50}424"
    assert headers.call_id == f"longreq.one{'really' * 20}longcallid"
    assert headers.get(f"Unknown-{'Long' * 20}-Name") is not None
    vias = headers.vias  # every spelling: Via, v, V, ViA, VIA, via, "V :", ...
    assert [v.host for v in vias[:33]] == [f"sip{n}.example.com" for n in range(33, 0, -1)]
    assert vias[33].branch == f"very{'long' * 50}branchvalue"


def test_rfc4475_3_1_1_8_dblreq() -> None:
    message = request("dblreq")
    assert message.method == Method.REGISTER and message.body == b""
    assert b"INVITE" not in message.encode()  # the trailing octets are not forwarded


def test_rfc4475_3_1_1_9_semiuri() -> None:
    message = request("semiuri")
    assert isinstance(message.uri, SipUri)
    assert (message.uri.user, message.uri.host) == ("user;par=u@example.net", "example.com")
    assert message.uri.params.items == ()
    assert len(message.headers.split("Accept")) == 6  # folded over three lines


def test_rfc4475_3_1_1_10_transports() -> None:
    vias = request("transports").headers.vias
    assert [v.transport for v in vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert vias[2].transport == Transport.TLS and vias[3].transport not in set(Transport)


def test_rfc4475_3_1_1_11_mpart01() -> None:
    message = request("mpart01")
    via = message.headers.top_via
    assert "rport" in via.params and via.rport is None  # rport without a value
    assert message.headers.content_type == "multipart/mixed"
    assert len(message.body) == 553 and b"\x00" in message.body
    assert message.body.endswith(b"--7a9cbec02ceef655--\r\n")
    assert message.encode() == vector("mpart01")  # binary body framed, not decoded


def test_rfc4475_3_1_1_12_unreason() -> None:
    message = response("unreason")
    assert message.status == 200
    assert message.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"
    assert message.encode() == vector("unreason")


def test_rfc4475_3_1_1_13_noreason() -> None:
    message = response("noreason")
    assert (message.status, message.reason) == (100, "")
    assert message.encode().startswith(b"SIP/2.0 100 \r\n")


def test_rfc4475_3_1_2_1_badinv01() -> None:
    # RFC 4475 suggests a 400, but the Via it would be sent along is the
    # malformed field, so nothing can be answered (RFC 3261 §18.2.2).
    with pytest.raises(UnanswerableMessage) as caught:
        parse_datagram(vector("badinv01"))
    assert caught.value.reason == "Bad Via"


def test_rfc4475_3_1_2_2_clerr() -> None:
    error = bad_request("clerr")
    assert error.framing and error.reason == "Content-Length larger than datagram"
    # On a stream the element can only wait for the rest.
    assert stream_events(vector("clerr"), 64) == []


def test_rfc4475_3_1_2_3_ncl() -> None:
    assert bad_request("ncl").framing
    framer = StreamFramer()
    framer.feed(vector("ncl"))
    with pytest.raises(BadRequest) as first:
        framer.next_event()
    with pytest.raises(BadRequest) as again:  # not recoverable: close the connection
        framer.next_event()
    assert first.value is again.value and first.value.framing


def test_rfc4475_3_1_2_4_scalar02() -> None:
    error = bad_request("scalar02")
    assert error.reason == "Bad CSeq"
    assert "CSeq" not in error.headers and "Via" in error.headers


def test_rfc4475_3_1_2_5_scalarlg() -> None:
    with pytest.raises(UnanswerableMessage) as caught:  # a response is never answered
        parse_datagram(vector("scalarlg"))
    assert caught.value.reason == "Bad CSeq"


def test_rfc4475_3_1_2_6_quotbal() -> None:
    error = bad_request("quotbal")
    assert error.reason == "Bad To"
    assert "To" not in error.headers  # never copy the malformed field into the answer


def test_rfc4475_3_1_2_7_ltgtruri() -> None:
    assert bad_request("ltgtruri").reason == "Bad Request-URI"


def test_rfc4475_3_1_2_8_lwsruri() -> None:
    assert bad_request("lwsruri").reason == "Bad Request-Line"


def test_rfc4475_3_1_2_9_lwsstart() -> None:
    assert bad_request("lwsstart").reason == "Bad Request-Line"


def test_rfc4475_3_1_2_10_trws() -> None:
    assert bad_request("trws").reason == "Bad Request-Line"


def test_rfc4475_3_1_2_11_escruri() -> None:
    assert bad_request("escruri").reason == "Bad Request-URI"


def test_rfc4475_3_1_2_12_baddate() -> None:
    assert bad_request("baddate").reason == "Bad Date"


def test_rfc4475_3_1_2_13_regbadct() -> None:
    assert bad_request("regbadct").reason == "Bad Contact"


def test_rfc4475_3_1_2_14_badaspec() -> None:
    assert bad_request("badaspec").reason == "Bad To"


def test_rfc4475_3_1_2_15_baddn() -> None:
    # The file also lacks the empty line after its fields; the display name
    # is what the RFC tests, so it is the fault reported.
    error = bad_request("baddn")
    assert error.reason == "Bad From" and error.framing


def test_rfc4475_3_1_2_16_badvers() -> None:
    error = bad_request("badvers")
    assert (error.status, error.reason) == (Status.VERSION_NOT_SUPPORTED, "Version Not Supported")
    answer = Response.from_error(error, to_tag="t1")
    assert answer.encode().startswith(b"SIP/2.0 505 Version Not Supported\r\n")


def test_rfc4475_3_1_2_17_mismatch01() -> None:
    assert bad_request("mismatch01").reason == "CSeq method does not match"


def test_rfc4475_3_1_2_18_mismatch02() -> None:
    # 501 is preferred, 400 acceptable: the parser cannot know what is implemented.
    assert bad_request("mismatch02").reason == "CSeq method does not match"


def test_rfc4475_3_1_2_19_bigcode() -> None:
    with pytest.raises(UnanswerableMessage) as caught:
        parse_datagram(vector("bigcode"))
    assert caught.value.reason == "Bad Status-Line"


def test_rfc4475_3_2_1_badbranch() -> None:
    via = request("badbranch").headers.top_via
    assert via.branch == "z9hG4bK" and not via.has_rfc3261_branch


def test_rfc4475_3_3_1_insuf() -> None:
    error = bad_request("insuf")
    assert error.reason == "Missing From"
    answer = Response.from_error(error, to_tag="t1")
    assert [h.name for h in answer.headers] == ["Via", "CSeq"]


def test_rfc4475_3_3_2_unkscm() -> None:
    uri = request("unkscm").uri  # a proxy answers 416 Unsupported URI Scheme
    assert uri == AbsoluteUri("nobodyKnowsThisScheme", "totallyopaquecontent")


def test_rfc4475_3_3_3_novelsc() -> None:
    uri = request("novelsc").uri
    assert isinstance(uri, AbsoluteUri) and str(uri) == "soap.beep://192.0.2.103:3002"


def test_rfc4475_3_3_4_unksm2() -> None:
    headers = request("unksm2").headers
    assert headers.to.uri == AbsoluteUri("isbn", "2983792873")  # a registrar answers 400
    assert headers.from_.uri == AbsoluteUri("http", "//www.example.com")
    assert headers.contacts[0].uri == AbsoluteUri("name", "John_Smith")


def test_rfc4475_3_3_5_bext01() -> None:
    headers = request("bext01").headers
    assert headers.require == ("nothingSupportsThis", "nothingSupportsThisEither")
    assert headers.proxy_require == ("noProxiesSupportThis", "norDoAnyProxiesSupportThis")


def test_rfc4475_3_3_6_invut() -> None:
    message = request("invut")
    assert message.headers.content_type == "application/unknownformat"
    assert message.body.startswith(b"<audio>") and len(message.body) == 40


def test_rfc4475_3_3_7_regaut01() -> None:
    message = request("regaut01")
    (credentials,) = message.headers.authorizations
    assert credentials.scheme == "NoOneKnowsThisScheme"
    assert credentials.param("opaque-data") == "here"
    assert b"\r\nAuthorization: NoOneKnowsThisScheme opaque-data=here\r\n" in message.encode()


def test_rfc4475_3_3_8_multi01() -> None:
    assert bad_request("multi01").reason == "Multiple From"


def test_rfc4475_3_3_9_mcl01() -> None:
    error = bad_request("mcl01")
    assert error.reason == "Multiple Content-Length" and error.framing


def test_rfc4475_3_3_10_bcast() -> None:
    message = response("bcast")
    # After popping its own Via a proxy would send this to the broadcast address.
    assert message.pop_via().headers.top_via.host == "255.255.255.255"


def test_rfc4475_3_3_11_zeromf() -> None:
    message = request("zeromf")
    assert message.headers.max_forwards == 0
    with pytest.raises(SipLocalError):  # a proxy must answer 483 instead
        message.decrement_max_forwards()
    answer = message.response(Status.TOO_MANY_HOPS, to_tag="x1")
    assert answer.encode().startswith(b"SIP/2.0 483 Too Many Hops\r\n")


def test_rfc4475_3_3_12_cparam01() -> None:
    (contact,) = request("cparam01").headers.contacts
    assert isinstance(contact.uri, SipUri)
    assert "unknownparam" in contact.params and "unknownparam" not in contact.uri.params


def test_rfc4475_3_3_13_cparam02() -> None:
    (contact,) = request("cparam02").headers.contacts
    assert isinstance(contact.uri, SipUri)
    assert "unknownparam" in contact.uri.params and "unknownparam" not in contact.params


def test_rfc4475_3_3_14_regescrt() -> None:
    (contact,) = request("regescrt").headers.contacts  # compact "M"
    assert isinstance(contact.uri, SipUri)
    assert contact.uri.headers == (("Route", "<sip:sip.example.com>"),)
    assert str(contact.uri) == "sip:user@example.com?Route=%3Csip:sip.example.com%3E"


def test_rfc4475_3_3_15_sdp01() -> None:
    assert request("sdp01").headers.split("Accept") == ("text/nobodyKnowsThis",)


def test_rfc4475_3_4_1_inv2543() -> None:
    message = request("inv2543")
    headers = message.headers
    assert headers.top_via.branch is None and headers.from_.tag is None
    assert headers.content_length is None and len(message.body) == 105
    assert headers.max_forwards is None
    assert message.decrement_max_forwards().headers.max_forwards == 70
    assert b"\r\nContent-Length: 105\r\n\r\n" in message.encode()


def test_rfc4475_archive_test_dat() -> None:
    with pytest.raises(UnanswerableMessage) as caught:
        parse_datagram(vector("test"))
    assert caught.value.reason == "Not a SIP message"
