"""The customer pages (interface.md, "Customer pages"): server-rendered HTML
over the same services as the API, working with JavaScript off.

- :mod:`.render` — the Jinja2 environment, the security headers every page
  carries, the assets the daemon serves itself.
- :mod:`.picker` — a week of slots grouped by day in the visitor's zone.
- :mod:`.abuse` — the public page's rate bound and client address.
- :mod:`.routes` — ``/book/{token}``, ``/meet/{event_type}``,
  ``/manage/{manage_token}`` and ``/assets/{name}``.
"""

from daemon.http.pages.routes import router

__all__ = ["router"]
