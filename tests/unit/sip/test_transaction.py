"""The transaction layer of a stateful proxy (RFC 3261 §17, RFC 6026), with an injected clock.

Messages come from small text templates through the real parser; responses go
back through it too, as they would on the wire. Time is an argument: no test sleeps.
"""

from __future__ import annotations

import dataclasses
import gc
import types
from collections import deque
from dataclasses import dataclass

import pytest

from heron.sip import Request, Response, SipLocalError, parse_datagram
from heron.sip.transaction import (
    RETRY_AFTER,
    TRANSITIONS,
    AckReceived,
    Input,
    Kind,
    Outgoing,
    RequestReceived,
    RequestRefused,
    ResponseReceived,
    State,
    StrayResponse,
    Timer,
    TransactionError,
    TransactionEvent,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimeout,
    TransportFailed,
    Trigger,
)
from heron.sip.transaction_states import initial_state

UAC = ("198.51.100.7", 5060)  # where the upstream client's requests come from
NEXT_HOP = ("192.0.2.20", 5060)  # where the proxy forwards
BRANCH = "z9hG4bK74bf9"
OUR_BRANCH = "z9hG4bKp1"
ROUTE = "<sip:p2.example.com;lr>"


def request(
    method: str = "INVITE",
    *,
    vias: tuple[str, ...] = (f"SIP/2.0/UDP client.atlanta.example.com:5060;branch={BRANCH}",),
    cseq_method: str | None = None,
    to_tag: str | None = None,
    routes: tuple[str, ...] = (),
    uri: str = "sip:bob@biloxi.example.com",
) -> Request:
    to = "To: Bob <sip:bob@biloxi.example.com>" + (f";tag={to_tag}" if to_tag else "")
    lines = [
        f"{method} {uri} SIP/2.0",
        *(f"Via: {via}" for via in vias),
        "Max-Forwards: 69",
        *(f"Route: {route}" for route in routes),
        "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
        to,
        "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
        f"CSeq: 314159 {cseq_method or method}",
        "Content-Length: 0",
        "",
        "",
    ]
    message = parse_datagram("\r\n".join(lines).encode())
    assert isinstance(message, Request)
    return message


def incoming(
    method: str = "INVITE",
    branch: str | None = BRANCH,
    sent_by: str = "client.atlanta.example.com:5060",
    **fields: str | None,
) -> Request:
    """A request from the upstream client."""
    via = f"SIP/2.0/UDP {sent_by}" + (f";branch={branch}" if branch else "")
    return request(method, vias=(via,), **fields)  # type: ignore[arg-type]


def ack_from_uac(branch: str | None = BRANCH, to_tag: str = "b0b") -> Request:
    """An ACK for a final response: with the INVITE's branch it is the non-2xx one."""
    return incoming("ACK", branch, to_tag=to_tag)


def outgoing(method: str = "INVITE", branch: str = OUR_BRANCH) -> Request:
    """A request as the proxy forwards it: its Via on top, a Route to the next hop."""
    # One field line with both values, so "a single Via" means one value, not one line.
    vias = (
        f"SIP/2.0/UDP proxy.example.com;branch={branch},"
        f" SIP/2.0/UDP client.atlanta.example.com:5060;branch={BRANCH}",
    )
    return request(method, vias=vias, routes=(ROUTE,))


def reply(to: Request, status: int, tag: str = "b0b") -> Response:
    """The response to ``to``, through the wire and the parser."""
    message = parse_datagram(to.response(status, to_tag=tag).encode())
    assert isinstance(message, Response)
    return message


def transport(reliable: bool) -> str:
    return "TCP" if reliable else "UDP"


def on_wire(out: Outgoing) -> Request | Response:
    """What ``out`` sends: a finished transaction's retransmission carries bytes only."""
    if out.message is not None:
        assert out.data == out.message.encode()
        return out.message
    message = parse_datagram(out.data)
    assert isinstance(message, (Request, Response))
    return message


def sent(layer: TransactionLayer) -> list[Request | Response]:
    return [on_wire(out) for out in layer.messages_to_send()]


def statuses(layer: TransactionLayer) -> list[int | str]:
    return [m.status if isinstance(m, Response) else m.method for m in sent(layer)]


def run_timers(
    layer: TransactionLayer, until: float = 1e6
) -> tuple[list[tuple[float, Outgoing]], list[tuple[float, TransactionEvent]]]:
    """Fire every timer up to ``until`` as a punctual event loop would."""
    sends: list[tuple[float, Outgoing]] = []
    events: list[tuple[float, TransactionEvent]] = []
    while (when := layer.next_timer()) is not None and when <= until:
        events += [(when, event) for event in layer.handle_timer(when)]
        sends += [(when, out) for out in layer.messages_to_send()]
    return sends, events


# A transaction of each kind in each of its states ---------------------------------


@dataclass
class Run:
    kind: Kind
    layer: TransactionLayer
    tx: int
    request: Request
    reliable: bool

    def feed(self, message: Request | Response, now: float = 1.0) -> list[TransactionEvent]:
        return self.layer.receive(message, transport(self.reliable), self.reliable, UAC, now)


