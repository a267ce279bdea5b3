"""Keep the caldav library's parse noise out of calpool's log.

caldav tries to parse every answer body as XML; a body that is not (a
Cyrus 404 page in HTML, a text/plain 412 from Radicale) is logged on the
*root* logger at INFO, with the lxml traceback: "Expected some valid XML
from the server, but got this: …".  calpool sends those requests on
purpose and checks every status itself (an unreadable body it needed
becomes a ``PermanentError`` naming the request), so inside
:func:`library_parse_log_quieted` such records are dropped from the root
logger and a one-line DEBUG record of this module stands for them.

The filter is installed once on the root logger and acts only on the
thread that is inside the context, and only on that one message, so
nothing else anyone logs is touched.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)

_NOISE = "Expected some valid XML from the server"
_inside = threading.local()
_install_lock = threading.Lock()
_installed = False


class _DropLibraryParseNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(_inside, "depth", 0):
            return True
        if not (isinstance(record.msg, str) and record.msg.startswith(_NOISE)):
            return True
        log.debug("caldav: an answer body was not XML (calpool checks the status itself)")
        return False


def _install() -> None:
    global _installed
    with _install_lock:
        if not _installed:
            logging.getLogger().addFilter(_DropLibraryParseNoise())
            _installed = True


@contextlib.contextmanager
def library_parse_log_quieted() -> Iterator[None]:
    """Drop caldav's "Expected some valid XML" records in this thread."""
    _install()
    _inside.depth = getattr(_inside, "depth", 0) + 1
    try:
        yield
    finally:
        _inside.depth -= 1
