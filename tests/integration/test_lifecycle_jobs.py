"""The lifecycle's guarantees below Slack (issue 13), on real Redis: a reminder job that
fires twice, or on two replicas at once, sends once; a lost job is put back by the sweep; a
scheduled start fires once, issues with the rest of its window after downtime, and is never
issued once its window closed; the lifecycle jobs run through APScheduler's job store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.domain.model import Actor, Event, Grant, Origin, Status
from bot.lifecycle.runner import Lifecycle
from bot.policy_holder import PolicyHolder
from bot.service import GrantService, RequestResult, ServiceContext
from bot.store.grants import GrantStore
from bot.wiring import Core, build_core, close_core
from tests.integration.support import FakeClock

POLICY = """
groups:
  eng: {members: [U0ALICE, U0BOB]}
defaults:
  requesters: {groups: [eng]}
  approvers: {users: [U0BOB]}
  max_duration: 2h
  default_duration: 30m
  remind_before: 10m
  require_reason: false
resources:
  sandbox:
    provider: {type: noop}
    roles:
      play:
        auto_approve: [{max_duration: 2h}]
"""
T0 = 1_800_000_000.0


async def ask(service: GrantService, *, user: str, **request: Any) -> RequestResult:
    """``user`` asks for sandbox play (the one role these tests use) with ``request``."""
    return await service.request_access(user=user, resource="sandbox", role="play", **request)


@dataclass
class Notices:
    """A stand-in for Slack's notices that records what would have been shown."""

    reminded: list[tuple[str, int | None]] = field(default_factory=list)
    scheduled_ids: list[str] = field(default_factory=list)
    outcomes: list[tuple[str, str]] = field(default_factory=list)

    async def remind(self, grant: Grant, *, offer_s: int | None) -> None:
        await asyncio.sleep(0.01)  # a Slack call takes a while: replicas overlap here
        self.reminded.append((grant.id, offer_s))

    async def reminder_outcome(self, grant_id: str, text: str) -> None:
        self.outcomes.append((grant_id, text))

    async def scheduled(self, grant: Grant) -> None:
        self.scheduled_ids.append(grant.id)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def notices() -> Notices:
    return Notices()


MakeCore = Callable[..., Awaitable[Core]]


@pytest.fixture
async def make_core(
    tmp_path: Path, store: GrantStore, clock: FakeClock, notices: Notices
) -> AsyncIterator[MakeCore]:
    """Cores as bot.wiring builds them, without a scheduler: ``policy`` (default POLICY),
    the lifecycle's notices to ``notices`` unless ``quiet`` (as in the CLI)."""
    made: list[Core] = []

    async def make(*, policy: str = POLICY, quiet: bool = False) -> Core:
        path = tmp_path / f"policies-{len(made)}.yaml"
        path.write_text(policy)
        context = ServiceContext(store=store, policy=PolicyHolder.load(path), clock=clock)
        core = build_core(context, lifecycle_notices=None if quiet else notices)
        made.append(core)
        return core

    yield make
    for core in made:
        await close_core(core)


@pytest.fixture
async def core(make_core: MakeCore) -> Core:
    return await make_core()


@pytest.fixture
def service(core: Core) -> GrantService:
    return core.service


@pytest.fixture
def lifecycle(core: Core) -> Lifecycle:
    return core.lifecycle


async def active(service: GrantService) -> Grant:
    result = await ask(
        service,
        user="U0ALICE",
        duration_s=3600,
        reason="x",
        origin=Origin(surface="command"),
    )
    assert result.grant.status is Status.ACTIVE
    return result.grant


async def test_a_reminder_fired_twice_or_on_two_replicas_is_sent_once(
    service: GrantService,
    lifecycle: Lifecycle,
    notices: Notices,
    clock: FakeClock,
    make_core: MakeCore,
) -> None:
    grant = await active(service)
    await lifecycle.reminders.arm(grant.id)
    clock.now = (grant.expires_at or 0) - 600
    other = (await make_core()).lifecycle  # another replica's lifecycle
    sent = await asyncio.gather(lifecycle.reminders.fire(grant.id), other.reminders.fire(grant.id))
    assert sorted(sent) == [False, True]
    assert await lifecycle.reminders.fire(grant.id) is False  # a job that fires again
    assert notices.reminded == [(grant.id, 1800)]


