"""The echo number (``sip.echo``): heron answers the call itself and returns what it hears,
as Asterisk's Echo() does, sans-IO.

heron is the UAS of the dialog, so there is no Record-Route of its own to seal.
Its To tag is the proof instead: ``prefix + HMAC(key, Call-ID, caller's tag)``.
A BYE, a re-INVITE or an OPTIONS that names it belongs to a dialog heron answered,
with no table of echo calls to bound or to clean up; and the tag starts with
heron's local prefix, so the ACK of the 200 is absorbed like the ACK of any
answer heron makes itself. The media is the bridge's (:meth:`MediaBridge.echo`),
one leg per call, deleted by the BYE or, failing that, by the bridge's silence
timeout.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import replace

from heron.sip.headers import HeaderName
from heron.sip.media import MediaBridge, MediaLeg
from heron.sip.message import Method, Request, Response
from heron.sip.steering import SDP, has_sdp
from heron.sip.uri import SipUri, Uri

__all__ = ["LEG", "EchoNumber"]

LEG = "echo"
"""The branch of an echo call's leg on the bridge (a call has one)."""

_LABEL = b"heron sip echo dialog\x00"
_TAG_BYTES = 12
_ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE"


class EchoNumber:
    """Answers the calls to one number of the SIP domain with the caller's own media."""

    __slots__ = ("_bridge", "_key", "_prefix", "number")

    def __init__(self, number: str, bridge: MediaBridge, key: bytes, prefix: str) -> None:
        """``key`` is the SIP secret; ``prefix`` starts the To tag of the answers heron
        makes itself (the server absorbs their ACKs)."""
        self.number = number
        self._bridge = bridge
        self._key = hmac.digest(key, _LABEL, "sha256")
        self._prefix = prefix

    def called(self, uri: Uri) -> bool:
        """The Request-URI's user is the echo number (its domain the server checks)."""
        return isinstance(uri, SipUri) and uri.user == self.number

    def _tag(self, request: Request) -> str:
        headers = request.headers
        message = "\0".join((headers.call_id, headers.from_.tag or "")).encode(
            "utf-8", "surrogateescape"
        )
        return self._prefix + hmac.digest(self._key, message, "sha256")[:_TAG_BYTES].hex()

    def ours(self, request: Request) -> bool:
        """``request`` is sent in a dialog the echo number answered."""
        tag = request.headers.to.tag
        return tag is not None and hmac.compare_digest(tag, self._tag(request))

    def answer(self, request: Request, contact: str) -> Response:
        """The answer to an INVITE to the number, or to a request in its dialog.

        An offer is answered with the bridge's echo of it (the INVITE's, a re-INVITE's or
        an UPDATE's; :class:`heron.sip.media.MediaRefused` goes up to be answered); an
        INVITE without one gets 488, heron making no offers of its own; a BYE ends the
        leg. ``contact`` is heron's own URI for the dialog.
        """
        method = request.method
        leg = MediaLeg(request.headers.call_id, LEG)
        if method == Method.BYE:
            self._bridge.delete(leg)
            return self._response(request, 200)
        if method == Method.INVITE and not has_sdp(request):
            return self._response(request, 488, "Offer Required")
        if method in (Method.INVITE, Method.UPDATE) and has_sdp(request):
            sdp = self._bridge.echo(leg, request.body)
            headers = [(HeaderName.CONTACT, contact), (HeaderName.CONTENT_TYPE, SDP)]
            if method == Method.INVITE:  # RFC 3261 §12.1.1: the route set goes back in the 2xx
                records = request.headers.get_all(HeaderName.RECORD_ROUTE)
                headers += [(HeaderName.RECORD_ROUTE, value) for value in records]
            return replace(self._response(request, 200, headers=headers), body=sdp)
        if method in (Method.OPTIONS, Method.INFO, Method.UPDATE):
            return self._response(request, 200)
        return self._response(request, 405, headers=[("Allow", _ALLOW)])

    def _response(
        self,
        request: Request,
        status: int,
        reason: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> Response:
        """A response of the echo dialog: its To tag is the proof (see the module)."""
        return request.response(status, reason, to_tag=self._tag(request), headers=headers)
