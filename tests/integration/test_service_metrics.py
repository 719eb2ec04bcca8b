"""The service counts what happens to requests: outcomes, approver decisions, auto-approvals
and the time from request to credential (read back from the Prometheus registry)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.domain.model import Origin
from bot.errors import PolicyDenied
from bot.metrics import REGISTRY
from bot.policy_holder import PolicyHolder
from bot.service import GrantService, ServiceContext
from bot.store.grants import GrantStore
from tests.integration.support import FakeClock

POLICY = """
groups:
  eng: {members: [U0ALICE, U0BOB]}
defaults:
  requesters: {groups: [eng]}
  approvers: {users: [U0BOB]}
  max_duration: 1h
  request_timeout: 10m
  require_reason: false
resources:
  sandbox:
    provider: {type: noop}
    roles:
      play: {}
  lab:
    provider: {type: noop}
    roles:
      play:
        auto_approve: [{max_duration: 1h}]
"""


@pytest.fixture
async def service(tmp_path: Path, store: GrantStore) -> AsyncIterator[GrantService]:
    path = tmp_path / "policies.yaml"
    path.write_text(POLICY)
    svc = GrantService(
        ServiceContext(
            store=store, policy=PolicyHolder.load(path), clock=FakeClock(1_800_000_000.0)
        )
    )
    yield svc
    await svc.aclose()


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def outcome(name: str) -> float:
    return sample("grantbot_requests_total", outcome=name)


async def test_every_request_outcome_and_decision_is_counted(service: GrantService) -> None:
    """refused, approved, denied, cancelled, timed_out and auto_approved each move their
    counter by one; approver clicks count per decision; issuing observes the time to the
    credential on the path it took."""
    names = ("refused", "approved", "denied", "cancelled", "timed_out", "auto_approved")
    before = {n: outcome(n) for n in names}
    approves = sample("grantbot_approval_decisions_total", decision="approve")
    denies = sample("grantbot_approval_decisions_total", decision="deny")
    auto_lab = sample("grantbot_auto_approvals_total", resource="lab")
    waited = sample("grantbot_time_to_credential_seconds_count", path="approved")
    waited_sum = sample("grantbot_time_to_credential_seconds_sum", path="approved")
    at_once = sample("grantbot_time_to_credential_seconds_count", path="auto")
    clock = service.clock
    assert isinstance(clock, FakeClock)
    ask = {"role": None, "duration_s": 600, "reason": "testing", "origin": Origin()}

    with pytest.raises(PolicyDenied):
        await service.request_access(user="U0NOBODY", resource="sandbox", **ask)
    approved = await service.request_access(user="U0ALICE", resource="sandbox", **ask)
    clock.now += 90
    await service.approve(approved.grant.id, user="U0BOB")
    denied = await service.request_access(user="U0ALICE", resource="sandbox", **ask)
    await service.deny(denied.grant.id, user="U0BOB", reason="no")
    cancelled = await service.request_access(user="U0ALICE", resource="sandbox", **ask)
    await service.cancel(cancelled.grant.id, user="U0ALICE")
    await service.request_access(user="U0ALICE", resource="sandbox", **ask)
    clock.now += 11 * 60
    assert len(await service.time_out_due()) == 1
    await service.request_access(user="U0ALICE", resource="lab", **ask)

    assert {n: outcome(n) - before[n] for n in names} == dict.fromkeys(names, 1.0)
    assert sample("grantbot_approval_decisions_total", decision="approve") == approves + 1
    assert sample("grantbot_approval_decisions_total", decision="deny") == denies + 1
    assert sample("grantbot_auto_approvals_total", resource="lab") == auto_lab + 1
    assert sample("grantbot_time_to_credential_seconds_count", path="approved") == waited + 1
    assert sample("grantbot_time_to_credential_seconds_sum", path="approved") == pytest.approx(
        waited_sum + 90
    )
    assert sample("grantbot_time_to_credential_seconds_count", path="auto") == at_once + 1
