"""Ending grants: bulk expiry, early revocation, idempotence, listeners (real Redis)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from bot.devtools.scheduler_worker import RecordingListener, StaticResolver
from bot.domain.model import Actor, ActorKind, Event, Grant, Status
from bot.errors import ConcurrencyError, NotAuthorized, NotFound, TransitionError
from bot.pacing import Pacer
from bot.providers.base import GrantContext
from bot.providers.noop import NoopProvider
from bot.revocation.revoker import Revoker
from bot.store.bulk import TransitionRequest
from bot.store.grants import GrantStore
from tests.factories import POLICY_V, make_grant

REQUESTER = Actor(kind=ActorKind.REQUESTER, id="U0REQUEST")


class CountingNoop(NoopProvider):
    """The noop provider, counting revoke calls per grant."""

    def __init__(self) -> None:
        super().__init__()
        self.revoked: dict[str, int] = {}

    async def revoke(self, ctx: GrantContext) -> None:
        self.revoked[ctx.grant_id] = self.revoked.get(ctx.grant_id, 0) + 1
        await super().revoke(ctx)


class Clock:
    """A settable clock for the revoker (the store's times come from it too)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def active(store: GrantStore, *, expires_at: float, **fields: object) -> Grant:
    """Store an ACTIVE grant expiring at ``expires_at`` (in the expiries index)."""
    now = min(expires_at, time.time()) - 60
    grant = make_grant(
        status=Status.ACTIVE,
        created_at=now,
        updated_at=now,
        approved_at=now,
        activated_at=now,
        expires_at=expires_at,
        **fields,
    )
    return await store.create(grant, actor=Actor.system(), policy_version=POLICY_V)


async def events_for(store: GrantStore, grant_id: str) -> list[str]:
    return [e.data["event"] async for e in store.audit.entries() if e.data["grant_id"] == grant_id]


@pytest.fixture
def provider() -> CountingNoop:
    return CountingNoop()


@pytest.fixture
def listener() -> RecordingListener:
    return RecordingListener()


@pytest.fixture
def make_revoker(
    store: GrantStore, provider: CountingNoop, listener: RecordingListener
) -> Callable[..., Revoker]:
    def build(**options: object) -> Revoker:
        return Revoker(
            store,
            resolver=StaticResolver(default=provider),
            listener=listener,
            policy_version=lambda: POLICY_V,
            **options,  # type: ignore[arg-type]
        )

    return build


async def test_bulk_expiry_ends_every_due_grant_and_no_other(
    store: GrantStore, make_revoker: Callable[..., Revoker], provider: CountingNoop
) -> None:
    """expire_due(now) ends exactly the grants whose expiry is at or before now, each revoked
    at its target once and stored EXPIRED with ended_at >= expires_at and one EXPIRE audit
    entry; the audit chain verifies."""
    now = time.time()
    due = [await active(store, expires_at=now - i * 0.01) for i in range(250)]
    later = [await active(store, expires_at=now + 60 + i) for i in range(20)]
    revoker = make_revoker(batch_size=64, clock=lambda: now)

    assert await revoker.expire_due(now) == len(due)

    for g in await store.get_many(x.id for x in due):
        assert g.status is Status.EXPIRED
        assert g.ended_at is not None and g.expires_at is not None
        assert g.ended_at >= g.expires_at
        assert g.ended_by == "scheduler"
    assert all(g.status is Status.ACTIVE for g in await store.get_many(x.id for x in later))
    assert provider.revoked == {g.id: 1 for g in due}
    expire_entries = [e.data async for e in store.audit.entries() if e.data["event"] == "EXPIRE"]
    assert sorted(d["grant_id"] for d in expire_entries) == sorted(g.id for g in due)
    assert all(d["details"]["from"] == "ACTIVE" for d in expire_entries)
    report = await store.audit.verify()
    assert report.entries == len(due) + len(later) + len(due)
    remaining = await store.due_expiries(now + 3600, limit=10_000)
    assert sorted(remaining) == sorted(g.id for g in later)


async def test_expiry_is_never_early(
    store: GrantStore, make_revoker: Callable[..., Revoker], provider: CountingNoop
) -> None:
    """A job firing before its grant's expiry (the grant was extended) revokes nothing and
    re-arms the job at the new expiry."""
    clock = Clock(time.time())
    g = await active(store, expires_at=clock.now + 30)
    revoker = make_revoker(clock=clock)

    await revoker.run_job(g.id)

    assert (await store.get(g.id)).status is Status.ACTIVE
    assert provider.revoked == {}
    assert await store.revocation_jobs().run_time(g.id) == g.expires_at


async def test_job_running_twice_revokes_once(
    store: GrantStore, make_revoker: Callable[..., Revoker], provider: CountingNoop
) -> None:
    """The same due job run twice at once, then again, on two revokers (two replicas) stores
    one EXPIRE: the compare-and-set makes the others no-ops."""
    now = time.time()
    g = await active(store, expires_at=now - 1)
    a, b = make_revoker(), make_revoker()

    await asyncio.gather(a.run_job(g.id), b.run_job(g.id), a.run_job(g.id))
    await b.run_job(g.id)

    assert (await store.get(g.id)).status is Status.EXPIRED
    assert (await events_for(store, g.id)).count("EXPIRE") == 1
    assert 1 <= provider.revoked[g.id] <= 2  # at most once per replica; idempotent at target
    await store.audit.verify()


async def test_early_revoke_by_requester(
    store: GrantStore,
    make_revoker: Callable[..., Revoker],
    provider: CountingNoop,
    listener: RecordingListener,
) -> None:
    """The requester ends their grant early: revoked at the target, stored REVOKED with the
    reason, its job removed, the listener told; a second call changes nothing."""
    g = await active(store, expires_at=time.time() + 600)
    jobs = store.revocation_jobs()
    await jobs.put(g.id, g.expires_at or 0)
    revoker = make_revoker()

    ended = await revoker.revoke(g.id, actor=REQUESTER, reason="done early")
    again = await revoker.revoke(g.id, actor=REQUESTER, reason="again")

    assert ended.status is Status.REVOKED and ended.end_reason == "done early"
    assert again == ended
    assert provider.revoked == {g.id: 1}
    assert await jobs.run_time(g.id) is None
    assert [x.id for x in listener.ended_grants] == [g.id]
    assert (await events_for(store, g.id)).count("REVOKE") == 1


async def test_unauthorized_revoke_never_touches_the_target(
    store: GrantStore, make_revoker: Callable[..., Revoker], provider: CountingNoop
) -> None:
    """Someone else's requester actor is refused before the provider is called."""
    g = await active(store, expires_at=time.time() + 600)
    stranger = Actor(kind=ActorKind.REQUESTER, id="U0SOMEONE")

    with pytest.raises(NotAuthorized):
        await make_revoker().revoke(g.id, actor=stranger, reason=None)

    assert provider.revoked == {}
    assert (await store.get(g.id)).status is Status.ACTIVE


async def test_revoking_an_unknown_id_names_it(make_revoker: Callable[..., Revoker]) -> None:
    """An id that never existed is NotFound (not silently "already gone")."""
    with pytest.raises(NotFound, match="g-zzzzzzzz"):
        await make_revoker().revoke("g-zzzzzzzz", actor=REQUESTER, reason=None)


async def test_failing_listener_never_breaks_revocation(
    store: GrantStore, make_revoker: Callable[..., Revoker], listener: RecordingListener
) -> None:
    """A listener that raises is logged and ignored: grants still end, in bulk and singly."""
    listener.fail_with = RuntimeError("slack is down")
    now = time.time()
    due = [await active(store, expires_at=now - 1) for _ in range(3)]
    early = await active(store, expires_at=now + 600)
    revoker = make_revoker()

    assert await revoker.expire_grants([g.id for g in due]) == 3
    await revoker.drain(timeout_s=5)
    ended = await revoker.revoke(early.id, actor=REQUESTER, reason=None)

    assert ended.status is Status.REVOKED
    assert all(g.status is Status.EXPIRED for g in await store.get_many(g.id for g in due))
    assert len(listener.ended) == 4


async def test_force_close_refuses_an_active_grant(
    store: GrantStore, make_revoker: Callable[..., Revoker]
) -> None:
    """Force-close is for failing revocations; an ACTIVE grant must be revoked instead."""
    g = await active(store, expires_at=time.time() + 600)
    with pytest.raises(TransitionError, match="ACTIVE: revoke it"):
        await make_revoker().force_close(g.id, operator="ops", reason="cleanup")


async def test_revoke_racing_expiry_ends_once(
    store: GrantStore, make_revoker: Callable[..., Revoker]
) -> None:
    """A person's revoke and the expiry job racing on one grant: exactly one of REVOKE and
    EXPIRE is stored, and revoke() returns the ended grant either way."""
    now = time.time()
    grants = [await active(store, expires_at=now - 1) for _ in range(20)]
    revoker = make_revoker()

    results = await asyncio.gather(
        *(revoker.revoke(g.id, actor=REQUESTER, reason="race") for g in grants),
        revoker.expire_grants([g.id for g in grants]),
    )

    for g, returned in zip(grants, results[:-1], strict=False):
        assert isinstance(returned, Grant) and returned.terminal
        events = await events_for(store, g.id)
        assert events.count("REVOKE") + events.count("EXPIRE") == 1
    await store.audit.verify()


class GatedNoop(CountingNoop):
    """Noop whose revoke waits at a gate: lets a test commit a change mid-revocation."""

    def __init__(self) -> None:
        super().__init__()
        self.at_target = asyncio.Event()
        self.gate = asyncio.Event()

    async def revoke(self, ctx: GrantContext) -> None:
        await super().revoke(ctx)
        self.at_target.set()
        await self.gate.wait()


async def test_an_extension_committed_mid_expiry_wins_and_the_access_is_restored(
    store: GrantStore, listener: RecordingListener
) -> None:
    """The expiry revoked the grant at its target, then an extension was stored before the
    expiry could be: the extension stands (the grant stays ACTIVE with its new expiry, no
    EXPIRE is written), its job moves to the new expiry, and the listener is asked to issue
    the access again, since the target no longer has it."""
    gated = GatedNoop()
    revoker = Revoker(
        store,
        resolver=StaticResolver(default=gated),
        listener=listener,
        policy_version=lambda: POLICY_V,
    )
    grant = await active(store, expires_at=time.time() - 0.1)
    expiring = asyncio.ensure_future(revoker.run_job(grant.id))
    await asyncio.wait_for(gated.at_target.wait(), timeout=5)
    new_expiry = time.time() + 1800
    await store.transition(
        grant.id,
        Event.EXTEND,
        actor=Actor.system("extension"),
        now=time.time(),
        policy_version=POLICY_V,
        expires_at=new_expiry,
    )
    gated.gate.set()
    await asyncio.wait_for(expiring, timeout=5)
    await revoker.drain(timeout_s=5)

    stored = await store.get(grant.id)
    assert stored.status is Status.ACTIVE and stored.expires_at == new_expiry
    assert "EXPIRE" not in await events_for(store, grant.id)
    assert [g.id for g in listener.restored] == [grant.id]
    assert await revoker.jobs.run_time(grant.id) == new_expiry
    await store.audit.verify()


async def test_a_pinned_end_is_refused_when_the_grant_moved_on(store: GrantStore) -> None:
    """transition_many with expected_version writes nothing for a grant whose version moved
    and says so (ConcurrencyError); the same request unpinned would have been applied."""
    grant = await active(store, expires_at=time.time() - 1)
    await store.transition(
        grant.id,
        Event.EXTEND,
        actor=Actor.system("extension"),
        now=time.time(),
        policy_version=POLICY_V,
        expires_at=time.time() + 600,
    )
    request = TransitionRequest(
        grant_id=grant.id,
        event=Event.EXPIRE,
        actor=Actor.system("scheduler"),
        expected_version=grant.version,
    )
    [result] = await store.transition_many([request], now=time.time(), policy_version=POLICY_V)
    assert isinstance(result, ConcurrencyError)
    assert (await store.get(grant.id)).status is Status.ACTIVE


async def test_expiry_notices_give_way_to_slack_work_and_a_persons_revoke_does_not(
    store: GrantStore,
    redis_client: aioredis.Redis,
    provider: CountingNoop,
    listener: RecordingListener,
) -> None:
    """While people wait on Slack work (the pacer's foreground is busy) the grants expire at
    once but their notices wait until that work is done; a person's own revoke is told at
    once even then."""
    busy = True
    paced = GrantStore(
        redis_client, keys=store.keys, pacer=Pacer(lambda: busy, give_way_max_s=3600)
    )
    revoker = Revoker(
        paced,
        resolver=StaticResolver(default=provider),
        listener=listener,
        policy_version=lambda: POLICY_V,
    )
    now = time.time()
    due = [await active(store, expires_at=now - 1) for _ in range(3)]
    early = await active(store, expires_at=now + 600)

    assert await revoker.expire_grants([g.id for g in due]) == 3
    ended = await revoker.revoke(early.id, actor=REQUESTER, reason="done")
    told_while_busy = [g.id for g in listener.ended_grants]
    busy = False
    await revoker.drain(timeout_s=10)
    await asyncio.wait_for(_until(lambda: len(listener.ended) == 4), timeout=10)

    assert ended.status is Status.REVOKED
    assert all(g.status is Status.EXPIRED for g in await store.get_many(g.id for g in due))
    assert told_while_busy == [early.id]
    assert sorted(listener.ended) == sorted([early.id, *(g.id for g in due)])


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)