def start(kind: Kind, reliable: bool = False, **settings: float) -> Run:
    layer = TransactionLayer(**settings)  # type: ignore[arg-type]
    if kind.is_client:
        method = "INVITE" if kind.is_invite else "OPTIONS"
        message = outgoing(method)
        tx = layer.client_request(message, transport(reliable), reliable, NEXT_HOP, 0.0)
        layer.messages_to_send()
        return Run(kind, layer, tx, message, reliable)
    message = incoming("INVITE" if kind.is_invite else "REGISTER")
    (event,) = layer.receive(message, transport(reliable), reliable, UAC, 0.0)
    assert isinstance(event, RequestReceived)
    return Run(kind, layer, event.tx, message, reliable)


STATUS = {Input.PROVISIONAL: 180, Input.SUCCESS: 200, Input.FAILURE: 486}


def apply(run: Run, trigger: Trigger, now: float = 1.0) -> list[TransactionEvent]:
    """Drive ``trigger`` into the transaction the way the network, the TU or the clock would."""
    layer = run.layer
    if isinstance(trigger, Timer):
        return layer.handle_timer(layer.deadlines(run.tx)[trigger])
    if trigger is Input.REQUEST:
        return run.feed(run.request, now)
    if trigger is Input.ACK:
        return run.feed(ack_from_uac(), now)
    if trigger is Input.TRANSPORT_ERROR:
        return layer.transport_error(run.tx, now)
    status = STATUS[trigger]
    if run.kind.is_client:  # from downstream
        return run.feed(reply(run.request, status), now)
    return layer.server_respond(run.tx, run.request.response(status, to_tag="b0b"), now)


# Paths into every state (unreliable, so that Completed and Confirmed last).
PATHS: dict[tuple[Kind, State], tuple[Trigger, ...]] = {
    (Kind.INVITE_CLIENT, State.CALLING): (),
    (Kind.INVITE_CLIENT, State.PROCEEDING): (Input.PROVISIONAL,),
    (Kind.INVITE_CLIENT, State.COMPLETED): (Input.FAILURE,),
    (Kind.INVITE_CLIENT, State.ACCEPTED): (Input.SUCCESS,),
    (Kind.NON_INVITE_CLIENT, State.TRYING): (),
    (Kind.NON_INVITE_CLIENT, State.PROCEEDING): (Input.PROVISIONAL,),
    (Kind.NON_INVITE_CLIENT, State.COMPLETED): (Input.SUCCESS,),
    (Kind.INVITE_SERVER, State.PROCEEDING): (),
    (Kind.INVITE_SERVER, State.COMPLETED): (Input.FAILURE,),
    (Kind.INVITE_SERVER, State.CONFIRMED): (Input.FAILURE, Input.ACK),
    (Kind.INVITE_SERVER, State.ACCEPTED): (Input.SUCCESS,),
    (Kind.NON_INVITE_SERVER, State.TRYING): (),
    (Kind.NON_INVITE_SERVER, State.PROCEEDING): (Input.PROVISIONAL,),
    (Kind.NON_INVITE_SERVER, State.COMPLETED): (Input.SUCCESS,),
}


def reach(kind: Kind, state: State) -> Run:
    run = start(kind)
    for step in PATHS[kind, state]:
        apply(run, step, now=0.1)
    assert run.layer.state(run.tx) is state
    run.layer.messages_to_send()
    return run


def edge_id(edge: tuple[Kind, State, Trigger]) -> str:
    kind, state, trigger = edge
    name = f"Timer {trigger.value}" if isinstance(trigger, Timer) else trigger.value
    return f"{kind.value}: {state.value} + {name}"


@pytest.mark.parametrize("edge", list(TRANSITIONS), ids=edge_id)
def test_rfc3261_17_figures_5_to_8_and_rfc6026_every_edge(
    edge: tuple[Kind, State, Trigger],
) -> None:
    kind, state, trigger = edge
    run = reach(kind, state)
    events = apply(run, trigger)
    target = TRANSITIONS[edge]
    if target is State.TERMINATED:
        assert run.layer.state(run.tx) is None
        assert events[-1] == TransactionTerminated(run.tx)
        assert len(run.layer) == 0
    else:
        assert run.layer.state(run.tx) is target
        assert TransactionTerminated(run.tx) not in events


def test_rfc3261_17_every_state_of_each_machine_is_reached_and_left() -> None:
    for kind in Kind:
        states = {s for (k, s, _), t in TRANSITIONS.items() if k is kind} | {
            t for (k, _, _), t in TRANSITIONS.items() if k is kind
        }
        assert {s for (k, s) in PATHS if k is kind} == states - {State.TERMINATED}
        assert initial_state(kind) in states
        seen, todo = set(), deque([initial_state(kind)])
        while todo:
            state = todo.popleft()
            seen.add(state)
            todo.extend(
                t
                for (k, s, _), t in TRANSITIONS.items()
                if k is kind and s is state and t not in seen
            )
        assert seen == states  # every state reachable, Terminated among them
        assert not any(s is State.TERMINATED for (_, s, _) in TRANSITIONS)


