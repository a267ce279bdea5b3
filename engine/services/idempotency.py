"""Idempotency keys of requests that create something (``POST /v1/bookings``).

A key is scoped to the API token's name.  The life of one::

    begin ──NEW──▶ the request runs ──▶ finish(status, body)      (any 2xx/4xx answer)
      │                   │
      │                   ├─ reserved: hold(body) in the booking's own transaction
      │                   └─ died (5xx, crash) ──▶ abandon   (a retry runs it again)
      ├──REPLAY──▶ the stored answer, as first sent
      ├──MISMATCH──▶ the key was used with another request
      └──IN_PROGRESS──▶ the first request still runs

``hold`` makes the key and the booking one commit: a process killed after
reserving leaves a key whose held answer (the pending booking) is given to
the retry once the claim is older than ``abandon_after``, instead of a second
booking.  A claim without a held answer that old is taken over by the retry.
A claim whose process is known to be gone (its row in ``processes`` went
silent for a lease ttl: killed) is taken over as soon as that is seen, once
it is older than the longest a request runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.core.model import Booking
from engine.store import IdempotencyOutcome, IdempotencyState, StatusChange, Store, UnitOfWork

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """The sha256 a key's request is recognised by.  A JSON body counts by
    its content (key order and spacing do not matter), anything else by its
    bytes."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeDecodeError):
        canonical = body
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Claimer:
    """The process that claims keys here, as :mod:`engine.services.processes`
    records it: its ``holder`` name, and how long a process may stay silent
    in ``processes`` before it counts as gone (``silent_for``, the lease
    ttl).  A key a gone process claimed at least ``runs_at_most`` ago (the
    longest a request waits for the providers) died with it."""

    holder: str
    silent_for: timedelta
    runs_at_most: timedelta


class IdempotencyKeys:
    """The keys of one store.  ``held_status`` is the answer a held body is
    replayed with after its request died (202: the booking is reserved, its
    writes go on).  A claim dies after ``abandon_after``; with ``claimer``,
    also once the process that made it is gone (``kill -9``), which is
    seconds rather than minutes when the lease ttl is short."""

    def __init__(self, store: Store, *, clock: Clock, abandon_after: timedelta,
                 held_status: int = 202, claimer: Claimer | None = None) -> None:
        self._store = store
        self._clock = clock
        self._abandon_after = abandon_after
        self._held_status = held_status
        self._claimer = claimer

    def begin(self, client: str, key: str, fingerprint: str) -> IdempotencyOutcome:
        """Claim ``key`` for ``client`` (committed at once, so that a second
        request sees it), or say why not."""
        now = self._clock()
        claimer = self._claimer
        holder = claimer.holder if claimer else None
        with self._store.unit_of_work() as uow:
            outcome = uow.idempotency.begin(client, key, fingerprint, now, holder=holder)
            if outcome.state is IdempotencyState.IN_PROGRESS:
                outcome = uow.idempotency.take_over(
                    client, key, started_before=now - self._abandon_after,
                    held_status=self._held_status, now=now, holder=holder,
                    claimer_silent_since=now - claimer.silent_for if claimer else None,
                    claimer_started_before=now - claimer.runs_at_most if claimer else None,
                ) or outcome
            uow.commit()
        return outcome

    @staticmethod
    def hold(uow: UnitOfWork, client: str, key: str, body: str) -> None:
        """Inside the transaction that does the work: the answer for a retry
        should this process die before :meth:`finish`."""
        uow.idempotency.hold(client, key, body)

    def finish(self, client: str, key: str, status: int, body: str) -> None:
        with self._store.unit_of_work() as uow:
            uow.idempotency.finish(client, key, status, body, self._clock())
            uow.commit()

    def abandon(self, client: str, key: str) -> None:
        """Forget the claim (the request failed without an answer worth
        keeping) so that a retry runs it again."""
        with self._store.unit_of_work() as uow:
            uow.idempotency.abandon(client, key)
            uow.commit()


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """An answer as first given and as replayed: its status and body."""

    status: int
    body: str


@dataclass(frozen=True, slots=True)
class KeyedAnswer:
    answer: StoredAnswer
    replayed: bool


class KeyReused(Exception):
    """The key was used before with another request."""


class KeyInFlight(Exception):
    """The first request with the key still runs."""


Hold = Callable[[UnitOfWork, Booking], None]
"""What the attempt calls inside the reservation's transaction."""


class IdempotentRequests:
    """Runs a request under an idempotency key (the module docstring's
    life of a key): a new key runs ``attempt``, a known one replays its
    answer or is refused.  Every answer below 500 is kept; so is any answer
    of a request that reserved a booking (its held answer stands for it);
    other 5xx answers and exceptions release the key for a retry."""

    def __init__(self, keys: IdempotencyKeys) -> None:
        self._keys = keys

    def run(
        self,
        client: str,
        key: str,
        fingerprint: str,
        attempt: Callable[[Hold], StoredAnswer],
        held: Callable[[Booking, Sequence[StatusChange]], str],
    ) -> KeyedAnswer:
        """``attempt(hold)`` runs the request; it passes ``hold`` to the
        booking service as ``on_reserved``, and ``held(booking, history)``
        renders the answer a retry gets should this process die before it
        answers.  Raises :class:`KeyReused` and :class:`KeyInFlight`."""
        begun = self._keys.begin(client, key, fingerprint)
        if begun.state is IdempotencyState.MISMATCH:
            raise KeyReused(key)
        if begun.state is IdempotencyState.IN_PROGRESS:
            raise KeyInFlight(key)
        if begun.state is IdempotencyState.REPLAY:
            assert begun.status is not None and begun.body is not None
            return KeyedAnswer(StoredAnswer(begun.status, begun.body), replayed=True)
        reserved = False

        def hold(uow: UnitOfWork, booking: Booking) -> None:
            nonlocal reserved
            self._keys.hold(uow, client, key, held(booking, uow.bookings.history(booking.id)))
            reserved = True

        try:
            answer = attempt(hold)
        except BaseException:
            self._release(client, key)
            raise
        if answer.status < 500 or reserved:
            self._keys.finish(client, key, answer.status, answer.body)
        else:
            self._release(client, key)
        return KeyedAnswer(answer, replayed=False)

    def _release(self, client: str, key: str) -> None:
        try:
            self._keys.abandon(client, key)
        except Exception as exc:  # the answer stands whatever the release did
            # The claim then ends when a retry finds it older than the
            # request could have run (IdempotencyKeys.begin takes it over).
            log.warning("could not release Idempotency-Key %r: %s", key, exc)
