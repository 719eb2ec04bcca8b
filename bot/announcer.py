"""Every end of a grant reaches Slack once, wherever it was made.

A grant can end in the process that runs Slack (a click, the scheduler), in another replica,
in the reconciler, or in the CLI (``grantbot grants revoke``, ``grantbot revoke-all``) where
there is no Slack at all. Each end is an audit entry, written in the same atomic step as the
state change. :class:`EndAnnouncer` runs in every ``grantbot serve`` and reads the audit
stream through one consumer group (:class:`~bot.store.audit_feed.AuditFeed`): each entry is
given to one replica, which, for an entry that ends a grant, tells the notifier exactly as
an end made in its own process would be told (the credential DM loses its secret, every
approver copy shows the end, the requester and the incident thread hear), and then
acknowledges it.

One path, so never twice: in ``grantbot serve`` the service's notifier does not announce
ends at all (:class:`bot.notify.WithoutEnds`); only the announcer does, for every end. An
entry is acknowledged after Slack was told; a replica that dies in between leaves it
pending, and another claims it once idle for ``claim_idle_s``. So an end is announced once,
and at worst (a replica killed after telling Slack, before acknowledging) twice, never not.

Which entries are ends: transitions (``details.to``) to EXPIRED, REVOKED, CANCELLED or
TIMED_OUT (``Notifier.ended``), to FAILED (``issue_failed``), and each REVOKE_FAILED attempt
(``revoke_failed``, while the grant is still failing). A denial is announced where it is
made (only a Slack approver can deny). The grant is read as stored now, so what Slack shows
is always its current state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from bot.aio import cancel_and_wait
from bot.domain.model import Grant, Status
from bot.log_throttle import Outage, Throttle
from bot.notify import Notifier
from bot.pacing import Pacer
from bot.scheduling.scheduler import default_replica_id
from bot.store.audit import AuditEntry
from bot.store.audit_feed import AuditFeed
from bot.store.connection import is_unavailable, unavailable_cause
from bot.store.grants import GrantStore

log = logging.getLogger(__name__)

#: Entries read at once, and announced at once at most.
DEFAULT_BATCH: Final = 64
DEFAULT_CONCURRENCY: Final = 16
#: How long one read waits for news (below the Redis client's socket timeout).
DEFAULT_BLOCK_S: Final = 2.0
#: An entry given to a replica and not acknowledged for this long is claimed by another:
#: longer than announcing one end takes, even with Slack retrying.
DEFAULT_CLAIM_IDLE_S: Final = 120.0
DEFAULT_CLAIM_EVERY_S: Final = 15.0
#: The heartbeat that tells the CLI a bot is running: renewed this often, lapsing after ttl.
HEARTBEAT_EVERY_S: Final = 3.0
HEARTBEAT_TTL_S: Final = 10.0
#: Consumers gone this long, holding nothing, are removed from the group.
FORGET_CONSUMERS_AFTER_S: Final = 24 * 3600.0
#: After a failed round (Redis down), the next one waits this long.
RETRY_S: Final = 1.0

_ENDED: Final = frozenset(
    {Status.EXPIRED.value, Status.REVOKED.value, Status.CANCELLED.value, Status.TIMED_OUT.value}
)
#: One line a minute for a failure that is not Redis being down (a bug), traceback included.
_ERRORS: Final = Throttle(log, level=logging.ERROR)


def end_of(entry: AuditEntry) -> tuple[str, str] | None:
    """(grant id, the status it went to) when ``entry`` records an end (or a failed
    revocation attempt); else None. Pure."""
    try:
        data = entry.data
    except ValueError:  # not JSON: altered (``audit verify`` says where); no news
        return None
    details = data.get("details")
    grant_id = data.get("grant_id")
    to = details.get("to") if isinstance(details, dict) else None
    if not isinstance(grant_id, str) or not isinstance(to, str):
        return None
    if to in _ENDED or to in (Status.FAILED.value, Status.REVOKE_FAILED.value):
        return grant_id, to
    return None


def consumer_name() -> str:
    """This process's name in the group: host:pid and a random tail (two bots in one
    process, as in tests, are two consumers)."""
    return f"{default_replica_id()}:{secrets.token_hex(3)}"


class EndAnnouncer:
    """Reads the audit stream's news group and tells ``notifier`` of every end (see the
    module docstring). ``start()`` runs it in the background; ``stop()`` ends it.

    Keyword options: ``batch``, ``concurrency``, ``block_s``, ``claim_idle_s``,
    ``claim_every_s``; ``redis_outage`` is the process's one voice about Redis being down.
    """

    def __init__(
        self,
        feed: AuditFeed,
        *,
        store: GrantStore,
        notifier: Notifier,
        redis_outage: Outage,
        batch: int = DEFAULT_BATCH,
        concurrency: int = DEFAULT_CONCURRENCY,
        block_s: float = DEFAULT_BLOCK_S,
        claim_idle_s: float = DEFAULT_CLAIM_IDLE_S,
        claim_every_s: float = DEFAULT_CLAIM_EVERY_S,
        pacer: Pacer | None = None,
    ) -> None:
        self.feed = feed
        #: Announcing 10,000 expiries is low-priority Slack work: each waits (bounded) while
        #: people wait on the foreground (acks, their requests' post-ack work).
        self._pacer = pacer or Pacer()
        self.store = store
        self.notifier = notifier
        self._outage = redis_outage
        self._batch = batch
        self._slots = asyncio.Semaphore(concurrency)
        self._block_ms = int(block_s * 1000)
        self._claim_idle_ms = int(claim_idle_s * 1000)
        self._claim_every_s = claim_every_s
        self._task: asyncio.Task[None] | None = None
        self._beating: asyncio.Task[None] | None = None
        #: Ends this process announced (for tests and the log).
        self.announced = 0

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("EndAnnouncer already started")
        self._task = asyncio.get_running_loop().create_task(self.run(), name="end-announcer")
        self._beating = asyncio.get_running_loop().create_task(
            self._heartbeat(), name="end-announcer-heartbeat"
        )

    async def stop(self) -> None:
        """Stop reading; what was taken and not yet announced stays pending for another
        replica. The heartbeat goes at once, so the CLI knows nobody reads here any more."""
        for task in (self._task, self._beating):
            await cancel_and_wait(task)
        self._task = self._beating = None
        with contextlib.suppress(Exception):
            await self.feed.leave()

    async def settled(self, *, timeout_s: float = 10.0) -> bool:
        """Wait until every audit entry written so far was handled by some replica; False
        if that did not happen within ``timeout_s`` (or Redis could not say)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if await self.feed.caught_up():
                    return True
            except Exception as e:
                if not is_unavailable(e):
                    raise
                return False
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)

    # -- the loops ----------------------------------------------------------------------

    async def run(self) -> None:
        """Forever: claim what dead replicas left (now and then), read news, announce."""
        ready = False
        next_claim = 0.0

        async def one_round() -> None:
            nonlocal ready, next_claim
            if not ready:
                await self.feed.ensure_group()
                ready = True
            if time.monotonic() >= next_claim:
                next_claim = time.monotonic() + self._claim_every_s
                stale = await self.feed.claim_stale(
                    min_idle_ms=self._claim_idle_ms, count=self._batch
                )
                await self.handle(stale)
                await self.feed.forget_idle(idle_ms=int(FORGET_CONSUMERS_AFTER_S * 1000))
            entries = await self.feed.read(count=self._batch, block_ms=self._block_ms)
            await self.handle(entries)

        while True:
            if not await self._attempt(one_round):
                await asyncio.sleep(RETRY_S)

    async def _heartbeat(self) -> None:
        while True:
            await self._attempt(lambda: self.feed.beat(ttl_ms=int(HEARTBEAT_TTL_S * 1000)))
            await asyncio.sleep(HEARTBEAT_EVERY_S)

    async def _attempt(self, step: Callable[[], Awaitable[object]]) -> bool:
        """Run ``step``, telling the outage report how it went; False when it failed."""
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._failed(e)
            return False
        self._outage.succeeded()
        return True

    def _failed(self, error: BaseException) -> None:
        if is_unavailable(error):
            self._outage.failed(unavailable_cause(error))
        else:
            _ERRORS.log(
                "announce", "announcing ends failed: %s", type(error).__name__, exc_info=error
            )

    async def handle(self, entries: Sequence[AuditEntry]) -> None:
        """Announce the ends among ``entries`` (concurrently, bounded) and acknowledge each
        entry once it is done; entries that are no news are acknowledged at once. Raises
        (leaving what was not acknowledged pending) when Redis fails."""
        ends = [(e, end) for e in entries if (end := end_of(e)) is not None]
        ended_ids = {e.id for e, _ in ends}
        await self.feed.ack([e.id for e in entries if e.id not in ended_ids])
        if not ends:
            return
        grants = await self.store.read_many(sorted({gid for _, (gid, _) in ends}))

        async def one(entry: AuditEntry, grant_id: str, to: str) -> None:
            async with self._slots:
                await self._pacer.give_way()
                grant = grants.get(grant_id)
                if grant is not None:
                    await self._announce(grant, to)
                await self.feed.ack([entry.id])

        results = await asyncio.gather(
            *(one(e, gid, to) for e, (gid, to) in ends), return_exceptions=True
        )
        # Every announcement has run its course; the first failure (Redis, on an ack) is the
        # round's: what was not acknowledged stays pending and is claimed again later.
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            raise failure

    async def _announce(self, grant: Grant, to: str) -> None:
        """Tell the notifier, as the grant stands now. A failing revocation that has since
        ended (or been retried again) is left to the entry of its end."""
        call: Callable[[Grant], Awaitable[None]] | None = None
        if to in _ENDED and grant.status.value in _ENDED:
            call = self.notifier.ended
        elif to == Status.FAILED.value and grant.status is Status.FAILED:
            call = self.notifier.issue_failed
        elif to == Status.REVOKE_FAILED.value and grant.status is Status.REVOKE_FAILED:
            call = self.notifier.revoke_failed
        if call is None:
            return
        try:
            await call(grant)
        except Exception as e:  # a notifier must not raise; if it does, the end still counts
            _ERRORS.log(
                "notify", "announcing %s failed: %s", grant.id, type(e).__name__, exc_info=e
            )
        self.announced += 1