def test_rfc3261_17_what_is_not_an_edge_is_dropped_or_refused() -> None:
    run = reach(Kind.INVITE_CLIENT, State.COMPLETED)
    assert run.feed(reply(run.request, 180)) == [] and sent(run.layer) == []
    assert run.layer.state(run.tx) is State.COMPLETED
    run = reach(Kind.INVITE_SERVER, State.COMPLETED)
    with pytest.raises(TransactionError, match="not allowed"):
        run.layer.server_respond(run.tx, run.request.response(200, to_tag="x"), 1.0)
    run = reach(Kind.INVITE_SERVER, State.ACCEPTED)
    with pytest.raises(TransactionError):
        run.layer.server_respond(run.tx, run.request.response(486, to_tag="x"), 1.0)
    assert run.layer.state(run.tx) is State.ACCEPTED and sent(run.layer) == []


# Timers -------------------------------------------------------------------------


def test_rfc3261_17_1_1_2_timer_a_doubles_without_cap_and_timer_b_times_out() -> None:
    run = start(Kind.INVITE_CLIENT)
    sends, events = run_timers(run.layer)
    assert [when for when, _ in sends] == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert all(out.message is run.request and out.destination == NEXT_HOP for _, out in sends)
    assert events == [
        (32.0, TransactionTimeout(run.tx, Timer.B)),
        (32.0, TransactionTerminated(run.tx)),
    ]


def test_rfc3261_17_1_1_2_timers_follow_t1() -> None:
    run = start(Kind.INVITE_CLIENT, t1=0.1, t2=0.4, t4=1.0)
    sends, events = run_timers(run.layer)
    assert [when for when, _ in sends] == pytest.approx([0.1, 0.3, 0.7, 1.5, 3.1, 6.3])
    assert [when for when, _ in events] == pytest.approx([6.4, 6.4])


def test_rfc3261_17_1_1_2_reliable_invite_is_not_retransmitted_but_times_out() -> None:
    run = start(Kind.INVITE_CLIENT, reliable=True)
    sends, events = run_timers(run.layer)
    assert sends == [] and events[0] == (32.0, TransactionTimeout(run.tx, Timer.B))


def test_rfc3261_17_1_1_2_timer_b_stops_once_proceeding() -> None:
    run = reach(Kind.INVITE_CLIENT, State.PROCEEDING)
    assert run.layer.deadlines(run.tx) == {} and run.layer.next_timer() is None


def test_rfc3261_17_1_2_2_timer_e_doubles_up_to_t2_and_timer_f_times_out() -> None:
    run = start(Kind.NON_INVITE_CLIENT)
    sends, events = run_timers(run.layer)
    assert [when for when, _ in sends] == [0.5, 1.5, 3.5, 7.5, *(11.5 + 4 * i for i in range(6))]
    assert events == [
        (32.0, TransactionTimeout(run.tx, Timer.F)),
        (32.0, TransactionTerminated(run.tx)),
    ]


def test_rfc3261_17_1_2_2_timer_e_is_t2_once_proceeding() -> None:
    run = start(Kind.NON_INVITE_CLIENT)
    apply(run, Input.PROVISIONAL, now=0.2)
    sends, events = run_timers(run.layer)
    assert [when for when, _ in sends] == [0.5, 4.5, 8.5, 12.5, 16.5, 20.5, 24.5, 28.5]
    assert events[0] == (32.0, TransactionTimeout(run.tx, Timer.F))


def test_rfc3261_17_1_2_2_reliable_request_is_not_retransmitted() -> None:
    run = start(Kind.NON_INVITE_CLIENT, reliable=True)
    assert run.layer.deadlines(run.tx) == {Timer.F: 32.0}


def test_rfc3261_17_2_1_timer_g_doubles_up_to_t2_and_timer_h_gives_up() -> None:
    run = start(Kind.INVITE_SERVER)
    run.layer.server_respond(run.tx, run.request.response(486, to_tag="b0b"), 1.0)
    assert statuses(run.layer) == [486]
    sends, events = run_timers(run.layer)
    assert [when for when, _ in sends] == [1.5, 2.5, 4.5, 8.5, *(12.5 + 4 * i for i in range(6))]
    assert {m.status for _, out in sends if isinstance(m := on_wire(out), Response)} == {486}
    assert events == [
        (33.0, TransactionTimeout(run.tx, Timer.H)),
        (33.0, TransactionTerminated(run.tx)),
    ]


def test_rfc3261_17_2_1_reliable_final_response_is_not_retransmitted() -> None:
    run = start(Kind.INVITE_SERVER, reliable=True)
    run.layer.server_respond(run.tx, run.request.response(486, to_tag="b0b"), 0.1)
    assert run.layer.deadlines(run.tx) == {Timer.H: pytest.approx(32.1)}


