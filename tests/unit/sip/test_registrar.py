"""The registrar core: REGISTER in, bindings and the answer out (RFC 3261 §10.3,
RFC 3327 Path, RFC 5626 reg-id and +sip.instance). No sockets, no clock: ``now``
is an argument and every test picks it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from email.utils import formatdate
from typing import Any

import pytest

from heron.sip import BadRequest, Request, Response, SipLocalError, parse_datagram
from heron.sip.registrar import (
    FIRST_HOP_LACKS_OUTBOUND,
    Binding,
    BindingSource,
    LocationStore,
    Registrar,
    Registration,
    lookup_targets,
    register,
)
from heron.store.memory import MemoryLocationStore

NOW = 1_767_323_045.0
AOR = "roland@falcot.com"
SOURCE = BindingSource("UDP", "198.51.100.7", 40123, "udp:198.51.100.7:40123")
PHONE = "<sip:roland@192.0.2.4:5060>"
LAPTOP = "<sip:roland@192.0.2.9:5062;transport=tcp>"
UUID = "<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"
INSTANCE = f'"{UUID}"'


def register_request(
    *contacts: str,
    call_id: str = "843817637684230@998sdasdh09",
    cseq: int = 1,
    expires: int | None = None,
    extra: Iterable[str] = (),
    proxies: int = 0,
) -> Request:
    """A REGISTER for roland@falcot.com as a UA writes it (RFC 3261 §10.2),
    through ``proxies`` proxies.
    """
    lines = [
        "REGISTER sip:falcot.com SIP/2.0",
        *(f"Via: SIP/2.0/UDP proxy{n}.falcot.com;branch=z9hG4bKp{n}" for n in range(proxies)),
        "Via: SIP/2.0/UDP 192.0.2.4:5060;rport;branch=z9hG4bKnashds7",
        "Max-Forwards: 70",
        "To: Roland <sip:roland@falcot.com>",
        "From: Roland <sip:roland@falcot.com>;tag=456248",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
        "User-Agent: Linphone/5.2",
        *(f"Contact: {contact}" for contact in contacts),
        *([] if expires is None else [f"Expires: {expires}"]),
        *extra,
        "Content-Length: 0",
        "",
        "",
    ]
    message = parse_datagram("\r\n".join(lines).encode())
    assert isinstance(message, Request)
    return message


def run(
    request: Request,
    bindings: Iterable[Binding] = (),
    now: float = NOW,
    registrar: Registrar = Registrar(),  # noqa: B008 - frozen, never mutated
) -> Registration:
    return registrar.register(request, AOR, bindings, SOURCE, now, to_tag="reg-tag")


def ok(registration: Registration) -> tuple[Binding, ...]:
    assert registration.response.status == 200, registration.response.reason
    assert registration.bindings is not None
    return registration.bindings


def refused(registration: Registration, status: int) -> Response:
    assert registration.response.status == status, registration.response.reason
    assert registration.bindings is None
    return registration.response


def answered(response: Response) -> dict[str, int | None]:
    """Contact URI -> expires parameter, as the 200 lists them."""
    return {str(c.uri): c.expires for c in response.headers.contacts}


def binding(contact: str = "sip:roland@192.0.2.4:5060", **changes: Any) -> Binding:
    fields: dict[str, Any] = {
        "aor": AOR,
        "contact": contact,
        "expires_at": NOW + 3600,
        "q": None,
        "call_id": "843817637684230@998sdasdh09",
        "cseq": 1,
        "received": SOURCE,
        "updated_at": NOW,
    }
    fields.update(changes)
    return Binding(**fields)


# RFC 3261 §10.3 step 7: adding and refreshing --------------------------------


def test_rfc3261_10_3_a_new_contact_is_bound_for_the_default_interval() -> None:
    registration = run(register_request(PHONE))
    (added,) = ok(registration)
    assert added == Binding(
        aor=AOR,
        contact="sip:roland@192.0.2.4:5060",
        expires_at=NOW + 3600,
        q=None,
        call_id="843817637684230@998sdasdh09",
        cseq=1,
        received=SOURCE,
        updated_at=NOW,
        user_agent="Linphone/5.2",
    )
    response = registration.response
    assert answered(response) == {"sip:roland@192.0.2.4:5060": 3600}
    assert response.headers.to.tag == "reg-tag"
    assert response.headers.call_id == "843817637684230@998sdasdh09"
    assert response.headers.get("Date") == formatdate(NOW, usegmt=True)


def test_rfc3261_10_3_step_7_a_refresh_updates_the_binding() -> None:
    (first,) = ok(run(register_request(PHONE)))
    later = NOW + 1800
    (refreshed,) = ok(run(register_request(PHONE, cseq=2), [first], now=later))
    assert refreshed.expires_at == later + 3600
    assert refreshed.cseq == 2
    assert refreshed.updated_at == later


def test_rfc3261_10_3_step_7_contact_uris_match_by_rfc3261_19_1_4() -> None:
    (first,) = ok(run(register_request("<sip:roland@192.0.2.4:5060;transport=UDP;ob>")))
    # Host case and one-sided ordinary parameters do not matter.
    same = register_request("<sip:roland@192.0.2.4:5060;transport=udp>", cseq=2)
    assert len(ok(run(same, [first]))) == 1
    # A port written out, a different user case or transport make a new binding.
    for other in (
        "<sip:roland@192.0.2.4>",
        "<sip:Roland@192.0.2.4:5060;transport=udp>",
        "<sip:roland@192.0.2.4:5060;transport=tcp>",
        "<sip:roland@192.0.2.4:5060>",
    ):
        assert len(ok(run(register_request(other, cseq=2), [first]))) == 2, other


def test_rfc3261_10_3_several_contacts_in_one_register() -> None:
    request = register_request(f"{PHONE}, {LAPTOP};q=0.5", "<sips:roland@phone.falcot.com>")
    registration = run(request)
    assert [b.contact for b in ok(registration)] == [
        "sip:roland@192.0.2.4:5060",
        "sip:roland@192.0.2.9:5062;transport=tcp",
        "sips:roland@phone.falcot.com",
    ]
    assert len(answered(registration.response)) == 3
    assert [c.q for c in registration.response.headers.contacts] == [None, 0.5, None]


def test_rfc3261_10_3_step_8_the_200_lists_every_binding_with_time_left() -> None:
    (phone,) = ok(run(register_request(PHONE)))
    laptop_request = register_request(LAPTOP, call_id="other-ua", expires=600)
    registration = run(laptop_request, [phone], now=NOW + 100)
    assert answered(registration.response) == {
        "sip:roland@192.0.2.4:5060": 3500,
        "sip:roland@192.0.2.9:5062;transport=tcp": 600,
    }


def test_rfc3261_10_3_a_register_without_contact_is_a_query() -> None:
    (phone,) = ok(run(register_request(PHONE)))
    registration = run(register_request(cseq=2), [phone], now=NOW + 600)
    assert ok(registration) == (phone,)
    assert answered(registration.response) == {"sip:roland@192.0.2.4:5060": 3000}


def test_rfc3261_10_3_expired_bindings_are_gone() -> None:
    (phone,) = ok(run(register_request(PHONE)))
    registration = run(register_request(cseq=2), [phone], now=NOW + 3600)
    assert ok(registration) == ()
    assert answered(registration.response) == {}
    # Gone means no ordering check against it either.
    assert len(ok(run(register_request(PHONE, cseq=1), [phone], now=NOW + 4000))) == 1


# RFC 3261 §10.3 step 7: the interval ------------------------------------------


def test_rfc3261_10_3_step_7_expires_param_beats_header_beats_default() -> None:
    request = register_request(f"{PHONE};expires=120", LAPTOP, expires=600)
    assert [b.expires_at - NOW for b in ok(run(request))] == [120, 600]
    assert [b.expires_at - NOW for b in ok(run(register_request(PHONE)))] == [3600]
    registrar = Registrar(default_expires=900)
    assert [b.expires_at - NOW for b in ok(run(register_request(PHONE), registrar=registrar))] == [
        900
    ]


def test_rfc3261_10_3_step_7_a_longer_interval_is_shortened_to_the_maximum() -> None:
    registration = run(register_request(PHONE, expires=86400))
    assert [b.expires_at - NOW for b in ok(registration)] == [3600]
    assert answered(registration.response) == {"sip:roland@192.0.2.4:5060": 3600}
    short = Registrar(default_expires=300, max_expires=300)
    assert [b.expires_at - NOW for b in ok(run(register_request(PHONE), registrar=short))] == [300]


def test_rfc3261_10_3_step_7_too_brief_is_423_with_min_expires() -> None:
    response = refused(run(register_request(PHONE, expires=30)), 423)
    assert response.reason == "Interval Too Brief"
    assert response.headers.get("Min-Expires") == "60"
    response = refused(run(register_request(f"{PHONE};expires=59", LAPTOP)), 423)
    strict = Registrar(min_expires=600)
    response = refused(run(register_request(PHONE, expires=300), registrar=strict), 423)
    assert response.headers.get("Min-Expires") == "600"
    assert len(ok(run(register_request(PHONE, expires=60)))) == 1


def test_rfc3261_10_3_step_7_423_only_below_one_hour() -> None:
    registrar = Registrar(min_expires=7200, default_expires=7200, max_expires=7200)
    (bound,) = ok(run(register_request(PHONE, expires=3600), registrar=registrar))
    assert bound.expires_at == NOW + 3600


def test_rfc3261_10_3_step_7_expires_zero_removes_that_binding() -> None:
    both = ok(run(register_request(PHONE, LAPTOP)))
    request = register_request(f"{PHONE};expires=0", cseq=2)
    registration = run(request, both, now=NOW + 10)
    assert [b.contact for b in ok(registration)] == ["sip:roland@192.0.2.9:5062;transport=tcp"]
    assert answered(registration.response) == {"sip:roland@192.0.2.9:5062;transport=tcp": 3590}
    # Removing what is not bound changes nothing and is no error.
    assert ok(run(register_request(PHONE, expires=0))) == ()


def test_rfc3261_10_3_step_7_removal_is_not_too_brief() -> None:
    assert ok(run(register_request(PHONE, expires=0), registrar=Registrar(min_expires=600))) == ()


# RFC 3261 §10.3 step 6: Contact: * ----------------------------------------------


def test_rfc3261_10_3_step_6_star_with_expires_zero_removes_all() -> None:
    both = ok(run(register_request(PHONE, LAPTOP)))
    other_ua = binding("sip:roland@203.0.113.5", call_id="elsewhere", cseq=900)
    registration = run(register_request("*", cseq=2, expires=0), [*both, other_ua])
    assert ok(registration) == ()
    assert registration.response.headers.get_all("Contact") == ()


@pytest.mark.parametrize("expires", [None, 3600, 1])
def test_rfc3261_10_3_step_6_star_needs_expires_zero(expires: int | None) -> None:
    (phone,) = ok(run(register_request(PHONE)))
    request = register_request("*", cseq=2, expires=expires)
    response = refused(run(request, [phone]), 400)
    assert response.reason == "Contact * needs Expires: 0"


def test_rfc3261_10_3_step_6_star_with_other_contacts_is_400() -> None:
    with pytest.raises(BadRequest) as raised:
        register_request("*", PHONE, expires=0)
    assert raised.value.status == 400
    # Handed over without the parser's checks, the registrar refuses it too.
    request = register_request("*", expires=0)
    for contacts in (("*", PHONE), (f"*, {PHONE}",)):
        headers = request.headers.remove("Contact")
        for contact in contacts:
            headers = headers.add("Contact", contact)
        refused(run(replace(request, headers=headers)), 400)


def test_rfc3261_10_3_step_6_star_obeys_cseq_order() -> None:
    phone = binding(cseq=5)
    refused(run(register_request("*", cseq=5, expires=0), [phone]), 500)
    assert ok(run(register_request("*", cseq=6, expires=0), [phone])) == ()
    other_call = register_request("*", call_id="new-call", cseq=1, expires=0)
    assert ok(run(other_call, [phone])) == ()


# RFC 3261 §10.3 step 7: Call-ID and CSeq ordering --------------------------------


@pytest.mark.parametrize("cseq", [4, 5])
def test_rfc3261_10_3_step_7_same_call_id_without_higher_cseq_fails(cseq: int) -> None:
    phone = binding(cseq=5)
    response = refused(run(register_request(PHONE, cseq=cseq), [phone]), 500)
    assert response.reason == "Out of Order REGISTER"
    # A removal is an update like any other.
    refused(run(register_request(PHONE, cseq=cseq, expires=0), [phone]), 500)


def test_rfc3261_10_3_step_7_a_failed_update_aborts_every_update() -> None:
    phone = binding(cseq=5)
    request = register_request(LAPTOP, PHONE, cseq=3)
    assert refused(run(request, [phone]), 500)


def test_rfc3261_10_3_step_7_higher_cseq_or_other_call_id_updates() -> None:
    phone = binding(cseq=5)
    (updated,) = ok(run(register_request(PHONE, cseq=6), [phone]))
    assert updated.cseq == 6
    (rebooted,) = ok(run(register_request(PHONE, call_id="after-reboot", cseq=1), [phone]))
    assert (rebooted.call_id, rebooted.cseq) == ("after-reboot", 1)


def test_rfc3261_10_3_step_7_the_same_contact_twice_in_one_request() -> None:
    (bound,) = ok(run(register_request(PHONE, f"{PHONE};expires=120")))
    assert bound.expires_at == NOW + 120


# q values --------------------------------------------------------------------------


def test_rfc3261_20_10_q_out_of_range_is_400() -> None:
    with pytest.raises(BadRequest):
        register_request(f"{PHONE};q=1.5")
    request = register_request(PHONE)
    for q in ("1.5", "-0.1", "high", "0.1234"):
        bad = replace(request, headers=request.headers.replace("Contact", f"{PHONE};q={q}"))
        response = refused(run(bad), 400)
        assert response.reason == "Bad Contact q value"


def test_rfc3261_20_10_q_is_stored_and_echoed() -> None:
    registration = run(register_request(f"{PHONE};q=0.7", f"{LAPTOP};q=1", "<sip:r@h>;q=0"))
    assert [b.q for b in ok(registration)] == [0.7, 1.0, 0.0]
    assert registration.response.headers.get_all("Contact") == (
        "<sip:roland@192.0.2.4:5060>;expires=3600;q=0.7",
        "<sip:roland@192.0.2.9:5062;transport=tcp>;expires=3600;q=1",
        "<sip:r@h>;expires=3600;q=0",
    )


# lookup_targets: what the proxy forks to (RFC 3261 §16.5, §16.6) -------------------


def test_rfc3261_16_6_targets_highest_q_first_expired_dropped() -> None:
    low = binding("sip:low@h", q=0.1)
    high = binding("sip:high@h", q=0.9)
    unset = binding("sip:unset@h", q=None)
    expired = binding("sip:gone@h", q=1.0, expires_at=NOW + 10)
    older = binding("sip:older@h", q=0.9, updated_at=NOW - 100)
    targets = lookup_targets([low, older, expired, high, unset], NOW + 10)
    assert [t.contact for t in targets] == [
        "sip:unset@h",
        "sip:high@h",
        "sip:older@h",
        "sip:low@h",
    ]
    assert lookup_targets([low, high], NOW + 3600) == []
    assert [t.contact for t in lookup_targets([expired], NOW + 9.5)] == ["sip:gone@h"]


def test_rfc3261_10_3_registered_contacts_are_the_fork_targets() -> None:
    request = register_request(f"{PHONE};q=0.2", f"{LAPTOP};q=0.8;expires=60")
    bound = ok(run(request))
    assert [str(t.uri) for t in lookup_targets(bound, NOW + 59)] == [
        "sip:roland@192.0.2.9:5062;transport=tcp",
        "sip:roland@192.0.2.4:5060",
    ]
    assert [str(t.uri) for t in lookup_targets(bound, NOW + 60)] == ["sip:roland@192.0.2.4:5060"]


# RFC 3327: Path ---------------------------------------------------------------------


PATH = ("Path: <sip:edge.falcot.com;lr>", "Path: <sip:P1.falcot.com;lr>, <sip:P2.falcot.com;lr>")


def test_rfc3327_5_3_path_is_stored_and_echoed_when_supported() -> None:
    request = register_request(PHONE, extra=("Supported: outbound, path", *PATH), proxies=2)
    registration = run(request)
    (bound,) = ok(registration)
    path = ("<sip:edge.falcot.com;lr>", "<sip:P1.falcot.com;lr>", "<sip:P2.falcot.com;lr>")
    assert bound.path == path
    assert registration.response.headers.split("Path") == path


def test_rfc3327_5_3_path_is_ignored_without_supported_path() -> None:
    request = register_request(PHONE, extra=("Supported: gruu", *PATH), proxies=2)
    registration = run(request)
    (bound,) = ok(registration)
    assert bound.path == ()
    assert "Path" not in registration.response.headers


# The binding limit ------------------------------------------------------------------


def test_binding_limit_drops_the_longest_unrefreshed() -> None:
    registrar = Registrar(max_contacts=2)
    first = binding("sip:first@h", call_id="c1", updated_at=NOW - 300)
    second = binding("sip:second@h", call_id="c2", updated_at=NOW - 200)
    request = register_request("<sip:third@h>", call_id="c3")
    kept = ok(run(request, [first, second], registrar=registrar))
    assert [b.contact for b in kept] == ["sip:second@h", "sip:third@h"]
    # A refresh of an existing binding does not push anything out.
    refresh = register_request("<sip:first@h>", call_id="c1", cseq=2)
    kept = ok(run(refresh, [first, second], registrar=registrar))
    assert [b.contact for b in kept] == ["sip:first@h", "sip:second@h"]


def test_binding_limit_a_register_over_it_alone_is_403() -> None:
    registrar = Registrar(max_contacts=2)
    request = register_request("<sip:a@h>", "<sip:b@h>", "<sip:c@h>")
    response = refused(run(request, registrar=registrar), 403)
    assert response.reason == "Too Many Contacts"
    default = [f"<sip:ua{n}@h>" for n in range(11)]
    refused(run(register_request(*default)), 403)
    assert len(ok(run(register_request(*default[:10])))) == 10


# RFC 5626: +sip.instance and reg-id ----------------------------------------------------


def outbound_contact(host: str, reg_id: int = 1, expires: str = "") -> str:
    return f"<sip:roland@{host};ob>;+sip.instance={INSTANCE};reg-id={reg_id}{expires}"


def test_rfc5626_6_instance_and_reg_id_name_the_binding() -> None:
    outbound = "Supported: path, outbound"
    request = register_request(outbound_contact("192.0.2.4"), extra=[outbound])
    registration = run(request)
    (flow,) = ok(registration)
    assert (flow.instance, flow.reg_id) == (UUID, 1)
    assert registration.response.headers.get("Require") == "outbound"
    (contact,) = registration.response.headers.contacts
    assert contact.params.get("+sip.instance") == INSTANCE
    assert contact.params.get("reg-id") == "1"
    # After a reboot the same instance and flow come back from a new address.
    moved = register_request(outbound_contact("192.0.2.77"), call_id="new", extra=[outbound])
    (replaced,) = ok(run(moved, [flow]))
    assert replaced.contact == "sip:roland@192.0.2.77;ob"
    # A second flow of the same instance is a second binding.
    second = register_request(outbound_contact("192.0.2.4", reg_id=2), cseq=2, extra=[outbound])
    assert [b.reg_id for b in ok(run(second, [flow]))] == [1, 2]


def test_rfc5626_6_reg_id_without_instance_is_400() -> None:
    response = refused(run(register_request(f"{PHONE};reg-id=1")), 400)
    assert response.reason == "reg-id without +sip.instance"
    refused(run(register_request(outbound_contact("192.0.2.4", reg_id=0))), 400)


def test_rfc5626_6_instance_without_reg_id_matches_by_uri() -> None:
    contact = f"{PHONE};+sip.instance={INSTANCE}"
    (bound,) = ok(run(register_request(contact)))
    assert (bound.instance, bound.reg_id) == (UUID, None)
    assert len(ok(run(register_request(contact, cseq=2), [bound]))) == 1


def test_rfc5626_6_not_first_hop_without_ob_path_is_439() -> None:
    extra = ("Supported: path, outbound", "Path: <sip:edge.falcot.com;lr>")
    request = register_request(outbound_contact("192.0.2.4"), extra=extra, proxies=1)
    response = refused(run(request), FIRST_HOP_LACKS_OUTBOUND)
    assert response.reason == "First Hop Lacks Outbound Support"


def test_rfc5626_6_not_first_hop_ignores_reg_id_from_a_ua_without_outbound() -> None:
    request = register_request(outbound_contact("192.0.2.4"), extra=["Supported: path"], proxies=1)
    registration = run(request)
    (bound,) = ok(registration)
    assert bound.reg_id is None
    assert bound.instance is not None
    assert "Require" not in registration.response.headers


def test_rfc5626_6_an_ob_path_makes_outbound_apply() -> None:
    extra = ("Supported: path, outbound", "Path: <sip:edge.falcot.com;lr;ob>")
    request = register_request(outbound_contact("192.0.2.4"), extra=extra, proxies=1)
    registration = run(request)
    (bound,) = ok(registration)
    assert bound.reg_id == 1
    assert bound.path == ("<sip:edge.falcot.com;lr;ob>",)
    assert registration.response.headers.get("Require") == "outbound"


# The shape of the core ---------------------------------------------------------------


def test_rfc3261_10_3_the_200_is_a_valid_response_on_the_wire() -> None:
    registration = run(register_request(f"{PHONE};q=0.5", outbound_contact("192.0.2.4")))
    parsed = parse_datagram(registration.response.encode())
    assert isinstance(parsed, Response)
    assert parsed.status == 200
    assert [str(c.uri) for c in parsed.headers.contacts] == [
        "sip:roland@192.0.2.4:5060",
        "sip:roland@192.0.2.4;ob",
    ]


def test_register_function_uses_default_settings() -> None:
    request = register_request(PHONE, expires=7200)
    (bound,) = ok(register(request, AOR, (), SOURCE, NOW, to_tag="t"))
    assert bound.expires_at == NOW + 3600
    longer = Registrar(min_expires=60, default_expires=7200, max_expires=7200)
    (bound,) = ok(register(request, AOR, (), SOURCE, NOW, to_tag="t", registrar=longer))
    assert bound.expires_at == NOW + 7200


def test_only_register_is_handled() -> None:
    options = register_request(PHONE)
    options = replace(options, method="OPTIONS")
    with pytest.raises(SipLocalError):
        run(options)


@pytest.mark.parametrize(
    "settings",
    [
        {"min_expires": 0},
        {"min_expires": 120, "default_expires": 60},
        {"default_expires": 7200},
        {"max_contacts": 0},
    ],
)
def test_registrar_settings_are_checked(settings: dict[str, int]) -> None:
    with pytest.raises(SipLocalError):
        Registrar(**settings)


@pytest.mark.parametrize(
    "changes",
    [{"q": 1.5}, {"cseq": -1}, {"cseq": 2**32}, {"reg_id": 1}, {"instance": "<x>", "reg_id": 0}],
)
def test_binding_is_validated_when_built(changes: dict[str, Any]) -> None:
    with pytest.raises(SipLocalError):
        binding(**changes)


def test_binding_time_left() -> None:
    bound = binding(expires_at=NOW + 100)
    assert bound.expires_in(NOW) == 100
    assert bound.expires_in(NOW + 99.6) == 0
    assert bound.expires_in(NOW + 500) == 0
    assert not bound.is_expired(NOW + 99.9)
    assert bound.is_expired(NOW + 100)


# The in-memory store ------------------------------------------------------------------


async def test_memory_store_round_trip_all_and_sweep() -> None:
    store: LocationStore = MemoryLocationStore()
    phone = binding()
    laptop = binding("sip:roland@192.0.2.9", expires_at=NOW + 60)
    other = binding(aor="lucy@falcot.com", contact="sip:lucy@192.0.2.5", expires_at=NOW + 30)
    await store.replace(AOR, [phone, laptop])
    await store.replace("lucy@falcot.com", [other])
    assert await store.get(AOR) == [phone, laptop]
    assert await store.all(NOW) == [other, phone, laptop]
    assert await store.all(NOW + 45) == [phone, laptop]
    assert await store.sweep(NOW + 60) == 2
    assert await store.get("lucy@falcot.com") == []
    assert await store.get(AOR) == [phone]
    await store.replace(AOR, [])
    assert await store.all(NOW) == []
    with pytest.raises(SipLocalError):
        await store.replace("lucy@falcot.com", [phone])


async def test_rfc3261_10_3_register_through_a_store() -> None:
    store = MemoryLocationStore()
    for cseq, contact in enumerate((PHONE, LAPTOP), start=1):
        registration = run(register_request(contact, cseq=cseq), await store.get(AOR))
        assert registration.bindings is not None
        await store.replace(AOR, registration.bindings)
    assert [str(t.uri) for t in lookup_targets(await store.get(AOR), NOW)] == [
        "sip:roland@192.0.2.4:5060",
        "sip:roland@192.0.2.9:5062;transport=tcp",
    ]
