"""Every table of the report as a CSV file in one directory (``--csv DIR``)."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from bot.report.tables import Table


def write_csvs(directory: Path, tables: Iterable[Table]) -> list[Path]:
    """Write ``<name>.csv`` per table (header row first); the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for table in tables:
        path = directory / f"{table.name}.csv"
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(table.headers)
            for row in table.rows():
                writer.writerow(["" if cell is None else cell for cell in row])
        written.append(path)
    return written
