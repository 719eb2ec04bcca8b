"""One way of hashing the audit chain: the client hashes, every appending script writes only
onto the head it was given, and a moved head makes the append go round again."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis.asyncio as aioredis

from bot.domain.model import Actor, ActorKind, Event, Status
from bot.store import chain
from bot.store.bulk import TransitionRequest
from bot.store.grants import GrantStore
from bot.store.keys import Keys
from bot.store.scripts import APPENDING, register, script_names, source
from tests.factories import POLICY_V, make_grant

SYSTEM = Actor.system("test")
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl a@b"


async def test_every_script_compiles_in_redis(redis_client: aioredis.Redis) -> None:
    """Each script in bot/store/lua, with its prelude where it appends, loads into Redis
    (SCRIPT LOAD compiles it), and the appending ones are all there."""
    names = script_names()
    assert set(names) >= APPENDING
    assert "sha256.lua" not in names  # Redis no longer hashes the chain
    for name in names:
        sha = await redis_client.script_load(source(name))
        assert len(sha) == 40, name


async def test_an_append_onto_a_stale_head_writes_nothing(
    store: GrantStore, redis_client: aioredis.Redis
) -> None:
    """append.lua given a head that is not the head answers the current one and adds no
    entry; given the right head and the client's hash it appends exactly that."""
    await store.audit.append("FIRST", actor="test", at=1.0)
    head = await redis_client.get(store.keys.audit_head)
    append = register(redis_client, "append.lua")
    stream = [store.keys.audit, store.keys.audit_head]

    assert await append(keys=stream, args=["", "{}", "0" * 64]) == ["head", head]
    assert await redis_client.xlen(store.keys.audit) == 1

    hashes, after = chain.link(head, ["{}"])
    reply = await append(keys=stream, args=[head, "{}", hashes[0]])
    assert reply[0] == "ok"
    assert await redis_client.get(store.keys.audit_head) == after
    assert (await store.audit.verify()).entries == 2


async def test_a_commit_onto_a_stale_head_changes_no_grant(
    store: GrantStore, redis_client: aioredis.Redis
) -> None:
    """commit.lua refused for a moved head leaves the grant at its version and status."""
    grant = await store.create(make_grant(), actor=SYSTEM, policy_version=POLICY_V)
    commit = register(redis_client, "commit.lua")
    keys = [store.keys.grant(grant.id), store.keys.audit, store.keys.audit_head]
    moved = grant.model_copy(update={"status": Status.CANCELLED, "version": 2})
    args: list[Any] = [1, moved.model_dump_json(), "CANCELLED", "{}", "[]", "1 stale", "0" * 64]

    reply = await commit(keys=keys, args=args)

    assert reply == ["head", await redis_client.get(store.keys.audit_head)]
    assert (await store.get(grant.id)).version == 1
    assert (await store.get(grant.id)).status is Status.PENDING
    assert (await store.audit.verify()).entries == 1


async def test_appends_of_one_process_never_refuse_each_other(
    store: GrantStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hundred concurrent writers in one process (creates, transitions, notes, an SSH key)
    take turns on the chain: each append is hashed once, none is sent onto a stale head."""
    linked: list[int] = []
    real_link = chain.link

    def counting_link(head: str, bodies: list[str]) -> tuple[list[str], str]:
        linked.append(len(bodies))
        return real_link(head, bodies)

    await store.audit.append("FIRST", actor="test", at=1.0)  # the head is known from here
    monkeypatch.setattr(chain, "link", counting_link)

    async def one(i: int) -> None:
        grant = await store.create(make_grant(), actor=SYSTEM, policy_version=POLICY_V)
        await store.transition(
            grant.id,
            Event.CANCEL,
            actor=Actor(kind=ActorKind.REQUESTER, id=grant.requester),
            now=time.time(),
            policy_version=POLICY_V,
        )
        await store.audit.append("NOTE", actor="test", at=float(i), grant_id=grant.id)

    await asyncio.gather(*(one(i) for i in range(100)), store.ssh_keys.set("U0A", KEY, at=2.0))

    assert sum(linked) == len(linked) == 301  # 3 per writer and the key: no second tries
    assert (await store.audit.verify()).entries == 302


async def test_two_processes_appending_at_once_keep_one_chain(
    redis_client: aioredis.Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two stores on one Redis (two replicas) appending flat out, through every appending
    path (create, transition, bulk, note, SSH key), refuse each other's stale heads and go
    round again: everything lands once and the chain verifies end to end."""
    a, b = GrantStore(redis_client, keys=keys), GrantStore(redis_client, keys=keys)
    now = time.time()
    tries: list[int] = []
    real_link = chain.link

    def counting_link(head: str, bodies: list[str]) -> tuple[list[str], str]:
        tries.append(len(bodies))
        return real_link(head, bodies)

    monkeypatch.setattr(chain, "link", counting_link)

    async def live(store: GrantStore, n: int) -> list[str]:
        ids = []
        for _ in range(n):
            grant = make_grant(status=Status.ACTIVE, activated_at=now - 60, expires_at=now - 1)
            ids.append((await store.create(grant, actor=SYSTEM, policy_version=POLICY_V)).id)
        return ids

    async def writer(store: GrantStore, name: str) -> None:
        bulk = await live(store, 120)
        singles = await live(store, 20)
        expire = [TransitionRequest(grant_id=gid, event=Event.EXPIRE, actor=SYSTEM) for gid in bulk]
        await asyncio.gather(
            store.transition_many(expire[:60], now=now, policy_version=POLICY_V),
            store.transition_many(expire[60:], now=now, policy_version=POLICY_V),
            *(
                store.transition(gid, Event.EXPIRE, actor=SYSTEM, now=now, policy_version=POLICY_V)
                for gid in singles
            ),
            *(store.audit.append("NOTE", actor=name, at=float(i)) for i in range(20)),
            store.ssh_keys.set(name, KEY, at=now),
        )

    await asyncio.gather(writer(a, "U0A"), writer(b, "U0B"))

    per_writer = 140 + 140 + 20 + 1  # creates, ends, notes, the key
    appends = 140 + 20 + 2 + 20 + 1  # creates, single ends, two bulk calls, notes, the key
    assert len(tries) > 2 * appends  # some were refused (a moved head) and went round again
    assert (await a.audit.verify()).entries == 2 * per_writer
    assert await redis_client.scard(keys.by_status(Status.EXPIRED)) == 280
    assert await a.ssh_keys.get("U0A") == KEY and await b.ssh_keys.get("U0B") == KEY


async def test_appends_waiting_together_go_to_redis_as_one_pipeline(
    store: GrantStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fifty appends made at once are sent in a few pipelines, not fifty round trips in
    turn, each one hashed once, and the chain verifies."""
    rounds: list[int] = []
    real_round = chain.AuditChain._round

    async def counting_round(self: chain.AuditChain, batch: list[Any]) -> list[Any]:
        rounds.append(len(batch))
        return await real_round(self, batch)

    await store.audit.append("FIRST", actor="test", at=1.0)  # the head is known from here
    monkeypatch.setattr(chain.AuditChain, "_round", counting_round)

    ids = await asyncio.gather(
        *(store.audit.append("NOTE", actor="test", at=float(i)) for i in range(50))
    )

    assert len(set(ids)) == 50
    assert sum(rounds) == 50  # none went round again
    assert len(rounds) < 50 and max(rounds) > 1
    assert (await store.audit.verify()).entries == 51


async def test_a_refusal_in_a_pipeline_lets_the_appends_behind_it_land(
    store: GrantStore, redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit refused for its own reason (a stale grant version) writes nothing; the
    appends sent behind it in the same pipeline were hashed onto its entry, find the head
    not moved, go round again and land."""
    grant = await store.create(make_grant(), actor=SYSTEM, policy_version=POLICY_V)
    commit = register(redis_client, "commit.lua")
    append = register(redis_client, "append.lua")
    stale = grant.model_copy(update={"status": Status.CANCELLED, "version": 7})
    grant_keys = [store.keys.grant(grant.id), store.keys.audit, store.keys.audit_head]
    stream = [store.keys.audit, store.keys.audit_head]

    def refused(head: str, hashes: list[str]) -> chain.ScriptCall:
        args = [6, stale.model_dump_json(), "CANCELLED", "{}", "[]", head, hashes[0]]
        return chain.ScriptCall(commit, grant_keys, args)

    def note(body: str) -> chain.Attempt:
        def attempt(head: str, hashes: list[str]) -> chain.ScriptCall:
            return chain.ScriptCall(append, stream, [head, body, hashes[0]])

        return attempt

    linked: list[int] = []
    real_link = chain.link

    def counting_link(head: str, bodies: list[str]) -> tuple[list[str], str]:
        linked.append(len(bodies))
        return real_link(head, bodies)

    monkeypatch.setattr(chain, "link", counting_link)
    replies = await asyncio.gather(
        store.chain.extend(['{"n":0}'], refused),
        store.chain.extend(['{"n":1}'], note('{"n":1}')),
        store.chain.extend(['{"n":2}'], note('{"n":2}')),
    )

    assert replies[0] == ["conflict", "1"]
    assert [r[0] for r in replies[1:]] == ["ok", "ok"]
    assert len(linked) == 5  # sent together once, the two notes again after the refusal
    assert (await store.get(grant.id)).version == 1
    assert (await store.audit.verify()).entries == 3
