"""The customer pages' routes (interface.md, "Customer pages (HTML)").

Each route translates: it reads the form, calls the same services as the
API (links, bookings, manage) and renders their result — the refusal
sentence is :attr:`BookingOutcome.detail` (``REASONS``).  Every answer is
a page, also every error (never a stack, never a problem document).

A customer who booked through a link gets their manage token in a cookie
scoped to that link's path as well as in the redirect, so that the link,
opened again in the same browser, can point to the manage page; from the
link token alone the manage page is never revealed.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, ParamSpec
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from daemon.http.context import CalpoolApp
from daemon.http.pages.abuse import PublicRate, client_address
from daemon.http.pages.picker import (
    duration_text,
    time_text,
    visitor_zone,
    week_of,
    zone_names,
)
from daemon.http.pages.render import asset, message, page, redirect
from daemon.http.slot_query import parse_time
from daemon.wiring import App
from engine.core.model import Attendee, EventType
from engine.services.booking import BookingOutcome, Result, UnknownEventType
from engine.services.links import InvalidLink, LinkError, LinkExpired, LinkNotFound, LinkUsed
from engine.services.manage import ChangeClosed, ManagedBooking, ManageError, ManageNotFound

log = logging.getLogger("calpool.http")

router = APIRouter(include_in_schema=False)

HONEYPOT = "website"
COOKIE = "calpool_manage"
MAX_FIELD = 2000
# How often a "being confirmed" page reloads itself.
REFRESH_SECONDS = 3
P = ParamSpec("P")

Zone = Annotated[str | None, Query(max_length=64)]
Start = Annotated[str | None, Query(max_length=64)]


async def form_fields(request: Request) -> dict[str, str]:
    """A form-encoded body (``application/x-www-form-urlencoded``), one
    value a field (the first), each cut to ``MAX_FIELD`` characters."""
    body = await request.body()
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {key: values[0][:MAX_FIELD] for key, values in parsed.items() if values}


Form = Annotated[dict[str, str], Depends(form_fields)]


def readable(route: Callable[P, Response]) -> Callable[P, Response]:
    """Answer any failure of ``route`` with a page (logged with its traceback)."""

    @functools.wraps(route)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return route(*args, **kwargs)
        except Exception:
            log.exception("a customer page failed")
            return message(503, "Please try again",
                           "Something went wrong on our side. Nothing was changed by this "
                           "request; please try again in a minute.", headers={"Retry-After": "30"})

    return guarded


# ---- the booking page of a link ---------------------------------------------------------------


@router.get("/book/{token}")
@readable
def link_page(app: CalpoolApp, request: Request, token: str, start: Start = None,
              timezone: Zone = None) -> Response:
    now = app.clock()
    try:
        link = app.links.open(token, now)
    except LinkError as exc:
        return _link_refused(app, request, exc, timezone)
    event_type = app.config.event_types[link.event_type]
    return _booking_page(app, event_type, f"/book/{token}", now, start=start, zone=timezone,
                         prefilled=link.attendee, autozone=True)


@router.post("/book/{token}")
@readable
def book_through_link(app: CalpoolApp, request: Request, token: str, form: Form) -> Response:
    now = app.clock()
    try:
        link = app.links.open(token, now)
    except LinkError as exc:
        return _link_refused(app, request, exc, form.get("timezone"))
    event_type = app.config.event_types[link.event_type]
    action = f"/book/{token}"
    checked = _checked(app, event_type, form, prefilled=link.attendee is not None)
    if isinstance(checked, dict):
        return _booking_page(app, event_type, action, now, form=form, errors=checked,
                             prefilled=link.attendee, status=422)
    start, attendee, zone = checked
    issue, manage_token = app.manage.issuer()
    try:
        outcome = app.links.book(token, start, attendee, form.get("notes", "").strip(), now,
                                 confirm_within=app.config.http.confirm_within,
                                 on_reserved=issue)
    except LinkError as exc:
        return _link_refused(app, request, exc, zone)
    if outcome.result.booked and outcome.result is not Result.FAILED:
        assert manage_token.value is not None
        cookie = _cookie(app, manage_token.value, path=action)
        return redirect(_manage_path(manage_token.value, zone), {"Set-Cookie": cookie})
    return _refused(app, event_type, action, now, form, outcome, prefilled=link.attendee,
                    then=" The link can be used again." if outcome.result is Result.FAILED
                    else "")


# ---- the public page of an event type -----------------------------------------------------------


@router.get("/meet/{event_type}")
@readable
def public_page(app: CalpoolApp, event_type: str, start: Start = None,
                timezone: Zone = None) -> Response:
    found = _public(app, event_type)
    if found is None:
        return _not_found()
    return _booking_page(app, found, f"/meet/{event_type}", app.clock(), start=start,
                         zone=timezone, autozone=True, honeypot=True)


@router.post("/meet/{event_type}")
@readable
def book_public(app: CalpoolApp, request: Request, event_type: str, form: Form) -> Response:
    found = _public(app, event_type)
    if found is None:
        return _not_found()
    now = app.clock()
    action = f"/meet/{event_type}"
    rate: PublicRate = request.app.state.public_rate
    address = client_address(request, trust_proxy=app.config.http.trust_proxy)
    wait = rate.retry_after(address)
    if wait is not None:
        return message(429, "Too many bookings",
                       "Too many bookings came from your address in a short time. Please try "
                       f"again in {max(1, wait // 60)} minutes.",
                       headers={"Retry-After": str(wait)})
    checked = _checked(app, found, form, prefilled=False)
    if not isinstance(checked, dict) and form.get(HONEYPOT, "").strip():
        checked = {"form": "This form could not be sent; please try again."}
    if isinstance(checked, dict):
        return _booking_page(app, found, action, now, form=form, errors=checked, status=422,
                             honeypot=True)
    start, attendee, zone = checked
    assert attendee is not None
    issue, manage_token = app.manage.issuer()
    try:
        outcome = app.bookings.attempt(found.key, start, attendee,
                                       form.get("notes", "").strip(), now,
                                       confirm_within=app.config.http.confirm_within,
                                       on_reserved=issue)
    except UnknownEventType:
        return _not_found()
    if outcome.result.booked:
        rate.record(address)
    if outcome.result.booked and outcome.result is not Result.FAILED:
        assert manage_token.value is not None
        return redirect(_manage_path(manage_token.value, zone))
    return _refused(app, found, action, now, form, outcome, honeypot=True)


# ---- the manage page ----------------------------------------------------------------------------


@router.get("/manage/{token}")
@readable
def manage_page(app: CalpoolApp, token: str, start: Start = None,
                timezone: Zone = None) -> Response:
    try:
        managed = app.manage.open(token, app.clock())
    except ManageNotFound:
        return _not_found()
    return _manage_page(app, token, managed, start=start, zone=timezone, autozone=True)


@router.get("/manage/{token}/cancel")
@router.get("/manage/{token}/reschedule")
@readable
def manage_form_again(token: str) -> Response:
    """A form's address opened as a page (reloaded, or bookmarked): the manage page."""
    return redirect(f"/manage/{quote(token, safe='')}")


