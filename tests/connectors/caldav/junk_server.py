"""A deliberately broken HTTP server: it answers every request with one
scripted status, body and headers."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Script:
    """What the server answers to every request, whatever it is."""

    status: int = 500
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)


class JunkServer:
    def __init__(self) -> None:
        self.script = Script()
        script_of = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                script = script_of.script
                script.requests.append(f"{self.command} {self.path}")
                self.send_response(script.status)
                for name, value in script.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(script.body)))
                self.end_headers()
                self.wfile.write(script.body)

            do_GET = do_PUT = do_DELETE = do_REPORT = do_PROPFIND = do_OPTIONS = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/dav/"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
