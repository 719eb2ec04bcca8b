"""Issue 13, item 5: what ``explain`` says is what the service then does.

A property test over people, roles, durations, times (who the static rotation has on call),
incident or not and the day's auto-approvals already used: the service's ``explain`` is
asked first, then the same request is filed through the real service on real Redis. Explain
says "may not ask" exactly when the request is refused, "auto-approved now" exactly when it
is, and otherwise, from an incident, names the failing condition the requester is told.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.model import Origin, Status
from bot.errors import PolicyDenied
from bot.oncall.lookup import PolicyOnCallLookup
from bot.policy_holder import PolicyHolder
from bot.service import GrantService, ServiceContext
from bot.store.connection import connect
from bot.store.grants import GrantStore
from bot.store.keys import Keys

POLICY = """
incident_channels: "^inc-"
groups:
  eng: {members: [U0ALICE, U0CAROL, {id: U0ERIN, expires: 2026-06-30}]}
  approvers: {members: [U0BOB]}
oncall:
  primary:
    {type: static, members: [U0CAROL, U0ERIN], handoff: "00:00", length: 1d, start: 2026-01-05}
defaults:
  requesters: {groups: [eng]}
  approvers: {groups: [approvers]}
  max_duration: 4h
resources:
  db:
    provider: {type: noop}
    roles:
      read:
        auto_approve:
          - {on_call: primary, incident: true, max_duration: 1h, per_user_per_day: 2}
          - {max_duration: 10m, per_user_per_day: 1}
      write:
        max_duration: 2h
        auto_approve:
          - {on_call: primary, max_duration: 30m}
      admin:
        requesters: {users: [U0CAROL]}
"""

#: Monday 2026-06-01 00:00 UTC: Erin is still in eng until the end of June.
JUNE = 1_780_272_000.0
ROLES = ("read", "write", "admin")
USERS = ("U0ALICE", "U0CAROL", "U0ERIN", "U0DAVE")


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("explain") / "policies.yaml"
    path.write_text(POLICY)
    return path


async def _one(
    redis_url: str,
    policy_file: Path,
    *,
    user: str,
    role: str,
    duration_s: int,
    at: float,
    incident: bool,
    used: int,
) -> None:
    keys = Keys(prefix=f"test-explain-{uuid.uuid4().hex[:10]}")
    client = connect(redis_url)
    store = GrantStore(client, keys=keys)
    policy = PolicyHolder.load(policy_file)

    async def nobody(email: str) -> str | None:
        return None

    oncall = PolicyOnCallLookup(policy, env={}, lookup_slack_user_by_email=nobody)
    service = GrantService(
        ServiceContext(store=store, policy=policy, oncall=oncall, clock=lambda: at)
    )
    try:
        for _ in range(used):
            await store.quota.take(user=user, resource="db", role=role, now=at, limit=10)
        origin = (
            Origin(channel="C0INC", channel_name="inc-1", incident="inc-1") if incident else None
        )
        explained = await service.explain(
            user=user,
            resource="db",
            role=role,
            at=at,
            duration_s=duration_s,
            incident=origin.incident if origin else None,
        )
        refused: str | None = None
        try:
            result = await service.request_access(
                user=user,
                resource="db",
                role=role,
                duration_s=duration_s,
                reason="checking INC-1",
                origin=origin,
            )
        except PolicyDenied as e:
            refused = str(e)
        assert explained.refusal == refused, "explain and the service disagree on asking"
        if refused is not None:
            return
        assert explained.may_request, "explain said no, the service accepted"
        auto = result.grant.auto_approved is not None
        assert explained.auto_approves == auto, (explained.checks, result.grant)
        if auto:
            assert result.grant.status is Status.ACTIVE
        elif incident and explained.checks:
            assert result.note is not None
            if explained.blocker is None:
                nearest = min(explained.checks, key=lambda c: (len(c.failed), c.index))
                assert nearest.why_not in result.note
    finally:
        await service.aclose()
        async for key in client.scan_iter(match="{" + keys.prefix + "}*", count=1000):
            await client.delete(key)
        await store.aclose()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    user=st.sampled_from(USERS),
    role=st.sampled_from(ROLES),
    duration_s=st.sampled_from([60, 600, 1800, 3600, 7200, 5 * 3600]),
    day=st.integers(min_value=0, max_value=60),
    hour=st.integers(min_value=0, max_value=23),
    incident=st.booleans(),
    used=st.integers(min_value=0, max_value=3),
)
def test_explain_agrees_with_the_decision(
    redis_url: str,
    policy_file: Path,
    user: str,
    role: str,
    duration_s: int,
    day: int,
    hour: int,
    incident: bool,
    used: int,
) -> None:
    """Whatever the request, explain's verdicts are the service's (see the module docstring):
    past June Erin's membership has expired, the rotation moves daily, quotas differ."""
    asyncio.run(
        _one(
            redis_url,
            policy_file,
            user=user,
            role=role,
            duration_s=duration_s,
            at=JUNE + day * 86_400 + hour * 3_600,
            incident=incident,
            used=used,
        )
    )


