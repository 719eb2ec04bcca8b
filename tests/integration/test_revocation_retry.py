"""Failed revocations: REVOKE_FAILED, backoff retries against a real Redis ACL target that
stops answering and comes back, giving up loudly after the window, force-close."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio

from bot import metrics
from bot.devtools.redis_server import RedisServer
from bot.devtools.scheduler_worker import ACL_ROLE_SETTINGS, RecordingListener, StaticResolver
from bot.domain.model import Actor, ActorKind, Grant, Status
from bot.providers.naming import login_name
from bot.providers.redis_acl import RedisACLProvider, RedisACLSettings
from bot.revocation.failures import ABANDONED_EVENT
from bot.revocation.retry import RetryPolicy
from bot.revocation.revoker import Revoker
from bot.scheduling.scheduler import RevocationScheduler
from bot.store.grants import GrantStore
from tests.factories import POLICY_V, make_grant
from tests.integration.support import wait_for

LEASE_TTL_S = 1.0
BATCH_GRANTS = 40


@pytest.fixture
def target() -> Iterator[RedisServer]:
    """A real Redis whose ACL users are the credentials (resumed if a test paused it)."""
    server = RedisServer(appendonly=False).start()
    yield server
    if server.proc is not None:
        os.kill(server.proc.pid, signal.SIGCONT)
    server.stop()


@pytest.fixture
async def acl(target: RedisServer) -> AsyncIterator[RedisACLProvider]:
    provider = RedisACLProvider(RedisACLSettings.model_validate({"url": target.url}))
    yield provider
    await provider.aclose()


def pause(server: RedisServer) -> None:
    """SIGSTOP: the target accepts connections but answers nothing (a hung maintenance)."""
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGSTOP)


def resume(server: RedisServer) -> None:
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGCONT)


async def issued(store: GrantStore, acl: RedisACLProvider, *, expires_at: float) -> Grant:
    """An ACTIVE grant whose ACL user really exists at the target."""
    now = time.time()
    grant = make_grant(
        status=Status.ACTIVE,
        created_at=now,
        updated_at=now,
        activated_at=now,
        expires_at=expires_at,
        resource="cache",
    )
    resolver = StaticResolver(default=acl, role_settings=ACL_ROLE_SETTINGS)
    await acl.issue(resolver.context(grant), now=expires_at - 60)
    return await store.create(grant, actor=Actor.system(), policy_version=POLICY_V)


async def user_exists(acl: RedisACLProvider, grant_id: str) -> bool:
    return await acl.client.execute_command("ACL", "GETUSER", login_name(grant_id)) is not None


async def audit_of(store: GrantStore, grant_id: str) -> list[dict[str, object]]:
    return [e.data async for e in store.audit.entries() if e.data["grant_id"] == grant_id]


@pytest.fixture
async def running(
    store: GrantStore, redis_url: str, acl: RedisACLProvider
) -> AsyncIterator[tuple[Revoker, RevocationScheduler, RecordingListener]]:
    """A leading scheduler whose revoker retries every 0.2-0.4 s for up to 2 s."""
    listener = RecordingListener()
    revoker = Revoker(
        store,
        resolver=StaticResolver(default=acl, role_settings=ACL_ROLE_SETTINGS),
        listener=listener,
        policy_version=lambda: POLICY_V,
        retry=RetryPolicy(base_s=0.2, cap_s=0.4, window_s=2.0),
        revoke_timeout_s=0.5,
    )
    scheduler = RevocationScheduler(
        store, revoker, redis=redis_url, replica_id="retry-test", lease_ttl_s=LEASE_TTL_S
    )
    await scheduler.start()
    await wait_for(lambda: scheduler.is_leader, timeout_s=5, what="the scheduler to lead")
    yield revoker, scheduler, listener
    await scheduler.stop()
    await revoker.aclose()


def failures(resource: str) -> float:
    return metrics.REVOKE_FAILURES.labels(resource=resource)._value.get()


async def test_revocation_retries_with_backoff_until_the_target_is_back(
    store: GrantStore,
    acl: RedisACLProvider,
    target: RedisServer,
    running: tuple[Revoker, RevocationScheduler, RecordingListener],
) -> None:
    """With the target hung, an expiring grant goes REVOKE_FAILED (audited each attempt,
    counted, the listener told) and is retried with growing, jittered waits; once the target
    answers again the next retry deletes the ACL user and the grant ends EXPIRED."""
    revoker, scheduler, listener = running
    grant = await issued(store, acl, expires_at=time.time() + 0.3)
    before = failures("cache")
    pause(target)
    await scheduler.schedule(grant.id, grant.expires_at or 0)

    async def attempts(n: int) -> bool:
        return (await store.get(grant.id)).revoke_attempts >= n

    await wait_for(lambda: attempts(2), timeout_s=10, what="two failed attempts")
    failing = await store.get(grant.id)
    assert failing.status is Status.REVOKE_FAILED
    assert "timed out" in (failing.last_error or "")
    # The listener hears after the store commit, off the revocation path: wait for it.
    await wait_for(lambda: len(listener.failed) >= 2, timeout_s=5, what="two notices")
    assert [g.id for g in listener.failed][:2] == [grant.id, grant.id]
    assert failures("cache") - before >= 2
    fails = [d for d in await audit_of(store, grant.id) if d["event"] == "REVOKE_FAIL"]
    first = fails[0]
    wait_s = first["details"]["next_attempt_at"] - first["at"]  # type: ignore[index, operator]
    assert 0.1 <= wait_s <= 0.2  # base 0.2 s with equal jitter: between half and all of it
    assert await revoker.jobs.run_time(grant.id) is not None  # a retry is scheduled

    resume(target)

    async def ended() -> bool:
        return (await store.get(grant.id)).status is Status.EXPIRED

    await wait_for(ended, timeout_s=10, what="the retry to succeed")
    assert not await user_exists(acl, grant.id)
    assert await store.retry_states.get_many([grant.id]) == {}
    assert await revoker.jobs.run_time(grant.id) is None
    events = [d["event"] for d in await audit_of(store, grant.id)]
    assert events[0] == "REQUEST" and events[-1] == "EXPIRE"
    assert set(events[1:-1]) == {"REVOKE_FAIL"}
    await store.audit.verify()


async def test_early_revoke_that_fails_is_retried_and_ends_revoked(
    store: GrantStore,
    acl: RedisACLProvider,
    target: RedisServer,
    running: tuple[Revoker, RevocationScheduler, RecordingListener],
) -> None:
    """A requester's revoke while the target is hung returns the grant REVOKE_FAILED (no
    exception); the retry later ends it REVOKED, attributed to the requester's request."""
    revoker, _, _ = running
    grant = await issued(store, acl, expires_at=time.time() + 600)
    pause(target)

    result = await revoker.revoke(
        grant.id, actor=Actor(kind=ActorKind.REQUESTER, id=grant.requester), reason="done"
    )
    assert result.status is Status.REVOKE_FAILED
    resume(target)

    async def ended() -> bool:
        return (await store.get(grant.id)).status is Status.REVOKED

    await wait_for(ended, timeout_s=10, what="the retried revoke")
    final = await store.get(grant.id)
    assert final.end_reason == "done"
    last = (await audit_of(store, grant.id))[-1]
    assert last["event"] == "REVOKE"
    assert last["details"]["requested_by"] == grant.requester  # type: ignore[index]
    assert not await user_exists(acl, grant.id)


