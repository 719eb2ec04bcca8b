"""A credential leaves only on a record a failover cannot lose: after issuing and storing
ACTIVE with its job, the writes are confirmed on a replica (WAIT); when no replica confirms
in time the credential is taken back at the target and the requester is told to ask again."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.devtools.redis_server import RedisServer
from bot.domain.credentials import Credential
from bot.domain.model import Grant, Origin, Status
from bot.notify import NullNotifier
from bot.policy_holder import PolicyHolder
from bot.providers.naming import login_name
from bot.service import GrantService, ServiceContext
from bot.service.confirmation import NOT_CONFIRMED
from bot.store.grants import GrantStore
from bot.store.keys import Keys
from bot.wiring import build_core, close_core

POLICY = """
groups:
  eng: {members: [U0ALICE, U0BOB]}
  approvers: {members: [U0BOB]}
defaults:
  requesters: {groups: [eng]}
  approvers: {groups: [approvers]}
  max_duration: 1h
resources:
  cache:
    provider: {type: redis_acl, url: "${DURABLE_CACHE_URL}"}
    roles:
      read:
        provider: {commands: "+@read +ping", keys: "~cache:*"}
"""
FAST_SYNC = ("--repl-diskless-sync-delay", "0")


class Recording(NullNotifier):
    def __init__(self) -> None:
        self.credentials: list[str] = []
        self.failed: list[Grant] = []
        self.ended_: list[Grant] = []

    async def credential_issued(self, grant: Grant, credential: Credential) -> None:
        self.credentials.append(grant.id)

    async def issue_failed(self, grant: Grant) -> None:
        self.failed.append(grant)

    async def ended(self, grant: Grant) -> None:
        self.ended_.append(grant)


@pytest.fixture
def replicated() -> Iterator[tuple[RedisServer, RedisServer]]:
    master = RedisServer(appendonly=False, extra_args=FAST_SYNC)
    replica = RedisServer(appendonly=False, replica_of=master.port)
    with master, replica:
        yield master, replica


@pytest.fixture
async def service(
    tmp_path: Path,
    replicated: tuple[RedisServer, RedisServer],
    cache_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[GrantService, Recording]]:
    monkeypatch.setenv("DURABLE_CACHE_URL", cache_server.url)
    (tmp_path / "policies.yaml").write_text(POLICY)
    holder = PolicyHolder.load(tmp_path / "policies.yaml")
    store = GrantStore.open(replicated[0].url, keys=Keys(prefix="durable"))
    notifier = Recording()
    context = ServiceContext(
        store=store, policy=holder, notifier=notifier, environ=dict(os.environ)
    )
    # A scheduler, not started: issuing writes each grant's revocation job through it.
    core = build_core(context, schedule_on=replicated[0].url)
    yield core.service, notifier
    await close_core(core)
    await store.aclose()


async def _approved(svc: GrantService) -> Grant:
    asked = await svc.request_access(
        user="U0ALICE",
        resource="cache",
        role=None,
        duration_s=600,
        reason="INC-1 check",
        tickets=[],
        origin=Origin(surface="command"),
    )
    return await svc.approve(asked.grant.id, user="U0BOB")


async def _acl_user_exists(cache: RedisServer, grant: Grant) -> bool:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(cache.url)
    try:
        return await client.acl_getuser(login_name(grant.id)) is not None
    finally:
        await client.aclose()


async def test_a_replica_confirms_and_the_credential_is_sent(
    service: tuple[GrantService, Recording], cache_server: RedisServer
) -> None:
    svc, told = service
    grant = await _approved(svc)
    assert grant.status is Status.ACTIVE
    assert told.credentials == [grant.id]
    assert await _acl_user_exists(cache_server, grant)
    found = await svc.store.confirm_replicated(grant, with_job=True)
    assert found.confirmed and found.replicated and found.replicas == 1


async def test_no_replica_in_time_takes_the_credential_back(
    service: tuple[GrantService, Recording],
    replicated: tuple[RedisServer, RedisServer],
    cache_server: RedisServer,
) -> None:
    """The replica stops answering (SIGSTOP; the master still counts it): WAIT times out,
    the credential is never sent, the target has no login, the grant ends REVOKED saying
    why, and the requester hears of it."""
    svc, told = service
    replica = replicated[1]
    assert replica.proc is not None
    os.kill(replica.proc.pid, signal.SIGSTOP)
    try:
        grant = await _approved(svc)
    finally:
        os.kill(replica.proc.pid, signal.SIGCONT)
    assert told.credentials == []
    assert not await _acl_user_exists(cache_server, grant)
    stored = await svc.store.get(grant.id)
    assert stored.status is Status.REVOKED and stored.end_reason == NOT_CONFIRMED
    assert [g.id for g in told.ended_] == [grant.id]
    assert await svc.store.revocation_jobs().run_time(grant.id) is None


async def test_a_master_without_replicas_has_nothing_to_wait_for(
    cache_server: RedisServer, keys: Keys, store: GrantStore
) -> None:
    """No replicas: confirmed at once (not replicated); a record older than what was
    written (a failover lost the newer one) is not confirmed."""
    from bot.domain.model import Actor
    from tests.factories import POLICY_V, make_grant

    grant = await store.create(make_grant(), actor=Actor.system("t"), policy_version=POLICY_V)
    found = await store.confirm_replicated(grant, with_job=False)
    assert found.confirmed and not found.replicated
    newer = grant.model_copy(update={"version": grant.version + 1})
    lost = await store.confirm_replicated(newer, with_job=False)
    assert not lost.confirmed and "older" in lost.why
    no_job = await store.confirm_replicated(grant, with_job=True)
    assert not no_job.confirmed and "revocation job" in no_job.why


async def test_a_redis_that_refuses_wait_is_as_durable_as_its_own_replication(
    replicated: tuple[RedisServer, RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    """A managed Redis may not offer WAIT (here: an ACL user without it): grants still
    issue, unconfirmed, and the log says so once."""
    import redis.asyncio as aioredis

    from bot.domain.model import Actor
    from tests.factories import POLICY_V, make_grant

    master = replicated[0]
    admin = aioredis.Redis(port=master.port)
    await admin.acl_setuser(
        "nowait",
        enabled=True,
        passwords=["+pw"],
        keys=["*"],
        channels=["*"],
        commands=["+@all", "-wait"],
    )
    await admin.aclose()
    store = GrantStore.open(
        f"redis://nowait:pw@127.0.0.1:{master.port}/0", keys=Keys(prefix="nowait")
    )
    try:
        grant = await store.create(make_grant(), actor=Actor.system("t"), policy_version=POLICY_V)
        found = await store.confirm_replicated(grant, with_job=False)
        assert found.confirmed and not found.replicated
        await store.confirm_replicated(grant, with_job=False)
    finally:
        await store.aclose()
    said = [r for r in caplog.records if "refused WAIT" in r.getMessage()]
    assert len(said) == 1


async def test_behind_sentinel_a_master_without_replicas_is_not_enough() -> None:
    """Behind Sentinel a master with no replica is one just promoted (or about to be
    demoted): what it alone holds is lost if the sentinels move on, so it does not confirm
    at once; WAIT runs and, with no replica attaching, the grant is not confirmed."""
    from bot.devtools.redis_ha import SentinelGroup
    from bot.domain.model import Actor
    from tests.factories import POLICY_V, make_grant

    with SentinelGroup(replicas=0, sentinels=1) as group:
        store = GrantStore.open(group.url, keys=Keys(prefix="lonely"))
        try:
            grant = await store.create(
                make_grant(), actor=Actor.system("t"), policy_version=POLICY_V
            )
            found = await store.confirm_replicated(grant, with_job=False, timeout_s=0.2)
        finally:
            await store.aclose()
    assert not found.confirmed and found.replicas == 0
    assert "no replica confirmed it" in found.why
