"""When a failing revocation is tried again (pure): exponential backoff with jitter over a
window, and what each failure is to record. The state kept between attempts is
:class:`bot.store.retry_states.RetryState`."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.duration import format_duration
from bot.domain.model import Actor, Event
from bot.store.retry_states import RetryState


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with jitter over a window that outlasts a maintenance outage.

    Attempt ``n`` (1 = the first failure) waits ``min(cap_s, base_s * 2**(n-1))``, of which
    the second half is random ("equal jitter": retries of many grants spread out, yet never
    come sooner than half the backoff). Retries stop once ``window_s`` has passed since the
    first failure; the last one is placed at the end of the window.
    """

    base_s: float = 5.0
    cap_s: float = 600.0
    window_s: float = 24 * 3600.0

    def delay_s(self, attempt: int, *, rand: float) -> float:
        """The wait after failure number ``attempt`` (>= 1); ``rand`` is uniform in [0, 1)."""
        exponent = min(max(attempt, 1) - 1, 62)
        backoff = min(self.cap_s, self.base_s * 2.0**exponent)
        return backoff / 2 + backoff / 2 * rand

    def next_attempt_at(
        self, *, attempt: int, first_failed_at: float, now: float, rand: float
    ) -> float | None:
        """When to try again after failure number ``attempt`` at ``now``; None to give up."""
        window_ends = first_failed_at + self.window_s
        if now >= window_ends:
            return None
        return min(now + self.delay_s(attempt, rand=rand), window_ends)


@dataclass(frozen=True, slots=True)
class RetryPlan:
    """What one failed attempt records: the state to keep, when to try again (None: give
    up) and the error to store on the grant."""

    state: RetryState
    next_at: float | None
    message: str


def plan_retry(
    policy: RetryPolicy,
    *,
    state: RetryState | None,
    event: Event,
    actor: Actor,
    reason: str | None,
    attempt: int,
    error: str,
    now: float,
    rand: float,
) -> RetryPlan:
    """The plan after failure number ``attempt`` at ``now`` of revoking a grant that ``event``
    by ``actor`` is to end (``state``: the one kept since its first failure, if any)."""
    state = state or RetryState(first_failed_at=now, event=event, requested_by=actor, reason=reason)
    next_at = policy.next_attempt_at(
        attempt=attempt, first_failed_at=state.first_failed_at, now=now, rand=rand
    )
    if next_at is not None:
        return RetryPlan(state=state, next_at=next_at, message=error)
    window = format_duration(int(now - state.first_failed_at))
    message = (
        f"{error}; gave up after {attempt} attempts over {window}: check the target "
        "and close this grant with `grantbot grants revoke --force`"
    )
    abandoned = RetryState(
        first_failed_at=state.first_failed_at,
        event=state.event,
        requested_by=state.requested_by,
        reason=state.reason,
        abandoned_at=now,
    )
    return RetryPlan(state=abandoned, next_at=None, message=message)
