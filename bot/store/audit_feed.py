"""The audit stream read as news: a consumer group every ``grantbot serve`` replica reads.

Every state change is already an audit entry, written in the same atomic step, whoever made
it: a replica, the CLI, the reconciler. Reading the stream through one consumer group
(:data:`~bot.store.keys.AUDIT_NEWS_GROUP`) hands each entry to one replica; the replica
acknowledges it (``XACK``) after acting on it, and entries a replica took but never
acknowledged (it died) are claimed by another (``XAUTOCLAIM``) once idle long enough.

The group is created at the stream's end (``$``) the first time anyone needs it, so a first
start does not replay the history; after that it keeps its place while no replica runs, and
the first to start reads what was written meanwhile. The CLI creates it too before it ends a
grant, so an end made before any replica ever ran is not skipped.

Whether a replica is reading now is told by a heartbeat (:attr:`Keys.announcers`, Redis's
clock), so the CLI can say whether Slack is being updated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from bot.errors import AuditChainError
from bot.store.audit import AuditEntry, parse_entry
from bot.store.connection import translate_errors
from bot.store.keys import AUDIT_NEWS_GROUP, Keys
from bot.store.scripts import register

#: Start id of XAUTOCLAIM's scan: the whole pending list.
_FROM_START: Final = "0-0"


def _entry(entry_id: str, fields: dict[str, str]) -> AuditEntry:
    """The entry, or for a malformed one (``audit verify`` reports it) an empty body, so it
    is acknowledged like any entry that is no news rather than claimed again forever."""
    try:
        return parse_entry(entry_id, fields)
    except AuditChainError:
        return AuditEntry(id=entry_id, seq=0, prev="", hash="", body="{}")


def _stream_id(text: str) -> tuple[int, int]:
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


class AuditFeed:
    """One consumer's view of the audit stream's news group. ``consumer`` names it (unique
    per process); a process that only creates the group or asks who reads (the CLI) may
    leave it empty."""

    def __init__(self, client: aioredis.Redis, *, keys: Keys, consumer: str = "") -> None:
        self._r = client
        self._keys = keys
        self.consumer = consumer
        self._beat: AsyncScript = register(client, "heartbeat.lua")
        self._alive: AsyncScript = register(client, "alive.lua")

    @translate_errors
    async def ensure_group(self) -> None:
        """Create the group at the stream's end unless it exists (creating the stream too)."""
        try:
            await self._r.xgroup_create(self._keys.audit, AUDIT_NEWS_GROUP, id="$", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    @translate_errors
    async def read(self, *, count: int, block_ms: int) -> list[AuditEntry]:
        """Up to ``count`` entries no consumer was given yet, waiting up to ``block_ms`` for
        the first. If the group is gone (Redis lost its data) it is made again at the end."""
        try:
            reply = await self._r.xreadgroup(
                AUDIT_NEWS_GROUP,
                self.consumer,
                {self._keys.audit: ">"},
                count=count,
                block=block_ms,
            )
        except ResponseError as e:
            if "NOGROUP" not in str(e):
                raise
            await self.ensure_group()
            return []
        return [_entry(i, f) for _, rows in reply or () for i, f in rows]

    @translate_errors
    async def claim_stale(self, *, min_idle_ms: int, count: int) -> list[AuditEntry]:
        """Entries given to some consumer (this one included) and not acknowledged for
        ``min_idle_ms``: now this consumer's, to act on and acknowledge."""
        claimed: list[AuditEntry] = []
        start = _FROM_START
        while len(claimed) < count:
            try:
                reply = await self._r.xautoclaim(
                    self._keys.audit,
                    AUDIT_NEWS_GROUP,
                    self.consumer,
                    min_idle_time=min_idle_ms,
                    start_id=start,
                    count=count - len(claimed),
                )
            except ResponseError as e:
                if "NOGROUP" not in str(e):
                    raise
                return claimed
            start, rows = reply[0], reply[1]
            claimed += [_entry(i, f) for i, f in rows if f]
            if start == _FROM_START:
                break
        return claimed

    @translate_errors
    async def ack(self, entry_ids: Sequence[str]) -> None:
        if entry_ids:
            await self._r.xack(self._keys.audit, AUDIT_NEWS_GROUP, *entry_ids)

    @translate_errors
    async def caught_up(self) -> bool:
        """True when every entry written so far was given to a consumer and acknowledged
        (or there is no group: nobody is reading, so nothing is awaited)."""
        try:
            groups = await self._r.xinfo_groups(self._keys.audit)
            stream = await self._r.xinfo_stream(self._keys.audit)
        except ResponseError:  # no stream yet
            return True
        group = next((g for g in groups if g["name"] == AUDIT_NEWS_GROUP), None)
        if group is None:
            return True
        delivered = _stream_id(str(group["last-delivered-id"]))
        written = _stream_id(str(stream["last-generated-id"]))
        return delivered >= written and int(group["pending"]) == 0

    @translate_errors
    async def beat(self, *, ttl_ms: int) -> int:
        """Say this consumer is alive for ``ttl_ms``; how many are alive."""
        return int(await self._beat(keys=[self._keys.announcers], args=[self.consumer, ttl_ms]))

    @translate_errors
    async def readers_alive(self) -> int:
        """How many consumers' heartbeats are current: running replicas that will act on
        what is written now."""
        return int(await self._alive(keys=[self._keys.announcers]))

    @translate_errors
    async def leave(self) -> None:
        """This consumer stops: its heartbeat goes, and so does its name in the group when
        it holds nothing unacknowledged (else another replica claims that later)."""
        await self._r.zrem(self._keys.announcers, self.consumer)
        try:
            consumers = await self._r.xinfo_consumers(self._keys.audit, AUDIT_NEWS_GROUP)
        except ResponseError:
            return
        mine = next((c for c in consumers if c["name"] == self.consumer), None)
        if mine is not None and int(mine["pending"]) == 0:
            await self._r.xgroup_delconsumer(self._keys.audit, AUDIT_NEWS_GROUP, self.consumer)

    @translate_errors
    async def forget_idle(self, *, idle_ms: int) -> int:
        """Remove consumers (other replicas, long gone) idle for ``idle_ms`` that hold
        nothing unacknowledged, so the group does not grow with every restart."""
        try:
            consumers = await self._r.xinfo_consumers(self._keys.audit, AUDIT_NEWS_GROUP)
        except ResponseError:
            return 0
        gone = [
            c["name"]
            for c in consumers
            if c["name"] != self.consumer and int(c["pending"]) == 0 and int(c["idle"]) >= idle_ms
        ]
        for name in gone:
            await self._r.xgroup_delconsumer(self._keys.audit, AUDIT_NEWS_GROUP, name)
        return len(gone)
