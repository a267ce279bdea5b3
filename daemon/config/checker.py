"""The collector of config problems, shared by the modules that check sections.

A problem is one line, ``<key path>: <sentence>``.  Checks never stop at the
first mistake: each adds its problems and goes on with what it could read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from daemon.config.schema import check_key, describe_error

T = TypeVar("T")


def key_path(base: str, *steps: str | int) -> str:
    """``calendars.alice`` + ``("overrides", "2026-12-24")`` →
    ``calendars.alice.overrides.2026-12-24``; list indexes read ``tokens[1]``."""
    path = base
    for step in steps:
        if isinstance(step, int):
            path = f"{path}[{step}]"
        elif path:
            path = f"{path}.{step}"
        else:
            path = step
    return path


def either(names: Iterable[str]) -> str:
    """``a, b or c``."""
    listed = list(names)
    return ", ".join(listed[:-1]) + " or " + listed[-1] if len(listed) > 1 else listed[0]


class Checker:
    """Collects problems while one config document is checked.

    ``folder`` is the config file's folder: relative paths in the file are
    relative to it.
    """

    def __init__(self, document: dict[str, Any], folder: Path) -> None:
        self.document = document
        self.folder = folder
        self.problems: list[str] = []

    def problem(self, path: str, sentence: str) -> None:
        self.problems.append(f"{path}: {sentence}")

    def validate(self, check: Callable[[Any], T], data: Any, path: str) -> T | None:
        """``check(data)``, its pydantic errors turned into problems under ``path``."""
        try:
            return check(data)
        except ValidationError as exc:
            for error in exc.errors():
                steps, sentence = describe_error(dict(error))
                self.problem(key_path(path, *steps), sentence)
            return None

    def path_of(self, text: str | None) -> Path | None:
        if text is None:
            return None
        path = Path(text).expanduser()
        return path if path.is_absolute() else self.folder / path

    def named(self, section: str) -> dict[str, Any]:
        """A table of named entries (``[calendars.alice]`` …), keys checked."""
        table = self.document.get(section, {})
        if not isinstance(table, dict):
            self.problem(section, "must be a table")
            return {}
        for key in table:
            try:
                check_key(key)
            except ValueError as exc:
                self.problem(key_path(section, key), str(exc))
        return table

    def one_of(self, path: str, given: dict[str, object], *, required: bool = True) -> str | None:
        """The one key of ``given`` that is set.  A problem when several are,
        or when none is and one is ``required``."""
        present = [name for name, value in given.items() if value is not None]
        if len(present) > 1:
            self.problem(key_path(path, present[1]),
                         f"give only one of {either(given)}, not {present[0]} as well")
        elif not present and required:
            self.problem(path, f"needs one of {either(given)}")
        return present[0] if len(present) == 1 else None
