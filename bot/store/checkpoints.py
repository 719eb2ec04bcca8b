"""The stream of signed audit checkpoints in Redis (what they say and how they are signed
is :mod:`bot.audit.checkpoint`; this module only stores and reads them)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Final

import redis.asyncio as aioredis

from bot.errors import AuditChainError
from bot.store.connection import translate_errors, unavailable_as_store_error
from bot.store.keys import Keys
from bot.store.scripts import register

_PAGE: Final = 500


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """One checkpoint as stored: its stream id, the signed payload and the signature."""

    id: str
    payload: str
    sig: str


class CheckpointLog:
    """Append (chained onto the newest one, atomically) and read the checkpoints."""

    def __init__(self, client: aioredis.Redis, *, keys: Keys) -> None:
        self._r = client
        self._keys = keys
        self._append = register(client, "checkpoint_append.lua")

    @translate_errors
    async def last(self) -> StoredCheckpoint | None:
        """The newest checkpoint, or None when there is none yet."""
        rows = await self._r.xrevrange(self._keys.audit_checkpoints, max="+", min="-", count=1)
        return _parse(*rows[0]) if rows else None

    @translate_errors
    async def append(self, *, after_id: str | None, payload: str, sig: str) -> str | None:
        """Append a checkpoint if the newest one is still ``after_id`` (None: there is none);
        its stream id, or None when another was appended meanwhile (nothing written)."""
        result = await self._append(
            keys=[self._keys.audit_checkpoints], args=[after_id or "", payload, sig]
        )
        return None if result is None else str(result)

    async def all(self) -> AsyncIterator[StoredCheckpoint]:
        """Every checkpoint, oldest first, a page at a time."""
        start = "-"
        while True:
            async with unavailable_as_store_error():
                page = await self._r.xrange(
                    self._keys.audit_checkpoints, min=start, max="+", count=_PAGE
                )
            for stream_id, fields in page:
                yield _parse(stream_id, fields)
            if len(page) < _PAGE:
                return
            start = "(" + page[-1][0]


def _parse(stream_id: str, fields: Mapping[str, str]) -> StoredCheckpoint:
    try:
        return StoredCheckpoint(id=stream_id, payload=fields["payload"], sig=fields["sig"])
    except KeyError as e:
        raise AuditChainError(f"checkpoint {stream_id}: malformed (no {e}); altered") from e
