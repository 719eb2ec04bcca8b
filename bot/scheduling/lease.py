"""One leader per Redis: the revocation scheduler runs only on the replica holding a lease.

Two running schedulers on one job store run jobs twice and miss others (an APScheduler 3
trap), so only the replica holding the lease (``SET NX PX`` + compare-and-renew,
:class:`bot.store.lease.LeaseKey`) runs its scheduler; the others keep theirs paused, which
still lets them add jobs to the shared store.
"""

from __future__ import annotations

import secrets
import time
from typing import Final

from bot.store.lease import LeaseKey

DEFAULT_LEASE_TTL_S: Final = 5.0
#: Followers try to take the lease, and the leader renews it, this many times per TTL: a dead
#: leader is replaced within lease_ttl_s * (1 + 1/LEASE_CHECKS_PER_TTL).
LEASE_CHECKS_PER_TTL: Final = 5
#: The leader stops running jobs this long before its lease would lapse unrenewed, so that two
#: replicas never run the scheduler at once even when Redis is slow to answer.
LEASE_SAFETY_MARGIN_FRACTION: Final = 0.4


class Lease:
    """A Redis lease: ``SET key token NX PX ttl`` to take it, compare-and-renew to keep it.

    ``token`` starts with the replica id, so ``GET`` on the key shows who leads. Timing is
    judged on this process's monotonic clock from the moment a request was *sent*, so the
    holder always believes its lease ends no later than Redis does.
    """

    def __init__(self, key: LeaseKey, *, replica_id: str, ttl_s: float) -> None:
        self._key = key
        self.key = key.key
        self.token = f"{replica_id}:{secrets.token_hex(8)}"
        self.ttl_s = ttl_s
        self.valid_until: float = 0.0  # monotonic

    @property
    def _ttl_ms(self) -> int:
        return int(self.ttl_s * 1000)

    def held(self, *, now_monotonic: float) -> bool:
        """True while the lease is ours with a safety margin to spare."""
        margin = self.ttl_s * LEASE_SAFETY_MARGIN_FRACTION
        return now_monotonic < self.valid_until - margin

    async def acquire(self) -> bool:
        sent = time.monotonic()
        if await self._key.take(self.token, ttl_ms=self._ttl_ms):
            self.valid_until = sent + self.ttl_s
            return True
        return False

    async def renew(self) -> bool:
        sent = time.monotonic()
        if await self._key.renew(self.token, ttl_ms=self._ttl_ms):
            self.valid_until = sent + self.ttl_s
            return True
        self.valid_until = 0.0
        return False

    async def release(self) -> None:
        self.valid_until = 0.0
        await self._key.release(self.token)

    async def holder(self) -> str | None:
        """The token of whoever holds the lease now, or None."""
        return await self._key.holder()
