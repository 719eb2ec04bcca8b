"""What a failing revocation remembers between attempts, kept in Redis for every replica.

One JSON record per REVOKE_FAILED grant (:attr:`bot.store.keys.Keys.revoke_retries`): when
it first failed, which event is to end it once the target lets go, who asked and why, and
when the retries were given up. Written by the revoker after each failed attempt, deleted
when the grant ends. Redis being unreachable is :class:`~bot.errors.StoreUnavailable`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from bot.domain.model import Actor, Event
from bot.store.connection import as_awaitable, translate_errors
from bot.store.keys import Keys


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryState:
    """What a failing revocation must remember between attempts (stored as JSON)."""

    first_failed_at: float
    event: Event  # what ends the grant once the target lets go: EXPIRE or REVOKE
    requested_by: Actor
    reason: str | None = None
    abandoned_at: float | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "first_failed_at": self.first_failed_at,
                "event": self.event.value,
                "requested_by": self.requested_by.model_dump(mode="json"),
                "reason": self.reason,
                "abandoned_at": self.abandoned_at,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str) -> RetryState:
        data = json.loads(raw)
        return cls(
            first_failed_at=float(data["first_failed_at"]),
            event=Event(data["event"]),
            requested_by=Actor.model_validate(data["requested_by"]),
            reason=data.get("reason"),
            abandoned_at=data.get("abandoned_at"),
        )


class RetryStates:
    """The retry states of failing revocations, by grant id."""

    def __init__(self, client: aioredis.Redis, *, keys: Keys) -> None:
        self._r = client
        self._key = keys.revoke_retries

    @translate_errors
    async def get_many(self, grant_ids: Sequence[str]) -> dict[str, RetryState]:
        """The stored states of those of ``grant_ids`` that are failing."""
        if not grant_ids:
            return {}
        rows = await as_awaitable(self._r.hmget(self._key, list(grant_ids)))
        return {
            gid: RetryState.from_json(raw)
            for gid, raw in zip(grant_ids, rows, strict=True)
            if raw is not None
        }

    @translate_errors
    async def abandoned_ids(self) -> list[str]:
        """Grants whose revocation failed for the whole retry window (still REVOKE_FAILED)."""
        rows = await as_awaitable(self._r.hgetall(self._key))
        return [gid for gid, raw in rows.items() if RetryState.from_json(raw).abandoned_at]

    @translate_errors
    async def put_many(self, states: Mapping[str, RetryState]) -> None:
        """Store (replace) the states of these grants."""
        if states:
            await as_awaitable(
                self._r.hset(self._key, mapping={g: s.to_json() for g, s in states.items()})
            )

    @translate_errors
    async def forget(self, grant_ids: Sequence[str]) -> None:
        """Drop the states of these grants (they ended)."""
        if grant_ids:
            await as_awaitable(self._r.hdel(self._key, *grant_ids))