@pytest.mark.parametrize(
    ("reach_to", "trigger", "timer", "unreliable"),
    [
        ((Kind.INVITE_CLIENT, State.CALLING), Input.FAILURE, Timer.D, 32.0),
        ((Kind.NON_INVITE_CLIENT, State.TRYING), Input.SUCCESS, Timer.K, 5.0),
        ((Kind.INVITE_SERVER, State.COMPLETED), Input.ACK, Timer.I, 5.0),
        ((Kind.NON_INVITE_SERVER, State.TRYING), Input.SUCCESS, Timer.J, 32.0),
    ],
    ids=["D", "K", "I", "J"],
)
def test_rfc3261_17_absorbing_timers_run_on_unreliable_and_are_zero_on_reliable(
    reach_to: tuple[Kind, State], trigger: Input, timer: Timer, unreliable: float
) -> None:
    run = reach(*reach_to)
    apply(run, trigger, now=2.0)
    assert run.layer.deadlines(run.tx) == {timer: 2.0 + unreliable}
    kind, _ = reach_to
    run = start(kind, reliable=True)
    if reach_to[1] is State.COMPLETED:
        apply(run, Input.FAILURE, now=1.0)
    events = apply(run, trigger, now=2.0)
    assert events[-1] == TransactionTerminated(run.tx) and run.layer.state(run.tx) is None


def test_rfc3261_17_1_1_2_timer_d_is_never_shorter_than_64_t1() -> None:
    run = start(Kind.INVITE_CLIENT, t1=1.0, t2=4.0)
    apply(run, Input.FAILURE, now=1.0)
    assert run.layer.deadlines(run.tx) == {Timer.D: 65.0}


@pytest.mark.parametrize("reliable", [False, True])
def test_rfc6026_8_4_and_8_7_timers_m_and_l_last_64_t1(reliable: bool) -> None:
    client = start(Kind.INVITE_CLIENT, reliable)
    apply(client, Input.SUCCESS, now=1.0)
    assert client.layer.deadlines(client.tx) == {Timer.M: 33.0}
    server = start(Kind.INVITE_SERVER, reliable)
    apply(server, Input.SUCCESS, now=1.0)
    assert server.layer.deadlines(server.tx) == {Timer.L: 33.0}
    for run in (client, server):
        _, events = run_timers(run.layer)
        assert events == [(33.0, TransactionTerminated(run.tx))]


def test_rfc3261_17_timers_keep_their_schedule_when_handled_late() -> None:
    run = start(Kind.INVITE_CLIENT)
    assert run.layer.handle_timer(10.0) == []
    assert len(sent(run.layer)) == 4  # due at 0.5, 1.5, 3.5 and 7.5
    assert run.layer.next_timer() == 15.5


def test_rfc3261_17_stopped_timers_never_fire() -> None:
    run = start(Kind.INVITE_SERVER)
    run.layer.server_respond(run.tx, run.request.response(180, to_tag="b0b"), 0.1)
    assert run.layer.next_timer() is None and run.layer.handle_timer(100.0) == []
    assert statuses(run.layer) == [180]


# 100 Trying -----------------------------------------------------------------------


def test_rfc3261_17_2_1_trying_is_sent_after_200_ms_of_silence() -> None:
    run = start(Kind.INVITE_SERVER)
    assert sent(run.layer) == [] and run.layer.next_timer() == 0.2
    assert run.layer.handle_timer(0.2) == []
    (trying,) = sent(run.layer)
    assert isinstance(trying, Response) and trying.status == 100
    assert trying.headers.to.tag is None  # RFC 3261 §17.2.1: no tag in a 100
    run.feed(run.request, 0.5)
    assert statuses(run.layer) == [100]  # the retransmission gets it again


def test_rfc3261_17_2_1_no_trying_when_the_tu_answers_in_time() -> None:
    run = start(Kind.INVITE_SERVER)
    run.layer.server_respond(run.tx, run.request.response(407, to_tag="b0b"), 0.1)
    assert statuses(run.layer) == [407]
    sends, _ = run_timers(run.layer, until=0.3)
    assert sends == []


def test_rfc3261_17_2_1_trying_at_once_for_a_retransmission_or_when_configured() -> None:
    run = start(Kind.INVITE_SERVER)
    assert run.feed(run.request, 0.1) == []
    assert statuses(run.layer) == [100]
    assert run.layer.handle_timer(0.2) == [] and sent(run.layer) == []
    run = start(Kind.INVITE_SERVER, trying_delay=0)
    assert statuses(run.layer) == [100]


def test_rfc3261_16_2_no_trying_for_non_invite() -> None:
    run = start(Kind.NON_INVITE_SERVER)
    assert run.layer.next_timer() is None and sent(run.layer) == []


