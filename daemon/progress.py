"""How a run of syncs over many calendars shows its progress.

On a terminal: a rich progress bar (calendars done / total, events, rate,
time left), drawn on the error stream and gone when the run ends; lines
printed meanwhile (each calendar's outcome, log records) appear above it.
Elsewhere (a pipe, systemd's journal): one plain line for every tenth of the
calendars and one at the end, so a log shows the pace without a line per
calendar.  The figures are :class:`engine.services.sync_tally.SyncTally`'s.
"""

from __future__ import annotations

import io
import logging
import math
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from engine.services.sync import SyncReport
from engine.services.sync_tally import SyncTally

Emit = Callable[[str], None]


class SyncProgress:
    """Progress of ``total`` syncs.  ``emit`` receives the plain lines when
    ``stream`` is not a terminal (default: written to ``stream``).  Use as a
    context manager; :meth:`add` is thread-safe."""

    def __init__(
        self,
        stream: TextIO,
        total: int,
        *,
        title: str = "sync",
        emit: Emit | None = None,
        clock: Callable[[], float] = time.monotonic,
        terminal: bool | None = None,
    ) -> None:
        self.tally = SyncTally(total)
        self._stream = stream
        self._title = title
        self._emit = emit or (lambda line: print(line, file=stream, flush=True))
        self._clock = clock
        self._began = clock()
        self._lock = threading.Lock()
        self._terminal = _is_terminal(stream) if terminal is None else terminal
        self._step = max(1, math.ceil(total / 10)) if total else 0
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._handlers: list[tuple[logging.StreamHandler[TextIO], TextIO]] = []

    @property
    def elapsed(self) -> float:
        return self._clock() - self._began

    def __enter__(self) -> SyncProgress:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        if not self._terminal or self._bar is not None:
            return
        console = Console(file=self._stream, force_terminal=True)
        self._bar = Progress(
            TextColumn(f"[bold]{self._title}[/]"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} calendars"),
            TextColumn("{task.fields[events]:,} events, {task.fields[rate]:,.0f}/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = self._bar.add_task(self._title, total=self.tally.total or None,
                                        events=0, rate=0.0)
        # Log records written to the same terminal go above the bar.
        above = _AboveBar(console)
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is self._stream:
                self._handlers.append((handler, handler.stream))
                handler.setStream(above)
        self._bar.start()

    def stop(self) -> None:
        bar, self._bar = self._bar, None
        if bar is not None:
            bar.stop()
        for handler, stream in self._handlers:
            handler.setStream(stream)
        self._handlers.clear()

    def add(self, report: SyncReport, seconds: float = 0.0) -> None:
        with self._lock:
            self.tally.add(report, seconds)
            elapsed = self.elapsed
            done = self.tally.done
            if self._bar is not None and self._task is not None:
                self._bar.update(self._task, completed=done, events=self.tally.events,
                                 rate=self.tally.rate(elapsed), refresh=True)
            elif not self._terminal and self._step and (
                    done % self._step == 0 or done == self.tally.total):
                self._emit(f"{self._title}: {self.tally.progress_line(elapsed)}")

    def print(self, line: str, out: TextIO) -> None:
        """Print ``line`` to ``out``; above the bar when both share the terminal."""
        bar = self._bar
        if bar is not None and _is_terminal(out):
            bar.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            print(line, file=out, flush=True)


class _AboveBar(io.TextIOBase):
    """A text stream that prints whole lines through a rich console."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._console.print(line, markup=False, highlight=False, soft_wrap=True)
        return len(text)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