async def test_after_the_window_it_gives_up_loudly_and_an_operator_force_closes(
    store: GrantStore,
    acl: RedisACLProvider,
    target: RedisServer,
    running: tuple[Revoker, RevocationScheduler, RecordingListener],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A target down for longer than the retry window: the grant stays REVOKE_FAILED with a
    message asking for a force-close, no retry remains, the audit log records the give-up,
    the reconciler reports it every sweep; force-close ends it REVOKED, noting the target."""
    revoker, scheduler, listener = running
    grant = await issued(store, acl, expires_at=time.time() + 0.2)
    abandoned_before = metrics.REVOKE_ABANDONED.labels(resource="cache")._value.get()
    target.stop(keep_data=True)  # refused connections: each attempt fails at once
    await scheduler.schedule(grant.id, grant.expires_at or 0)

    async def gave_up() -> bool:
        return grant.id in await store.retry_states.abandoned_ids()

    await wait_for(gave_up, timeout_s=15, what="the retry window to pass")
    stuck = await store.get(grant.id)
    assert stuck.status is Status.REVOKE_FAILED
    assert "gave up" in (stuck.last_error or "") and "--force" in (stuck.last_error or "")
    assert await revoker.jobs.run_time(grant.id) is None
    assert (await audit_of(store, grant.id))[-1]["event"] == ABANDONED_EVENT
    assert metrics.REVOKE_ABANDONED.labels(resource="cache")._value.get() == abandoned_before + 1
    assert any("GAVE UP" in r.getMessage() for r in caplog.records)
    await wait_for(  # the listener hears off the revocation path, after the commit
        lambda: bool(listener.failed) and listener.failed[-1].last_error == stuck.last_error,
        timeout_s=5,
        what="the give-up notice",
    )
    report = await scheduler.reconcile()
    assert grant.id in report.abandoned and grant.id not in report.retries_restored
    assert metrics.REVOKE_FAILED_ABANDONED._value.get() >= 1

    closed = await revoker.force_close(grant.id, operator="ops-alice", reason="user deleted")

    assert closed.status is Status.REVOKED and closed.ended_by == "ops-alice"
    entry = (await audit_of(store, grant.id))[-1]
    assert entry["event"] == "FORCE_CLOSE"
    assert "unreachable" in entry["details"]["final_revoke"]  # type: ignore[index]
    assert await store.retry_states.abandoned_ids() == []
    assert listener.ended_grants[-1].id == grant.id
    await store.audit.verify()


async def acl_call_counts(target: RedisServer) -> dict[str, int]:
    """Calls per ACL subcommand the target has served since its stats were reset."""
    client = redis.asyncio.Redis.from_url(target.url, decode_responses=True)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return {name: int(row["calls"]) for name, row in stats.items() if name.startswith("cmdstat_")}


async def test_a_batch_of_expiries_is_revoked_with_a_few_bulk_deletes(
    store: GrantStore,
    acl: RedisACLProvider,
    target: RedisServer,
    running: tuple[Revoker, RevocationScheduler, RecordingListener],
) -> None:
    """Grants expiring together are revoked in bulk: every one ends EXPIRED with its audit
    entry and its ACL user is gone, for far fewer ACL DELUSER calls than grants and no
    per-grant look-ups at the target."""
    _, scheduler, listener = running
    expires_at = time.time() + 0.5
    grants = [await issued(store, acl, expires_at=expires_at) for _ in range(BATCH_GRANTS)]
    await acl.client.execute_command("CONFIG", "RESETSTAT")
    await scheduler.schedule_many([(g.id, expires_at) for g in grants])

    async def all_ended() -> bool:
        return all(g.status is Status.EXPIRED for g in await store.get_many(g.id for g in grants))

    await wait_for(all_ended, timeout_s=10, what="the batch to end")
    assert not [g.id for g in grants if await user_exists(acl, g.id)]
    calls = await acl_call_counts(target)
    assert 1 <= calls.get("cmdstat_acl|deluser", 0) < BATCH_GRANTS // 4
    assert "cmdstat_client|kill" not in calls and "cmdstat_acl|setuser" not in calls
    for grant in grants:
        events = [d["event"] for d in await audit_of(store, grant.id)]
        assert events == ["REQUEST", "EXPIRE"]
    await wait_for(
        lambda: {g.id for g in grants} <= set(listener.ended),
        timeout_s=5,
        what="every end notice",
    )
    await store.audit.verify()


async def test_a_batch_at_a_hung_target_fails_each_grant_and_retries_it(
    store: GrantStore,
    acl: RedisACLProvider,
    target: RedisServer,
    running: tuple[Revoker, RevocationScheduler, RecordingListener],
) -> None:
    """A bulk revocation that times out leaves every grant of the batch REVOKE_FAILED, each
    with its own REVOKE_FAIL entry, the listener told and a retry scheduled; once the target
    answers, the retries delete every user and each grant ends EXPIRED."""
    _, scheduler, listener = running
    expires_at = time.time() + 0.3
    grants = [await issued(store, acl, expires_at=expires_at) for _ in range(5)]
    ids = [g.id for g in grants]
    pause(target)
    await scheduler.schedule_many([(gid, expires_at) for gid in ids])

    async def all_failed() -> bool:
        return all(g.revoke_attempts >= 1 for g in await store.get_many(ids))

    await wait_for(all_failed, timeout_s=10, what="every grant of the batch to fail")
    for grant in await store.get_many(ids):
        assert grant.status is Status.REVOKE_FAILED
        assert "timed out" in (grant.last_error or "")
    await wait_for(
        lambda: set(ids) <= {g.id for g in listener.failed},
        timeout_s=5,
        what="every failure notice",
    )
    resume(target)

    async def all_ended() -> bool:
        return all(g.status is Status.EXPIRED for g in await store.get_many(ids))

    await wait_for(all_ended, timeout_s=10, what="the retries to succeed")
    assert not [gid for gid in ids if await user_exists(acl, gid)]
    assert await store.retry_states.get_many(ids) == {}
    for gid in ids:
        events = [d["event"] for d in await audit_of(store, gid)]
        assert events[0] == "REQUEST" and events[-1] == "EXPIRE"
        assert set(events[1:-1]) == {"REVOKE_FAIL"}
    await store.audit.verify()


async def test_a_grant_without_a_provider_fails_alone_in_its_batch(
    store: GrantStore, acl: RedisACLProvider
) -> None:
    """In one batch, a grant whose resource has no provider goes REVOKE_FAILED (its error
    says why, without the exception's text) while the grants at the ACL target end."""
    expires_at = time.time() - 1
    good = [await issued(store, acl, expires_at=expires_at) for _ in range(3)]
    now = time.time()
    orphan = await store.create(
        make_grant(
            status=Status.ACTIVE,
            created_at=now - 60,
            updated_at=now - 60,
            activated_at=now - 60,
            expires_at=expires_at,
            resource="gone-db",
        ),
        actor=Actor.system(),
        policy_version=POLICY_V,
    )
    listener = RecordingListener()
    revoker = Revoker(
        store,
        resolver=StaticResolver({"cache": acl}, role_settings=ACL_ROLE_SETTINGS),
        listener=listener,
        policy_version=lambda: POLICY_V,
    )
    try:
        ended = await revoker.expire_grants([g.id for g in good] + [orphan.id])
    finally:
        await revoker.aclose()
    assert ended == len(good)
    assert all(g.status is Status.EXPIRED for g in await store.get_many(g.id for g in good))
    assert not [g.id for g in good if await user_exists(acl, g.id)]
    failed = await store.get(orphan.id)
    assert failed.status is Status.REVOKE_FAILED
    assert failed.last_error == "unexpected LookupError from the gone-db provider"
    await store.audit.verify()
