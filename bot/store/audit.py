"""The append-only, tamper-evident audit log: a Redis Stream whose entries are hash-chained.

Each entry stores ``seq`` (1, 2, 3, ...), ``prev`` (the previous entry's hash; 64 zeros for
the first), ``body`` (canonical JSON: time, event, request id, actor, reason, policy version,
details) and ``hash`` = SHA-256 of ``prev:seq:SHA-256(body)`` (:mod:`bot.store.chain`). The
head key remembers the newest ``seq hash``, so deleting the tail is noticed too. Appends happen
inside the same Lua script as the state change they record (see ``commit.lua``), each through
the process's one :class:`~bot.store.chain.AuditChain`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import redis.asyncio as aioredis

from bot.errors import AuditChainError
from bot.store.chain import GENESIS, AuditChain, ScriptCall, chain_hash, parse_head
from bot.store.connection import translate_errors, unavailable_as_store_error
from bot.store.keys import Keys
from bot.store.scripts import register

_PAGE: Final = 1000


#: One encoder for every body: ``json.dumps`` with options builds a new one per call, which
#: is a sizeable part of the cost of a small body (a burst encodes thousands).
_CANONICAL: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(data: Mapping[str, Any]) -> str:
    """Deterministic JSON (sorted keys, no spaces, UTF-8): what the chain hashes."""
    return _CANONICAL.encode(data)


def entry_body(
    *,
    at: float,
    event: str,
    actor: str,
    grant_id: str | None = None,
    reason: str | None = None,
    policy_version: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> str:
    """The canonical body of one audit entry. Callers must never put a secret in it."""
    return canonical_json(
        {
            "at": round(at, 6),
            "event": event,
            "grant_id": grant_id,
            "actor": actor,
            "reason": reason,
            "policy_version": policy_version,
            "details": dict(details or {}),
        }
    )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: str  # the stream id, e.g. 1732352400000-0
    seq: int
    prev: str
    hash: str
    body: str

    @property
    def data(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    def as_export(self) -> dict[str, Any]:
        """One JSON-lines record: the body's fields plus the chain fields."""
        return {"id": self.id, "seq": self.seq, **self.data, "prev": self.prev, "hash": self.hash}


@dataclass(frozen=True, slots=True)
class VerifyReport:
    entries: int
    head_seq: int
    head_hash: str


