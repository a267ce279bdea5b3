"""Idempotency keys of the HTTP hook, scoped to the API token's name.

``begin`` claims a key with one insert that skips an existing row, so of two
concurrent requests with one key exactly one gets ``NEW``.  Commit the
claim at once (its own unit of work), do the work, then ``finish`` with the
answer, or ``abandon`` when the request died before answering.  ``hold``
records, in the transaction of the work itself, the answer to give should
the process die before ``finish``; ``take_over`` settles such a claim: one
older than any request could run, or one whose claiming process (its holder
name in ``claimed_by``) has stopped saying in ``processes`` that it runs.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, and_, delete, exists, or_, select, update

from engine.core.model import as_utc
from engine.store.dialects import insert_ignoring_duplicates
from engine.store.records import IdempotencyOutcome, IdempotencyState
from engine.store.schema import idempotency_keys, processes


class IdempotencyRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def begin(
        self, token_name: str, key: str, request_sha256: str, now: datetime, *,
        holder: str | None = None,
    ) -> IdempotencyOutcome:
        """Claim the key for the process named ``holder``, or say why not."""
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
                "claimed_by": holder,
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

    def hold(self, token_name: str, key: str, body: str) -> None:
        """Record, in the caller's transaction, the answer to give should the
        request die now (``take_over``); the key stays ``IN_PROGRESS``."""
        self._connection.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.token_name == token_name, idempotency_keys.c.key == key,
                   idempotency_keys.c.response_status.is_(None))
            .values(response_body=body)
        )

    def take_over(
        self, token_name: str, key: str, *, started_before: datetime, held_status: int,
        now: datetime, holder: str | None = None, claimer_silent_since: datetime | None = None,
        claimer_started_before: datetime | None = None,
    ) -> IdempotencyOutcome | None:
        """Take an unfinished key whose request died: claimed before
        ``started_before``, or (with ``claimer_silent_since``) claimed before
        ``claimer_started_before`` by a process whose row in ``processes``
        was last seen before ``claimer_silent_since`` (killed; a process that
        stopped cleanly has left the table and finished its requests).  With
        a held answer (``hold``) the key is finished as ``held_status`` and
        returned as ``REPLAY``; without one the claim is renewed for
        ``holder`` (``NEW``).  ``None`` when the key is not such a claim.  Of
        two callers at once only one takes it."""
        died = idempotency_keys.c.created_at < as_utc(started_before)
        if claimer_silent_since is not None:
            claimer_gone = exists().where(
                processes.c.holder == idempotency_keys.c.claimed_by,
                processes.c.seen_at < as_utc(claimer_silent_since),
            )
            began_before = as_utc(claimer_started_before or now)
            died = or_(died, and_(idempotency_keys.c.created_at < began_before, claimer_gone))
        renewed = self._connection.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.token_name == token_name, idempotency_keys.c.key == key,
                   idempotency_keys.c.response_status.is_(None), died)
            .values(created_at=as_utc(now), claimed_by=holder)
            .returning(idempotency_keys.c.response_body)
        ).first()
        if renewed is None:
            return None
        if renewed.response_body is None:
            return IdempotencyOutcome(IdempotencyState.NEW)
        self.finish(token_name, key, held_status, renewed.response_body, now)
        return IdempotencyOutcome(IdempotencyState.REPLAY, held_status, renewed.response_body)

    def abandon(self, token_name: str, key: str) -> None:
        """Forget an unfinished key so that a retry can run the request again
        (not one with a held answer: that request did its work)."""
        self._connection.execute(
            delete(idempotency_keys).where(
                idempotency_keys.c.token_name == token_name,
                idempotency_keys.c.key == key,
                idempotency_keys.c.response_status.is_(None),
                idempotency_keys.c.response_body.is_(None),
            )
        )

    def purge_created_before(self, cutoff: datetime) -> int:
        result = self._connection.execute(
            delete(idempotency_keys).where(idempotency_keys.c.created_at < as_utc(cutoff))
        )
        return int(result.rowcount)
