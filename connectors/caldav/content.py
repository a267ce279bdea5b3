"""iCalendar text as components of undecoded content lines (RFC 5545 §3.1).

Lines are unfolded and split into name, parameters and value; nothing is
decoded here, so nothing about a value (a time zone above all) is looked up
or cached beyond the one object being read.  A line that does not split is
kept as the name it starts with in :attr:`Component.unreadable`: the reader
decides whether that name matters for busy time.  Reading is lenient about
structure too: a missing ``END`` closes at the end of the text, a stray
``END`` is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

from icalendar.parser import Contentline

_NAME = re.compile(r"[A-Za-z0-9-]+")
_STRUCTURE = frozenset({"BEGIN", "END"})


@dataclass(frozen=True, slots=True)
class Property:
    """One content line: ``params`` as (upper-case name, value) pairs, a
    multi-valued parameter joined by commas; ``value`` as written."""

    name: str
    params: tuple[tuple[str, str], ...]
    value: str

    def param(self, name: str) -> str | None:
        for key, value in self.params:
            if key == name:
                return value
        return None


@dataclass(slots=True, eq=False)
class Component:
    name: str
    properties: list[Property] = field(default_factory=list)
    children: list[Component] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def all(self, name: str) -> list[Property]:
        return [p for p in self.properties if p.name == name]

    def first(self, name: str) -> Property | None:
        return next((p for p in self.properties if p.name == name), None)

    def walk(self, name: str) -> Iterator[Component]:
        for child in self.children:
            if child.name == name:
                yield child
            yield from child.walk(name)

    def fingerprint(self) -> tuple[object, ...]:
        """Equal for components with equal content: a cache key that, unlike
        a TZID, changes whenever the content does."""
        return (
            self.name,
            tuple(self.properties),
            tuple(child.fingerprint() for child in self.children),
        )


def unfold(text: str) -> list[str]:
    """Logical lines: a line break followed by one space or tab continues
    the line before (RFC 5545 §3.1); bare LF line breaks are accepted."""
    lines: list[str] = []
    for physical in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if physical[:1] in (" ", "\t") and lines:
            lines[-1] += physical[1:]
        elif physical.strip():
            lines.append(physical)
    return lines


# A line with nothing to unquote or unescape: ``NAME(;PARAM=word)*:value``
# where no parameter value holds a quote, a separator, a caret (RFC 6868) or
# a blank and the value no backslash.  icalendar's splitter gives such a
# line's parts as written; split here, they cost a tenth.
_PLAIN = re.compile(r"([A-Za-z0-9-]+)((?:;[A-Za-z0-9-]+=[^\"';:,^\\\s]*)*):([^\\]*)")
_PLAIN_PARAM = re.compile(r";([A-Za-z0-9-]+)=([^;]*)")


def split_line(line: str) -> Property:
    """Raise ``ValueError`` when the line is not ``name *(;param) : value``."""
    plain = _PLAIN.fullmatch(line)
    if plain is not None:
        name, params, value = plain.groups()
        pairs = tuple((key.upper(), v) for key, v in _PLAIN_PARAM.findall(params))
        if len({key for key, _ in pairs}) == len(pairs):  # a repeated one: icalendar decides
            return Property(name.upper(), pairs, value)
    return split_with_icalendar(line)


def split_with_icalendar(line: str) -> Property:
    """:func:`split_line` by icalendar's content line alone (the reference
    the fast split is checked against)."""
    name, params, value = Contentline(line).parts()  # type: ignore[no-untyped-call]
    pairs = tuple(
        (str(key).upper(), ",".join(v) if isinstance(v, list) else str(v))
        for key, v in params.items()
    )
    return Property(str(name).upper(), pairs, str(value))


def parse_components(data: str | bytes, *, keep: Collection[str] | None = None,
                     reference: bool = False) -> list[Component]:
    """The top-level components of ``data`` (normally one VCALENDAR).

    ``keep`` names the properties a reader looks at (upper case); a line of
    any other name outside a VTIMEZONE is then not split at all, neither kept
    nor noted as unreadable: splitting lines is most of the cost of reading
    an object, and most lines (DTSTAMP, SUMMARY, DESCRIPTION, ATTENDEE…)
    decide nothing.  ``BEGIN`` and ``END`` lines, and every line inside a
    VTIMEZONE (its content is its cache key), are always split.  ``None``
    keeps every property.  ``reference`` splits every line with icalendar
    alone and keeps all (what the fast paths are checked against)."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    top: list[Component] = []
    stack: list[Component] = []
    in_zone = 0  # VTIMEZONEs open on the stack
    for line in unfold(text):
        if keep is not None and not in_zone and not reference:
            match = _NAME.match(line)
            name = match.group(0).upper() if match else ""
            if name not in _STRUCTURE and name not in keep:
                continue
        try:
            prop = split_with_icalendar(line) if reference else split_line(line)
        except ValueError:
            if stack:
                match = _NAME.match(line)
                stack[-1].unreadable.append(match.group(0).upper() if match else "")
            continue
        if prop.name == "BEGIN":
            component = Component(prop.value.strip().upper())
            (stack[-1].children if stack else top).append(component)
            stack.append(component)
            in_zone += component.name == "VTIMEZONE"
        elif prop.name == "END":
            name = prop.value.strip().upper()
            if any(c.name == name for c in stack):
                while stack:
                    closed = stack.pop()
                    in_zone -= closed.name == "VTIMEZONE"
                    if closed.name == name:
                        break
        elif stack:
            stack[-1].properties.append(prop)
    return top
