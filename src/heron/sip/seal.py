"""Proof that heron record-routed a dialog: a seal in its own Record-Route URI, sans-IO.

A request with a To tag follows the route set of its dialog (RFC 3261 §12.2),
and a proxy that finds its own URI on top of the Route forwards it by the
Request-URI, unauthenticated: the UAs of a dialog are not challenged again.
Without more, anyone can write ``Route: <sip:heron;lr>`` and a To tag and make
heron relay to wherever the Request-URI names. So heron seals the Record-Route
URI it inserts into a dialog-creating request, as Kamailio deployments do with
``rr`` plus ``topos``/``dialog``, and forwards an in-dialog request or an ACK
only when a Route value of its own carries a seal that fits it::

    hs = HMAC(key, Call-ID, caller's tag, caller's URI, callee's URI[, hm])
    hc = HMAC(key, Call-ID, caller's tag, host:port of the caller's Contact)

Both directions of the dialog check the same ``hs``: a request from the caller
has the caller's tag and URI in its From, one from the callee has them in its
To (RFC 3261 §12.2.1.1), so the seal also binds the identities heron admitted
the dialog with: a party to a dialog cannot pose as someone else in it.
``hc`` lets requests from the callee reach the caller's Contact when that is a
private address (a desk phone on the office LAN that calls without being
registered), which the destination policy otherwise refuses. ``hm``, when the
URI has it, names the dialog's media leg (:mod:`heron.sip.steering`); the seal
covers it, so a party cannot point its requests at another leg.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from heron.sip.locality import DEFAULT_PORTS
from heron.sip.message import Request
from heron.sip.uri import SipUri, Uri

__all__ = ["CONTACT_PARAM", "MEDIA_PARAM", "SEAL_PARAM", "DialogSeal", "identity"]

SEAL_PARAM = "hs"
"""The Record-Route URI parameter holding the dialog's seal."""
CONTACT_PARAM = "hc"
"""The Record-Route URI parameter sealing the caller's Contact address."""
MEDIA_PARAM = "hm"
"""The Record-Route URI parameter naming the dialog's media leg, under the seal."""

_LABEL = b"heron sip record-route seal\x00"
_SEAL_BYTES = 16  # 128 bits: what a stranger must guess
_CONTACT_BYTES = 12


def identity(uri: Uri) -> str:
    """A URI as a dialog's identity: ``user@host`` in lower case, parameters and display
    names left out (UAs copy the URI itself, RFC 3261 §12.2.1.1)."""
    if isinstance(uri, SipUri):
        return f"{uri.user or ''}@{uri.host}".lower()
    return str(uri).lower()


def hostport(uri: Uri) -> str | None:
    """``host:port`` a SIP URI names, the port defaulted per transport (RFC 3261 §19.1.2)."""
    if not isinstance(uri, SipUri):
        return None
    transport = uri.transport or ("tls" if uri.scheme == "sips" else "udp")
    port = uri.port or DEFAULT_PORTS.get(transport, 5060)
    return f"{(uri.maddr or uri.host).strip('[]').lower()}:{port}"


class DialogSeal:
    """Seals Record-Route URIs and checks the Route values that come back."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        """``key`` is the SIP secret of the data directory: dialogs outlive a restart."""
        self._key = hmac.digest(key, _LABEL, "sha256")

    def _mac(self, size: int, *parts: str) -> str:
        message = "\0".join(parts).encode("utf-8", "surrogateescape")
        return hmac.digest(self._key, message, "sha256")[:size].hex()

    def params(self, request: Request, media: str | None = None) -> tuple[tuple[str, str], ...]:
        """The parameters for our Record-Route URI in dialog-creating ``request``, with
        ``media`` as :data:`MEDIA_PARAM` when the dialog is bridged."""
        headers = request.headers
        tag = headers.from_.tag or ""
        call_id = headers.call_id
        seal = self._dialog_mac(
            call_id, tag, identity(headers.from_.uri), identity(headers.to.uri), media
        )
        params = [(SEAL_PARAM, seal)]
        if media is not None:
            params.append((MEDIA_PARAM, media))
        contacts = headers.contacts if "contact" in headers else ()
        if len(contacts) == 1 and (where := hostport(contacts[0].uri)) is not None:
            params.append((CONTACT_PARAM, self._mac(_CONTACT_BYTES, "c", call_id, tag, where)))
        return tuple(params)

    def _dialog_mac(
        self, call_id: str, tag: str, caller: str, callee: str, media: str | None
    ) -> str:
        media_part = () if media is None else ("m", media)
        return self._mac(_SEAL_BYTES, "d", call_id, tag, caller, callee, *media_part)

    def caller_tag(self, request: Request, ours: Iterable[Uri]) -> str | None:
        """The caller's tag when one of ``ours`` (the Route values naming us that the
        request carried) holds the seal of this request's dialog; else None."""
        opened = self.dialog(request, ours)
        return None if opened is None else opened[0]

    def dialog(self, request: Request, ours: Iterable[Uri]) -> tuple[str, str | None] | None:
        """The caller's tag and the media leg (:data:`MEDIA_PARAM`, None if the dialog is
        not bridged) of the one of ``ours`` that holds the seal of this request's dialog;
        None when none does."""
        seals = [
            (value.lower(), uri.params.get(MEDIA_PARAM))
            for uri in ours
            if isinstance(uri, SipUri) and (value := uri.params.get(SEAL_PARAM))
        ]
        if not seals:
            return None
        headers = request.headers
        call_id = headers.call_id
        from_, to = headers.from_, headers.to
        for tag, caller, callee in (
            (from_.tag, from_.uri, to.uri),  # from the caller
            (to.tag, to.uri, from_.uri),  # from the callee
        ):
            for seal, media in seals:
                expected = self._dialog_mac(
                    call_id, tag or "", identity(caller), identity(callee), media
                )
                if hmac.compare_digest(expected, seal):
                    return tag or "", media
        return None

    def reaches_caller(
        self, request: Request, ours: Iterable[Uri], tag: str, host: str, port: int
    ) -> bool:
        """Whether ``host:port`` is the Contact the dialog's caller (``tag``) sent when
        heron sealed the dialog (see :meth:`params`)."""
        where = f"{host.strip('[]').lower()}:{port}"
        expected = self._mac(_CONTACT_BYTES, "c", request.headers.call_id, tag, where)
        return any(
            hmac.compare_digest(expected, value.lower())
            for uri in ours
            if isinstance(uri, SipUri) and (value := uri.params.get(CONTACT_PARAM))
        )