# Retransmissions ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "responses", "resent"),
    [
        (Kind.INVITE_SERVER, (180,), [180]),
        (Kind.INVITE_SERVER, (180, 486), [486]),
        (Kind.INVITE_SERVER, (180, 200), []),  # RFC 6026 §8.7: the UAS retransmits the 2xx
        (Kind.NON_INVITE_SERVER, (), []),  # §17.2.2: discarded in Trying
        (Kind.NON_INVITE_SERVER, (100,), [100]),
        (Kind.NON_INVITE_SERVER, (100, 200), [200]),
    ],
)
def test_rfc3261_17_2_request_retransmissions_get_the_last_response(
    kind: Kind, responses: tuple[int, ...], resent: list[int]
) -> None:
    run = start(kind, trying_delay=0)
    for status in responses:
        run.layer.server_respond(run.tx, run.request.response(status, to_tag="b0b"), 0.1)
    state = run.layer.state(run.tx)
    run.layer.messages_to_send()
    assert run.feed(run.request, 0.3) == []
    assert statuses(run.layer) == resent and run.layer.state(run.tx) is state


def test_rfc3261_17_2_1_confirmed_absorbs_acks_and_invites() -> None:
    run = reach(Kind.INVITE_SERVER, State.CONFIRMED)
    assert run.feed(ack_from_uac()) == [] and run.feed(run.request) == []
    assert sent(run.layer) == [] and run.layer.state(run.tx) is State.CONFIRMED


def test_rfc3261_17_1_2_2_completed_absorbs_final_responses() -> None:
    run = reach(Kind.NON_INVITE_CLIENT, State.COMPLETED)
    assert run.feed(reply(run.request, 200)) == [] and sent(run.layer) == []


# ACK --------------------------------------------------------------------------------


def test_rfc3261_17_1_1_3_ack_for_a_non_2xx_final_response() -> None:
    run = start(Kind.INVITE_CLIENT)
    response = reply(run.request, 486, tag="8321234356")
    assert run.feed(response) == [ResponseReceived(run.tx, response)]
    (out,) = run.layer.messages_to_send()
    ack = parse_datagram(out.data)
    assert out.message is not None and out.data == out.message.encode()
    assert isinstance(ack, Request)
    assert (out.destination, out.transport, out.tx) == (NEXT_HOP, "UDP", run.tx)
    invite = run.request.headers
    assert ack.method == "ACK" and ack.uri == run.request.uri
    assert ack.headers.get_all("Via") == (f"SIP/2.0/UDP proxy.example.com;branch={OUR_BRANCH}",)
    assert ack.headers.get_all("Route") == (ROUTE,)
    assert ack.headers.get("From") == invite.get("From")
    assert ack.headers.get("To") == response.headers.get("To")
    assert ack.headers.to.tag == "8321234356"
    assert ack.headers.call_id == invite.call_id
    assert str(ack.headers.cseq) == "314159 ACK"
    assert ack.headers.max_forwards == 69 and ack.body == b""
    # A retransmitted final response is acknowledged again, the TU hears nothing.
    assert run.feed(response, 2.0) == []
    assert [o.data for o in run.layer.messages_to_send()] == [out.data]


def test_rfc3261_17_1_1_3_no_ack_from_the_transaction_for_a_2xx() -> None:
    run = start(Kind.INVITE_CLIENT)
    run.feed(reply(run.request, 200))
    assert sent(run.layer) == []


def test_rfc3261_17_2_1_ack_for_a_non_2xx_is_absorbed() -> None:
    run = reach(Kind.INVITE_SERVER, State.COMPLETED)
    assert run.feed(ack_from_uac()) == []
    assert run.layer.state(run.tx) is State.CONFIRMED
    assert run.layer.deadlines(run.tx) == {Timer.I: 6.0}


def test_rfc3261_17_2_3_ack_for_a_2xx_passes_to_the_proxy_core() -> None:
    run = reach(Kind.INVITE_SERVER, State.ACCEPTED)
    ack = ack_from_uac(branch="z9hG4bKnewack")  # RFC 3261 §13.2.2.4: its own transaction
    assert run.feed(ack) == [AckReceived(ack, "UDP", UAC, None)]
    assert len(run.layer) == 1
    same_branch = ack_from_uac()
    assert run.feed(same_branch) == [AckReceived(same_branch, "UDP", UAC, run.tx)]
    layer = TransactionLayer()
    assert layer.receive(ack, "UDP", False, UAC, 0.0) == [AckReceived(ack, "UDP", UAC, None)]
    assert len(layer) == 0 and layer.next_timer() is None


# Matching -------------------------------------------------------------------------


def test_rfc3261_17_1_3_response_needs_branch_and_cseq_method() -> None:
    run = start(Kind.INVITE_CLIENT)
    wrong_branch = reply(outgoing(branch="z9hG4bKother"), 180)
    wrong_method = reply(outgoing("CANCEL"), 200)
    no_branch = reply(request(vias=("SIP/2.0/UDP proxy.example.com",)), 180)
    for response in (wrong_branch, wrong_method, no_branch):
        assert run.feed(response) == []  # no transaction of ours: dropped
    assert run.layer.state(run.tx) is State.CALLING


def test_rfc3261_17_1_3_branch_compares_case_insensitively() -> None:
    run = start(Kind.INVITE_CLIENT)
    response = reply(outgoing(branch=OUR_BRANCH.upper()), 180)
    assert run.feed(response) == [ResponseReceived(run.tx, response)]


