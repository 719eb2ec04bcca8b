"""Grant state in a real Redis: atomic compare-and-set transitions, indexes, ids."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from bot.domain.ids import is_grant_id
from bot.domain.model import Actor, ActorKind, Event, Status
from bot.errors import NotAuthorized, NotFound, TransitionError
from bot.store.bulk import TransitionRequest
from bot.store.grants import GrantStore
from tests.factories import NOW, POLICY_V, make_grant

REQ = Actor(kind=ActorKind.REQUESTER, id="U0REQUEST")


def approver(n: int) -> Actor:
    return Actor(kind=ActorKind.APPROVER, id=f"U0APPR{n:03d}")


async def test_create_then_get_round_trips(store: GrantStore) -> None:
    """A created request reads back identical, at version 1, with one audit entry."""
    g = await store.create(make_grant(), actor=REQ, policy_version=POLICY_V)
    back = await store.get(g.id)
    assert back == g and back.version == 1
    report = await store.audit.verify()
    assert report.entries == 1


async def test_get_unknown_names_the_id(store: GrantStore) -> None:
    """Reading an id that does not exist raises NotFound naming it."""
    with pytest.raises(NotFound, match="g-zzzzzzzz"):
        await store.get("g-zzzzzzzz")


async def test_hundred_concurrent_approvals_give_exactly_one_approved(store: GrantStore) -> None:
    """100 approvers clicking at once on a 1-approval request: exactly one APPROVE succeeds,
    the other 99 are told it was already approved, and the audit has exactly one approval."""
    g = await store.create(make_grant(), actor=REQ, policy_version=POLICY_V)

    async def click(n: int) -> str:
        try:
            await store.transition(
                g.id, Event.APPROVE, actor=approver(n), now=NOW + 1, policy_version=POLICY_V
            )
        except TransitionError:
            return "refused"
        return "won"

    results = await asyncio.gather(*(click(n) for n in range(100)))
    assert results.count("won") == 1
    assert results.count("refused") == 99
    final = await store.get(g.id)
    assert final.status is Status.APPROVED
    assert len(final.approvals) == 1
    events = [e.data["event"] async for e in store.audit.entries()]
    assert events == ["REQUEST", "APPROVE"]
    await store.audit.verify()


async def test_concurrent_n_of_m_counts_distinct_approvers(store: GrantStore) -> None:
    """With approvals_required=3 and 20 concurrent distinct approvers, the request is approved
    with exactly 3 approvals recorded; the rest are refused."""
    g = await store.create(make_grant(approvals_required=3), actor=REQ, policy_version=POLICY_V)
    outcomes = await asyncio.gather(
        *(
            store.transition(
                g.id, Event.APPROVE, actor=approver(n), now=NOW, policy_version=POLICY_V
            )
            for n in range(20)
        ),
        return_exceptions=True,
    )
    ok = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(ok) == 3
    assert all(isinstance(o, TransitionError) for o in outcomes if isinstance(o, BaseException))
    final = await store.get(g.id)
    assert final.status is Status.APPROVED and len(set(final.approvers)) == 3


async def test_refused_transition_changes_nothing(store: GrantStore) -> None:
    """A self-approval is refused and leaves the grant, its version and the audit untouched."""
    g = await store.create(make_grant(), actor=REQ, policy_version=POLICY_V)
    with pytest.raises(NotAuthorized):
        await store.transition(
            g.id,
            Event.APPROVE,
            actor=Actor(kind=ActorKind.APPROVER, id="U0REQUEST"),
            now=NOW,
            policy_version=POLICY_V,
        )
    assert await store.get(g.id) == g
    assert (await store.audit.verify()).entries == 1


async def test_indexes_follow_the_lifecycle(
    store: GrantStore, redis_client: aioredis.Redis
) -> None:
    """Status sets, the user's open set, the pending deadlines and the expiries index move
    with each transition."""
    k = store.keys
    r = redis_client
    g = await store.create(make_grant(), actor=REQ, policy_version=POLICY_V)
    assert await r.sismember(k.by_status(Status.PENDING), g.id)
    assert await r.zscore(k.pending_deadlines, g.id) == NOW + 3600
    assert await r.sismember(k.user_open("U0REQUEST"), g.id)

    await store.transition(
        g.id, Event.APPROVE, actor=approver(1), now=NOW + 1, policy_version=POLICY_V
    )
    assert await r.zscore(k.pending_deadlines, g.id) is None
    out = await store.transition(
        g.id, Event.ISSUE, actor=Actor.system(), now=NOW + 2, policy_version=POLICY_V
    )
    assert out.grant.expires_at == NOW + 2 + 1800
    assert await r.zscore(k.expiries, g.id) == NOW + 2 + 1800
    assert await store.due_expiries(NOW + 1801) == []
    assert await store.due_expiries(NOW + 1802) == [g.id]

    await store.transition(
        g.id, Event.EXPIRE, actor=Actor.system(), now=NOW + 1802, policy_version=POLICY_V
    )
    assert await r.zscore(k.expiries, g.id) is None
    assert not await r.sismember(k.user_open("U0REQUEST"), g.id)
    assert await r.sismember(k.by_status(Status.EXPIRED), g.id)
    assert not await r.sismember(k.by_status(Status.ACTIVE), g.id)
    assert [x.id for x in await store.list_grants(user="U0REQUEST")] == [g.id]
    assert [x.id for x in await store.list_grants(status=Status.EXPIRED)] == [g.id]
    assert await store.list_grants(status=Status.ACTIVE) == []


async def test_live_counts_by_resource_follow_grants_in_and_out_of_live_states(
    store: GrantStore,
) -> None:
    """The standing-privilege count per resource rises when a grant is issued, stays through
    REVOKE_FAILED, and falls when it ends, whether one at a time or in a bulk commit."""
    ids = {}
    for resource in ("orders-db", "orders-db", "cache"):
        g = await store.create(make_grant(resource=resource), actor=REQ, policy_version=POLICY_V)
        await store.transition(
            g.id, Event.APPROVE, actor=approver(1), now=NOW + 1, policy_version=POLICY_V
        )
        assert await store.live_by_resource() == ids_count(ids)
        await store.transition(
            g.id, Event.ISSUE, actor=Actor.system(), now=NOW + 2, policy_version=POLICY_V
        )
        ids[g.id] = resource
    assert await store.live_by_resource() == {"orders-db": 2, "cache": 1}

    first, second, third = ids
    await store.transition(
        first, Event.REVOKE_FAIL, actor=Actor.system(), now=NOW + 3, policy_version=POLICY_V
    )
    assert await store.live_by_resource() == {"orders-db": 2, "cache": 1}
    await store.transition(
        first, Event.EXPIRE, actor=Actor.system(), now=NOW + 9999, policy_version=POLICY_V
    )
    assert await store.live_by_resource() == {"orders-db": 1, "cache": 1}
    results = await store.transition_many(
        [
            TransitionRequest(grant_id=gid, event=Event.EXPIRE, actor=Actor.system())
            for gid in (second, third)
        ],
        now=NOW + 9999,
        policy_version=POLICY_V,
    )
    assert all(not isinstance(r, Exception) for r in results)
    assert await store.live_by_resource() == {}


def ids_count(ids: dict[str, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for resource in ids.values():
        counts[resource] = counts.get(resource, 0) + 1
    return counts


async def test_ids_are_short_typeable_and_unique_under_concurrency(store: GrantStore) -> None:
    """500 concurrent creates produce 500 distinct well-formed ids."""
    grants = await asyncio.gather(
        *(store.create(make_grant(), actor=REQ, policy_version=POLICY_V) for _ in range(500))
    )
    ids = {g.id for g in grants}
    assert len(ids) == 500
    assert all(is_grant_id(i) and len(i) == 10 for i in ids)


async def test_colliding_id_is_regenerated(store: GrantStore) -> None:
    """Creating with an id that already exists stores a new id rather than overwriting."""
    first = await store.create(make_grant(), actor=REQ, policy_version=POLICY_V)
    second = await store.create(
        make_grant(id=first.id, requester="U0OTHER"), actor=REQ, policy_version=POLICY_V
    )
    assert second.id != first.id
    assert (await store.get(first.id)).requester == "U0REQUEST"


async def test_every_key_is_under_one_hash_tag(
    store: GrantStore, redis_client: aioredis.Redis
) -> None:
    """All keys written by a lifecycle share the {prefix} hash tag (one cluster slot)."""
    g = await store.create(make_grant(), actor=REQ, policy_version=POLICY_V)
    await store.transition(g.id, Event.APPROVE, actor=approver(1), now=NOW, policy_version=POLICY_V)
    tag = "{" + store.keys.prefix + "}"
    written = [key async for key in redis_client.scan_iter(match=tag + "*")]
    assert len(written) >= 6
    assert all(key.startswith(tag + ":") for key in written)
