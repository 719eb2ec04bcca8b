"""Confirming that a write is on a replica before anything relies on it (``WAIT``).

Redis replicates asynchronously: a master that acknowledged a write and died a moment later
may take the write with it when a replica is promoted. Before a credential leaves grantbot,
its ACTIVE record and revocation job must be on at least one replica, so that whichever
server is master next still knows to revoke it.

``WAIT`` only counts the writes of the connection that sends it, and a pooled client sends
the grant's writes on other connections. So the check is one pipeline on one connection:
read the grant and its job (are they there, as written?), write a probe key, then
``WAIT 1``. Replication is one ordered stream, so a replica that has the probe has
everything the master wrote before it, the grant's writes included. If redis-py sends the
pipeline again on a fresh connection (the master changed meanwhile), the reads are made on
the new master: a record the failover lost reads as missing, never as confirmed.

A master with no replicas has nothing to wait for, save behind Sentinel: there a master
without one is one just promoted whose replicas are not attached yet, or one the sentinels
are about to demote (an aborted failover), and what it alone holds is lost when they do; so
there the ``WAIT`` is sent all the same, and a replica that attaches and syncs in time
confirms.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final, cast

import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.sentinel import SentinelConnectionPool

from bot.domain.model import Grant
from bot.store.connection import as_awaitable
from bot.store.keys import Keys

log = logging.getLogger(__name__)

#: How long a grant may wait for a replica to confirm its record before the credential is
#: taken back and the requester asked to try again.
DEFAULT_WAIT_TIMEOUT_S: Final = 2.0
_REPLICAS_NEEDED: Final = 1


@dataclass(frozen=True, slots=True)
class Confirmation:
    """What the check found: ``confirmed`` when the record (and job) are on the master as
    written and on ``replicas`` replicas (0 with ``replicated`` False: the master has none,
    so there is nothing to wait for)."""

    confirmed: bool
    replicas: int
    replicated: bool
    why: str = ""


class Durability:
    """``WAIT``-based confirmation of a grant's writes, on the store's client."""

    def __init__(self, client: aioredis.Redis, *, keys: Keys) -> None:
        self._r = client
        self._keys = keys

    async def replicas(self) -> int:
        """How many replicas the master has connected now (INFO replication)."""
        info = cast(dict[str, Any], await as_awaitable(self._r.info("replication")))
        return int(info.get("connected_slaves", 0))

    async def confirm(
        self, grant: Grant, *, with_job: bool, timeout_s: float = DEFAULT_WAIT_TIMEOUT_S
    ) -> Confirmation:
        """Is ``grant`` (this version) stored, its revocation job too when ``with_job``, and
        on at least one replica within ``timeout_s``? A master with no replicas confirms at
        once (there is nothing to wait for; operations.md says what that risks), save behind
        Sentinel (see the module docstring). Raises
        StoreUnavailable (callers treat it as not confirmed)."""
        sentinel = isinstance(self._r.connection_pool, SentinelConnectionPool)
        if not sentinel and await self.replicas() == 0:  # nothing to wait for (see above)
            return await self._stored(grant, with_job=with_job, replicas=0)
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.hget(self._keys.grant(grant.id), "v")
            pipe.zscore(self._keys.revocation_run_times, grant.id)
            pipe.set(self._keys.replication_probe, grant.id)
            pipe.wait(_REPLICAS_NEEDED, max(1, int(timeout_s * 1000)))
            try:
                version, job, _, acked = await pipe.execute()
            except redis_errors.ResponseError as e:
                # A managed Redis that does not offer WAIT: it cannot be asked, so this is as
                # durable as its own replication makes it (said once, in the log).
                _said_once(f"Redis refused WAIT ({e}); grants are not confirmed on a replica")
                return await self._stored(grant, with_job=with_job, replicas=0)
        missing = _missing(grant, version=version, job=job, with_job=with_job)
        if missing:
            return Confirmation(False, int(acked), True, missing)
        if int(acked) < _REPLICAS_NEEDED:
            return Confirmation(
                False, int(acked), True, f"no replica confirmed it within {timeout_s:g}s"
            )
        return Confirmation(True, int(acked), True)

    async def _stored(self, grant: Grant, *, with_job: bool, replicas: int) -> Confirmation:
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.hget(self._keys.grant(grant.id), "v")
            pipe.zscore(self._keys.revocation_run_times, grant.id)
            version, job = await pipe.execute()
        missing = _missing(grant, version=version, job=job, with_job=with_job)
        return Confirmation(not missing, replicas, False, missing)


_SAID: set[str] = set()


def _said_once(message: str) -> None:
    if message not in _SAID:
        _SAID.add(message)
        log.warning("%s", message)


def _missing(grant: Grant, *, version: Any, job: Any, with_job: bool) -> str:
    """Why the stored state is not what was written ("" when it is)."""
    if version is None:
        return "its record is gone (the Redis master changed)"
    if int(version) < grant.version:
        return "its record is older than what was written (the Redis master changed)"
    if with_job and job is None:
        return "its revocation job is gone (the Redis master changed)"
    return ""