def test_rfc3261_9_1_cancel_is_its_own_client_transaction_on_the_same_branch() -> None:
    run = reach(Kind.INVITE_CLIENT, State.PROCEEDING)
    cancel = outgoing("CANCEL")
    cancel_tx = run.layer.client_request(cancel, "UDP", False, NEXT_HOP, 1.0)
    assert cancel_tx != run.tx
    ok = reply(cancel, 200)
    terminated = reply(run.request, 487)
    assert run.feed(ok, 1.1) == [ResponseReceived(cancel_tx, ok)]
    assert run.feed(terminated, 1.2) == [ResponseReceived(run.tx, terminated)]


def test_rfc3261_17_2_3_request_matching_needs_branch_sent_by_and_method() -> None:
    run = start(Kind.INVITE_SERVER)
    assert run.feed(incoming(), 0.1) == []  # the retransmission
    others = (
        incoming(branch="z9hG4bKother"),
        incoming(sent_by="evil.example.com:5060"),
        incoming("OPTIONS"),
    )
    for other in others:
        (event,) = run.feed(other, 0.1)
        assert isinstance(event, RequestReceived) and event.tx != run.tx
    assert len(run.layer) == 4


def test_rfc3261_9_2_cancel_targets_the_invite_server_transaction() -> None:
    run = start(Kind.INVITE_SERVER)
    cancel = incoming("CANCEL")
    (event,) = run.feed(cancel, 0.1)
    assert isinstance(event, RequestReceived) and event.tx != run.tx
    assert run.layer.cancel_target(cancel) == run.tx
    assert run.layer.cancel_target(incoming("CANCEL", branch="z9hG4bKother")) is None
    assert run.layer.cancel_target(incoming("CANCEL", sent_by="evil.example.com")) is None
    with pytest.raises(TransactionError):
        run.layer.cancel_target(run.request)
    run.layer.transport_error(run.tx, 0.2)
    assert run.layer.cancel_target(cancel) is None


@pytest.mark.parametrize("branch", [None, "1234abcd"], ids=["no branch", "no magic cookie"])
def test_rfc3261_17_2_3_rfc2543_requests_are_matched_the_old_way(branch: str | None) -> None:
    layer = TransactionLayer()
    invite = incoming(branch=branch, sent_by="old.example.com")
    (event,) = layer.receive(invite, "UDP", False, UAC, 0.0)
    assert isinstance(event, RequestReceived)
    tx = event.tx
    assert layer.receive(invite, "UDP", False, UAC, 0.1) == []
    cancel = incoming("CANCEL", branch=branch, sent_by="old.example.com")
    assert layer.cancel_target(cancel) == tx
    layer.server_respond(tx, invite.response(486, to_tag="b0b"), 0.2)
    wrong_tag = incoming("ACK", branch=branch, sent_by="old.example.com", to_tag="other")
    assert layer.receive(wrong_tag, "UDP", False, UAC, 0.3) == [
        AckReceived(wrong_tag, "UDP", UAC, None)
    ]
    ack = incoming("ACK", branch=branch, sent_by="old.example.com", to_tag="b0b")
    assert layer.receive(ack, "UDP", False, UAC, 0.3) == []
    assert layer.state(tx) is State.CONFIRMED


# Stray responses ----------------------------------------------------------------------


def test_rfc6026_7_2_a_2xx_after_timer_m_matches_nothing_and_is_dropped() -> None:
    run = reach(Kind.INVITE_CLIENT, State.ACCEPTED)
    again = reply(run.request, 200)
    assert run.feed(again) == [ResponseReceived(run.tx, again)]  # RFC 6026: to the TU
    run_timers(run.layer)
    # The transaction is gone: relaying responses no transaction of ours expects would
    # make the proxy a reflector.
    assert run.feed(again, 40.0) == []


def test_rfc3261_16_7_a_2xx_after_a_non_2xx_final_is_stray_not_lost() -> None:
    run = reach(Kind.INVITE_CLIENT, State.COMPLETED)
    ok = reply(run.request, 200, tag="fork2")
    assert run.feed(ok) == [StrayResponse(ok, "UDP", UAC)]
    assert run.layer.state(run.tx) is State.COMPLETED


# A whole call through the proxy -------------------------------------------------------