async def test_an_extended_grant_is_reminded_again_of_its_new_end(
    service: GrantService, lifecycle: Lifecycle, notices: Notices, clock: FakeClock
) -> None:
    grant = await active(service)
    clock.now = (grant.expires_at or 0) - 600
    assert await lifecycle.reminders.fire(grant.id)
    await service.request_extension(grant.id, user="U0ALICE", duration_s=1800, reason="more")
    extended = await service.store.get(grant.id)
    assert extended.expires_at == (grant.expires_at or 0) + 1800
    assert await lifecycle.jobs.run_time("remind", grant.id) is None  # no scheduler here
    clock.now = (extended.expires_at or 0) - 600
    assert await lifecycle.reminders.fire(grant.id)
    assert [g for g, _ in notices.reminded] == [grant.id, grant.id]
    assert notices.reminded[-1][1] == 1800  # 2h - 1h30m still allows the default 30m


async def test_no_reminder_early_or_after_the_end(
    service: GrantService, lifecycle: Lifecycle, notices: Notices, clock: FakeClock
) -> None:
    grant = await active(service)
    clock.now = (grant.expires_at or 0) - 900
    assert await lifecycle.reminders.fire(grant.id) is False  # woken early
    await service.store.transition(
        grant.id,
        Event.REVOKE,
        actor=Actor.system("test"),
        now=clock.now,
        policy_version=service.policy.version,
    )
    clock.now = (grant.expires_at or 0) - 600
    assert await lifecycle.reminders.fire(grant.id) is False
    assert notices.reminded == []


async def test_the_sweep_puts_back_lost_jobs_and_leaves_sent_reminders(
    service: GrantService, lifecycle: Lifecycle, notices: Notices, clock: FakeClock
) -> None:
    grant = await active(service)
    result = await ask(
        service,
        user="U0BOB",
        duration_s=3600,
        reason="later",
        starts_at=T0 + 3600,
        start_tz="Europe/Berlin",
    )
    scheduled = result.grant
    assert scheduled.status is Status.SCHEDULED
    assert await lifecycle.jobs.run_time("start", scheduled.id) == T0 + 3600
    await lifecycle.jobs.remove("start", scheduled.id)  # lost (say, Redis failed over)
    assert await lifecycle.jobs.run_time("remind", grant.id) is None  # no scheduler here
    clock.now = (grant.expires_at or 0) - 300  # the sweep looks at grants ending soon
    assert await lifecycle.sweep() == 2
    assert await lifecycle.jobs.run_time("remind", grant.id) == (grant.expires_at or 0) - 600
    assert await lifecycle.jobs.run_time("start", scheduled.id) == T0 + 3600
    # Once sent, a reminder is not armed again.
    await lifecycle.jobs.remove("remind", grant.id)
    clock.now = (grant.expires_at or 0) - 600
    assert await lifecycle.reminders.fire(grant.id)
    assert await lifecycle.reminders.sweep() == 0


async def test_a_scheduled_start_issues_once_with_the_rest_of_its_window(
    service: GrantService, lifecycle: Lifecycle, notices: Notices, clock: FakeClock
) -> None:
    result = await ask(
        service,
        user="U0ALICE",
        duration_s=3600,
        reason="later",
        starts_at=T0 + 600,
    )
    grant = result.grant
    assert grant.status is Status.SCHEDULED and notices.scheduled_ids == [grant.id]
    clock.now = T0 + 600 + 1200  # the bot was down for the first 20 minutes of the window
    started = await asyncio.gather(lifecycle.starts.fire(grant.id), lifecycle.starts.fire(grant.id))
    assert [g.status if g else None for g in started].count(Status.ACTIVE) >= 1
    active_grant = await service.store.get(grant.id)
    assert active_grant.status is Status.ACTIVE
    assert active_grant.activated_at == T0 + 1800
    assert active_grant.expires_at == T0 + 600 + 3600  # the window's end
    issues = [
        e.data
        for e in await service.store.audit.read_page("-", count=1000)
        if e.data.get("grant_id") == grant.id and e.data["event"] in ("START", "ISSUE")
    ]
    assert [e["event"] for e in issues] == ["START", "ISSUE"]


