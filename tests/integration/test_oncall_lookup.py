"""The on-call lookup built from policies.yaml: every source at once, failures kept apart,
policy reloads followed, and the service auto-approving only whoever is really on call."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.devtools.opsgenie_emulator import OpsgenieEmulator
from bot.devtools.pagerduty_emulator import PagerDutyEmulator
from bot.devtools.slack_emulator import SlackEmulator
from bot.domain.model import Origin, Status
from bot.domain.policy.rules import Policy
from bot.oncall import OnCallLookup, PolicyOnCallLookup, build_oncall_lookup
from bot.oncall.base import SlackUserByEmail
from bot.policy_holder import PolicyHolder
from bot.policy_loader import parse_policy
from bot.service import GrantService, ServiceContext
from bot.store.grants import GrantStore
from tests.integration.support import OG_KEY, ONCALL_ENV

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC).timestamp()
#: The weekly rotation below started 2026-01-05 09:00 UTC; 8 shifts later is this handoff.
WEEKLY_HANDOFF = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()

POLICY = """
groups:
  eng: {{members: [U0ALICE, U0BOB, U0CAROL]}}
defaults:
  requesters: {{groups: [eng]}}
  approvers: {{users: [U0BOB]}}
  max_duration: 1h
  require_reason: false
oncall:
  primary: {{type: pagerduty, schedule_id: PSCHED1, token: "${{GB_PD_TOKEN}}", base_url: "{pd}"}}
  secondary: {{type: opsgenie, schedule: SRE, api_key: "${{GB_OG_KEY}}", base_url: "{og}"}}
  weekly: {{type: static, members: [{weekly}], start: 2026-01-05}}
resources:
  sandbox:
    provider: {{type: noop}}
    roles:
      read:
        auto_approve:
          - {{on_call: primary, max_duration: 30m}}
"""


def policy_text(pd: PagerDutyEmulator, og: OpsgenieEmulator, *, weekly: str) -> str:
    return POLICY.format(pd=pd.url, og=og.url, weekly=weekly)


def parse(text: str) -> Policy:
    return parse_policy(text.encode(), filename="policies.yaml", environ=ONCALL_ENV).policy


@pytest.fixture
async def lookup(
    pd: PagerDutyEmulator, og: OpsgenieEmulator, by_email: SlackUserByEmail
) -> AsyncIterator[OnCallLookup]:
    built = build_oncall_lookup(
        parse(policy_text(pd, og, weekly="U0ALICE, U0BOB")),
        env=ONCALL_ENV,
        lookup_slack_user_by_email=by_email,
        timeout_s=0.4,
        failure_ttl_s=0.0,
    )
    yield built
    await built.aclose()


async def test_check_names_every_schedule_the_user_is_on(lookup: OnCallLookup) -> None:
    """Carol is on call in PagerDuty and Opsgenie; Alice holds the static rotation's shift."""
    carol = await lookup.check("U0CAROL", now=NOW)
    assert carol.schedules == frozenset({"primary", "secondary"}) and not carol.failures
    assert await lookup.schedules_for("U0ALICE", now=NOW) == frozenset({"weekly"})
    assert await lookup.schedules_for("U0BOB", now=NOW) == frozenset()
    assert lookup.schedules == ("primary", "secondary", "weekly")


async def test_one_source_down_leaves_the_others_answering(
    lookup: OnCallLookup, pd: PagerDutyEmulator
) -> None:
    """PagerDuty failing removes only primary from Carol's answer, with its reason."""
    pd.fail(status=502)
    result = await lookup.check("U0CAROL", now=NOW)
    assert result.schedules == frozenset({"secondary"})
    assert dict(result.failures) == {"primary": "PagerDuty is failing (HTTP 502)"}
    assert result.explain() == "on-call schedule primary: PagerDuty is failing (HTTP 502)"


async def test_slow_sources_are_waited_for_together_not_in_turn(
    lookup: OnCallLookup, pd: PagerDutyEmulator, og: OpsgenieEmulator
) -> None:
    """Two sources that both hang cost one timeout, not two; the static one still answers."""
    pd.slow(delay_s=5.0)
    og.slow(delay_s=5.0)
    started = time.monotonic()
    result = await lookup.check("U0ALICE", now=NOW)
    elapsed = time.monotonic() - started
    assert result.schedules == frozenset({"weekly"})
    assert set(result.failures) == {"primary", "secondary"}
    assert elapsed < 0.75


async def test_asking_about_some_schedules_leaves_the_others_alone(
    lookup: OnCallLookup, pd: PagerDutyEmulator, og: OpsgenieEmulator
) -> None:
    """check(schedules=[...]) asks only those sources, and an unknown name fails closed."""
    result = await lookup.check("U0ALICE", now=NOW, schedules=["weekly", "nope"])
    assert result.schedules == frozenset({"weekly"})
    assert result.failures["nope"].startswith('no on-call schedule "nope"')
    assert pd.recorded == [] and og.recorded == []


