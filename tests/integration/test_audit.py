"""The audit stream is a verifiable hash chain; every kind of tampering is named."""

from __future__ import annotations

import itertools

import pytest
import redis.asyncio as aioredis

from bot.domain.model import Actor, ActorKind, Event
from bot.errors import AuditChainError
from bot.store.grants import GrantStore
from tests.factories import NOW, POLICY_V, make_grant


async def _history(store: GrantStore, n: int = 3) -> None:
    """n requests, each approved and issued: 3n chained entries."""
    for i in range(n):
        g = await store.create(
            make_grant(),
            actor=Actor(kind=ActorKind.REQUESTER, id="U0REQUEST"),
            policy_version=POLICY_V,
        )
        await store.transition(
            g.id,
            Event.APPROVE,
            actor=Actor(kind=ActorKind.APPROVER, id=f"U0A{i}"),
            now=NOW + i,
            policy_version=POLICY_V,
        )
        await store.transition(
            g.id, Event.ISSUE, actor=Actor.system(), now=NOW + i, policy_version=POLICY_V
        )


async def _rewrite(
    r: aioredis.Redis, stream: str, entries: list[tuple[str, dict[str, str]]]
) -> None:
    """What an attacker with Redis access does: rebuild the stream with chosen contents."""
    await r.delete(stream)
    for stream_id, fields in entries:
        await r.xadd(stream, fields, id=stream_id)


async def test_untouched_chain_verifies_and_records_decision_context(store: GrantStore) -> None:
    """A real history verifies; each entry carries time, event, id, actor, reason, policy
    version and details."""
    await _history(store)
    report = await store.audit.verify()
    assert report.entries == 9
    entries = [e async for e in store.audit.entries()]
    approve = entries[1].data
    assert approve["event"] == "APPROVE" and approve["actor"] == "U0A0"
    assert approve["policy_version"] == POLICY_V
    assert approve["details"]["from"] == "PENDING" and approve["details"]["to"] == "APPROVED"
    assert entries[0].prev == "0" * 64
    assert all(b.prev == a.hash for a, b in itertools.pairwise(entries))


async def test_altered_entry_is_named(store: GrantStore, redis_client: aioredis.Redis) -> None:
    """Changing the approver in entry 5's body makes verify name entry 5 as altered."""
    await _history(store)
    r = redis_client
    raw = await r.xrange(store.keys.audit)
    fields = dict(raw[4][1])
    assert "U0A1" in fields["body"]
    fields["body"] = fields["body"].replace("U0A1", "U0EVIL")
    raw[4] = (raw[4][0], fields)
    await _rewrite(r, store.keys.audit, raw)
    with pytest.raises(AuditChainError, match=rf"entry {raw[4][0]} \(seq 5\): hash does not match"):
        await store.audit.verify()


async def test_rehashed_alteration_breaks_the_next_link(
    store: GrantStore, redis_client: aioredis.Redis
) -> None:
    """An attacker who also recomputes the altered entry's hash is caught at the next entry."""
    from bot.store.chain import chain_hash

    await _history(store)
    r = redis_client
    raw = await r.xrange(store.keys.audit)
    fields = dict(raw[4][1])
    fields["body"] = fields["body"].replace("U0A1", "U0EVIL")
    fields["hash"] = chain_hash(fields["prev"], int(fields["seq"]), fields["body"])
    raw[4] = (raw[4][0], fields)
    await _rewrite(r, store.keys.audit, raw)
    with pytest.raises(AuditChainError, match=rf"entry {raw[5][0]} \(seq 6\): does not link"):
        await store.audit.verify()


async def test_deleted_entry_is_named(store: GrantStore, redis_client: aioredis.Redis) -> None:
    """XDEL of a middle entry makes verify name the entry after the gap."""
    await _history(store)
    raw = await redis_client.xrange(store.keys.audit)
    await redis_client.xdel(store.keys.audit, raw[2][0])
    with pytest.raises(AuditChainError, match=rf"entry {raw[3][0]} \(seq 4\): expected seq 3"):
        await store.audit.verify()


async def test_reordered_entries_are_named(store: GrantStore, redis_client: aioredis.Redis) -> None:
    """Swapping the contents of entries 5 and 6 makes verify name the first out of place."""
    await _history(store)
    raw = await redis_client.xrange(store.keys.audit)
    swapped = list(raw)
    swapped[4], swapped[5] = (raw[4][0], raw[5][1]), (raw[5][0], raw[4][1])
    await _rewrite(redis_client, store.keys.audit, swapped)
    with pytest.raises(AuditChainError, match=rf"entry {raw[4][0]} \(seq 6\): expected seq 5"):
        await store.audit.verify()


async def test_deleted_tail_is_caught_by_the_head(
    store: GrantStore, redis_client: aioredis.Redis
) -> None:
    """Deleting the newest entry leaves a self-consistent chain, but the head disagrees."""
    await _history(store)
    raw = await redis_client.xrange(store.keys.audit)
    await redis_client.xdel(store.keys.audit, raw[-1][0])
    with pytest.raises(AuditChainError, match="ends at seq 8 but the head records seq 9"):
        await store.audit.verify()


async def test_plain_append_joins_the_chain(store: GrantStore) -> None:
    """A non-transition entry (a policy reload) is chained like the rest."""
    await _history(store, n=1)
    await store.audit.append(
        "POLICY_RELOAD",
        actor="grantbot",
        at=NOW,
        policy_version="b" * 64,
        details={"from": POLICY_V},
    )
    report = await store.audit.verify()
    assert report.entries == 4
    last = [e async for e in store.audit.entries()][-1].data
    assert last["event"] == "POLICY_RELOAD" and last["details"] == {"from": POLICY_V}


async def test_since_filters_by_time(store: GrantStore) -> None:
    """entries(since_ms=...) starts at stream ids at or after that millisecond."""
    await _history(store, n=2)
    all_entries = [e async for e in store.audit.entries()]
    cut = int(all_entries[3].id.split("-")[0])
    later = [e async for e in store.audit.entries(since_ms=cut)]
    assert later and later[0].seq <= 4 and later[-1].seq == 6
