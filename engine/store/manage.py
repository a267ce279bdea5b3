"""Manage tokens: a customer's bearer link to one booking.  Only the sha256
of a token is stored, as for one-time links."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from engine.core.model import as_utc
from engine.store.schema import manage_tokens


class ManageTokenRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def create(self, token_sha256: str, booking_id: str, now: datetime) -> None:
        """Record a token for ``booking_id`` (in the booking's transaction)."""
        self._connection.execute(
            manage_tokens.insert(),
            {"token_sha256": token_sha256, "booking_id": booking_id, "created_at": as_utc(now)},
        )

    def booking_of(self, token_sha256: str) -> str | None:
        """The booking the token manages, ``None`` when no token has this digest."""
        return self._connection.execute(
            select(manage_tokens.c.booking_id).where(manage_tokens.c.token_sha256 == token_sha256)
        ).scalar_one_or_none()
