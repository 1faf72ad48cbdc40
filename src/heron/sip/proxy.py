"""What a stateful proxy does to requests and responses (RFC 3261 §16), sans-IO.

The server decides *where* a request goes (registrar bindings, configured
routes); this module decides *how*: route pre-processing (§16.4), loop
detection (§16.3 step 4), the forwarded copy with its Record-Route and Via
(§16.6), and, across the branches of a fork, which responses go back and
when the other branches are cancelled (§16.7).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum

from heron.sip.fields import MAGIC_COOKIE, NameAddr, Via, parse_address
from heron.sip.headers import HeaderName
from heron.sip.message import Method, Request, Response
from heron.sip.uri import SipUri, Uri

__all__ = [
    "BranchState",
    "ResponseContext",
    "branch_id",
    "forward_request",
    "is_loop",
    "loop_key",
    "our_record_route",
    "preprocess",
    "preprocess_routes",
]

IsMe = Callable[[Uri], bool]
_BRANCH_MARK = MAGIC_COOKIE + "hr"


def preprocess_routes(request: Request, is_me: IsMe) -> Request:
    """RFC 3261 §16.4: undo a strict router's rewrite, then drop our own Route values.

    Two of ours in a row are the double Record-Route this proxy inserts when
    it bridges transports (RFC 5658), both to be removed.
    """
    return preprocess(request, is_me)[0]


def preprocess(request: Request, is_me: IsMe) -> tuple[Request, tuple[Uri, ...]]:
    """:func:`preprocess_routes`, and the URIs of ours it removed, topmost first: the
    Record-Route values this proxy inserted, whose seal says whose dialog it is."""
    if HeaderName.ROUTE not in request.headers:
        return request, ()
    routes = request.headers.routes
    uri = request.uri
    removed: list[Uri] = []
    # Only a URI we put into a Record-Route (a loose router's, with lr) was rewritten by
    # a strict router; sip:<our address> without lr is a request for us.
    ours = is_me(uri) and isinstance(uri, SipUri) and uri.user is None and uri.lr
    if ours and routes:
        # A strict router put our Record-Route URI in the Request-URI and the
        # real target in the last Route (RFC 3261 §16.4).
        removed.append(uri)
        last = routes[-1]
        kept = [str(r) for r in routes[:-1]]
        headers = request.headers.remove(HeaderName.ROUTE)
        for value in kept:
            headers = headers.add(HeaderName.ROUTE, value)
        request = replace(request, uri=last.uri, headers=headers)
    for _ in range(2):
        routes = request.headers.routes
        if routes and is_me(routes[0].uri):
            removed.append(routes[0].uri)
            request = request.pop_route()
    return request, tuple(removed)


def loop_key(request: Request, top: Via | None = None) -> str:
    """Hash of what a spiral changes and a loop does not (RFC 3261 §16.6 step 8).

    ``top`` is the topmost Via as this proxy received the request; by default
    the request's current one.
    """
    headers = request.headers
    cseq = headers.cseq
    top = top or headers.top_via
    parts = [
        str(request.uri),
        headers.call_id or "",
        (headers.from_.tag if headers.from_ else None) or "",
        (headers.to.tag if headers.to else None) or "",
        str(cseq.seq) if cseq else "",
        ",".join(headers.get_all(HeaderName.PROXY_REQUIRE)),
        f"{top.sent_by};{top.branch}" if top else "",
    ]
    return hashlib.sha1("\n".join(parts).encode(), usedforsecurity=False).hexdigest()[:12]


def branch_id(request: Request, fork: int) -> str:
    """A branch for our Via: loop key, then which fork (§16.6 step 8)."""
    return f"{_BRANCH_MARK}{loop_key(request)}.{fork}"


def is_loop(request: Request, our_sent_by: Iterable[str]) -> bool:
    """RFC 3261 §16.3 step 4: our Via with this very request's loop key is a loop.

    A spiral, the request coming back with a new Request-URI, has another
    key and is forwarded.
    """
    mine = set(our_sent_by)
    vias = request.headers.vias
    for index, via in enumerate(vias):
        branch = via.branch or ""
        if via.sent_by not in mine or not branch.startswith(_BRANCH_MARK):
            continue
        # The key was made when the Via under ours was the topmost one.
        below = vias[index + 1] if index + 1 < len(vias) else None
        if branch.startswith(_BRANCH_MARK + loop_key(request, below) + "."):
            return True
    return False


def forward_request(
    request: Request,
    *,
    target: Uri,
    via: Via,
    record_route: Sequence[NameAddr] = (),
    path: Sequence[str] = (),
) -> Request:
    """The copy sent on one branch (RFC 3261 §16.6 steps 1-8).

    ``record_route`` is inserted topmost-last (so a double Record-Route reads
    inbound-side first); ``path`` (RFC 3327) becomes Route values ahead of
    any the request already has.
    """
    forwarded = replace(request, uri=target).decrement_max_forwards()
    for address in reversed(record_route):
        forwarded = forwarded.push_record_route(address)
    headers = forwarded.headers
    for value in reversed(path):
        headers = headers.prepend(HeaderName.ROUTE, value)
    return replace(forwarded, headers=headers).push_via(via)


class BranchState(Enum):
    TRYING = "trying"
    PROCEEDING = "proceeding"
    DONE = "done"


@dataclass
class ResponseContext:
    """RFC 3261 §16.7 for one forked request: what goes back upstream, and when.

    Call :meth:`received` with each branch's response (our Via already
    removed); it returns the responses to send upstream now and the branches
    to CANCEL. When every branch is done without a 2xx, the best final
    response goes up (§16.7 step 6).
    """

    method: str
    branches: dict[str, BranchState] = field(default_factory=dict)
    final_sent: bool = False
    _cancelled: set[str] = field(default_factory=set)
    _best: Response | None = None
    _challenges: list[tuple[str, str]] = field(default_factory=list)

    def add_branch(self, branch: str) -> None:
        self.branches[branch] = BranchState.TRYING

    def received(self, branch: str, response: Response) -> tuple[list[Response], list[str]]:
        if self.branches.get(branch) in (None, BranchState.DONE):
            if response.status // 100 == 2 and self.method == Method.INVITE:
                return [response], []  # a 2xx retransmission, or from a second UAS
            return [], []
        if response.status < 200:
            self.branches[branch] = BranchState.PROCEEDING
            if response.status == 100 or self.final_sent:
                return [], []  # §16.7 step 3: 100 is hop by hop
            return [response], []
        self.branches[branch] = BranchState.DONE
        if response.status < 300:
            if self.final_sent and self.method != Method.INVITE:
                return [], []  # §16.7 step 5: only 2xx to INVITE go up after a final
            self.final_sent = True
            return [response], self._to_cancel()
        self._remember(response)
        cancel = self._to_cancel() if response.status >= 600 else []
        return self._maybe_best(), cancel

    def timed_out(self, branch: str) -> list[Response]:
        """A branch's client transaction timed out: it counts as a 408 (§16.8)."""
        if self.branches.get(branch) in (None, BranchState.DONE):
            return []
        self.branches[branch] = BranchState.DONE
        self._remember(Response(408, "Request Timeout"))
        return self._maybe_best()

    def _to_cancel(self) -> list[str]:
        """Pending INVITE branches not yet cancelled (§9.1: only INVITE is cancelled)."""
        if self.method != Method.INVITE:
            return []
        fresh = [b for b in self._pending() if b not in self._cancelled]
        self._cancelled.update(fresh)
        return fresh

    def _pending(self) -> list[str]:
        return [b for b, state in self.branches.items() if state is not BranchState.DONE]

    def _remember(self, response: Response) -> None:
        if response.status in (401, 407):
            for name in (HeaderName.WWW_AUTHENTICATE, HeaderName.PROXY_AUTHENTICATE):
                self._challenges += [(name, v) for v in response.headers.get_all(name)]
        if self._best is None or _rank(response) < _rank(self._best):
            self._best = response

    def _maybe_best(self) -> list[Response]:
        if self.final_sent or self._pending() or self._best is None:
            return []
        self.final_sent = True
        best = self._best
        if best.status == 503:
            # §16.7 step 6: a 503 would make the caller think *this* proxy is down.
            best = replace(best, status=500, reason="Server Internal Error")
        if best.status in (401, 407) and self._challenges:
            # §16.7 step 7: every branch's challenges, so the caller can answer all.
            headers = best.headers.remove(HeaderName.WWW_AUTHENTICATE).remove(
                HeaderName.PROXY_AUTHENTICATE
            )
            for name, value in dict.fromkeys(self._challenges):
                headers = headers.add(name, value)
            best = replace(best, headers=headers)
        return [best]


def _rank(response: Response) -> tuple[int, int]:
    """Lower is better: 6xx first, then the lowest class (RFC 3261 §16.7 step 6)."""
    klass = response.status // 100
    return (0 if klass == 6 else klass, response.status)


def our_record_route(
    host: str, port: int, transport: str, extra: Sequence[tuple[str, str]] = ()
) -> NameAddr:
    """The Record-Route value for one of our listeners, loose-routing (§16.6 step 4);
    ``extra`` URI parameters follow ``lr`` (a dialog's seal, :mod:`heron.sip.seal`)."""
    params = f";transport={transport}" if transport != "udp" else ""
    sealed = "".join(f";{name}={value}" for name, value in extra)
    scheme = "sips" if transport == "tls" else "sip"
    return parse_address(f"<{scheme}:{host}:{port}{params};lr{sealed}>")
