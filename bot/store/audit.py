"""The append-only, tamper-evident audit log: a Redis Stream whose entries are hash-chained.

Each entry stores ``seq`` (1, 2, 3, ...), ``prev`` (the previous entry's hash; 64 zeros for
the first), ``body`` (canonical JSON: time, event, request id, actor, reason, policy version,
details) and ``hash`` = SHA-256 of ``prev:seq:SHA-256(body)``. The head key remembers the
newest ``seq hash``, so deleting the tail is noticed too. Appends happen inside the same Lua
script as the state change they record (see ``commit.lua``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import redis.asyncio as aioredis

from bot.errors import AuditChainError
from bot.store.connection import translate_errors, unavailable_as_store_error
from bot.store.keys import Keys
from bot.store.scripts import Scripts

GENESIS: Final = "0" * 64
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


def chain_hash(prev: str, seq: int, body: str) -> str:
    """The hash of an entry, as the Lua script computes it."""
    body_digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    return hashlib.sha256(f"{prev}:{seq}:{body_digest}".encode()).hexdigest()


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

    def __init__(self, client: aioredis.Redis, *, keys: Keys, scripts: Scripts) -> None:
        self._r = client
        self._keys = keys
        self._scripts = scripts

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
        result = await self._scripts.append(
            keys=[self._keys.audit, self._keys.audit_head], args=[body]
        )
        return str(result)

    async def entries(self, *, since_ms: int | None = None) -> AsyncIterator[AuditEntry]:
        """Every entry in stream order, from ``since_ms`` (epoch milliseconds) if given."""
        start = f"{since_ms}-0" if since_ms is not None else "-"
        while True:
            async with unavailable_as_store_error():
                page = await self._r.xrange(self._keys.audit, min=start, max="+", count=_PAGE)
            for stream_id, fields in page:
                yield parse_entry(stream_id, fields)
            if len(page) < _PAGE:
                return
            start = "(" + page[-1][0]

    async def verify(self) -> VerifyReport:
        """Walk the chain; raise :class:`AuditChainError` naming the first bad entry.

        Detects an altered body (hash mismatch), a deleted or reordered entry (prev or seq
        mismatch), a forged hash (recomputed), and a deleted tail (head mismatch).
        """
        prev, expected_seq, count = GENESIS, 1, 0
        async for entry in self.entries():
            where = f"entry {entry.id} (seq {entry.seq})"
            if entry.seq != expected_seq:
                raise AuditChainError(
                    f"{where}: expected seq {expected_seq}; an entry was deleted or reordered"
                )
            if entry.prev != prev:
                raise AuditChainError(
                    f"{where}: does not link to the entry before it; deleted or reordered"
                )
            if chain_hash(entry.prev, entry.seq, entry.body) != entry.hash:
                raise AuditChainError(f"{where}: hash does not match its contents; altered")
            prev, expected_seq, count = entry.hash, expected_seq + 1, count + 1
        async with unavailable_as_store_error():
            head = await self._r.get(self._keys.audit_head)
        head_seq, head_hash = (0, GENESIS) if head is None else _split_head(head)
        if (head_seq, head_hash) != (count, prev):
            raise AuditChainError(
                f"the chain ends at seq {count} but the head records seq {head_seq}; "
                "entries at the end were deleted or the head was altered"
            )
        return VerifyReport(entries=count, head_seq=head_seq, head_hash=head_hash)


def _split_head(head: str) -> tuple[int, str]:
    seq, _, digest = head.partition(" ")
    return int(seq), digest


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
