"""The registrar: REGISTER in, the AOR's new binding set and the answer out
(RFC 3261 §10.3; RFC 3327 Path; RFC 5626 +sip.instance and reg-id).

:func:`register` is a pure function. The caller (the SIP server) has done
RFC 3261 §10.3 steps 1-5: the request is for this domain, its Require is
understood, it is authenticated and authorized for ``aor``. It reads the
AOR's bindings from a :class:`LocationStore`, calls :func:`register` with
``now``, stores :attr:`Registration.bindings` with one
:meth:`LocationStore.replace` when it is not None, and sends
:attr:`Registration.response`. Reads and writes for one AOR must not
interleave (a per-AOR lock in the server), or two REGISTERs would each
replace the set the other just wrote.

Steps 6-8, and what heron answers when they fail:

==========================================  ======================================
``Contact: *`` with other Contact values,   400 (RFC 3261 §10.3 step 6)
or without ``Expires: 0``
a malformed Contact, q, expires, Path,      400 (the parser refuses most of these
reg-id; reg-id without +sip.instance        first; RFC 5626 §6 for reg-id)
0 < expiry < ``min_expires``                423 with Min-Expires (§10.3 step 7)
reg-id, Supported: outbound, but neither    439 First Hop Lacks Outbound Support
first hop nor an "ob" Path                  (RFC 5626 §6, §11.6)
same Call-ID, CSeq not higher than stored   500: the whole request fails and no
                                            binding changes (§10.3 steps 6, 7)
more new bindings than ``max_contacts``     403 Too Many Contacts
==========================================  ======================================

Binding limit: when the bindings this request adds or refreshes fit under
``max_contacts`` but the set as a whole does not, the bindings refreshed
longest ago are dropped to make room. A phone that comes back with a new
address after a reboot leaves its old binding behind until it expires; the
user should not be locked out by such leftovers, and whoever sends this
REGISTER is already authenticated for the AOR.

Path: stored and echoed only when the UA says ``Supported: path``; without it
the Path is ignored (Kamailio's "strict" mode answers 420 instead).

Matching (RFC 3261 §10.3 step 7): a Contact with both +sip.instance and reg-id
names the binding of that instance and flow, whatever its URI (RFC 5626 §6);
any other Contact names the binding without reg-id whose URI is equal under
RFC 3261 §19.1.4.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from typing import Protocol

from heron.sip.errors import MalformedValue, SipLocalError, Status
from heron.sip.fields import MAX_UINT32, NameAddr, parse_address
from heron.sip.grammar import parse_int, quote, unquote
from heron.sip.headers import HeaderName
from heron.sip.message import Method, Request, Response
from heron.sip.uri import AbsoluteUri, SipUri, Uri, parse_uri

__all__ = [
    "FIRST_HOP_LACKS_OUTBOUND",
    "Binding",
    "LocationStore",
    "Registrar",
    "Registration",
    "BindingSource",
    "lookup_targets",
    "register",
]

FIRST_HOP_LACKS_OUTBOUND = 439  # RFC 5626 §11.6
_MAX_REG_ID = 2**31 - 1  # RFC 5626 §12: reg-id is 1 to 2**31-1
_ONE_HOUR = 3600  # RFC 3261 §10.3 step 7: 423 only below one hour
# URI parameters that must be in both URIs or neither (RFC 3261 §19.1.4).
_MUST_MATCH = ("user", "ttl", "method", "maddr", "transport")
_CASELESS = ("maddr", "transport")


@dataclass(frozen=True, slots=True)
class BindingSource:
    """Where a REGISTER came from: the transport, the packet's source address,
    and ``flow``, the token the server layer uses to find the connection again
    (RFC 5626 §6: the registrar stores "enough information to uniquely identify
    the network flow"). Requests for this binding go back this way when the UA
    is behind a NAT or holds the connection open.
    """

    transport: str
    host: str
    port: int
    flow: str = ""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535 or not self.transport or not self.host:
            raise SipLocalError("Bad source", detail=f"{self.transport} {self.host}:{self.port}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Binding:
    """One Contact bound to an address-of-record (RFC 3261 §10.3 step 7).

    Times are Unix seconds, as ``now`` is everywhere in heron's cores.
    """

    aor: str
    """The address-of-record, ``user@domain``."""
    contact: str
    """The Contact URI, as the UA sent it."""
    expires_at: float
    """When the binding lapses unless refreshed."""
    q: float | None
    """Preference among the AOR's bindings, 0 to 1; None when the UA sent none."""
    call_id: str
    cseq: int
    """Call-ID and CSeq of the REGISTER that last wrote the binding."""
    received: BindingSource
    updated_at: float
    path: tuple[str, ...] = ()
    """Path values (RFC 3327): the route back to the UA, nearest proxy first."""
    instance: str | None = None
    """The +sip.instance value, unquoted: ``<urn:uuid:...>`` (RFC 5626 §4.1)."""
    reg_id: int | None = None
    """The RFC 5626 reg-id: which of the instance's flows this binding is."""
    user_agent: str | None = None

    def __post_init__(self) -> None:
        if self.q is not None and not 0.0 <= self.q <= 1.0:
            raise SipLocalError("Binding q out of range", detail=str(self.q))
        if not 0 <= self.cseq <= MAX_UINT32:
            raise SipLocalError("Binding CSeq out of range", detail=str(self.cseq))
        if self.reg_id is not None and not 1 <= self.reg_id <= _MAX_REG_ID:
            raise SipLocalError("Binding reg-id out of range", detail=str(self.reg_id))
        if self.reg_id is not None and self.instance is None:
            raise SipLocalError("Binding has a reg-id but no instance")

    @property
    def uri(self) -> Uri:
        """The Contact URI, parsed: where the proxy sends requests for the AOR."""
        return parse_uri(self.contact)

    def is_expired(self, now: float) -> bool:
        return self.expires_at <= now

    def expires_in(self, now: float) -> int:
        """Whole seconds left, as a Contact ``expires`` parameter says it."""
        return max(0, round(self.expires_at - now))


@dataclass(frozen=True, slots=True)
class Registrar:
    """The registrar's settings (Kamailio's ``default_expires``, ``min_expires``,
    ``max_expires``, ``max_contacts``), each in seconds but the last.
    """

    default_expires: int = 3600
    """Granted when the REGISTER names no expiry (RFC 3261 §10.3 step 7)."""
    min_expires: int = 60
    """Shorter requests get 423 with this as Min-Expires."""
    max_expires: int = 3600
    """Longer requests are granted this."""
    max_contacts: int = 10
    """Bindings per AOR; the oldest make room for new ones."""

    def __post_init__(self) -> None:
        if not (
            1 <= self.min_expires <= self.default_expires <= self.max_expires <= MAX_UINT32
            and self.max_contacts >= 1
        ):
            raise SipLocalError("Registrar needs 1 <= min <= default <= max expires, 1+ contacts")

    def register(
        self,
        request: Request,
        aor: str,
        bindings: Iterable[Binding],
        source: BindingSource,
        now: float,
        *,
        to_tag: str,
    ) -> Registration:
        """Apply ``request`` to the AOR's ``bindings`` (RFC 3261 §10.3 steps 6-8).

        ``to_tag`` is the random To tag of the answer (RFC 3261 §8.2.6.2).
        Expired bindings in ``bindings`` count as gone.
        """
        if request.method != Method.REGISTER:
            raise SipLocalError("Not a REGISTER", detail=request.method)
        current = tuple(b for b in bindings if not b.is_expired(now))
        try:
            return _apply(self, request, aor, current, source, now, to_tag)
        except _Refusal as refusal:
            answer = request.response(
                refusal.status, refusal.reason, to_tag=to_tag, headers=refusal.headers
            )
        except MalformedValue as error:
            answer = request.response(Status.BAD_REQUEST, error.reason, to_tag=to_tag)
        return Registration(answer, None)


_DEFAULTS = Registrar()


@dataclass(frozen=True, slots=True)
class Registration:
    """What one REGISTER did."""

    response: Response
    bindings: tuple[Binding, ...] | None
    """The AOR's whole new binding set, to store with :meth:`LocationStore.replace`;
    None when the request failed and nothing may change ("committed ... if and
    only if all binding updates and additions succeed", RFC 3261 §10.3).
    """


def register(
    request: Request,
    aor: str,
    bindings: Iterable[Binding],
    source: BindingSource,
    now: float,
    *,
    to_tag: str,
    registrar: Registrar = _DEFAULTS,
) -> Registration:
    """:meth:`Registrar.register` with ``registrar``'s settings (the defaults if not given)."""
    return registrar.register(request, aor, bindings, source, now, to_tag=to_tag)


def lookup_targets(bindings: Iterable[Binding], now: float) -> list[Binding]:
    """The live bindings, highest q first: the targets a proxy forks to
    (RFC 3261 §16.5, §16.6). A binding without q ranks as q=1; among equal q
    the most recently refreshed comes first.
    """
    live = (b for b in bindings if not b.is_expired(now))
    return sorted(live, key=lambda b: (-(1.0 if b.q is None else b.q), -b.updated_at))


class LocationStore(Protocol):
    """Where bindings persist; :mod:`heron.wiring` chooses the implementation (SQL when
    serving, :class:`heron.store.memory.MemoryLocationStore` in tests).
    """

    async def get(self, aor: str) -> list[Binding]:
        """The AOR's bindings in the order stored, expired ones included until swept."""

    async def replace(self, aor: str, bindings: Sequence[Binding]) -> None:
        """Make ``bindings`` the AOR's whole set in one transaction: a reader
        sees the old set or the new one, never a mix.
        """

    async def replace_all(self, sets: Mapping[str, Sequence[Binding]]) -> None:
        """:meth:`replace` for several AORs at once, as few round trips as the store
        allows: the write-behind flushes every AOR changed within a second.
        """

    async def all(self, now: float) -> list[Binding]:
        """Every live binding, by AOR (``heron sip registrations``)."""

    async def sweep(self, now: float) -> int:
        """Delete the expired bindings; how many there were."""


# The steps ------------------------------------------------------------------


class _Refusal(Exception):
    """A REGISTER the registrar turns down: the status, reason and extra fields."""

    def __init__(self, status: int, reason: str, *headers: tuple[str, str]) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers


@dataclass(frozen=True, slots=True)
class _Wanted:
    """One Contact of the request, read and checked."""

    uri: Uri
    contact: str
    requested: int
    q: float | None
    instance: str | None
    reg_id: int | None


def _apply(
    settings: Registrar,
    request: Request,
    aor: str,
    current: tuple[Binding, ...],
    source: BindingSource,
    now: float,
    to_tag: str,
) -> Registration:
    headers = request.headers
    call_id, cseq = headers.call_id, headers.cseq.seq
    supported = {tag.lower() for tag in headers.split(HeaderName.SUPPORTED)}
    path = _path(request, supported)

    if headers.contact_star:
        # RFC 3261 §10.3 step 6: "If the request has additional Contact fields
        # or a registration duration other than zero, the request is invalid".
        if headers.expires != 0:
            raise _Refusal(Status.BAD_REQUEST, "Contact * needs Expires: 0")
        for binding in current:
            _check_order(binding, call_id, cseq)
        return Registration(_ok(request, (), path, now, to_tag, ()), ())

    wanted = [_wanted(address, headers.expires, settings) for address in headers.contacts]
    for want in wanted:
        # RFC 3261 §10.3 step 7: "If and only if the requested expiration
        # interval is greater than zero AND smaller than one hour AND less than
        # a registrar-configured minimum, the registrar MAY reject".
        if 0 < want.requested < min(settings.min_expires, _ONE_HOUR):
            raise _Refusal(
                Status.INTERVAL_TOO_BRIEF,
                "Interval Too Brief",
                (HeaderName.MIN_EXPIRES, str(settings.min_expires)),
            )
    wanted, outbound = _outbound(request, wanted, path, supported)

    # Each entry: a binding, and whether this request wrote it.
    entries: list[tuple[Binding, bool]] = [(b, False) for b in current]
    user_agent = headers.get(HeaderName.USER_AGENT)
    for want in wanted:
        at = _find(entries, want)
        granted = min(want.requested, settings.max_expires)
        if at is not None:
            old, written = entries[at]
            if not written:
                _check_order(old, call_id, cseq)
            del entries[at]
        if granted > 0:
            binding = Binding(
                aor=aor,
                contact=want.contact,
                expires_at=now + granted,
                q=want.q,
                call_id=call_id,
                cseq=cseq,
                received=source,
                updated_at=now,
                path=path,
                instance=want.instance,
                reg_id=want.reg_id,
                user_agent=user_agent,
            )
            entries.insert(len(entries) if at is None else at, (binding, True))
    final = _limit(entries, settings.max_contacts)
    extra = ((HeaderName.REQUIRE, "outbound"),) if outbound else ()
    return Registration(_ok(request, final, path, now, to_tag, extra), final)


def _path(request: Request, supported: set[str]) -> tuple[str, ...]:
    """The Path values to store and echo (RFC 3327 §5.3), only for a UA that
    says ``Supported: path``.
    """
    if "path" not in supported:
        return ()
    values = request.headers.split(HeaderName.PATH)
    for value in values:
        parse_address(value)
    return values


def _wanted(address: NameAddr, header: int | None, settings: Registrar) -> _Wanted:
    # RFC 3261 §10.3 step 7: the expires parameter, else the Expires field,
    # else "a locally-configured default value".
    requested = address.expires
    if requested is None:
        requested = settings.default_expires if header is None else header
    raw_instance = address.params.get("+sip.instance")
    instance = None if raw_instance is None else unquote(raw_instance)
    reg_id = None
    if "reg-id" in address.params:
        # RFC 5626 §6: "one with a reg-id but no instance-id is not valid".
        if instance is None:
            raise MalformedValue("reg-id without +sip.instance")
        reg_id = parse_int(address.params.get("reg-id") or "", _MAX_REG_ID, "reg-id")
        if reg_id == 0:
            raise MalformedValue("reg-id out of range")
    return _Wanted(address.uri, str(address.uri), requested, address.q, instance, reg_id)


def _outbound(
    request: Request, wanted: list[_Wanted], path: tuple[str, ...], supported: set[str]
) -> tuple[list[_Wanted], bool]:
    """Whether RFC 5626 applies (the Contacts with reg-id, and whether the answer
    says Require: outbound), and the Contacts to act on.

    RFC 5626 §6: outbound applies when the registrar is the first hop, or the
    first Path URI has "ob"; otherwise reg-id earns a 439 from a UA that
    supports outbound and is ignored from any other.
    """
    if not any(want.reg_id is not None for want in wanted):
        return wanted, False
    first = parse_address(path[0]).uri if path else None
    if len(request.headers.vias) == 1 or (isinstance(first, SipUri) and "ob" in first.params):
        return wanted, "outbound" in supported
    if "outbound" in supported:
        raise _Refusal(FIRST_HOP_LACKS_OUTBOUND, "First Hop Lacks Outbound Support")
    return [_without_reg_id(want) for want in wanted], False


def _without_reg_id(want: _Wanted) -> _Wanted:
    return _Wanted(want.uri, want.contact, want.requested, want.q, want.instance, None)


def _find(entries: list[tuple[Binding, bool]], want: _Wanted) -> int | None:
    for at, (binding, _) in enumerate(entries):
        if want.reg_id is not None:
            if binding.reg_id == want.reg_id and binding.instance == want.instance:
                return at
        elif binding.reg_id is None and _same_uri(binding.uri, want.uri):
            return at
    return None


def _check_order(binding: Binding, call_id: str, cseq: int) -> None:
    """RFC 3261 §10.3 steps 6 and 7: with the same Call-ID, a binding changes
    only for a higher CSeq; "Otherwise, the update MUST be aborted and the
    request fails" - with a 500, as any failed update does. A retransmission
    never gets here: the transaction layer answers it.
    """
    if binding.call_id == call_id and cseq <= binding.cseq:
        raise _Refusal(Status.SERVER_INTERNAL_ERROR, "Out of Order REGISTER")


def _limit(entries: list[tuple[Binding, bool]], limit: int) -> tuple[Binding, ...]:
    """The bindings within ``limit``, those this request did not write and
    refreshed longest ago dropped first; 403 if this request alone is over.
    """
    excess = len(entries) - limit
    if excess <= 0:
        return tuple(b for b, _ in entries)
    old = [b for b, written in entries if not written]
    if excess > len(old):
        raise _Refusal(Status.FORBIDDEN, "Too Many Contacts")
    dropped = {id(b) for b in sorted(old, key=lambda b: (b.updated_at, b.expires_at))[:excess]}
    return tuple(b for b, _ in entries if id(b) not in dropped)


def _ok(
    request: Request,
    bindings: Sequence[Binding],
    path: tuple[str, ...],
    now: float,
    to_tag: str,
    extra: tuple[tuple[str, str], ...],
) -> Response:
    """RFC 3261 §10.3 step 8: "The response MUST contain Contact header field
    values enumerating all current bindings. Each Contact value MUST feature an
    'expires' parameter"; it "SHOULD include a Date header field". RFC 3327
    §5.3: the Path values go back to the UA.
    """
    fields: list[tuple[str, str]] = [(HeaderName.CONTACT, _contact_field(b, now)) for b in bindings]
    fields += [(HeaderName.PATH, value) for value in path]
    fields += [*extra, (HeaderName.DATE, formatdate(now, usegmt=True))]
    return request.response(Status.OK, to_tag=to_tag, headers=fields)


def _contact_field(binding: Binding, now: float) -> str:
    text = f"<{binding.contact}>;expires={binding.expires_in(now)}"
    if binding.q is not None:
        text += f";q={binding.q:.3f}".rstrip("0").rstrip(".")
    if binding.instance is not None:
        text += f";+sip.instance={quote(binding.instance)}"
    if binding.reg_id is not None:
        text += f";reg-id={binding.reg_id}"
    return text


def _same_uri(a: Uri, b: Uri) -> bool:
    """URI equality as RFC 3261 §19.1.4 defines it, on unescaped parts."""
    if isinstance(a, AbsoluteUri) or isinstance(b, AbsoluteUri):
        if not (isinstance(a, AbsoluteUri) and isinstance(b, AbsoluteUri)):
            return False
        return a.scheme.lower() == b.scheme.lower() and a.body == b.body
    if (a.scheme, a.user, a.password, a.port) != (b.scheme, b.user, b.password, b.port):
        return False
    if a.host.lower() != b.host.lower():
        return False
    names = {n.lower() for n, _ in a.params} | {n.lower() for n, _ in b.params}
    for name in names:
        in_a, in_b = name in a.params, name in b.params
        if in_a != in_b:
            # "user, ttl, method, and maddr ... appearing in only one URI never
            # match"; transport likewise; any other one-sided parameter is ignored.
            if name in _MUST_MATCH:
                return False
            continue
        x, y = a.params.get(name), b.params.get(name)
        if name in _CASELESS and x is not None and y is not None:
            x, y = x.lower(), y.lower()
        if x != y:
            return False
    # "URI header components are never ignored."
    return {(n.lower(), v) for n, v in a.headers} == {(n.lower(), v) for n, v in b.headers}
