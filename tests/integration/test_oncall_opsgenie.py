"""Opsgenie on-call lookups against the wire-level Opsgenie fake and the Slack emulator."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from bot.devtools.opsgenie_emulator import OpsgenieEmulator, OpsgenieShift
from bot.domain.policy.rules import Policy
from bot.oncall import OnCallLookup, build_oncall_lookup
from bot.oncall.base import SlackUserByEmail
from tests.integration.support import OG_KEY, FakeClock

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC).timestamp()
HOUR_S = 3_600
API_KEY = OG_KEY
KEY_ENV = "GB_OPSGENIE_KEY"
SCHEDULE = "SRE Primary/EU"  # a space and a slash: the name must be quoted in the path


@pytest.fixture
def opsgenie_setup() -> dict[str, Any]:
    """Carol on call now for SCHEDULE, Bob in the hour after."""
    shifts = [
        OpsgenieShift("carol@example.com", NOW - HOUR_S, NOW + HOUR_S),
        OpsgenieShift("bob@example.com", NOW + HOUR_S, NOW + 2 * HOUR_S),
    ]
    return {"api_key": API_KEY, "schedules": {SCHEDULE: shifts}}


@pytest.fixture
async def make_lookup(
    og: OpsgenieEmulator, by_email: SlackUserByEmail, clock: FakeClock
) -> AsyncIterator[Callable[..., OnCallLookup]]:
    """Builds lookups for one Opsgenie schedule ``primary`` (closing them afterwards)."""
    built: list[OnCallLookup] = []

    def make(*, api_key: str = API_KEY, schedule: str = SCHEDULE, **options: Any) -> OnCallLookup:
        spec = {
            "type": "opsgenie",
            "schedule": schedule,
            "api_key": "${" + KEY_ENV + "}",
            "base_url": og.url,
        }
        policy = Policy.model_validate({"resources": {}, "oncall": {"primary": spec}})
        options = {"ttl_s": 60.0, "timeout_s": 2.0, "failure_ttl_s": 0.0, **options}
        lookup = build_oncall_lookup(
            policy,
            env={KEY_ENV: api_key},
            lookup_slack_user_by_email=by_email,
            clock=clock,
            **options,
        )
        built.append(lookup)
        return lookup

    yield make
    for lookup in built:
        await lookup.aclose()


async def test_the_on_call_recipient_is_mapped_to_their_slack_id(
    make_lookup: Callable[..., OnCallLookup], og: OpsgenieEmulator
) -> None:
    """Carol is Opsgenie's on-call recipient at ``now``, so her Slack id is on call; Bob's
    later shift does not count yet."""
    lookup = make_lookup()
    assert await lookup.schedules_for("U0CAROL", now=NOW) == frozenset({"primary"})
    assert await lookup.schedules_for("U0BOB", now=NOW) == frozenset()
    [call] = og.calls()
    assert call.path == f"/v2/schedules/{SCHEDULE}/on-calls" and call.status == 200
    assert call.param("scheduleIdentifierType") == "name" and call.param("flat") == "true"
    assert call.param("date") == "2026-03-02T12:00:00+00:00"  # the plus survived the query


async def test_the_date_asked_decides_who_is_on_call(
    make_lookup: Callable[..., OnCallLookup],
) -> None:
    """Asked for an instant inside Bob's shift, Opsgenie names Bob, not Carol."""
    lookup = make_lookup()
    later = NOW + 90 * 60
    assert await lookup.schedules_for("U0BOB", now=later) == frozenset({"primary"})
    assert await lookup.schedules_for("U0CAROL", now=later) == frozenset()


async def test_answers_are_cached_for_the_ttl_then_asked_again(
    make_lookup: Callable[..., OnCallLookup], og: OpsgenieEmulator, clock: FakeClock
) -> None:
    """Many lookups within the TTL make one Opsgenie call; after the TTL one more."""
    lookup = make_lookup(ttl_s=30.0)
    for user in ["U0CAROL", "U0BOB"] * 10:
        await lookup.schedules_for(user, now=NOW)
    assert len(og.calls()) == 1
    clock.advance(31.0)
    og.set_on_call(SCHEDULE, ["bob@example.com"])
    assert await lookup.schedules_for("U0BOB", now=NOW) == frozenset({"primary"})
    assert await lookup.schedules_for("U0CAROL", now=NOW) == frozenset()
    assert len(og.calls()) == 2


