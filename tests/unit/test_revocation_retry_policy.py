"""When a failing revocation is tried again (bot.revocation.retry, pure): backoff with
jitter, the window, and what each failure records."""

from __future__ import annotations

from bot.domain.model import Actor, ActorKind, Event
from bot.revocation.retry import RetryPolicy, plan_retry
from bot.store.retry_states import RetryState

ALICE = Actor(kind=ActorKind.REQUESTER, id="U0ALICE")


def test_backoff_grows_with_jitter_up_to_the_cap() -> None:
    """Waits double per attempt from base_s, stay within [half, all] of the backoff, and stop
    growing at cap_s."""
    policy = RetryPolicy(base_s=5, cap_s=600, window_s=86_400)
    assert [policy.delay_s(n, rand=1.0) for n in range(1, 9)] == [
        5,
        10,
        20,
        40,
        80,
        160,
        320,
        600,
    ]
    assert [policy.delay_s(n, rand=0.0) for n in (1, 2, 8, 50)] == [2.5, 5, 300, 300]
    assert policy.delay_s(10_000, rand=0.5) == 450


def test_retries_end_at_the_window() -> None:
    """The last retry is placed at the end of the window; after it, None (give up)."""
    policy = RetryPolicy(base_s=5, cap_s=600, window_s=3600)
    t0 = 1_000_000.0
    assert policy.next_attempt_at(attempt=1, first_failed_at=t0, now=t0, rand=1.0) == t0 + 5
    near_end = t0 + 3500
    last = policy.next_attempt_at(attempt=20, first_failed_at=t0, now=near_end, rand=1.0)
    assert last == t0 + 3600
    assert policy.next_attempt_at(attempt=21, first_failed_at=t0, now=t0 + 3600, rand=0) is None


def test_a_first_failure_starts_the_window_and_schedules_a_retry() -> None:
    """With no state kept yet, the failure starts one (now, the event, who asked and why),
    schedules the next try and stores the error as it was."""
    policy = RetryPolicy(base_s=5, cap_s=600, window_s=3600)
    plan = plan_retry(
        policy,
        state=None,
        event=Event.REVOKE,
        actor=ALICE,
        reason="done",
        attempt=1,
        error="target down",
        now=100.0,
        rand=1.0,
    )
    assert plan.state == RetryState(
        first_failed_at=100.0, event=Event.REVOKE, requested_by=ALICE, reason="done"
    )
    assert plan.next_at == 105.0
    assert plan.message == "target down"


def test_a_failure_past_the_window_gives_up_and_says_how_to_close_it() -> None:
    """Past the window: no next try, the state records when it was given up, and the error
    names the attempts, the time spent and the force-close command."""
    policy = RetryPolicy(base_s=5, cap_s=600, window_s=3600)
    kept = RetryState(first_failed_at=0.0, event=Event.EXPIRE, requested_by=ALICE)
    plan = plan_retry(
        policy,
        state=kept,
        event=Event.REVOKE,
        actor=ALICE,
        reason=None,
        attempt=9,
        error="target down",
        now=3600.0,
        rand=0.5,
    )
    assert plan.next_at is None
    assert plan.state == RetryState(
        first_failed_at=0.0, event=Event.EXPIRE, requested_by=ALICE, abandoned_at=3600.0
    )
    assert plan.message == (
        "target down; gave up after 9 attempts over 1h: check the target and close this "
        "grant with `grantbot grants revoke --force`"
    )


def test_a_retry_state_survives_its_json() -> None:
    """The stored form of a retry state reads back as the same state."""
    state = RetryState(
        first_failed_at=1.5, event=Event.REVOKE, requested_by=ALICE, reason="r", abandoned_at=9.0
    )
    assert RetryState.from_json(state.to_json()) == state
