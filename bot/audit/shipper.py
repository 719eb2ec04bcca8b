"""Shipping the audit log to a sink: in order, at least once, resumed after a restart.

The replica holding the scheduler lease ships (one shipper, so batches never interleave).
It reads the sink's position from Redis, sends the next batch of entries after it, and moves
the position only once the sink has the batch; a sink that fails gets the same batch again,
with backoff and jitter, until it takes it. A crash between the sink taking a batch and the
position moving sends that batch again: receivers de-duplicate by ``seq``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Final

from bot import metrics
from bot.audit.export import BLOCK_MS, export_line
from bot.audit.sinks import Sink
from bot.errors import SinkUnavailable, StoreUnavailable
from bot.log_throttle import Outage
from bot.store.audit import AuditEntry, AuditLog
from bot.store.ship_position import Position, ShipPositions

log = logging.getLogger(__name__)

DEFAULT_BATCH: Final = 500
RETRY_MIN_S: Final = 0.5
RETRY_MAX_S: Final = 60.0
#: How often a replica that is not the leader looks again.
IDLE_S: Final = 1.0


class Shipper:
    """Moves entries from the audit log to ``sink`` while ``leader()`` holds."""

    def __init__(
        self,
        audit: AuditLog,
        positions: ShipPositions,
        sink: Sink,
        *,
        leader: Callable[[], bool],
        batch: int = DEFAULT_BATCH,
        retry_min_s: float = RETRY_MIN_S,
        retry_max_s: float = RETRY_MAX_S,
        block_ms: int = BLOCK_MS,
    ) -> None:
        self._audit = audit
        self._positions = positions
        self.sink = sink
        self._leader = leader
        self._batch = batch
        self._retry_min_s = retry_min_s
        self._retry_max_s = retry_max_s
        self._block_ms = block_ms
        self._sink_outage = Outage(log, f"audit sink ({sink.kind})")
        self._redis_outage = Outage(log, "Redis (audit shipping)")
        #: The last entry the sink took, as this process knows it (None: read from Redis).
        self.position: Position | None = None
        self._known = False

    async def run(self) -> None:
        """Ship forever (cancel to stop)."""
        backoff = self._retry_min_s
        while True:
            if not self._leader():
                self._known = False  # another replica may ship meanwhile: re-read later
                await asyncio.sleep(IDLE_S)
                continue
            try:
                await self.ship_next()
            except StoreUnavailable as e:
                self._redis_outage.failed(e)
                await asyncio.sleep(self._jitter(backoff))
                backoff = min(self._retry_max_s, backoff * 2)
                continue
            self._redis_outage.succeeded()
            backoff = self._retry_min_s

    async def ship_next(self) -> int:
        """Send the next batch (waiting up to ``block_ms`` for one); how many entries went."""
        if not self._known:
            self.position = await self._positions.get()
            self._known = True
        after = self.position.stream_id if self.position else None
        entries = await self._audit.wait_after(after, count=self._batch, block_ms=self._block_ms)
        if not entries:
            return 0
        if not await self._deliver(entries):
            return 0
        self.position = Position(seq=entries[-1].seq, stream_id=entries[-1].id)
        await self._positions.set(self.position)
        return len(entries)

    async def _deliver(self, entries: list[AuditEntry]) -> bool:
        """Send until the sink takes the batch (True), or this replica stops leading."""
        lines = [export_line(e) for e in entries]
        backoff = self._retry_min_s
        while True:
            try:
                await self.sink.send(lines, first_seq=entries[0].seq, last_seq=entries[-1].seq)
            except SinkUnavailable as e:
                metrics.AUDIT_SHIP_FAILURES.labels(sink=self.sink.kind).inc()
                self._sink_outage.failed(e)
                await asyncio.sleep(self._jitter(backoff))
                backoff = min(self._retry_max_s, backoff * 2)
                if not self._leader():
                    self._known = False
                    return False
                continue
            self._sink_outage.succeeded()
            metrics.AUDIT_SHIPPED.labels(sink=self.sink.kind).inc(len(entries))
            return True

    @staticmethod
    def _jitter(delay_s: float) -> float:
        return delay_s * (0.5 + random.random() / 2)
