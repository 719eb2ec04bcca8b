"""What the store keeps for the Slack side: message refs per grant and tokens seen once."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from bot.devtools.redis_server import free_port
from bot.errors import StoreUnavailable
from bot.log_throttle import Outage
from bot.store.connection import connect
from bot.store.dedupe import ONCE_TTL_S, Dedupe
from bot.store.keys import Keys
from bot.store.message_refs import REFS_TTL_S, MessageRefs


@pytest.fixture
async def unreachable() -> AsyncIterator[aioredis.Redis]:
    """A client for a port nothing listens on."""
    client = connect(f"redis://127.0.0.1:{free_port()}/0", timeout_s=1.0)
    yield client
    await client.aclose()


async def test_message_refs_round_trip_with_their_kinds(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    """Refs come back with their kinds; remembering again re-kinds one; forgetting removes
    one; each write keeps the hash alive for the refs' TTL, under the key it always had."""
    refs = MessageRefs(redis_client, keys=keys)
    await refs.remember("g-aaaaaa", {("D0BOB", "1.1"): "approver", ("C0ACCESS", "2.2"): "approver"})
    await refs.remember("g-aaaaaa", {("D0ALICE", "3.3"): "credential"})
    assert await refs.read("g-aaaaaa") == {
        ("D0BOB", "1.1"): "approver",
        ("C0ACCESS", "2.2"): "approver",
        ("D0ALICE", "3.3"): "credential",
    }
    await refs.remember("g-aaaaaa", {("D0ALICE", "3.3"): "closed"})
    await refs.forget("g-aaaaaa", ("D0BOB", "1.1"))
    assert await refs.read("g-aaaaaa") == {
        ("C0ACCESS", "2.2"): "approver",
        ("D0ALICE", "3.3"): "closed",
    }
    key = keys.slack_messages("g-aaaaaa")
    assert await redis_client.hgetall(key) == {"C0ACCESS 2.2": "approver", "D0ALICE 3.3": "closed"}
    assert REFS_TTL_S - 5 < await redis_client.ttl(key) <= REFS_TTL_S
    assert await refs.read("g-bbbbbb") == {}


async def test_remembering_nothing_writes_nothing(redis_client: aioredis.Redis, keys: Keys) -> None:
    """An empty set of refs leaves no key behind (not even one without a TTL)."""
    await MessageRefs(redis_client, keys=keys).remember("g-aaaaaa", {})
    assert await redis_client.exists(keys.slack_messages("g-aaaaaa")) == 0


async def test_message_refs_say_store_unavailable_when_redis_is_down(
    unreachable: aioredis.Redis, keys: Keys
) -> None:
    """Every call raises grantbot's StoreUnavailable, never a redis-py error."""
    refs = MessageRefs(unreachable, keys=keys)
    with pytest.raises(StoreUnavailable):
        await refs.read("g-aaaaaa")
    with pytest.raises(StoreUnavailable):
        await refs.remember("g-aaaaaa", {("D0BOB", "1.1"): "approver"})
    with pytest.raises(StoreUnavailable):
        await refs.forget("g-aaaaaa", ("D0BOB", "1.1"))


async def test_a_token_is_new_once(redis_client: aioredis.Redis, keys: Keys) -> None:
    """The first claim of a token wins, a repeat does not and is counted; the claim lapses."""
    dedupe = Dedupe(redis_client, keys=keys)
    assert await dedupe.first_time("event:Ev1")
    assert not await dedupe.first_time("event:Ev1")
    assert await dedupe.first_time("event:Ev2")
    assert dedupe.duplicates == 1
    assert ONCE_TTL_S - 5 < await redis_client.ttl(keys.once("event:Ev1")) <= ONCE_TTL_S


async def test_dedupe_fails_open_and_tells_the_outage_once(
    unreachable: aioredis.Redis, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis down: every token counts as new (its work is safe to repeat), and the outage
    is one log line, not one per token."""
    outage = Outage(logging.getLogger("test.dedupe"), "Redis")
    dedupe = Dedupe(unreachable, keys=keys, redis_outage=outage)
    with caplog.at_level(logging.ERROR, logger="test.dedupe"):
        assert await dedupe.first_time("event:Ev1")
        assert await dedupe.first_time("event:Ev1")
    assert outage.down and outage.failures == 2
    [line] = [r.getMessage() for r in caplog.records if r.name == "test.dedupe"]
    assert line.startswith("Redis unavailable")
    assert dedupe.duplicates == 0
