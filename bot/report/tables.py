"""A report table: a name (its CSV file), a title, headers and rows that can be read more than
once (for the page and for the CSV), from memory or from a spool on disk."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

Row = Sequence[object]


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    title: str
    headers: Sequence[str]
    rows: Callable[[], Iterable[Row]]
    count: int = 0
    note: str = ""


@dataclass(frozen=True, slots=True)
class Section:
    id: str
    title: str
    intro: str
    charts: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)  # (label, value)


def rows_of(rows: list[list[object]]) -> Callable[[], Iterable[Row]]:
    return lambda: rows
