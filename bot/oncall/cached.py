"""One remote on-call schedule, cached: a TTL, one upstream call for a burst of lookups
(single-flight), a deadline, and failures that close (the schedule contributes nobody, and
the reason is kept for a while so a dead source does not cost every request a timeout).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Final

from bot.oncall.base import Clock, OnCallSource, OnCallUnavailable

log = logging.getLogger(__name__)

#: How long a remote schedule's answer is reused.
DEFAULT_TTL_S: Final = 60.0
#: How long a remote schedule's failure is reused before asking again.
DEFAULT_FAILURE_TTL_S: Final = 10.0
#: The longest a lookup waits for a remote source (pages and Slack mapping included).
DEFAULT_TIMEOUT_S: Final = 2.5


@dataclass(frozen=True, slots=True)
class _Answer:
    members: frozenset[str]
    reason: str | None  # set: the source failed and members is empty
    expires_at: float

    def unwrap(self) -> frozenset[str]:
        if self.reason is not None:
            raise OnCallUnavailable(self.reason)
        return self.members


class CachedSource:
    """Wraps a remote :class:`OnCallSource`: TTL cache, single-flight, deadline.

    ``on_call`` answers from the cache while ``clock() < expires_at``; otherwise the first
    caller starts one upstream fetch and every concurrent caller awaits that same fetch. The
    fetch runs under ``timeout_s``; a timeout or an error becomes a cached failure whose
    reason :meth:`on_call` raises as :class:`OnCallUnavailable`. The cache assumes callers
    pass ``now`` close to the present (it is keyed by schedule, not by time).
    """

    def __init__(
        self,
        source: OnCallSource,
        *,
        schedule: str,
        ttl_s: float = DEFAULT_TTL_S,
        failure_ttl_s: float = DEFAULT_FAILURE_TTL_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Clock = time.monotonic,
    ) -> None:
        self.source = source
        self.label = source.label
        self.schedule = schedule
        self.ttl_s = ttl_s
        self.failure_ttl_s = failure_ttl_s
        self.timeout_s = timeout_s
        self._clock = clock
        self._answer: _Answer | None = None
        self._inflight: asyncio.Task[_Answer] | None = None
        #: Upstream fetches started (for metrics and tests).
        self.fetches = 0

    def __repr__(self) -> str:
        return f"CachedSource({self.source!r}, ttl_s={self.ttl_s}, timeout_s={self.timeout_s})"

    async def on_call(self, *, now: float) -> frozenset[str]:
        answer = self._answer
        if answer is not None and self._clock() < answer.expires_at:
            return answer.unwrap()
        task = self._inflight
        if task is None:
            task = asyncio.create_task(self._fetch(now), name=f"oncall-{self.schedule}")
            self._inflight = task
        # shield: a caller giving up (cancelled) must not cancel the fetch others await.
        return (await asyncio.shield(task)).unwrap()

    async def _fetch(self, now: float) -> _Answer:
        self.fetches += 1
        try:
            try:
                async with asyncio.timeout(self.timeout_s):
                    members = await self.source.on_call(now=now)
            except TimeoutError:
                reason = f"{self.label} did not answer within {self.timeout_s:g} s"
            except OnCallUnavailable as e:
                reason = str(e)
            except Exception as e:  # a bug must not crash a request, nor make anyone on call
                log.exception("on-call source for %s raised unexpectedly", self.schedule)
                reason = f"{self.label} lookup failed ({type(e).__name__})"
            else:
                answer = _Answer(members, None, self._clock() + self.ttl_s)
                self._answer = answer
                return answer
            log.warning("on-call schedule %s unavailable: %s", self.schedule, reason)
            answer = _Answer(frozenset(), reason, self._clock() + self.failure_ttl_s)
            self._answer = answer
            return answer
        finally:
            self._inflight = None

    def forget(self) -> None:
        """Drop the cached answer; the next lookup asks upstream."""
        self._answer = None

    @property
    def busy(self) -> bool:
        return self._inflight is not None

    async def aclose(self) -> None:
        """Cancel a fetch in flight (at shutdown)."""
        task = self._inflight
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class FailingSource:
    """A schedule that cannot be asked because its configuration is unusable (e.g. its
    token's environment variable is unset): every lookup fails closed with ``reason``."""

    def __init__(self, *, label: str, reason: str) -> None:
        self.label = label
        self.reason = reason

    def __repr__(self) -> str:
        return f"FailingSource({self.label!r}, {self.reason!r})"

    async def on_call(self, *, now: float) -> frozenset[str]:
        raise OnCallUnavailable(self.reason)
