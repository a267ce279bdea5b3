"""SQLite writers of one process queue in the process before ``BEGIN
IMMEDIATE`` (engine.store.database): one at a time, readers never wait for
them, and however a write transaction ends the next writer goes on at once
(a leaked turn would hold every writer for the 30 s busy timeout)."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.store import Store, UnitOfWork

# Far below the busy timeout, far above a free hand-over.
PROMPT = 5.0


@pytest.fixture
def sqlite_store(sqlite_template: Path, tmp_path: Path) -> Iterator[Store]:
    path = tmp_path / "calpool.db"
    shutil.copyfile(sqlite_template, path)
    with Store.open(f"sqlite:///{path}") as store:
        yield store


def writer_in_thread(store: Store, began: threading.Event) -> threading.Thread:
    """A thread that opens a write transaction, says so, and commits."""

    def write() -> None:
        with store.unit_of_work() as uow:
            uow.calendars.change_mark()  # the first statement takes the turn
            began.set()
            uow.commit()

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def test_writers_take_turns_and_readers_do_not_wait(sqlite_store: Store) -> None:
    began = threading.Event()
    with sqlite_store.unit_of_work() as uow:
        uow.calendars.change_mark()
        other = writer_in_thread(sqlite_store, began)
        assert not began.wait(0.3), "a second writer began while the first was open"
        with sqlite_store.reader() as reader:
            assert reader.calendars.change_mark() is not None
        uow.commit()
    assert began.wait(PROMPT)
    other.join(PROMPT)
    assert not other.is_alive()


def _commit(uow: UnitOfWork) -> None:
    uow.commit()


def _rollback(uow: UnitOfWork) -> None:
    uow.rollback()


def _leave(_uow: UnitOfWork) -> None:
    """Leave the ``with`` block without committing."""


@pytest.mark.parametrize("end", [_commit, _rollback, _leave], ids=["commit", "rollback", "leave"])
def test_the_next_writer_goes_on_however_a_transaction_ends(
    sqlite_store: Store, end: Callable[[UnitOfWork], None]
) -> None:
    with sqlite_store.unit_of_work() as uow:
        uow.calendars.change_mark()
        end(uow)
        if end is not _leave:
            # Still inside the unit of work: its next statement would begin
            # anew, so the turn must be free already.
            began = threading.Event()
            writer_in_thread(sqlite_store, began).join(PROMPT)
            assert began.is_set()
    began = threading.Event()
    writer_in_thread(sqlite_store, began).join(PROMPT)
    assert began.is_set()


def test_the_next_writer_goes_on_after_an_exception(sqlite_store: Store) -> None:
    with pytest.raises(RuntimeError), sqlite_store.unit_of_work() as uow:
        uow.calendars.change_mark()
        raise RuntimeError("the caller failed mid-transaction")
    began = threading.Event()
    writer_in_thread(sqlite_store, began).join(PROMPT)
    assert began.is_set()