class AuditLog:
    """Read, append and verify the chain. Appends of state changes go through GrantStore."""

    def __init__(self, client: aioredis.Redis, *, keys: Keys, chain: AuditChain) -> None:
        self._r = client
        self._keys = keys
        self._chain = chain
        self._append = register(client, "append.lua")

    @translate_errors
    async def append(
        self,
        event: str,
        *,
        actor: str,
        at: float,
        grant_id: str | None = None,
        reason: str | None = None,
        policy_version: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> str:
        """Append an entry that records no grant state change; returns its stream id."""
        body = entry_body(
            at=at,
            event=event,
            actor=actor,
            grant_id=grant_id,
            reason=reason,
            policy_version=policy_version,
            details=details,
        )
        stream = [self._keys.audit, self._keys.audit_head]

        def attempt(head: str, hashes: list[str]) -> ScriptCall:
            return ScriptCall(self._append, stream, [head, body, hashes[0]])

        reply = await self._chain.extend([body], attempt)
        return str(reply[1])

    async def entries(
        self, *, since_ms: int | None = None, after_id: str | None = None
    ) -> AsyncIterator[AuditEntry]:
        """Every entry in stream order, read a page at a time (bounded memory): from
        ``since_ms`` (epoch milliseconds), or after the stream id ``after_id``, if given."""
        if after_id is not None:
            start = "(" + after_id
        else:
            start = f"{since_ms}-0" if since_ms is not None else "-"
        while True:
            page = await self.read_page(start, count=_PAGE)
            for entry in page:
                yield entry
            if len(page) < _PAGE:
                return
            start = "(" + page[-1].id

    async def read_page(self, start: str, *, count: int) -> list[AuditEntry]:
        """Up to ``count`` entries from ``start`` (an XRANGE bound: ``-``, ``ID`` or
        ``(ID`` for after ID), in order."""
        async with unavailable_as_store_error():
            page = await self._r.xrange(self._keys.audit, min=start, max="+", count=count)
        return [parse_entry(stream_id, fields) for stream_id, fields in page]

    async def wait_after(
        self, after_id: str | None, *, count: int, block_ms: int | None
    ) -> list[AuditEntry]:
        """Up to ``count`` entries after ``after_id`` (None: from the start), waiting up to
        ``block_ms`` for one to be appended when there is none yet (XREAD BLOCK; keep it
        under the client's socket timeout; None: do not wait)."""
        async with unavailable_as_store_error():
            reply = await self._r.xread(
                {self._keys.audit: after_id or "0-0"}, count=count, block=block_ms
            )
        if not reply:
            return []
        return [parse_entry(stream_id, fields) for stream_id, fields in reply[0][1]]

    @translate_errors
    async def head(self) -> tuple[int, str]:
        """``(seq, hash)`` of the newest entry as the head key records it; (0, GENESIS)."""
        raw = await self._r.get(self._keys.audit_head)
        return parse_head(raw or "")

    async def find_seq(self, seq: int) -> AuditEntry | None:
        """The entry numbered ``seq``, found by bisecting on stream ids (entries are appended
        in seq order, and a stream id starts with its append time), so resuming after a
        sequence number costs a few dozen short reads, not a walk of the log."""
        first = await self.read_page("-", count=1)
        if not first or seq < first[0].seq:
            return None
        lo = _id_ms(first[0].id)
        async with unavailable_as_store_error():
            last = await self._r.xrevrange(self._keys.audit, max="+", min="-", count=1)
        hi = _id_ms(last[0][0]) + 1
        # Smallest millisecond whose first entry has seq > ``seq``; the entry we want is the
        # last one before that millisecond's first entry.
        while lo < hi:
            mid = (lo + hi) // 2
            page = await self.read_page(f"{mid}-0", count=1)
            if page and page[0].seq <= seq:
                lo = mid + 1
            else:
                hi = mid
        async with unavailable_as_store_error():
            before = await self._r.xrevrange(self._keys.audit, max=f"({lo}-0", min="-", count=1)
        if before:
            # Several entries may share a millisecond: walk that millisecond's entries.
            ms = _id_ms(before[0][0])
            for entry in await self.read_page(f"{ms}-0", count=_PAGE):
                if entry.seq == seq:
                    return entry
                if entry.seq > seq:
                    break
        return None

    async def verify(self) -> VerifyReport:
        """Walk the chain; raise :class:`AuditChainError` naming the first bad entry.

        Detects an altered body (hash mismatch), a deleted or reordered entry (prev or seq
        mismatch), a forged hash (recomputed), and a deleted tail (head mismatch).
        """
        walker = ChainWalker()
        async for entry in self.entries():
            walker.check(entry)
        return walker.finish(await self.head())


class ChainWalker:
    """Checks a chain one entry at a time, in stream order, holding only the last link (so
    a walk of any length needs constant memory). Pure: the caller reads the entries."""

    __slots__ = ("count", "expected_seq", "prev")

    def __init__(self) -> None:
        self.prev = GENESIS
        self.expected_seq = 1
        self.count = 0

    def check(self, entry: AuditEntry) -> None:
        """Raise :class:`AuditChainError` naming ``entry`` if it does not extend the chain."""
        where = f"entry {entry.id} (seq {entry.seq})"
        if entry.seq != self.expected_seq:
            raise AuditChainError(
                f"{where}: expected seq {self.expected_seq}; an entry was deleted or reordered"
            )
        if entry.prev != self.prev:
            raise AuditChainError(
                f"{where}: does not link to the entry before it; deleted or reordered"
            )
        if chain_hash(entry.prev, entry.seq, entry.body) != entry.hash:
            raise AuditChainError(f"{where}: hash does not match its contents; altered")
        self.prev, self.expected_seq, self.count = entry.hash, entry.seq + 1, self.count + 1

    def finish(self, head: tuple[int, str]) -> VerifyReport:
        """The walk's result, once the head key's ``(seq, hash)`` agrees with where it ended."""
        head_seq, head_hash = head
        if (head_seq, head_hash) != (self.count, self.prev):
            raise AuditChainError(
                f"the chain ends at seq {self.count} but the head records seq {head_seq}; "
                "entries at the end were deleted or the head was altered"
            )
        return VerifyReport(entries=self.count, head_seq=head_seq, head_hash=head_hash)


def _id_ms(stream_id: str) -> int:
    return int(stream_id.partition("-")[0])


def parse_entry(stream_id: str, fields: Mapping[str, str]) -> AuditEntry:
    """One stream entry as an AuditEntry; AuditChainError when its fields are malformed."""
    try:
        return AuditEntry(
            id=stream_id,
            seq=int(fields["seq"]),
            prev=fields["prev"],
            hash=fields["hash"],
            body=fields["body"],
        )
    except (KeyError, ValueError) as e:
        raise AuditChainError(f"entry {stream_id}: malformed ({e}); altered") from e
