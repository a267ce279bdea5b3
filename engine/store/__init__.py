"""The SQL store: the only place in calpool that knows SQL.

``Store.open(url)`` gives units of work (:mod:`engine.store.unit_of_work`)
whose repositories read and write engine values; ``engine.store.migrate``
upgrades the schema (``calpool db upgrade``).  Supported URLs:
``sqlite:///ABSOLUTE/PATH.db`` and ``postgresql+psycopg://USER@HOST/DB``.
"""

from engine.ports import PushChannel  # the one channel type, shared with the connectors
from engine.store import migrate
from engine.store.changes import ChangeFeed
from engine.store.errors import (
    BookingExists,
    DuplicateInstance,
    ReservationConflict,
    SchemaNotCurrent,
    StoreError,
    UnknownBooking,
)
from engine.store.leases import Lease, sync_lease
from engine.store.processes import ConfigSeen, ProcessSeen
from engine.store.records import (
    Assignment,
    BookingEvent,
    Delivery,
    DeliveryHow,
    DeliveryState,
    EmailDelivery,
    IdempotencyOutcome,
    IdempotencyState,
    Link,
    OutboxJob,
    StatusChange,
    SyncState,
    WebhookDelivery,
)
from engine.store.unit_of_work import Store, UnitOfWork

__all__ = [
    "Assignment",
    "BookingEvent",
    "BookingExists",
    "ChangeFeed",
    "ConfigSeen",
    "Delivery",
    "DeliveryHow",
    "DeliveryState",
    "DuplicateInstance",
    "EmailDelivery",
    "IdempotencyOutcome",
    "IdempotencyState",
    "Lease",
    "Link",
    "OutboxJob",
    "ProcessSeen",
    "PushChannel",
    "ReservationConflict",
    "SchemaNotCurrent",
    "StatusChange",
    "Store",
    "StoreError",
    "SyncState",
    "UnitOfWork",
    "UnknownBooking",
    "WebhookDelivery",
    "migrate",
    "sync_lease",
]
