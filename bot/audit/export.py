"""Reading the audit log as JSON lines from a position: after a sequence number, from a time,
and on as new entries arrive (``grantbot audit export --follow``)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Final

from bot.errors import StoreUnavailable, UsageError
from bot.log_throttle import Outage
from bot.store.audit import AuditEntry, AuditLog

log = logging.getLogger(__name__)

PAGE: Final = 500
#: How long one XREAD waits for a new entry; below the client's 5 s socket timeout.
BLOCK_MS: Final = 2000
RETRY_MIN_S: Final = 0.5
RETRY_MAX_S: Final = 30.0
#: The largest sequence part of a stream id: "ms-MAX" is the last id of millisecond ms.
_LAST_IN_MS: Final = 2**64 - 1


def export_line(entry: AuditEntry) -> str:
    """One JSON line (no newline): the body's fields plus ``id``, ``seq``, ``prev``, ``hash``."""
    return json.dumps(entry.as_export(), ensure_ascii=False, sort_keys=True)


async def start_after(
    audit: AuditLog, *, after_seq: int | None = None, since_ms: int | None = None
) -> str | None:
    """The stream id to read after: that of entry ``after_seq``, or the last id before
    ``since_ms``; None for the beginning. UsageError when ``after_seq`` is not in the log."""
    if after_seq is not None:
        if after_seq == 0:
            return None
        entry = await audit.find_seq(after_seq)
        if entry is None:
            head_seq, _ = await audit.head()
            raise UsageError(f"--after {after_seq}: no such entry; the log ends at seq {head_seq}")
        return entry.id
    if since_ms is not None and since_ms > 0:
        return f"{since_ms - 1}-{_LAST_IN_MS}"
    return None


async def read_from(
    audit: AuditLog, *, after_id: str | None, follow: bool
) -> AsyncIterator[AuditEntry]:
    """Entries after ``after_id`` in order. Without ``follow`` it ends at the newest entry;
    with it, it waits for more forever, and rides out Redis outages (one log line, retried
    with backoff, resumed after the last entry yielded)."""
    outage = Outage(log, "Redis (audit export)")
    backoff = RETRY_MIN_S
    while True:
        try:
            page = await audit.wait_after(
                after_id, count=PAGE, block_ms=BLOCK_MS if follow else None
            )
        except StoreUnavailable as e:
            if not follow:
                raise
            outage.failed(e)
            await asyncio.sleep(backoff)
            backoff = min(RETRY_MAX_S, backoff * 2)
            continue
        outage.succeeded()
        backoff = RETRY_MIN_S
        if not page and not follow:
            return
        for entry in page:
            yield entry
            after_id = entry.id
