"""Serving the HTTP hook with uvicorn on a thread of the daemon process.

The scheduler and the hook share one process and one ``App``; uvicorn runs
its own event loop on a thread, so the daemon's main thread stays free for
signals.  :meth:`HttpServer.start` returns once the socket is bound, so a
caller (systemd's READY=1, the demo's banner) can announce a listener that
really answers.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from daemon.http.limits import protocol_for


class HttpServerError(RuntimeError):
    """The listener could not be bound or did not come up."""


class HttpServer:
    def __init__(
        self,
        asgi: FastAPI,
        *,
        host: str,
        port: int,
        tls_cert_file: Path | None = None,
        tls_key_file: Path | None = None,
        startup_timeout: float = 15.0,
        client_timeout: float = 15.0,
        max_connections: int | None = 512,
    ) -> None:
        self._sock = _bind(host, port)
        self.host = host
        self.port = int(self._sock.getsockname()[1])
        scheme = "https" if tls_cert_file else "http"
        shown = f"[{host}]" if ":" in host else host
        self.url = f"{scheme}://{shown}:{self.port}"
        config = uvicorn.Config(
            asgi,
            log_config=None,  # the daemon configured logging already
            access_log=False,
            ssl_certfile=str(tls_cert_file) if tls_cert_file else None,
            ssl_keyfile=str(tls_key_file) if tls_key_file else None,
            timeout_graceful_shutdown=10,
            lifespan="off",
            # http.client_timeout: reading a request (GuardedH11Protocol)
            # and an idle keep-alive connection (uvicorn's own timer);
            # http.max_connections: counted by GuardedH11Protocol as each
            # connection opens (an h11 connection runs one request at a
            # time, so it bounds the requests in flight too).
            http=protocol_for(client_timeout, max_connections),
            timeout_keep_alive=max(1, round(client_timeout)),
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="http", daemon=True)
        self._startup_timeout = startup_timeout
        self._error: BaseException | None = None

    def _serve(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as exc:  # reported by start()/stop(), not lost on the thread
            self._error = exc

    def start(self) -> None:
        """Serve in the background; returns once uvicorn accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                raise HttpServerError(f"the HTTP hook did not start: {self._error}")
            if time.monotonic() > deadline:
                raise HttpServerError("the HTTP hook did not start in time")
            time.sleep(0.02)

    @property
    def alive(self) -> bool:
        """Whether the serving thread still runs (for systemd's watchdog)."""
        return self._thread.is_alive() and not self._server.should_exit

    def stop(self) -> None:
        """Stop accepting, let requests in flight finish, then return."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=15)
        self._sock.close()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY on an accepted socket only
    # when its proto is IPPROTO_TCP, and accepted sockets copy the listener's.
    # With proto 0 every small answer waited out a 40 ms delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise HttpServerError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock
