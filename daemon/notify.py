"""systemd's notification protocol (sd_notify) without a library.

A service of ``Type=notify`` tells systemd about itself by sending datagrams
of ``KEY=VALUE`` lines to the ``AF_UNIX`` socket named in ``$NOTIFY_SOCKET``:
``READY=1`` once it serves, ``STATUS=`` a line for ``systemctl status``,
``RELOADING=1`` / ``STOPPING=1`` around a reload or a stop, and
``WATCHDOG=1`` at least every ``$WATCHDOG_USEC`` microseconds when the unit
sets ``WatchdogSec``.  A name starting with ``@`` is in Linux's abstract
namespace (its first byte is NUL on the wire).  Outside systemd the
variable is unset and every call does nothing, so the daemon calls these
unconditionally.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping
from datetime import timedelta

log = logging.getLogger("calpool.daemon")


class Notifier:
    """Sends notifications to systemd, or nothing when not run by it."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        self.address = _address(environ.get("NOTIFY_SOCKET", ""))
        self.watchdog_interval = _watchdog_interval(environ)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, **fields: str) -> bool:
        """Send ``KEY=VALUE`` lines (keyword names upper-cased); ``True``
        when a datagram went out.  A failure is logged, never raised: the
        daemon must not die because systemd stopped listening."""
        if self.address is None:
            return False
        message = "\n".join(f"{key.upper()}={_one_line(value)}" for key, value in fields.items())
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall(message.encode("utf-8"))
        except OSError as exc:
            log.warning("cannot notify systemd at %s: %s", os.fsdecode(self.address), exc)
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.notify(ready="1", status=status)

    def status(self, status: str) -> bool:
        return self.notify(status=status)

    def reloading(self) -> bool:
        # systemd 253+ checks MONOTONIC_USEC with RELOADING=1 (Type=notify-reload).
        return self.notify(reloading="1", monotonic_usec=str(time.monotonic_ns() // 1000))

    def stopping(self) -> bool:
        return self.notify(stopping="1", status="stopping: finishing the work in hand")

    def watchdog(self) -> bool:
        return self.notify(watchdog="1")


def _address(value: str) -> bytes | None:
    """The socket address of ``$NOTIFY_SOCKET``: a path, or ``@name`` in the
    abstract namespace.  Other forms (``vsock:``) are not ours to serve."""
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode("utf-8")
    if value.startswith("/"):
        return os.fsencode(value)
    return None


def _watchdog_interval(environ: Mapping[str, str]) -> timedelta | None:
    """``$WATCHDOG_USEC`` when it is meant for this process: systemd sets
    ``$WATCHDOG_PID`` too, and a child that inherited both must not ping."""
    usec = environ.get("WATCHDOG_USEC", "")
    pid = environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return timedelta(microseconds=int(usec))


def _one_line(value: str) -> str:
    return " ".join(value.split())
