"""A loop of Redis commands stops when asked, however the cancellation lands (redis-py 5.3 with
hiredis swallows one that arrives inside its ``asyncio.timeout(0)``: see bot/aio.py)."""

from __future__ import annotations

import asyncio
import random

import redis.asyncio as aioredis

from bot.aio import cancel_and_wait
from bot.store.keys import Keys


async def test_every_redis_loop_stops_wherever_the_cancellation_lands(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    """200 loops of SMEMBERS, each cancelled at a random moment, all end (a single cancel
    left some running forever before cancel_and_wait)."""
    stopped = 0
    for _ in range(200):

        async def loop() -> None:
            while True:
                await redis_client.smembers(keys.all_grants)

        task = asyncio.get_running_loop().create_task(loop())
        await asyncio.sleep(random.random() * 0.003)
        await cancel_and_wait(task, retry_s=0.05)
        stopped += task.done()
    assert stopped == 200
