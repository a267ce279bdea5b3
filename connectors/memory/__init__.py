"""An in-memory provider and its connector: the whole connector protocol,
no I/O, for the contract suite, the service tests and demos."""

from connectors.memory.connector import MemoryConnector
from connectors.memory.events import (
    Answer,
    MemoryEvent,
    Occurrence,
    Participant,
    Role,
    booking_object_id,
    booking_uid,
    copy_uid,
)
from connectors.memory.faults import Fault, FaultKind, Operation
from connectors.memory.provider import MemoryProvider, StoredObject
from connectors.memory.push import Delivery

__all__ = [
    "Answer",
    "Delivery",
    "Fault",
    "FaultKind",
    "MemoryConnector",
    "MemoryEvent",
    "MemoryProvider",
    "Occurrence",
    "Operation",
    "Participant",
    "Role",
    "StoredObject",
    "booking_object_id",
    "booking_uid",
    "copy_uid",
]
