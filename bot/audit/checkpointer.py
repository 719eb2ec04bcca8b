"""Writing signed checkpoints of the audit chain's head.

:class:`Checkpointer` signs the head as it is now and appends the checkpoint onto the newest
one (atomically: a replica that lost the lease meanwhile cannot fork the sequence).
:func:`run_checkpoints` is the loop ``serve`` runs: every ``interval_s`` the replica holding
the scheduler lease writes one if the chain grew since the last.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

from bot import metrics
from bot.audit.checkpoint import FIRST_PREV, Checkpoint, link, parse
from bot.audit.signing import SigningKey
from bot.errors import ConcurrencyError, GrantbotError
from bot.log_throttle import Outage
from bot.store.audit import AuditLog
from bot.store.checkpoints import CheckpointLog

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S: Final = 300.0
_APPEND_ATTEMPTS: Final = 3


class Checkpointer:
    """Signs the chain's head with ``key`` and appends the checkpoint to ``checkpoints``."""

    def __init__(
        self,
        audit: AuditLog,
        checkpoints: CheckpointLog,
        *,
        key: SigningKey,
        log_name: str,
        clock: Callable[[], float],
    ) -> None:
        self._audit = audit
        self._checkpoints = checkpoints
        self._key = key
        self._log_name = log_name
        self._clock = clock

    async def write(self, *, force: bool = False) -> Checkpoint | None:
        """Checkpoint the head now; None when the newest checkpoint already names it (unless
        ``force``). Raises StoreUnavailable, or ConcurrencyError if other writers kept
        appending in between."""
        for _ in range(_APPEND_ATTEMPTS):
            last = await self._checkpoints.last()
            before = parse(last.payload, where=f"checkpoint {last.id}") if last else None
            seq, head_hash = await self._audit.head()
            if before is not None and not force and (before.seq, before.hash) == (seq, head_hash):
                return None
            checkpoint = Checkpoint(
                n=before.n + 1 if before else 1,
                seq=seq,
                hash=head_hash,
                at=round(self._clock(), 3),
                log=self._log_name,
                key_id=self._key.key_id,
                prev=link(last.payload, last.sig) if last else FIRST_PREV,
            )
            payload = checkpoint.payload()
            stored = await self._checkpoints.append(
                after_id=last.id if last else None,
                payload=payload,
                sig=self._key.sign(payload.encode()),
            )
            if stored is not None:
                metrics.AUDIT_CHECKPOINTS.inc()
                log.info(
                    "audit checkpoint %d at seq %d",
                    checkpoint.n,
                    seq,
                    extra={"key_id": self._key.key_id},
                )
                return checkpoint
        raise ConcurrencyError("another writer kept appending audit checkpoints; try again")


async def run_checkpoints(
    checkpointer: Checkpointer, *, leader: Callable[[], bool], interval_s: float
) -> None:
    """Forever: every ``interval_s``, if ``leader()``, checkpoint the head if it moved."""
    outage = Outage(log, "audit checkpoints")
    while True:
        await asyncio.sleep(interval_s)
        if not leader():
            continue
        try:
            await checkpointer.write()
        except GrantbotError as e:
            outage.failed(e)
        else:
            outage.succeeded()
