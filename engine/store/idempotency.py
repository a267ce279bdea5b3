"""Idempotency keys of the HTTP hook, scoped to the API token's name.

``begin`` claims a key with one insert that skips an existing row, so of two
concurrent requests with one key exactly one gets ``NEW``.  Commit the
claim at once (its own unit of work), do the work, then ``finish`` with the
answer, or ``abandon`` when the request died before answering.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, select, update

from engine.core.model import as_utc
from engine.store.dialects import insert_ignoring_duplicates
from engine.store.records import IdempotencyOutcome, IdempotencyState
from engine.store.schema import idempotency_keys


class IdempotencyRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def begin(
        self, token_name: str, key: str, request_sha256: str, now: datetime
    ) -> IdempotencyOutcome:
        # RETURNING, not rowcount: psycopg reports -1 for ON CONFLICT DO NOTHING.
        claimed = self._connection.execute(
            insert_ignoring_duplicates(
                self._connection, idempotency_keys, ["token_name", "key"]
            ).returning(idempotency_keys.c.key),
            {
                "token_name": token_name,
                "key": key,
                "request_sha256": request_sha256,
                "created_at": as_utc(now),
            },
        )
        if claimed.first() is not None:
            return IdempotencyOutcome(IdempotencyState.NEW)
        row = self._connection.execute(
            select(
                idempotency_keys.c.request_sha256,
                idempotency_keys.c.response_status,
                idempotency_keys.c.response_body,
            ).where(idempotency_keys.c.token_name == token_name, idempotency_keys.c.key == key)
        ).one()
        if row.request_sha256 != request_sha256:
            return IdempotencyOutcome(IdempotencyState.MISMATCH)
        if row.response_status is None:
            return IdempotencyOutcome(IdempotencyState.IN_PROGRESS)
        return IdempotencyOutcome(IdempotencyState.REPLAY, row.response_status, row.response_body)

    def finish(self, token_name: str, key: str, status: int, body: str, now: datetime) -> None:
        """Store the answer a ``NEW`` request gave, for replays."""
        self._connection.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.token_name == token_name, idempotency_keys.c.key == key)
            .values(response_status=status, response_body=body, completed_at=as_utc(now))
        )

    def abandon(self, token_name: str, key: str) -> None:
        """Forget an unfinished key so that a retry can run the request again."""
        self._connection.execute(
            delete(idempotency_keys).where(
                idempotency_keys.c.token_name == token_name,
                idempotency_keys.c.key == key,
                idempotency_keys.c.response_status.is_(None),
            )
        )

    def purge_created_before(self, cutoff: datetime) -> int:
        result = self._connection.execute(
            delete(idempotency_keys).where(idempotency_keys.c.created_at < as_utc(cutoff))
        )
        return int(result.rowcount)