def test_rfc6026_proxy_forwards_every_2xx_and_forgets_everything() -> None:
    layer = TransactionLayer()
    invite = incoming()
    (received,) = layer.receive(invite, "UDP", False, UAC, 0.0)
    assert isinstance(received, RequestReceived)
    server = received.tx
    client = layer.client_request(outgoing(), "TCP", True, NEXT_HOP, 0.01)
    for now, status in ((0.5, 180), (2.0, 200), (2.5, 200)):  # the last one retransmitted
        response = reply(outgoing(), status)
        (event,) = layer.receive(response, "TCP", True, NEXT_HOP, now)
        assert event == ResponseReceived(client, response)
        layer.server_respond(server, response.pop_via(), now)
    outs = layer.messages_to_send()
    assert [(o.destination, o.transport, o.tx) for o in outs] == [
        (NEXT_HOP, "TCP", client),
        *[(UAC, "UDP", server)] * 3,
    ]
    assert [o.message.status for o in outs[1:] if isinstance(o.message, Response)] == [
        180,
        200,
        200,
    ]
    assert all(o.message is not None and o.data == o.message.encode() for o in outs)
    assert layer.state(server) is layer.state(client) is State.ACCEPTED
    ack = ack_from_uac(branch="z9hG4bKack2xx")
    assert layer.receive(ack, "UDP", False, UAC, 2.6) == [AckReceived(ack, "UDP", UAC, None)]
    _, events = run_timers(layer)
    assert {e for _, e in events} == {TransactionTerminated(server), TransactionTerminated(client)}
    assert [when for when, _ in events] == [34.0, 34.0]
    assert len(layer) == 0 and layer.next_timer() is None


# Bounds, errors, shapes -----------------------------------------------------------------


def test_rfc3261_21_5_4_over_the_limit_new_requests_get_a_stateless_503() -> None:
    layer = TransactionLayer(max_transactions=1, trying_delay=0)
    first = incoming()
    layer.receive(first, "UDP", False, UAC, 0.0)
    layer.messages_to_send()
    second = incoming("OPTIONS", branch="z9hG4bKsecond")
    (refused,) = layer.receive(second, "UDP", False, UAC, 0.1)
    assert isinstance(refused, RequestRefused) and refused.request == second
    (out,) = layer.messages_to_send()
    assert out.message == refused.response and (out.destination, out.tx) == (UAC, None)
    assert refused.response.status == 503
    assert refused.response.headers.get("Retry-After") == str(RETRY_AFTER)
    tag = refused.response.headers.to.tag
    assert tag  # RFC 3261 §8.2.7: the same request gets the same tag
    (again,) = layer.receive(second, "UDP", False, UAC, 0.2)
    assert isinstance(again, RequestRefused) and again.response.headers.to.tag == tag
    assert layer.receive(first, "UDP", False, UAC, 0.3) == []  # still its own transaction
    ack = ack_from_uac(branch="z9hG4bKack")
    assert layer.receive(ack, "UDP", False, UAC, 0.3) == [AckReceived(ack, "UDP", UAC, None)]
    assert len(layer) == 1


def test_rfc3261_17_1_4_transport_errors() -> None:
    run = start(Kind.INVITE_CLIENT)
    assert apply(run, Input.TRANSPORT_ERROR) == [
        TransportFailed(run.tx),
        TransactionTerminated(run.tx),
    ]
    assert run.layer.transport_error(run.tx, 2.0) == []  # gone: ignored
    run = reach(Kind.INVITE_SERVER, State.ACCEPTED)
    assert apply(run, Input.TRANSPORT_ERROR) == [TransportFailed(run.tx)]  # RFC 6026
    run = reach(Kind.INVITE_CLIENT, State.PROCEEDING)
    assert apply(run, Input.TRANSPORT_ERROR) == []  # nothing is sent in Proceeding


def test_transaction_errors_name_what_the_tu_got_wrong() -> None:
    run = start(Kind.INVITE_CLIENT)
    response = run.request.response(200, to_tag="x")
    assert issubclass(TransactionError, SipLocalError)
    with pytest.raises(TransactionError, match="No such server transaction"):
        run.layer.server_respond(run.tx, response, 0.0)
    with pytest.raises(TransactionError, match="No such server transaction"):
        run.layer.server_respond(999, response, 0.0)
    server = start(Kind.INVITE_SERVER)
    cancel_ok = incoming("CANCEL").response(200, to_tag="x")
    with pytest.raises(TransactionError, match="another request"):
        server.layer.server_respond(server.tx, cancel_ok, 0.0)
    assert server.layer.state(server.tx) is State.PROCEEDING
    with pytest.raises(TransactionError, match="ACK"):
        run.layer.client_request(outgoing("ACK"), "UDP", False, NEXT_HOP, 0.0)
    with pytest.raises(TransactionError, match="RFC 3261 branch"):
        run.layer.client_request(incoming(branch="1234"), "UDP", False, NEXT_HOP, 0.0)
    with pytest.raises(TransactionError, match="already in use"):
        run.layer.client_request(outgoing(), "UDP", False, NEXT_HOP, 0.0)
    for settings in ({"t1": 0.0}, {"t1": 5.0}, {"t4": 0.0}, {"max_transactions": 0}):
        with pytest.raises(TransactionError, match="settings"):
            TransactionLayer(**settings)


def test_rfc3261_17_client_transactions_are_not_refused_over_the_limit() -> None:
    layer = TransactionLayer(max_transactions=1)
    layer.client_request(outgoing(), "UDP", False, NEXT_HOP, 0.0)
    layer.client_request(outgoing(branch="z9hG4bKp2"), "UDP", False, NEXT_HOP, 0.0)
    assert len(layer) == 2


