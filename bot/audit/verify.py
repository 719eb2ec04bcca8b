"""Verify the audit chain against its signed checkpoints, in one pass and constant memory.

The chain is walked as ``grantbot audit verify`` always did (every hash recomputed, the head
compared). Checkpoints are read alongside, oldest first, and each must be signed by one of
the given public keys, follow the one before it (``n`` and ``prev``), and name the hash the
chain really has at its ``seq``. Entries after the newest checkpoint are tolerated for
``max_uncovered_s`` (the leader writes one every few minutes): older uncovered entries mean a
checkpoint was deleted, or the checkpointer has stopped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bot.audit.checkpoint import FIRST_PREV, Checkpoint, link, parse
from bot.audit.signing import verify_signature
from bot.errors import AuditChainError
from bot.store.audit import AuditEntry, AuditLog, ChainWalker, VerifyReport
from bot.store.chain import GENESIS
from bot.store.checkpoints import CheckpointLog, StoredCheckpoint


@dataclass(frozen=True, slots=True)
class CheckpointReport:
    """What the checkpoints vouched for: how many, the newest, and the entries after it."""

    count: int
    last: Checkpoint | None
    uncovered: int


@dataclass(frozen=True, slots=True)
class FullReport:
    chain: VerifyReport
    checkpoints: CheckpointReport | None  # None when no public key was given


class _Checkpoints:
    """The checkpoint stream, checked one at a time as the chain walk reaches them."""

    def __init__(
        self,
        source: AsyncIterator[StoredCheckpoint],
        *,
        keys: Mapping[str, Ed25519PublicKey],
        log: str,
    ) -> None:
        self._source = source
        self._keys = keys
        self._log = log
        self.pending: Checkpoint | None = None
        self.count = 0
        self.last: Checkpoint | None = None
        self._prev_link = FIRST_PREV

    async def advance(self) -> None:
        """Make the next checkpoint ``pending`` (None at the end), checking its signature
        and its link to the one before."""
        stored = await anext(self._source, None)
        if stored is None:
            self.pending = None
            return
        where = f"checkpoint {stored.id}"
        cp = parse(stored.payload, where=where)
        where = f"checkpoint {cp.n} ({stored.id})"
        public = self._keys.get(cp.key_id)
        if public is None:
            raise AuditChainError(
                f"{where}: signed by key {cp.key_id}, which is none of the public keys given; "
                "forged, or pass that key's public half too"
            )
        if not verify_signature(public, stored.payload.encode(), stored.sig):
            raise AuditChainError(f"{where}: the signature does not match; altered or forged")
        if cp.log != self._log:
            raise AuditChainError(f"{where}: signed for log {cp.log!r}, not {self._log!r}")
        expected_n = self.count + 1
        if cp.n != expected_n or cp.prev != self._prev_link:
            raise AuditChainError(
                f"{where}: expected checkpoint {expected_n} linked to the one before; "
                "a checkpoint was deleted or reordered"
            )
        if self.last is not None and cp.seq < self.last.seq:
            raise AuditChainError(f"{where}: names seq {cp.seq}, before its predecessor's")
        self._prev_link = link(stored.payload, stored.sig)
        self.count += 1
        self.last = cp
        self.pending = cp

    async def match(self, entry_seq: int, entry_hash: str) -> bool:
        """Check every checkpoint at ``entry_seq`` against the chain; True if there was one."""
        matched = False
        while self.pending is not None and self.pending.seq == entry_seq:
            if self.pending.hash != entry_hash:
                raise AuditChainError(
                    f"checkpoint {self.pending.n} (signed {_when(self.pending.at)}) says entry "
                    f"seq {entry_seq} has hash {self.pending.hash[:16]}, the chain has "
                    f"{entry_hash[:16]}: the chain was rewritten"
                )
            matched = True
            await self.advance()
        return matched


async def verify_with_checkpoints(
    audit: AuditLog,
    checkpoints: CheckpointLog,
    *,
    public_keys: Mapping[str, Ed25519PublicKey],
    log: str,
    now: float,
    max_uncovered_s: float,
) -> FullReport:
    """Walk the chain and the checkpoints together; AuditChainError naming the first fault.

    With no public keys, only the chain is checked (``checkpoints`` in the result is None).
    """
    if not public_keys:
        return FullReport(chain=await audit.verify(), checkpoints=None)
    cps = _Checkpoints(checkpoints.all(), keys=public_keys, log=log)
    await cps.advance()
    await cps.match(0, GENESIS)  # a checkpoint of the empty chain
    walker = ChainWalker()
    first_uncovered: AuditEntry | None = None
    uncovered = 0
    async for entry in audit.entries():
        walker.check(entry)
        covered = await cps.match(entry.seq, entry.hash) or cps.pending is not None
        if not covered:
            uncovered += 1
            if first_uncovered is None:
                first_uncovered = entry
    chain = walker.finish(await audit.head())
    if cps.pending is not None:
        raise AuditChainError(
            f"checkpoint {cps.pending.n} (signed {_when(cps.pending.at)}) vouches for seq "
            f"{cps.pending.seq}, but the chain ends at seq {chain.head_seq}: entries were "
            "deleted and the chain truncated"
        )
    if first_uncovered is not None:
        written_at = int(first_uncovered.id.partition("-")[0]) / 1000
        if now - written_at > max_uncovered_s:
            last = cps.last
            after = f"checkpoint {last.n} (seq {last.seq})" if last else "no checkpoint at all"
            raise AuditChainError(
                f"entries from seq {first_uncovered.seq} (written {_when(written_at)}) on are "
                f"covered by no checkpoint; the newest is {after}. A checkpoint was deleted, "
                "or none has been written since (is the bot running with "
                "GRANTBOT_AUDIT_SIGNING_KEY? `grantbot audit checkpoint` writes one now)"
            )
    return FullReport(
        chain=chain,
        checkpoints=CheckpointReport(count=cps.count, last=cps.last, uncovered=uncovered),
    )


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
