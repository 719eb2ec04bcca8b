"""GrantStore.transition_many: the bulk commit revocation uses (real Redis)."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.domain.model import Actor, ActorKind, Event, Grant, Status
from bot.errors import NotFound, TransitionError
from bot.store.bulk import BULK_CHUNK, TransitionRequest
from bot.store.grants import GrantStore
from tests.factories import POLICY_V, make_grant

SYSTEM = Actor.system("scheduler")


async def active_grants(store: GrantStore, n: int, *, expires_at: float) -> list[Grant]:
    out = []
    for _ in range(n):
        g = make_grant(
            status=Status.ACTIVE,
            created_at=expires_at - 60,
            updated_at=expires_at - 60,
            activated_at=expires_at - 60,
            expires_at=expires_at,
        )
        out.append(await store.create(g, actor=SYSTEM, policy_version=POLICY_V))
    return out


def expire(grant_id: str) -> TransitionRequest:
    return TransitionRequest(grant_id=grant_id, event=Event.EXPIRE, actor=SYSTEM)


async def test_bulk_transition_matches_single_transitions(store: GrantStore) -> None:
    """A bulk EXPIRE stores what transition() would: status, version, indexes, and audit
    entries with the same body; the chain verifies across the chunk boundary."""
    now = time.time()
    grants = await active_grants(store, BULK_CHUNK + 7, expires_at=now - 5)

    results = await store.transition_many(
        [expire(g.id) for g in grants], now=now, policy_version=POLICY_V
    )

    assert all(r.grant.status is Status.EXPIRED for r in results if not isinstance(r, Exception))
    assert not [r for r in results if isinstance(r, Exception)]
    stored = await store.get_many(g.id for g in grants)
    assert all(g.status is Status.EXPIRED and g.version == 2 and g.ended_at == now for g in stored)
    assert await store.due_expiries(now + 10) == []
    assert len(await store.in_status(Status.EXPIRED)) == len(grants)
    entries = [e.data async for e in store.audit.entries()][len(grants) :]
    assert [d["grant_id"] for d in entries] == [g.id for g in grants]
    assert entries[0]["details"] == {"actor_kind": "system", "from": "ACTIVE", "to": "EXPIRED"}
    await store.audit.verify()


async def test_refusals_are_reported_per_grant_and_change_nothing(store: GrantStore) -> None:
    """Unknown ids and grants already ended come back as errors in place; the rest commit."""
    now = time.time()
    a, b = await active_grants(store, 2, expires_at=now - 1)
    await store.transition(b.id, Event.EXPIRE, actor=SYSTEM, now=now, policy_version=POLICY_V)

    results = await store.transition_many(
        [expire(a.id), expire(b.id), expire("g-missing2")], now=now, policy_version=POLICY_V
    )

    assert not isinstance(results[0], Exception) and results[0].grant.status is Status.EXPIRED
    assert isinstance(results[1], TransitionError)
    assert isinstance(results[2], NotFound)
    assert (await store.get(b.id)).version == 2
    await store.audit.verify()


async def test_stale_copies_are_judged_again(store: GrantStore) -> None:
    """A grant passed in ``current`` that changed since it was read is re-read and judged
    on its fresh state (here: revoked meanwhile, so the expiry is refused)."""
    now = time.time()
    (g,) = await active_grants(store, 1, expires_at=now - 1)
    requester = Actor(kind=ActorKind.REQUESTER, id=g.requester)
    await store.transition(g.id, Event.REVOKE, actor=requester, now=now, policy_version=POLICY_V)

    (result,) = await store.transition_many(
        [expire(g.id)], now=now, policy_version=POLICY_V, current={g.id: g}
    )

    assert isinstance(result, TransitionError)
    assert (await store.get(g.id)).status is Status.REVOKED
    await store.audit.verify()


async def test_bulk_commits_interleaved_with_other_writers_keep_the_chain(
    store: GrantStore,
) -> None:
    """Bulk commits racing a stream of single transitions (which move the audit head under
    them) all land, each grant once, and the hash chain verifies end to end."""
    now = time.time()
    bulk = await active_grants(store, 400, expires_at=now - 1)
    singles = await active_grants(store, 60, expires_at=now - 1)

    async def one_by_one() -> None:
        for g in singles:
            await store.transition(
                g.id, Event.EXPIRE, actor=SYSTEM, now=now, policy_version=POLICY_V
            )

    chunks = [bulk[i : i + 50] for i in range(0, len(bulk), 50)]
    outcomes = await asyncio.gather(
        one_by_one(),
        *(
            store.transition_many([expire(g.id) for g in c], now=now, policy_version=POLICY_V)
            for c in chunks
        ),
    )

    results = [r for chunk in outcomes[1:] for r in chunk]  # type: ignore[union-attr]
    assert not [r for r in results if isinstance(r, Exception)]
    stored = await store.get_many(g.id for g in bulk + singles)
    assert {g.status for g in stored} == {Status.EXPIRED}
    report = await store.audit.verify()
    assert report.entries == 2 * (len(bulk) + len(singles))


async def test_duplicate_ids_are_refused(store: GrantStore) -> None:
    """One batch may not name a grant twice (both would pass the version check)."""
    with pytest.raises(ValueError, match="distinct"):
        await store.transition_many(
            [expire("g-aaaaaaaa"), expire("g-aaaaaaaa")], now=0.0, policy_version=POLICY_V
        )


async def test_non_ascii_text_survives_the_packed_bulk_call(store: GrantStore) -> None:
    """Reasons and errors with multi-byte characters are stored and audited intact (the bulk
    call packs each grant by byte lengths)."""
    now = time.time()
    grants = await active_grants(store, 3, expires_at=now + 600)
    reason = "fini le débogage — ✓ 完了"
    requests = [
        TransitionRequest(
            grant_id=g.id,
            event=Event.REVOKE,
            actor=Actor(kind=ActorKind.REQUESTER, id=g.requester),
            reason=reason,
            details={"note": "ünïcödé"},
        )
        for g in grants
    ]

    results = await store.transition_many(requests, now=now, policy_version=POLICY_V)

    assert not [r for r in results if isinstance(r, Exception)]
    assert {g.end_reason for g in await store.get_many(g.id for g in grants)} == {reason}
    entries = [e.data async for e in store.audit.entries()][len(grants) :]
    assert {d["reason"] for d in entries} == {reason}
    assert {d["details"]["note"] for d in entries} == {"ünïcödé"}
    await store.audit.verify()
