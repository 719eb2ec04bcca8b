"""grantbot on a real Redis Cluster (three masters, --cluster-enabled, on loopback): every key
under one hash tag lives in one slot, so the core flow (request, approval, credential,
scheduled revocation, the audit chain, the CLI) runs against the master owning that slot."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from bot.devtools.redis_ha import ClusterNodes
from bot.domain.model import Origin, Status
from bot.policy_holder import PolicyHolder
from bot.scheduling.scheduler import RevocationScheduler
from bot.service import GrantService, ServiceContext
from bot.store.cluster import slot_of
from bot.store.grants import GrantStore
from bot.store.keys import Keys
from bot.wiring import build_core, close_core
from tests.integration.support import grantbot, wait_for

POLICY = """
groups:
  eng: {members: [U0ALICE, U0BOB]}
  approvers: {members: [U0BOB]}
defaults:
  requesters: {groups: [eng]}
  approvers: {groups: [approvers]}
  max_duration: 1h
resources:
  sandbox:
    provider: {type: noop}
    roles:
      play: {}
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterNodes]:
    with ClusterNodes(masters=3) as nodes:
        yield nodes


@pytest.fixture
async def parts(
    cluster: ClusterNodes, keys: Keys, tmp_path: Path
) -> AsyncIterator[tuple[GrantService, RevocationScheduler]]:
    (tmp_path / "policies.yaml").write_text(POLICY)
    holder = PolicyHolder.load(tmp_path / "policies.yaml")
    store = GrantStore.open(cluster.url, keys=keys)
    core = build_core(ServiceContext(store=store, policy=holder), schedule_on=cluster.url)
    assert core.scheduler is not None  # built with schedule_on
    await core.scheduler.start()
    yield core.service, core.scheduler
    await core.scheduler.stop()
    await close_core(core)
    await store.aclose()
    await holder.aclose()


def _keys_per_node(cluster: ClusterNodes, keys: Keys) -> dict[int, int]:
    counts = {}
    for node in cluster.nodes:
        client = redis.Redis(port=node.port)
        try:
            counts[node.port] = sum(1 for _ in client.scan_iter(match="{" + keys.prefix + "}*"))
        finally:
            client.close()
    return counts


async def test_the_core_flow_runs_on_a_three_master_cluster(
    cluster: ClusterNodes, keys: Keys, parts: tuple[GrantService, RevocationScheduler]
) -> None:
    """Request → approve → ACTIVE with its job → revoked by the scheduler at expiry, the
    audit chain verifying; every key sits on the one master owning the prefix's slot."""
    service, scheduler = parts
    await wait_for(lambda: scheduler.is_leader, what="the scheduler to lead")
    asked = await service.request_access(
        user="U0ALICE",
        resource="sandbox",
        role="play",
        duration_s=2,
        reason="cluster check",
        tickets=[],
        origin=Origin(surface="command"),
    )
    active = await service.approve(asked.grant.id, user="U0BOB")
    assert active.status is Status.ACTIVE

    async def ended() -> bool:
        return (await service.store.get(active.id)).status is Status.EXPIRED

    await wait_for(ended, what="the scheduler to end the grant", timeout_s=20)
    assert (await service.store.audit.verify()).entries >= 4  # REQUEST APPROVE ISSUE EXPIRE
    placed = _keys_per_node(cluster, keys)
    owners = [port for port, n in placed.items() if n]
    assert len(owners) == 1, placed  # one hash tag, one slot, one master
    assert slot_of(keys.audit) == slot_of(keys.grant(active.id))
    listed = grantbot(
        "grants", "list", env={"REDIS_URL": cluster.url, "GRANTBOT_REDIS_PREFIX": keys.prefix}
    )
    assert listed.returncode == 0, listed.stderr
    assert active.id in listed.stdout
    verified = grantbot(
        "audit", "verify", env={"REDIS_URL": cluster.url, "GRANTBOT_REDIS_PREFIX": keys.prefix}
    )
    assert verified.returncode == 0, verified.stderr


def test_a_cluster_url_whose_nodes_do_not_answer_stops_the_start(tmp_path: Path) -> None:
    from bot.devtools.redis_server import free_port

    url = f"redis+cluster://127.0.0.1:{free_port()}"
    done = grantbot("grants", "list", env={"REDIS_URL": url})
    assert done.returncode == 1
    assert "no cluster node answered" in done.stderr.strip()