# -- the command line -------------------------------------------------------------------------


async def test_cli_explain_names_people_and_the_failing_condition(
    cli_env: dict[str, str], store: GrantStore, policy_file: Path, emulator: object
) -> None:
    """``grantbot policy explain`` (a real process): Alice on 2026-06-01 at 09:00 from
    #inc-1 may ask for db read; Bob (named through Slack) approves; the on-call rule fails
    on "not on call for primary" (Carol has that day) while the 10m rule holds for 5m; a
    day's limit already used shows; a bad --at is one line and exit 1."""
    from bot.devtools.slack_emulator import SlackEmulator
    from tests.integration.support import grantbot

    assert isinstance(emulator, SlackEmulator)
    env = {
        **cli_env,
        "GRANTBOT_POLICY": str(policy_file),
        "SLACK_BOT_TOKEN": emulator.bot_token,
        "SLACK_API_URL": emulator.api_url,
    }
    at = "2026-06-01T09:00Z"
    args = ["policy", "explain", "--user", "U0ALICE", "--resource", "db", "--role", "read"]
    done = await asyncio.to_thread(grantbot, *args, "--channel", "inc-1", "--at", at, env=env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "db read for Alice Requester (U0ALICE), 1h, asked from #inc-1 (incident inc-1)" in out
    assert "May ask: yes" in out
    assert "Approvers: 1 of Bob Approver (U0BOB)" in out
    assert (
        "rule 1 (up to 1h, on call for primary, in an incident, 2 a day, 0 used today): "
        "fails: not on"
    ) in out
    assert (
        "rule 2 (up to 10m, 1 a day, 0 used today): fails: the duration 1h is over the cap"
    ) in out
    fits = await asyncio.to_thread(grantbot, *args, "--duration", "5m", "--at", at, env=env)
    assert fits.returncode == 0, fits.stderr
    assert "Auto-approval: yes, now (" in fits.stdout
    assert "; 0 of 1 a day used today)" in fits.stdout

    at_s = 1_780_304_400.0  # 2026-06-01 09:00 UTC
    await store.quota.take(user="U0ALICE", resource="db", role="read", now=at_s, limit=1)
    short = await asyncio.to_thread(grantbot, *args, "--duration", "5m", "--at", at, env=env)
    assert short.returncode == 0, short.stderr
    assert (
        "rule 2 (up to 10m, 1 a day, 1 used today): fails: the limit of 1 auto-approved db read"
    ) in short.stdout
    bad = await asyncio.to_thread(grantbot, *args, "--at", "tomorrow", env=env)
    assert bad.returncode == 1 and bad.stderr.strip().endswith("or epoch seconds")


def test_policy_explain_with_an_empty_user_is_a_usage_error(policy_file: Path) -> None:
    """``--user ''`` (or an empty --resource) names nobody: exit 2, one usage line."""
    from tests.integration.support import grantbot

    for empty in (["--user", "", "--resource", "db"], ["--user", "U0ALICE", "--resource", " "]):
        done = grantbot("policy", "explain", *empty, env={"GRANTBOT_POLICY": str(policy_file)})
        assert done.returncode == 2, done.stderr
        assert "must not be empty" in done.stderr
