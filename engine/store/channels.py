"""Push channels (Google watch channels, Graph subscriptions) and the
message ids of deliveries already acted on."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, select

from engine.core.model import as_utc
from engine.ports import PushChannel
from engine.store.calendars import CalendarRepository
from engine.store.dialects import insert_ignoring_duplicates
from engine.store.schema import calendars, push_channels, push_messages


class ChannelRepository:
    def __init__(self, connection: Connection, calendars_repo: CalendarRepository) -> None:
        self._connection = connection
        self._calendars = calendars_repo

    def save(self, channel: PushChannel) -> None:
        """Store ``channel`` under its ``calendar`` key (which must be set),
        replacing a stored one with the same id.  Only the token's digest is
        kept; ``created_at`` must be set."""
        if not channel.calendar or channel.created_at is None:
            raise ValueError("a stored channel names its calendar key and when it was opened")
        if not channel.token_sha256:
            raise ValueError("a stored channel needs its token (or the token's digest)")
        self._calendars.ensure([channel.calendar])
        calendar_id = self._calendars.id_of(channel.calendar)
        self._connection.execute(
            delete(push_channels).where(push_channels.c.channel_id == channel.id)
        )
        self._connection.execute(
            push_channels.insert(),
            {
                "channel_id": channel.id,
                "calendar_id": calendar_id,
                "calendar_ref": channel.calendar_id,
                "resource_id": channel.resource_id,
                "token_sha256": channel.token_sha256,
                "expires_at": as_utc(channel.expires_at),
                "created_at": as_utc(channel.created_at),
            },
        )

    def get(self, channel_id: str) -> PushChannel | None:
        rows = self._connection.execute(_query().where(push_channels.c.channel_id == channel_id))
        found = [_channel(row) for row in rows]
        return found[0] if found else None

    def all(self) -> list[PushChannel]:
        """Every stored channel, soonest expiry first."""
        rows = self._connection.execute(_query().order_by(push_channels.c.expires_at))
        return [_channel(row) for row in rows]

    def for_calendar(self, calendar: str) -> list[PushChannel]:
        rows = self._connection.execute(
            _query().where(calendars.c.key == calendar).order_by(push_channels.c.expires_at)
        )
        return [_channel(row) for row in rows]

    def expiring_before(self, instant: datetime) -> list[PushChannel]:
        """Channels to renew: those expiring before ``instant``, soonest first."""
        rows = self._connection.execute(
            _query()
            .where(push_channels.c.expires_at < as_utc(instant))
            .order_by(push_channels.c.expires_at)
        )
        return [_channel(row) for row in rows]

    def remove(self, channel_id: str) -> bool:
        result = self._connection.execute(
            delete(push_channels).where(push_channels.c.channel_id == channel_id)
        )
        return result.rowcount > 0

    def first_delivery(self, channel_id: str, message: str, at: datetime) -> bool:
        """Record that message ``message`` of ``channel_id`` arrived; ``False``
        when it had arrived before (a provider's redelivery)."""
        # RETURNING, not rowcount: psycopg reports -1 for a DO NOTHING insert.
        inserted = self._connection.execute(
            insert_ignoring_duplicates(self._connection, push_messages, ["channel_id", "message"])
            .returning(push_messages.c.channel_id),
            {"channel_id": channel_id, "message": message, "received_at": as_utc(at)},
        ).first()
        return inserted is not None

    def forget_messages_before(self, instant: datetime) -> int:
        """Drop message ids recorded before ``instant`` (no provider
        redelivers that late)."""
        result = self._connection.execute(
            delete(push_messages).where(push_messages.c.received_at < as_utc(instant))
        )
        return result.rowcount


def _query() -> Any:
    return select(push_channels, calendars.c.key).join(
        calendars, calendars.c.id == push_channels.c.calendar_id
    )


def _channel(row: Row[Any]) -> PushChannel:
    return PushChannel(
        id=row.channel_id,
        calendar_id=row.calendar_ref,
        calendar=row.key,
        resource_id=row.resource_id,
        token_sha256=row.token_sha256,
        expires_at=row.expires_at,
        created_at=row.created_at,
    )
