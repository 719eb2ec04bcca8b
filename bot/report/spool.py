"""Rows kept on disk, not in memory: a report may list many grants, and memory must not grow
with the log. Rows are appended as CSV lines to a temporary file; reading them back can be
ordered by a float key, at 16 bytes of memory per row."""

from __future__ import annotations

import csv
import io
import tempfile
from array import array
from collections.abc import Iterator, Sequence
from typing import IO


class Spool:
    """An append-only table on disk, optionally read back sorted by a key per row."""

    def __init__(self, headers: Sequence[str]) -> None:
        self.headers = list(headers)
        self._file: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8", newline="")  # noqa: SIM115 - closed by close()
        self._writer = csv.writer(self._file)
        self._keys = array("d")
        self._offsets = array("q")

    def __len__(self) -> int:
        return len(self._offsets)

    def append(self, row: Sequence[object], *, key: float = 0.0) -> None:
        self._offsets.append(self._file.tell())
        self._keys.append(key)
        # One line per row, so a row can be read back alone: no newline inside a cell.
        self._writer.writerow(
            ["" if c is None else str(c).replace("\r", " ").replace("\n", " ") for c in row]
        )

    def rows(self) -> Iterator[list[str]]:
        """Every row, in key order (ties in the order appended)."""
        order = sorted(range(len(self._offsets)), key=self._keys.__getitem__)
        for i in order:
            self._file.seek(self._offsets[i])
            line = self._file.readline()
            yield next(csv.reader(io.StringIO(line)))
        self._file.seek(0, io.SEEK_END)

    def close(self) -> None:
        self._file.close()