async def test_a_concurrent_burst_makes_one_upstream_call(
    make_lookup: Callable[..., OnCallLookup], og: OpsgenieEmulator
) -> None:
    """Forty lookups at once, while Opsgenie takes its time, share a single request."""
    og.slow(delay_s=0.3)
    lookup = make_lookup(timeout_s=5.0)
    results = await asyncio.gather(
        *(lookup.schedules_for(u, now=NOW) for u in ["U0CAROL", "U0BOB"] * 20)
    )
    assert results == [frozenset({"primary"}), frozenset()] * 20
    assert len(og.calls()) == 1


async def test_a_failing_opsgenie_fails_closed_with_the_reason(
    make_lookup: Callable[..., OnCallLookup], og: OpsgenieEmulator
) -> None:
    """HTTP 503 from Opsgenie: nobody is on call for primary, and check() says why."""
    og.fail(status=503)
    result = await make_lookup().check("U0CAROL", now=NOW)
    assert result.schedules == frozenset()
    assert dict(result.failures) == {"primary": "Opsgenie is failing (HTTP 503)"}


async def test_refused_connections_fail_closed(
    make_lookup: Callable[..., OnCallLookup], og: OpsgenieEmulator
) -> None:
    """With Opsgenie's port refusing connections, the lookup fails closed as unreachable."""
    await og.refuse()
    result = await make_lookup().check("U0CAROL", now=NOW)
    assert result.schedules == frozenset()
    assert result.failures["primary"].startswith("Opsgenie is unreachable")


async def test_a_slow_opsgenie_fails_closed_within_the_timeout(
    make_lookup: Callable[..., OnCallLookup], og: OpsgenieEmulator
) -> None:
    """Opsgenie answering after 5 s cannot hold a request past the 0.3 s timeout."""
    og.slow(delay_s=5.0)
    lookup = make_lookup(timeout_s=0.3)
    started = time.monotonic()
    result = await lookup.check("U0CAROL", now=NOW)
    elapsed = time.monotonic() - started
    assert result.schedules == frozenset()
    assert dict(result.failures) == {"primary": "Opsgenie did not answer within 0.3 s"}
    assert 0.25 <= elapsed < 1.0


async def test_a_bad_key_fails_closed_and_no_key_is_ever_shown(
    make_lookup: Callable[..., OnCallLookup],
    og: OpsgenieEmulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A rejected GenieKey (401) fails closed; neither the reason nor any log names a key."""
    wrong = "og-wrong-key-9876543210"
    caplog.set_level(logging.DEBUG)
    lookup = make_lookup(api_key=wrong)
    result = await lookup.check("U0CAROL", now=NOW)
    reason = result.failures["primary"]
    assert result.schedules == frozenset() and "401" in reason
    assert og.calls()[0].status == 401
    for text in [reason, repr(lookup.source("primary")), caplog.text]:
        assert wrong not in text and API_KEY not in text


async def test_an_unknown_schedule_fails_closed_as_not_found(
    make_lookup: Callable[..., OnCallLookup],
) -> None:
    """A schedule name Opsgenie does not know is a 404, reported, never a guess."""
    result = await make_lookup(schedule="nope").check("U0CAROL", now=NOW)
    assert dict(result.failures) == {"primary": "Opsgenie does not know the schedule (HTTP 404)"}


async def test_a_recipient_without_a_slack_user_is_not_on_call(
    make_lookup: Callable[..., OnCallLookup], og: OpsgenieEmulator
) -> None:
    """An on-call email with no Slack account makes nobody on call, and is not a failure."""
    og.set_on_call(SCHEDULE, ["erin@example.com"])
    lookup = make_lookup()
    result = await lookup.check("U0CAROL", now=NOW)
    assert result.schedules == frozenset() and not result.failures
    assert await lookup.members("primary", now=NOW) == frozenset()


async def test_the_fake_speaks_opsgenie(og: OpsgenieEmulator) -> None:
    """The fake wants a GenieKey, answers by id by default, and without flat lists
    participants rather than recipients."""
    schedule_id = og.schedules[SCHEDULE].id
    url = f"{og.url}/v2/schedules/{schedule_id}/on-calls"
    params = {"date": "2026-03-02T12:00:00+00:00"}
    async with aiohttp.ClientSession() as http:
        async with http.get(url, params=params) as r:
            assert r.status == 401
            error = await r.json()
            assert error["message"] and "requestId" in error and "took" in error
        headers = {"Authorization": f"GenieKey {API_KEY}"}
        async with http.get(url, params=params, headers=headers) as r:
            body = await r.json()
    assert r.status == 200
    assert body["data"]["_parent"] == {"id": schedule_id, "name": SCHEDULE, "enabled": True}
    [participant] = body["data"]["onCallParticipants"]
    assert participant["name"] == "carol@example.com" and participant["type"] == "user"
    assert "onCallRecipients" not in body["data"]