def test_events_and_outgoing_are_frozen_and_slotted() -> None:
    run = start(Kind.INVITE_SERVER, trying_delay=0)
    (out,) = run.layer.messages_to_send()
    event = RequestReceived(run.tx, run.request, "UDP", UAC)
    for value in (out, event, TransactionTimeout(1, Timer.B)):
        assert not hasattr(value, "__dict__")
        with pytest.raises(dataclasses.FrozenInstanceError):
            value.tx = 2  # type: ignore[misc]


# Stateless answers -------------------------------------------------------------------


def test_rfc3261_16_11_a_stateless_challenge_over_udp_is_sent_once_and_held_nowhere() -> None:
    run = start(Kind.INVITE_SERVER)
    challenge = run.request.response(407, to_tag="hr1")
    events = run.layer.server_respond(run.tx, challenge, 0.05, stateless=True)
    assert events == [TransactionTerminated(run.tx)]
    (sent,) = run.layer.messages_to_send()
    assert sent.message == challenge and sent.destination == UAC
    assert len(run.layer) == 0 and run.layer.next_timer() is None  # no Timer G, no Timer H
    sends, _ = run_timers(run.layer)
    assert sends == []
    # A retransmission is a new request; the ACK for the challenge matches nothing.
    (again,) = run.feed(run.request, 0.6)
    assert isinstance(again, RequestReceived) and again.tx != run.tx


def test_a_stateless_non_invite_refusal_holds_no_timer_j() -> None:
    run = start(Kind.NON_INVITE_SERVER)
    run.layer.server_respond(run.tx, run.request.response(401, to_tag="hr2"), 0.1, stateless=True)
    assert len(run.layer) == 0 and run.layer.next_timer() is None


def test_stateless_changes_nothing_on_a_reliable_transport_or_for_a_provisional() -> None:
    run = start(Kind.INVITE_SERVER, reliable=True)
    run.layer.server_respond(run.tx, run.request.response(180, to_tag="b"), 0.1, stateless=True)
    assert run.layer.state(run.tx) is State.PROCEEDING
    run.layer.server_respond(run.tx, run.request.response(486, to_tag="b"), 0.2, stateless=True)
    assert run.layer.state(run.tx) is State.COMPLETED  # waits for the ACK: no retransmissions


# Lean lingering ------------------------------------------------------------------


def holds(root: object, target: object) -> bool:
    """Whether ``target`` is reachable from ``root`` (parsed messages take no weakrefs)."""
    seen: set[int] = set()
    stack: list[object] = [root]
    while stack:
        item = stack.pop()
        if item is target:
            return True
        if id(item) in seen or isinstance(item, (type, types.ModuleType, types.FunctionType)):
            continue
        seen.add(id(item))
        stack.extend(gc.get_referents(item))
    return False


@pytest.mark.parametrize("status", [200, 486])
def test_a_finished_invite_server_transaction_drops_its_parsed_messages(status: int) -> None:
    """Timers J, L and M keep finished transactions for 32 s: they must not hold the
    parsed request and response (dozens of GC-tracked objects each) for that long, yet a
    retransmitted INVITE still gets the same bytes (or, after a 2xx, nothing from us)."""
    run = start(Kind.INVITE_SERVER)
    answer = run.request.response(status, to_tag="b0b")
    assert holds(run.layer, run.request)
    run.layer.server_respond(run.tx, answer, 0.1)
    (first,) = run.layer.messages_to_send()
    assert first.message is answer
    assert not holds(run.layer, run.request) and not holds(run.layer, answer)
    assert run.layer.state(run.tx) in (State.COMPLETED, State.ACCEPTED)
    run.feed(incoming(), 0.2)
    resent = run.layer.messages_to_send()
    if status == 200:
        assert resent == []  # RFC 6026 §8.7: the UAS retransmits its 2xx, not we
    else:
        (again,) = resent
        assert again.message is None and again.destination == UAC
        assert again.data == first.data


def test_a_finished_non_invite_server_transaction_resends_the_same_bytes() -> None:
    run = start(Kind.NON_INVITE_SERVER)
    run.layer.server_respond(run.tx, run.request.response(200, to_tag="b0b"), 0.1)
    (first,) = run.layer.messages_to_send()
    assert not holds(run.layer, run.request) and not holds(run.layer, first.message)
    run.feed(incoming("REGISTER"), 0.2)
    (again,) = run.layer.messages_to_send()
    assert again.data == first.data and again.message is None


def test_a_finished_client_transaction_drops_the_request_it_sent() -> None:
    run = start(Kind.INVITE_CLIENT)
    assert holds(run.layer, run.request)
    failure = reply(run.request, 486)
    run.feed(failure)
    (ack,) = run.layer.messages_to_send()
    assert run.layer.state(run.tx) is State.COMPLETED
    assert not holds(run.layer, run.request) and not holds(run.layer, ack.message)
    run.feed(failure, 2.0)
    (again,) = run.layer.messages_to_send()
    assert again.data == ack.data and again.message is None