async def test_static_rotation_follows_now_with_no_cache(lookup: OnCallLookup) -> None:
    """The static rotation is computed at each call: the handoff shows at once."""
    assert await lookup.members("weekly", now=WEEKLY_HANDOFF - 1) == frozenset({"U0BOB"})
    assert await lookup.members("weekly", now=WEEKLY_HANDOFF) == frozenset({"U0ALICE"})


async def test_an_unset_token_variable_fails_that_schedule_closed(
    pd: PagerDutyEmulator, og: OpsgenieEmulator, by_email: SlackUserByEmail
) -> None:
    """Without GB_PD_TOKEN in the environment primary always fails, naming the variable;
    nothing is sent to PagerDuty and the other schedules work."""
    lookup = build_oncall_lookup(
        parse(policy_text(pd, og, weekly="U0ALICE")),
        env={"GB_OG_KEY": OG_KEY},
        lookup_slack_user_by_email=by_email,
    )
    try:
        result = await lookup.check("U0CAROL", now=NOW)
    finally:
        await lookup.aclose()
    assert result.schedules == frozenset({"secondary"})
    assert dict(result.failures) == {
        "primary": "environment variable GB_PD_TOKEN is not set (setting oncall.primary.token)"
    }
    assert pd.recorded == []


async def test_slack_failing_fails_closed_naming_slack(
    lookup: OnCallLookup, emulator: SlackEmulator
) -> None:
    """When Slack cannot map an email, the schedule fails closed and says it was Slack."""
    emulator.faults.server_error("users.lookupByEmail", times=10)
    result = await lookup.check("U0CAROL", now=NOW, schedules=["primary"])
    assert result.schedules == frozenset()
    assert result.failures["primary"] == "Slack users.lookupByEmail failed (internal_error)"


async def test_a_reloaded_policy_is_followed_and_unchanged_caches_are_kept(
    tmp_path: Path, pd: PagerDutyEmulator, og: OpsgenieEmulator, by_email: SlackUserByEmail
) -> None:
    """Removing Alice from the rotation takes effect at the reload; PagerDuty's cached
    answer survives it because primary did not change."""
    path = tmp_path / "policies.yaml"
    path.write_text(policy_text(pd, og, weekly="U0ALICE"))
    holder = PolicyHolder.load(path)
    lookup = PolicyOnCallLookup(holder, env=ONCALL_ENV, lookup_slack_user_by_email=by_email)
    try:
        assert await lookup.schedules_for("U0ALICE", now=NOW) == frozenset({"weekly"})
        assert await lookup.schedules_for("U0CAROL", now=NOW) == frozenset({"primary", "secondary"})
        path.write_text(policy_text(pd, og, weekly="U0BOB"))
        assert await holder.reload(audit=None, now=NOW)
        assert await lookup.schedules_for("U0ALICE", now=NOW) == frozenset()
        assert await lookup.schedules_for("U0BOB", now=NOW) == frozenset({"weekly"})
        assert await lookup.schedules_for("U0CAROL", now=NOW) == frozenset({"primary", "secondary"})
        assert len(pd.calls("/oncalls")) == 1 and len(og.calls()) == 1
    finally:
        await lookup.aclose()


async def test_the_service_auto_approves_only_whoever_is_on_call(
    tmp_path: Path,
    store: GrantStore,
    pd: PagerDutyEmulator,
    og: OpsgenieEmulator,
    by_email: SlackUserByEmail,
) -> None:
    """Carol, on call for primary in PagerDuty, is auto-approved; Bob waits for a person;
    with PagerDuty down Carol waits too (fail closed) and check() says why."""
    path = tmp_path / "policies.yaml"
    path.write_text(policy_text(pd, og, weekly="U0ALICE"))
    holder = PolicyHolder.load(path)
    lookup = PolicyOnCallLookup(
        holder, env=ONCALL_ENV, lookup_slack_user_by_email=by_email, failure_ttl_s=0.0, ttl_s=0.0
    )
    service = GrantService(
        ServiceContext(store=store, policy=holder, oncall=lookup, environ=ONCALL_ENV)
    )
    ask: dict[str, Any] = {
        "resource": "sandbox",
        "role": None,
        "duration_s": 900,
        "reason": "debugging",
    }
    try:
        carol = await service.request_access(user="U0CAROL", origin=Origin(), **ask)
        assert carol.grant.status is Status.ACTIVE
        bob = await service.request_access(user="U0BOB", origin=Origin(), **ask)
        assert bob.grant.status is Status.PENDING

        pd.fail(status=500)
        again = await service.request_access(user="U0CAROL", origin=Origin(), **ask)
        assert again.grant.status is Status.PENDING
        why = await lookup.check("U0CAROL", now=time.time(), schedules=["primary"])
        assert why.explain() == "on-call schedule primary: PagerDuty is failing (HTTP 500)"
    finally:
        await service.aclose()
        await lookup.aclose()
