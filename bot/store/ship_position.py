"""Where shipping the audit log to one sink (a file, a SIEM) has got to, kept in Redis so a
restart, or another replica taking over, resumes after the last entry the sink took."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from bot.store.connection import translate_errors
from bot.store.keys import Keys


@dataclass(frozen=True, slots=True)
class Position:
    """The last entry a sink took: its sequence number and stream id."""

    seq: int
    stream_id: str

    def encode(self) -> str:
        return f"{self.seq} {self.stream_id}"

    @classmethod
    def decode(cls, raw: str) -> Position:
        seq, _, stream_id = raw.partition(" ")
        return cls(seq=int(seq), stream_id=stream_id)


class ShipPositions:
    """Read and move one sink's position (``sink_id`` names the sink, not its secrets)."""

    def __init__(self, client: aioredis.Redis, *, keys: Keys, sink_id: str) -> None:
        self._r = client
        self._key = keys.audit_ship_position(sink_id)

    @translate_errors
    async def get(self) -> Position | None:
        raw = await self._r.get(self._key)
        return None if raw is None else Position.decode(raw)

    @translate_errors
    async def set(self, position: Position) -> None:
        await self._r.set(self._key, position.encode())
