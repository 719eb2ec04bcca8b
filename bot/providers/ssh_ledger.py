"""The record of SSH certificates issued, kept next to the KRL.

Certificates live with their holders, not at a target grantbot can list, so the provider
keeps one JSON line per issued certificate (grant id, serial, end of validity, certificate
text: nothing secret). ``check`` and ``live_grant_ids`` read it; entries past their validity
are dropped on every write. Writers hold an exclusive ``flock`` on ``<ledger>.lock`` (several
bot processes may share the directory) and replace the file atomically.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class IssuedCert:
    grant_id: str
    serial: int
    valid_before: float
    certificate: str


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (created if missing), held for the block."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Ledger:
    """Issued certificates, one JSON object per line. Call writers under :func:`file_lock`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")

    def entries(self) -> list[IssuedCert]:
        if not self.path.exists():
            return []
        out: list[IssuedCert] = []
        for line in self.path.read_text().splitlines():
            if line.strip():
                out.append(IssuedCert(**json.loads(line)))
        return out

    def for_grant(self, grant_id: str) -> list[IssuedCert]:
        return [e for e in self.entries() if e.grant_id == grant_id]

    def add(self, entry: IssuedCert, *, now: float) -> None:
        """Append ``entry``, dropping entries whose validity ended before ``now``."""
        kept = [e for e in self.entries() if e.valid_before > now]
        self._write([*kept, entry])

    def _write(self, entries: list[IssuedCert]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                for e in entries:
                    handle.write(json.dumps(asdict(e), sort_keys=True) + "\n")
            os.replace(tmp, self.path)
        finally:
            Path(tmp).unlink(missing_ok=True)