async def test_a_start_whose_window_closed_is_never_issued(
    service: GrantService, lifecycle: Lifecycle, clock: FakeClock
) -> None:
    result = await ask(
        service,
        user="U0ALICE",
        duration_s=3600,
        reason="later",
        starts_at=T0 + 600,
    )
    clock.now = T0 + 600 + 3600  # the whole window passed while nothing ran
    ended = await lifecycle.starts.fire(result.grant.id)
    assert ended is not None and ended.status is Status.TIMED_OUT
    assert ended.activated_at is None and ended.credential_ref is None
    assert "window closed" in (ended.end_reason or "")
    assert await lifecycle.starts.fire(result.grant.id) is None


async def test_a_pending_scheduled_request_lapses_when_its_window_would_close(
    service: GrantService, lifecycle: Lifecycle
) -> None:
    """request_timeout is cut to the window's end: a decision after it could not be used."""
    result = await ask(
        service,
        user="U0BOB",
        duration_s=600,
        reason="r",
        starts_at=T0 + 60,
        origin=Origin(surface="command"),
    )
    assert result.grant.status is Status.SCHEDULED  # auto-approved at once
    assert result.grant.request_expires_at == T0 + 60 + 600  # not request_timeout's T0 + 1h


async def test_approved_after_its_window_closed_it_fails_without_issuing(
    make_core: MakeCore, clock: FakeClock
) -> None:
    """A decision that comes after the window (start + duration) closed issues nothing."""
    gated = POLICY.replace("auto_approve: [{max_duration: 2h}]", "{}")
    service = (await make_core(policy=gated)).service
    result = await ask(
        service,
        user="U0ALICE",
        duration_s=600,
        reason="r",
        starts_at=T0 + 60,
    )
    assert result.grant.status is Status.PENDING
    clock.now = T0 + 60 + 600  # the sweep has not lapsed it yet
    decided = await service.approve(result.grant.id, user="U0BOB")
    assert decided.status is Status.FAILED and decided.credential_ref is None
    assert "start window closed" in (decided.last_error or "")


async def test_the_stuck_approved_sweep_leaves_a_grant_that_just_started(
    service: GrantService, lifecycle: Lifecycle, clock: FakeClock
) -> None:
    """A scheduled grant approved long ago is APPROVED only from its START: the sweep for
    issuing that never finished judges it from then, not from its approval."""
    result = await ask(
        service,
        user="U0ALICE",
        duration_s=3600,
        reason="r",
        starts_at=T0 + 86_400,
    )
    clock.now = T0 + 86_400
    await service.store.transition(
        result.grant.id,
        Event.START,
        actor=Actor.system("scheduler"),
        now=clock.now,
        policy_version=service.policy.version,
    )  # the start, its issuing still under way
    assert await service.fail_stuck_approved() == []
    assert (await service.store.get(result.grant.id)).status is Status.APPROVED


async def test_the_command_line_ends_scheduled_grants_too(
    service: GrantService, lifecycle: Lifecycle, make_core: MakeCore
) -> None:
    """`grantbot grants revoke` and `revoke-all` (a process without the scheduler, so
    without a lifecycle of its own) end SCHEDULED grants before they start, and their start
    jobs go."""
    first, second = [
        (
            await ask(
                service,
                user="U0ALICE",
                duration_s=600,
                reason="r",
                starts_at=T0 + 600,
            )
        ).grant
        for _ in range(2)
    ]
    service = (await make_core(quiet=True)).service  # as the CLI builds it
    revoked = await service.revoke_as_operator(first.id, operator="ops", reason="not needed")
    assert revoked.status is Status.REVOKED and revoked.ended_by == "ops"
    assert await lifecycle.jobs.run_time("start", first.id) is None
    ended = await service.revoke_all(user="U0ALICE", operator="ops", reason="offboarded")
    assert [(g.id, g.status) for g in ended] == [(second.id, Status.REVOKED)]
    assert await lifecycle.jobs.run_time("start", second.id) is None