@router.post("/manage/{token}/cancel")
@readable
def cancel(app: CalpoolApp, token: str, form: Form) -> Response:
    zone = form.get("timezone")
    try:
        app.manage.cancel(token, app.clock())
    except ManageNotFound:
        return _not_found()
    except ChangeClosed as exc:
        return _manage_closed(app, token, exc, zone)
    return redirect(_manage_path(token, zone))


@router.post("/manage/{token}/reschedule")
@readable
def reschedule(app: CalpoolApp, token: str, form: Form) -> Response:
    now = app.clock()
    zone = form.get("timezone")
    try:
        managed = app.manage.open(token, now)
    except ManageNotFound:
        return _not_found()
    shown = visitor_zone(zone, _owner_zone(app, managed.event_type))
    text = form.get("start", "").strip()
    if not text:
        return _manage_page(app, token, managed, zone=shown, status=422,
                            errors={"start": "Choose a new time."})
    try:
        start = parse_time(text, shown)
    except (ValueError, OverflowError):
        return _manage_page(app, token, managed, zone=shown, status=422,
                            errors={"start": "That is not a time we offered; choose one below."})
    try:
        outcome = app.manage.reschedule(token, start, now)
    except ManageNotFound:
        return _not_found()
    except ChangeClosed as exc:
        return _manage_closed(app, token, exc, zone)
    if outcome.result.booked:
        return redirect(_manage_path(token, zone))
    status = {Result.INVALID: 422, Result.UNAVAILABLE: 503}.get(outcome.result, 409)
    managed = app.manage.open(token, now)
    return _manage_page(app, token, managed, zone=shown, status=status, chosen=text,
                        alert=f"This time cannot be booked: {outcome.detail}. "
                              "Please choose another.")


@router.get("/assets/{name}")
def assets(name: str) -> Response:
    found = asset(name)
    return found if found is not None else _not_found()


# ---- rendering ----------------------------------------------------------------------------------


def _booking_page(
    app: App, event_type: EventType, action: str, now: datetime, *,
    start: str | None = None, zone: str | None = None, form: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None, alert: str | None = None,
    prefilled: Attendee | None = None, status: int = 200, autozone: bool = False,
    honeypot: bool = False,
) -> Response:
    form = form or {}
    owner_zone = _owner_zone(app, event_type)
    shown = visitor_zone(zone or form.get("timezone"), owner_zone)
    week = week_of(app.slots, event_type, shown, start or form.get("week"), now,
                   chosen=form.get("start"))
    owner = app.config.calendars[event_type.owner]
    return page(
        "booking.html", status,
        title=_title(event_type, prefilled), duration=duration_text(event_type.duration),
        owner=owner.name or owner.key, action=action, week=week, zone=shown,
        zones=zone_names(), form=form, errors=errors or {}, alert=alert, prefilled=prefilled,
        autozone=autozone, honeypot=HONEYPOT if honeypot else None, refresh=None,
        page_url=_query_url(action, timezone=shown),
    )


def _manage_page(
    app: App, token: str, managed: ManagedBooking, *, start: str | None = None,
    zone: str | None = None, status: int = 200, errors: Mapping[str, str] | None = None,
    alert: str | None = None, chosen: str | None = None, autozone: bool = False,
) -> Response:
    booking = managed.booking
    event_type = managed.event_type
    shown = visitor_zone(zone, _owner_zone(app, event_type))
    owner = app.config.calendars.get(booking.owner)
    week = None
    if managed.changeable and event_type is not None:
        week = week_of(app.slots, event_type, shown, start, managed.now, chosen=chosen)
    rooms = []
    for room in booking.rooms.values():
        calendar = app.config.calendars.get(room)
        rooms.append(calendar.name or calendar.key if calendar is not None else room)
    pending = booking.status.value == "pending"
    action = f"/manage/{quote(token, safe='')}"
    return page(
        "manage.html", status,
        title=_title(event_type, booking.attendee) if event_type else booking.event_type,
        booking=booking, when=time_text(booking.start, shown),
        until=time_text(booking.end, shown), owner=(owner.name or owner.key) if owner else
        booking.owner, rooms=rooms, state=booking.status.value, managed=managed,
        deadline=time_text(managed.deadline, shown) if managed.deadline else None,
        week=week, zone=shown, zones=zone_names(), action=action, errors=errors or {},
        alert=alert, autozone=autozone, refresh=REFRESH_SECONDS if pending else None,
        page_url=_query_url(action, timezone=shown),
    )


def _refused(app: App, event_type: EventType, action: str, now: datetime,
             form: Mapping[str, str], outcome: BookingOutcome, *,
             prefilled: Attendee | None = None, honeypot: bool = False,
             then: str = "") -> Response:
    """The booking page again, saying why the attempt did not book."""
    if outcome.result is Result.INVALID:
        field = _FIELDS.get(outcome.field or "", "form")
        return _booking_page(app, event_type, action, now, form=form, status=422,
                             errors={field: _sentence(outcome.detail)}, prefilled=prefilled,
                             honeypot=honeypot)
    if outcome.result is Result.FAILED:
        alert = f"The booking could not be completed: {outcome.failure_cause}.{then}"
        status = 502
    elif outcome.result is Result.UNAVAILABLE:
        alert, status = "We could not check this time just now; please try again shortly.", 503
    else:
        alert, status = f"This time cannot be booked: {outcome.detail}. Please choose another.", 409
    kept = {key: value for key, value in form.items() if key != "start"}
    return _booking_page(app, event_type, action, now, form=kept, alert=alert, status=status,
                         prefilled=prefilled, honeypot=honeypot)


def _link_refused(app: App, request: Request, exc: LinkError, zone: str | None) -> Response:
    if isinstance(exc, LinkUsed):
        return _used(app, request, exc, zone)
    if isinstance(exc, LinkExpired):
        return message(410, "This link can no longer be used",
                       f"{_sentence(exc.detail)} Please ask for a new link.")
    if isinstance(exc, InvalidLink):
        return message(422, "This request could not be read", _sentence(exc.detail))
    assert isinstance(exc, LinkNotFound)
    return _not_found()


