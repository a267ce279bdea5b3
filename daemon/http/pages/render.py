"""Rendering a page: Jinja2 templates (autoescaped), the headers every page
carries, and the daemon's own assets (no CDN, no build step).

The Content-Security-Policy allows scripts and styles from the daemon
only (``'self'``, no inline script at all), forms posting back to it, and
no framing; ``Referrer-Policy: no-referrer`` because the link or manage
token is in the URL; ``Cache-Control: no-store`` because a page shows an
attendee's booking.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

HERE = Path(__file__).parent
ASSETS: Mapping[str, str] = {
    "calpool.css": "text/css; charset=utf-8",
    "calpool.js": "text/javascript; charset=utf-8",
}

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

_environment = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def page(template: str, status: int = 200, headers: Mapping[str, str] | None = None,
         **context: Any) -> HTMLResponse:
    """``template`` rendered with ``context``, with the page headers."""
    body = _environment.get_template(template).render(**context)
    return HTMLResponse(body, status_code=status, headers={**HEADERS, **(headers or {})})


def message(status: int, title: str, text: str, *, headers: Mapping[str, str] | None = None,
            link: tuple[str, str] | None = None) -> HTMLResponse:
    """A page that says one thing: an error, a used or expired link."""
    return page("message.html", status, headers, title=title, text=text, link=link,
                refresh=None, zone=None, autozone=False)


def redirect(location: str, headers: Mapping[str, str] | None = None) -> Response:
    """``303 See Other`` to ``location`` (after a form post)."""
    return Response(status_code=303, headers={**HEADERS, "Location": location, **(headers or {})})


def asset(name: str) -> Response | None:
    """One of :data:`ASSETS`, or ``None``."""
    media_type = ASSETS.get(name)
    if media_type is None:
        return None
    return Response((HERE / "assets" / name).read_bytes(), media_type=media_type,
                    headers={"X-Content-Type-Options": "nosniff",
                             "Cache-Control": "public, max-age=3600"})
