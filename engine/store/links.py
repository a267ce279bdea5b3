"""One-time booking links.  Only the sha256 of a token is stored: a leaked
database does not hand out bookable links."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, select, update

from engine.core.model import Attendee, as_utc
from engine.store.records import Link
from engine.store.schema import links


class LinkRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def create(self, link: Link) -> None:
        self._connection.execute(
            links.insert(),
            {
                "token_sha256": link.token_sha256,
                "event_type": link.event_type,
                "created_at": link.created_at,
                "expires_at": link.expires_at,
                "attendee_name": link.attendee.name if link.attendee else None,
                "attendee_email": link.attendee.email if link.attendee else None,
                "used_at": link.used_at,
                "booking_id": link.booking_id,
                "revoked_at": link.revoked_at,
            },
        )

    def get(self, token_sha256: str) -> Link | None:
        row = self._connection.execute(
            select(links).where(links.c.token_sha256 == token_sha256)
        ).one_or_none()
        return None if row is None else _link(row)

    def use(self, token_sha256: str, booking_id: str, now: datetime) -> bool:
        """Spend the link on ``booking_id`` (in the booking's transaction).

        One conditional update, so of two concurrent uses exactly one gets
        ``True``; ``False`` when the link is used, revoked, expired or
        unknown (:meth:`get` tells which).
        """
        now = as_utc(now)
        result = self._connection.execute(
            update(links)
            .where(
                links.c.token_sha256 == token_sha256,
                links.c.used_at.is_(None),
                links.c.revoked_at.is_(None),
                links.c.expires_at > now,
            )
            .values(used_at=now, booking_id=booking_id)
        )
        return result.rowcount == 1

    def give_back(self, booking_id: str) -> bool:
        """Make the link spent on ``booking_id`` usable again (the booking failed)."""
        result = self._connection.execute(
            update(links)
            .where(links.c.booking_id == booking_id, links.c.used_at.is_not(None))
            .values(used_at=None, booking_id=None)
        )
        return result.rowcount > 0

    def revoke(self, token_sha256: str, now: datetime) -> bool:
        """Revoke an unused link; ``False`` when it is unknown, used or revoked."""
        result = self._connection.execute(
            update(links)
            .where(
                links.c.token_sha256 == token_sha256,
                links.c.used_at.is_(None),
                links.c.revoked_at.is_(None),
            )
            .values(revoked_at=as_utc(now))
        )
        return result.rowcount == 1

    def unused(self, now: datetime) -> list[Link]:
        """Links that can still be used at ``now``, soonest expiry first."""
        rows = self._connection.execute(
            select(links)
            .where(
                links.c.used_at.is_(None),
                links.c.revoked_at.is_(None),
                links.c.expires_at > as_utc(now),
            )
            .order_by(links.c.expires_at, links.c.token_sha256)
        )
        return [_link(row) for row in rows]

    def purge_expired_before(self, cutoff: datetime) -> int:
        """Delete links that expired before ``cutoff`` and were never used."""
        result = self._connection.execute(
            delete(links).where(links.c.expires_at < as_utc(cutoff), links.c.used_at.is_(None))
        )
        return int(result.rowcount)

    def purge_used_before(self, cutoff: datetime) -> int:
        """Delete links used before ``cutoff`` (with their prefilled attendee)."""
        result = self._connection.execute(
            delete(links).where(links.c.used_at.is_not(None), links.c.used_at < as_utc(cutoff))
        )
        return int(result.rowcount)


def _link(row: Row[Any]) -> Link:
    attendee = None
    if row.attendee_email is not None:
        attendee = Attendee(name=row.attendee_name or "", email=row.attendee_email)
    return Link(
        token_sha256=row.token_sha256,
        event_type=row.event_type,
        created_at=row.created_at,
        expires_at=row.expires_at,
        attendee=attendee,
        used_at=row.used_at,
        booking_id=row.booking_id,
        revoked_at=row.revoked_at,
    )
