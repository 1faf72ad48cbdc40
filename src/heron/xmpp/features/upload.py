"""XEP-0363 HTTP File Upload at ``upload.<domain>``, the files on heron's web listener.

The component hands out slots (:mod:`heron.xmpp.upload` signs them); the web listener
takes the PUT to a slot's URL and serves the GET. Files live in ``xmpp.upload_dir``, one
directory per account's bucket, each file named by its random id; what a bucket holds
counts against ``xmpp.upload_quota``, and files older than ``xmpp.upload_expires`` are
swept, as Prosody's mod_http_file_share does.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path
from xml.etree.ElementTree import Element

from aiohttp import web

from heron.xmpp.errors import StanzaCondition, StanzaError
from heron.xmpp.jid import JID
from heron.xmpp.stanza import NS, error_reply, iq_result, qname
from heron.xmpp.upload import (
    NAMESPACE,
    BadSlot,
    FileTooLarge,
    Slot,
    SlotSigner,
    clean_type,
    disco_info,
    download_headers,
    parse_request,
    slot_element,
)

__all__ = ["UploadFiles", "UploadService"]

log = logging.getLogger(__name__)

SLOT_TTL = 300
"""Seconds a slot may be uploaded to after it is handed out."""
_CHUNK = 65_536
_PARTIAL = ".part"

Send = Callable[[Element, JID, JID], Awaitable[None]]


class UploadFiles:
    """The upload directory: per bucket, finished files by id and uploads in progress."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, slot: Slot) -> Path:
        # Both parts are hex the server signed: nothing a client names reaches the path.
        return self.root / slot.bucket / slot.file_id

    def usage(self, bucket: str) -> int:
        """Bytes the bucket holds, uploads in progress included."""
        try:
            entries = list(os.scandir(self.root / bucket))
        except FileNotFoundError:
            return 0
        return sum(entry.stat().st_size for entry in entries if entry.is_file())

    def remove_bucket(self, bucket: str) -> None:
        """Every file of one bucket, finished or in progress: its account is gone."""
        shutil.rmtree(self.root / bucket, ignore_errors=True)

    def sweep(self, before: float) -> int:
        """Remove files last written before ``before``; returns how many went."""
        removed = 0
        if not self.root.is_dir():
            return 0
        for bucket in os.scandir(self.root):
            if not bucket.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(bucket.path):
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < before:
                    os.unlink(entry.path)
                    removed += 1
        return removed


class UploadService:
    """The XEP-0363 service: a :class:`~heron.xmpp.features.DomainComponent` for its
    domain, and the web handler of ``/upload/{token}/{name}``."""

    def __init__(
        self,
        domain: str,
        *,
        signer: SlotSigner,
        files: UploadFiles,
        base_url: str,
        max_size: int,
        quota: int,
        local_domains: Collection[str],
        send: Send,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.domain = domain
        self._signer = signer
        self._files = files
        self._base_url = base_url.rstrip("/")
        self._max_size = max_size
        self._quota = quota
        self._local_domains = frozenset(local_domains)
        self._send = send
        self._clock = clock

    def forget(self, account: JID) -> None:
        """Delete the files ``account`` uploaded, when the account is deleted: nothing of
        it stays served, and links to them stop working."""
        self._files.remove_bucket(self._signer.bucket(str(account.bare)))

    # --- XMPP ---------------------------------------------------------------------------

    async def receive(self, stanza: Element, sender: JID, to: JID, is_admin: bool) -> None:
        if stanza.tag != qname(NS.CLIENT, "iq") or stanza.get("type") not in ("get", "set"):
            return  # messages and presence to the service, results and errors: nothing to do
        try:
            reply = self._answer(stanza, sender, to)
        except StanzaError as error:
            reply = error_reply(stanza, error)
            if isinstance(error, FileTooLarge):
                reply[0].append(error.detail())
        await self._send(reply, to, sender)

    def _answer(self, iq: Element, sender: JID, to: JID) -> Element:
        if to.local or to.resource:
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        payload = iq[0] if len(iq) else None
        namespace = payload.tag.partition("}")[0][1:] if payload is not None else ""
        if namespace == NS.DISCO_INFO and iq.get("type") == "get":
            return iq_result(iq, disco_info(self._max_size))
        if namespace == NS.DISCO_ITEMS and iq.get("type") == "get":
            return iq_result(iq, Element(qname(NS.DISCO_ITEMS, "query")))
        if namespace != NAMESPACE:
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        if sender.domain not in self._local_domains:
            # XEP-0363 §4: the service is for this server's users only.
            raise StanzaError(StanzaCondition.NOT_ALLOWED, "only local users may upload")
        request = parse_request(iq, max_size=self._max_size)
        bucket = self._signer.bucket(str(sender.bare))
        if self._quota and self._files.usage(bucket) + request.size > self._quota:
            raise StanzaError(StanzaCondition.RESOURCE_CONSTRAINT, "upload quota reached")
        slot = Slot(
            bucket,
            secrets.token_hex(16),
            request.size,
            request.content_type,
            request.name,
            int(self._clock()) + SLOT_TTL,
        )
        url = self._base_url + self._signer.path(slot)
        return iq_result(iq, slot_element(url, url))

    # --- HTTP ---------------------------------------------------------------------------

    async def handle_http(self, request: web.Request) -> web.StreamResponse:
        """PUT stores a slot's file, GET and HEAD serve it; other methods are refused."""
        if request.method not in ("PUT", "GET", "HEAD"):
            return _plain(405, "method not allowed", {"Allow": "GET, HEAD, PUT"})
        token, name = request.match_info["token"], request.match_info["name"]
        try:
            slot = self._signer.check(
                token, name, now=self._clock() if request.method == "PUT" else None
            )
        except BadSlot as error:
            return _plain(403 if request.method == "PUT" else 404, str(error))
        if request.method == "PUT":
            return await self._put(request, slot)
        path = self._files.path(slot)
        if not path.is_file():
            return _plain(404, "no such file")
        return web.FileResponse(path, headers=download_headers(slot))

    async def _put(self, request: web.Request, slot: Slot) -> web.StreamResponse:
        length = request.content_length
        if length is None:
            return _plain(411, "Content-Length required")
        if length != slot.size:
            return _plain(400, "Content-Length is not the slot's size")
        sent_type = request.headers.get("Content-Type")
        if sent_type is not None and clean_type(sent_type) != slot.content_type:
            return _plain(400, "Content-Type is not the slot's")
        final = self._files.path(slot)
        if self._quota and self._files.usage(slot.bucket) + slot.size > self._quota:
            return _plain(413, "upload quota reached")
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = final.with_name(final.name + _PARTIAL)
        try:
            # O_EXCL: a slot is uploaded once (a second PUT, or one racing it, is refused).
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return _plain(409, "already uploaded")
        if final.exists():
            os.close(fd)
            os.unlink(partial)
            return _plain(409, "already uploaded")
        received = 0
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in request.content.iter_chunked(_CHUNK):
                    received += len(chunk)
                    if received > slot.size:
                        break
                    out.write(chunk)
        except BaseException:
            os.unlink(partial)
            raise
        if received != slot.size:
            os.unlink(partial)
            return _plain(400, "body is not the slot's size")
        os.rename(partial, final)
        return _plain(201, "created")


def _plain(status: int, text: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        text=f"{text}\n",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )
