"""PagerDuty on-call lookups against the wire-level PagerDuty fake and the Slack emulator."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from prometheus_client import REGISTRY
from slack_sdk.web.async_client import AsyncWebClient

from bot.devtools.pagerduty_emulator import (
    ACCEPT_V2,
    PagerDutyEmulator,
    PagerDutyOnCall,
    PagerDutyUser,
)
from bot.devtools.slack_emulator import SlackEmulator
from bot.domain.policy.rules import Policy
from bot.oncall import OnCallLookup, build_oncall_lookup, slack_lookup_by_email
from bot.oncall.base import SlackUserByEmail
from tests.integration.support import PD_TOKEN, FakeClock, wait_for

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC).timestamp()
NOW_ISO = "2026-03-02T12:00:00Z"
HOUR_S = 3_600
TOKEN = PD_TOKEN
TOKEN_ENV = "GB_PD_TOKEN"

PD_USERS = [
    PagerDutyUser("PCAROL", "Carol Oncall", "Carol@Example.com"),  # case differs from Slack
    PagerDutyUser("PBOB", "Bob Second", "bob@example.com"),
    PagerDutyUser("PERIN", "Erin Elsewhere", "erin@example.com"),  # no Slack account
    PagerDutyUser("PDAVE", "Dave Departed", "dave@example.com"),  # deactivated in Slack
]


def shift(
    user: str,
    *,
    schedule: str | None = "PSCHED1",
    policy: str = "PEP1",
    level: int = 1,
    start: float = NOW - HOUR_S,
    end: float = NOW + HOUR_S,
) -> PagerDutyOnCall:
    """``user`` on call through ``schedule`` for ``policy`` from ``start`` to ``end``."""
    return PagerDutyOnCall(user, policy, schedule, level, start, end)


@pytest.fixture
def pagerduty_setup() -> dict[str, Any]:
    """Carol on call now through PSCHED1 and Bob next; Erin has no Slack account and Dave
    is deactivated there; PagerDuty's clock is NOW."""
    return {
        "token": TOKEN,
        "users": PD_USERS,
        "oncalls": [shift("PCAROL"), shift("PBOB", start=NOW + HOUR_S, end=NOW + 2 * HOUR_S)],
        "clock": lambda: NOW,
    }


@pytest.fixture
async def make_lookup(
    pd: PagerDutyEmulator, by_email: SlackUserByEmail, clock: FakeClock
) -> AsyncIterator[Callable[..., OnCallLookup]]:
    """Builds lookups for one PagerDuty schedule ``primary`` (closing them afterwards)."""
    built: list[OnCallLookup] = []

    def make(
        *, token: str = TOKEN, escalation_policy_id: str | None = None, **options: Any
    ) -> OnCallLookup:
        target = (
            {"escalation_policy_id": escalation_policy_id}
            if escalation_policy_id
            else {"schedule_id": "PSCHED1"}
        )
        spec = {"type": "pagerduty", "token": "${" + TOKEN_ENV + "}", "base_url": pd.url, **target}
        policy = Policy.model_validate({"resources": {}, "oncall": {"primary": spec}})
        options = {"ttl_s": 60.0, "timeout_s": 2.0, "failure_ttl_s": 0.0, **options}
        lookup = build_oncall_lookup(
            policy,
            env={TOKEN_ENV: token},
            lookup_slack_user_by_email=by_email,
            clock=clock,
            **options,
        )
        built.append(lookup)
        return lookup

    yield make
    for lookup in built:
        await lookup.aclose()


async def test_the_on_call_user_is_mapped_to_their_slack_id(
    make_lookup: Callable[..., OnCallLookup], pd: PagerDutyEmulator, emulator: SlackEmulator
) -> None:
    """Carol is on call in PagerDuty now, so her Slack id is on call for primary; Bob's
    later shift does not count yet."""
    lookup = make_lookup()
    assert await lookup.schedules_for("U0CAROL", now=NOW) == frozenset({"primary"})
    assert await lookup.schedules_for("U0BOB", now=NOW) == frozenset()

    [call] = pd.calls("/oncalls")
    assert call.status == 200
    assert call.params("schedule_ids[]") == ["PSCHED1"]
    assert call.params("include[]") == ["users"]
    assert (call.param("since"), call.param("until")) == (NOW_ISO, NOW_ISO)
    assert [c.args["email"] for c in emulator.calls("users.lookupByEmail")] == ["carol@example.com"]


async def test_pages_are_followed_until_more_is_false(
    make_lookup: Callable[..., OnCallLookup], pd: PagerDutyEmulator
) -> None:
    """With 250 on-call entries the lookup reads three pages of 100 and finds Carol on the
    last one."""
    crowd = [PagerDutyUser(f"PX{i:03d}", f"X{i}", f"x{i}@example.com") for i in range(249)]
    pd.users.update({u.id: u for u in crowd})
    pd.oncalls = [shift(u.id, start=NOW - 2 * HOUR_S) for u in crowd] + [shift("PCAROL")]
    lookup = make_lookup()
    result = await lookup.check("U0CAROL", now=NOW)
    assert result.schedules == frozenset({"primary"}) and not result.failures
    assert [c.param("offset") for c in pd.calls("/oncalls")] == ["0", "100", "200"]
    assert {c.param("limit") for c in pd.calls("/oncalls")} == {"100"}


async def test_an_escalation_policy_counts_only_its_first_level(
    make_lookup: Callable[..., OnCallLookup], pd: PagerDutyEmulator
) -> None:
    """For an escalation policy, level 1 is on call; level 2 and other policies are not."""
    pd.oncalls = [
        shift("PCAROL", schedule="PSCHED1", policy="PEP1", level=1),
        shift("PBOB", schedule="PSCHED2", policy="PEP1", level=2),
        shift("PBOB", schedule="PSCHED9", policy="PEP9", level=1),
    ]
    lookup = make_lookup(escalation_policy_id="PEP1")
    assert await lookup.schedules_for("U0CAROL", now=NOW) == frozenset({"primary"})
    assert await lookup.schedules_for("U0BOB", now=NOW) == frozenset()
    [call] = pd.calls("/oncalls")
    assert call.params("escalation_policy_ids[]") == ["PEP1"]
    assert call.params("schedule_ids[]") == []


async def test_a_schedule_counts_at_any_escalation_level(
    make_lookup: Callable[..., OnCallLookup], pd: PagerDutyEmulator
) -> None:
    """A schedule used at level 2 of some policy still puts its person on call."""
    pd.oncalls = [shift("PBOB", schedule="PSCHED1", level=2)]
    lookup = make_lookup()
    assert await lookup.schedules_for("U0BOB", now=NOW) == frozenset({"primary"})


async def test_answers_are_cached_for_the_ttl_then_asked_again(
    make_lookup: Callable[..., OnCallLookup],
    pd: PagerDutyEmulator,
    emulator: SlackEmulator,
    clock: FakeClock,
) -> None:
    """Many lookups within the TTL make one PagerDuty call; after the TTL one more."""
    lookup = make_lookup(ttl_s=60.0)
    for user in ["U0CAROL", "U0BOB"] * 10:
        await lookup.schedules_for(user, now=NOW)
    assert len(pd.calls("/oncalls")) == 1

    clock.advance(59.0)
    assert await lookup.schedules_for("U0CAROL", now=NOW) == frozenset({"primary"})
    assert len(pd.calls("/oncalls")) == 1

    clock.advance(2.0)
    pd.oncalls = [shift("PBOB")]  # the handoff happened upstream
    assert await lookup.schedules_for("U0CAROL", now=NOW) == frozenset()
    assert await lookup.schedules_for("U0BOB", now=NOW) == frozenset({"primary"})
    assert len(pd.calls("/oncalls")) == 2
    # Email -> Slack mappings have their own, longer cache: one Slack call per person.
    emails = sorted(c.args["email"] for c in emulator.calls("users.lookupByEmail"))
    assert emails == ["bob@example.com", "carol@example.com"]


async def test_a_concurrent_burst_makes_one_upstream_call(
    make_lookup: Callable[..., OnCallLookup], pd: PagerDutyEmulator
) -> None:
    """Fifty lookups at once, while PagerDuty takes its time, share a single request."""
    pd.slow(delay_s=0.3)
    lookup = make_lookup(timeout_s=5.0)
    users = ["U0CAROL", "U0BOB"] * 25
    results = await asyncio.gather(*(lookup.schedules_for(u, now=NOW) for u in users))
    assert results == [frozenset({"primary"}), frozenset()] * 25
    assert len(pd.calls("/oncalls")) == 1


async def test_a_caller_giving_up_does_not_cancel_the_shared_fetch(
    make_lookup: Callable[..., OnCallLookup], pd: PagerDutyEmulator
) -> None:
    """One waiter cancelled mid-flight leaves the fetch running for the others."""
    pd.slow(delay_s=0.3)
    lookup = make_lookup(timeout_s=5.0)
    impatient = asyncio.create_task(lookup.schedules_for("U0CAROL", now=NOW))
    patient = asyncio.create_task(lookup.schedules_for("U0CAROL", now=NOW))
    await wait_for(lambda: lookup.busy, what="the fetch both wait on to be in flight")
    impatient.cancel()
    assert await patient == frozenset({"primary"})
    assert impatient.cancelled()
    assert len(pd.calls("/oncalls")) == 1


async def test_a_failing_pagerduty_fails_closed_with_the_reason(
    make_lookup: Callable[..., OnCallLookup], pd: PagerDutyEmulator
) -> None:
    """HTTP 500 from PagerDuty: nobody is on call for primary, and check() says why."""
    pd.fail(status=500)
    lookup = make_lookup()
    result = await lookup.check("U0CAROL", now=NOW)
    assert result.schedules == frozenset()
    assert dict(result.failures) == {"primary": "PagerDuty is failing (HTTP 500)"}
    assert "primary" in result.explain() and result.degraded
    assert await lookup.schedules_for("U0CAROL", now=NOW) == frozenset()


async def test_refused_connections_fail_closed_and_recovery_is_seen(
    make_lookup: Callable[..., OnCallLookup], pd: PagerDutyEmulator, clock: FakeClock
) -> None:
    """While PagerDuty refuses connections (even on a pooled keep-alive connection) the
    lookup fails closed; once it is back and the failure's short TTL has passed, Carol is on
    call again."""
    lookup = make_lookup(ttl_s=60.0, failure_ttl_s=10.0)
    assert await lookup.schedules_for("U0CAROL", now=NOW) == frozenset({"primary"})
    await pd.refuse()
    clock.advance(61.0)
    result = await lookup.check("U0CAROL", now=NOW)
    assert result.schedules == frozenset()
    assert result.failures["primary"].startswith("PagerDuty is unreachable")
    assert (await lookup.check("U0CAROL", now=NOW)).failures  # a fresh connection: refused
    clock.advance(11.0)
    assert "Cannot connect" in (await lookup.check("U0CAROL", now=NOW)).failures["primary"]

    await pd.heal()
    clock.advance(5.0)  # the failure is still believed: no hammering a dead service
    assert (await lookup.check("U0CAROL", now=NOW)).failures
    clock.advance(6.0)
    assert await lookup.schedules_for("U0CAROL", now=NOW) == frozenset({"primary"})


async def test_a_slow_pagerduty_fails_closed_within_the_timeout(
    make_lookup: Callable[..., OnCallLookup], pd: PagerDutyEmulator
) -> None:
    """PagerDuty answering after 5 s cannot hold a request past the 0.3 s timeout."""
    pd.slow(delay_s=5.0)
    lookup = make_lookup(timeout_s=0.3)
    started = time.monotonic()
    result = await lookup.check("U0CAROL", now=NOW)
    elapsed = time.monotonic() - started
    assert result.schedules == frozenset()
    assert dict(result.failures) == {"primary": "PagerDuty did not answer within 0.3 s"}
    assert 0.25 <= elapsed < 1.0


async def test_a_bad_token_fails_closed_and_no_token_is_ever_shown(
    make_lookup: Callable[..., OnCallLookup],
    pd: PagerDutyEmulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A rejected token (401) fails closed; neither the reason nor any log names a token."""
    wrong = "pd-wrong-token-9876543210"
    caplog.set_level(logging.DEBUG)
    lookup = make_lookup(token=wrong)
    result = await lookup.check("U0CAROL", now=NOW)
    assert result.schedules == frozenset()
    reason = result.failures["primary"]
    assert "401" in reason and "credentials" in reason
    assert pd.calls("/oncalls")[0].status == 401
    shown = [reason, result.explain(), repr(lookup.source("primary")), caplog.text]
    for text in shown:
        assert wrong not in text and TOKEN not in text


async def test_an_email_without_a_slack_user_is_not_on_call(
    make_lookup: Callable[..., OnCallLookup], pd: PagerDutyEmulator
) -> None:
    """Erin (no Slack account) and Dave (deactivated) are on call upstream, yet nobody is on
    call in Slack terms, and that is not a failure."""
    pd.oncalls = [shift("PERIN"), shift("PDAVE")]
    lookup = make_lookup()
    result = await lookup.check("U0DAVE", now=NOW)
    assert result.schedules == frozenset() and not result.failures
    assert await lookup.members("primary", now=NOW) == frozenset()


async def test_users_are_fetched_when_the_entry_does_not_embed_them(
    by_email: SlackUserByEmail, clock: FakeClock
) -> None:
    """When include[]=users is not honoured the email comes from GET /users/{id}."""
    async with PagerDutyEmulator(
        token=TOKEN, users=PD_USERS, oncalls=[shift("PCAROL")], embed_users=False
    ) as pd:
        spec = {"type": "pagerduty", "schedule_id": "PSCHED1", "token": "${T}", "base_url": pd.url}
        policy = Policy.model_validate({"resources": {}, "oncall": {"primary": spec}})
        lookup = build_oncall_lookup(
            policy, env={"T": TOKEN}, lookup_slack_user_by_email=by_email, clock=clock
        )
        try:
            assert await lookup.members("primary", now=NOW) == frozenset({"U0CAROL"})
        finally:
            await lookup.aclose()
        assert [c.path for c in pd.recorded] == ["/oncalls", "/users/PCAROL"]


async def test_the_fake_checks_auth_and_accept_like_pagerduty(pd: PagerDutyEmulator) -> None:
    """The fake refuses a missing token (401) and a missing v2 Accept header (406)."""
    auth = {"Authorization": f"Token token={TOKEN}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{pd.url}/oncalls", headers={"Accept": ACCEPT_V2}) as r:
            assert r.status == 401
            assert (await r.json())["error"]["message"] == "Unauthorized"
        async with http.get(f"{pd.url}/oncalls", headers=auth) as r:
            assert r.status == 406
        params = [("schedule_ids[]", "PSCHED1"), ("earliest", "true")]
        headers = {**auth, "Accept": ACCEPT_V2}
        async with http.get(f"{pd.url}/oncalls", params=params, headers=headers) as r:
            body = await r.json()
        assert r.status == 200
        assert body["more"] is False and body["offset"] == 0 and body["limit"] == 25
        [entry] = body["oncalls"]
        assert entry["user"]["type"] == "user_reference" and "email" not in entry["user"]
        assert entry["schedule"]["id"] == "PSCHED1" and entry["escalation_level"] == 1
        assert entry["start"] == "2026-03-02T11:00:00Z"


async def test_a_slack_error_mapping_emails_fails_closed_and_is_counted(
    pd: PagerDutyEmulator, emulator: SlackEmulator
) -> None:
    """Slack refusing users.lookupByEmail (here a revoked bot token) means nobody is on call
    for that schedule, the reason names Slack's error, and the Slack API error metric counts
    it."""
    sample = {"method": "users.lookupByEmail", "error": "invalid_auth"}
    before = REGISTRY.get_sample_value("grantbot_slack_api_errors_total", sample) or 0.0
    spec = {
        "type": "pagerduty",
        "token": "${" + TOKEN_ENV + "}",
        "base_url": pd.url,
        "schedule_id": "PSCHED1",
    }
    lookup = build_oncall_lookup(
        Policy.model_validate({"resources": {}, "oncall": {"primary": spec}}),
        env={TOKEN_ENV: TOKEN},
        lookup_slack_user_by_email=slack_lookup_by_email(
            AsyncWebClient(token="xoxb-revoked", base_url=emulator.api_url)
        ),
        ttl_s=60.0,
        timeout_s=2.0,
        failure_ttl_s=0.0,
    )
    try:
        result = await lookup.check("U0CAROL", now=NOW)
    finally:
        await lookup.aclose()
    assert result.schedules == frozenset()
    assert "invalid_auth" in result.failures["primary"]
    assert REGISTRY.get_sample_value("grantbot_slack_api_errors_total", sample) == before + 1