def _used(app: App, request: Request, exc: LinkUsed, zone: str | None) -> Response:
    """'Already booked', with the time; with the manage link only for the
    browser that booked (its cookie holds the manage token)."""
    link = exc.link
    status = 200 if request.method == "GET" else 409
    text = "This link was used for a booking already; a link books once."
    manage = None
    event_type = app.config.event_types.get(link.event_type)
    if link.booking_id is not None:
        booking = None
        held = request.cookies.get(COOKIE)
        if held:
            try:
                managed = app.manage.open(held, app.clock())
            except ManageError:
                managed = None
            if managed is not None and managed.booking.id == link.booking_id:
                booking = managed.booking
                manage = (_manage_path(held, zone), "See or change your booking")
        if booking is None:
            booking = app.bookings.get(link.booking_id)
        shown = visitor_zone(zone, _owner_zone(app, event_type))
        text = (f"This link is already booked, for {time_text(booking.start, shown)}. "
                "A link books once.")
    return message(status, "Already booked", text, link=manage)


def _manage_closed(app: App, token: str, exc: ChangeClosed, zone: str | None) -> Response:
    managed = app.manage.open(token, app.clock())
    owner = app.config.calendars.get(managed.booking.owner)
    contact = (owner.name or owner.key) if owner else managed.booking.owner
    return _manage_page(app, token, managed, zone=zone, status=409,
                        alert=f"{_sentence(exc.detail)} Please contact {contact}.")


def _not_found() -> Response:
    return message(404, "Page not found",
                   "There is nothing at this address. Please check the link you were sent.")


# ---- form input ---------------------------------------------------------------------------------

_FIELDS = {"attendee.name": "name", "attendee.email": "email", "start": "start",
           "notes": "notes", "attendee": "name"}


def _checked(app: App, event_type: EventType, form: Mapping[str, str], *,
             prefilled: bool) -> tuple[datetime, Attendee | None, str] | dict[str, str]:
    """The start, attendee and zone of a booking form, or a message per bad field."""
    errors: dict[str, str] = {}
    zone = visitor_zone(form.get("timezone"), _owner_zone(app, event_type))
    text = form.get("start", "").strip()
    start = None
    if not text:
        errors["start"] = "Choose a time."
    else:
        try:
            start = parse_time(text, zone)
        except (ValueError, OverflowError):
            errors["start"] = "That is not a time we offered; choose one of the times shown."
    attendee = None
    if not prefilled:
        name = form.get("name", "").strip()
        email = form.get("email", "").strip()
        if not name:
            errors["name"] = "Enter your name."
        local, at, domain = email.partition("@")
        if not (local and at and "." in domain) or any(c.isspace() for c in email):
            errors["email"] = "Enter an email address, like name@example.com."
        attendee = Attendee(name, email)
    if errors or start is None:
        return errors
    return start, attendee, zone


# ---- plumbing -----------------------------------------------------------------------------------


def _public(app: App, key: str) -> EventType | None:
    event_type = app.config.event_types.get(key)
    return event_type if event_type is not None and event_type.public else None


def _owner_zone(app: App, event_type: EventType | None) -> str:
    if event_type is not None and event_type.owner in app.config.calendars:
        return app.config.calendars[event_type.owner].timezone
    return app.config.daemon.timezone


def _title(event_type: EventType, attendee: Attendee | None) -> str:
    values: dict[str, Any] = {"attendee_name": attendee.name if attendee else "you",
                              "attendee_email": attendee.email if attendee else ""}
    try:
        return event_type.title.format_map(_Blank(values)).strip()
    except (ValueError, IndexError, AttributeError):
        return event_type.title


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def _manage_path(token: str, zone: str | None) -> str:
    return _query_url(f"/manage/{quote(token, safe='')}", timezone=zone)


def _query_url(path: str, **query: str | None) -> str:
    given = {key: value for key, value in query.items() if value}
    return f"{path}?{urlencode(given)}" if given else path


def _cookie(app: App, token: str, *, path: str) -> str:
    secure = "; Secure" if app.config.http.public_url.startswith("https:") else ""
    return (f"{COOKIE}={token}; Path={path}; Max-Age={400 * 86400}; HttpOnly; "
            f"SameSite=Strict{secure}")


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
