"""What heron tells systemd and how it logs under it.

``Type=notify`` lets systemd start units ordered after heron only once heron
serves, and show "stopping" while it closes; the protocol is one datagram per
state change on the unix socket named by ``$NOTIFY_SOCKET`` (a leading ``@``
is Linux's abstract namespace), so a few lines here replace libsystemd.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import MutableMapping
from typing import TextIO

__all__ = ["Notifier", "log_format"]

log = logging.getLogger(__name__)

NOTIFY_ENV = "NOTIFY_SOCKET"
JOURNAL_ENV = "JOURNAL_STREAM"


class Notifier:
    """The service manager's notification socket, or nothing when heron was not started
    with one. Taken out of the environment, as ``sd_notify(unset_environment=1)`` does,
    so that TURN workers, which heron starts later, never speak for the main process."""

    def __init__(self, address: str | None) -> None:
        self._address = address

    @classmethod
    def from_environment(cls, environ: MutableMapping[str, str] = os.environ) -> Notifier:
        address = environ.pop(NOTIFY_ENV, None)
        return cls(address if address and address[0] in "/@" else None)

    def tell(self, *states: str) -> None:
        """Send ``KEY=VALUE`` states; failure is logged, never fatal: heron serves anyway."""
        if self._address is None:
            return
        target = "\0" + self._address[1:] if self._address.startswith("@") else self._address
        payload = "".join(f"{state}\n" for state in states).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(payload, target)
        except OSError as exc:
            log.warning("cannot notify the service manager at %s: %s", self._address, exc)

    def ready(self) -> None:
        self.tell("READY=1", f"MAINPID={os.getpid()}")

    def reloading(self) -> None:
        """systemd 253's ``Type=notify-reload`` protocol: RELOADING=1 with the monotonic
        time it began, then :meth:`ready` when the reload is done (or refused)."""
        monotonic = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.tell("RELOADING=1", f"MONOTONIC_USEC={monotonic}")

    def stopping(self) -> None:
        self.tell("STOPPING=1")


def log_format(stream: TextIO, environ: MutableMapping[str, str] = os.environ) -> str:
    """No timestamp when ``stream`` is the journal's (``$JOURNAL_STREAM`` names its
    device and inode): journald stamps every line itself."""
    device, _, inode = environ.get(JOURNAL_ENV, "").partition(":")
    try:
        status = os.fstat(stream.fileno())
        journal = (status.st_dev, status.st_ino) == (int(device), int(inode))
    except (ValueError, OSError):
        journal = False
    prefix = "" if journal else "%(asctime)s "
    return prefix + "%(levelname)-7s %(name)s: %(message)s"
