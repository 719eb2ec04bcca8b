"""What integration tests share besides fixtures: waiting, clocks, the CLI, on-call data.

The fixtures themselves are in tests/integration/conftest.py, each defined once. The bigger
support modules each do one job: slack_harness.py (the bot in process, driven as Slack
drives it), providers_fixtures.py (real provider targets on private ports), aws_fixtures.py
(moto_server, a real AWS API endpoint).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bot.devtools.pagerduty_emulator import PagerDutyOnCall, PagerDutyUser
from bot.store.keys import Keys

ROOT = Path(__file__).resolve().parents[2]

#: How often :func:`wait_for` asks again.
POLL_S = 0.02


async def wait_for(
    condition: Callable[[], object | Awaitable[object]],
    *,
    what: str,
    timeout_s: float = 10.0,
) -> float:
    """Ask ``condition`` (a plain or an async callable) until its answer is true; return the
    seconds that took. Fails naming ``what`` after ``timeout_s``."""
    start = time.monotonic()
    while True:
        answer = condition()
        if inspect.isawaitable(answer):
            answer = await answer
        if answer:
            return time.monotonic() - start
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(POLL_S)


class FakeClock:
    """A clock (seconds) moved only by hand: ``now`` is what it says."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class AheadClock:
    """Real time plus ``offset`` seconds the test sets: a provider's clock moved past an
    expiry while its target keeps real time."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def grantbot(
    *args: str, env: dict[str, str] | None = None, timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `python -m bot ARGS` from the repo root, without the caller's Slack or grantbot
    settings (``env`` adds the test's own)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GRANTBOT_"))}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


async def redis_text(redis: aioredis.Redis, keys: Keys) -> str:
    """Everything under the test's key prefix, as one text (to search it for secrets)."""

    async def value(key: str) -> Any:
        kind = await redis.type(key)
        if kind == "hash":
            return await redis.hgetall(key)
        if kind == "set":
            return sorted(await redis.smembers(key))
        if kind == "zset":
            return await redis.zrange(key, 0, -1)
        if kind == "stream":
            return [fields for _, fields in await redis.xrange(key)]
        if kind == "list":
            return await redis.lrange(key, 0, -1)
        return await redis.get(key)

    pairs = [
        [key, await value(key)] async for key in redis.scan_iter(match="{" + keys.prefix + "}*")
    ]
    return json.dumps(pairs, default=str)


# -- on-call: what the PagerDuty and Opsgenie emulators hold unless a module says otherwise --

PD_TOKEN = "pd-test-token-0123456789"
OG_KEY = "og-test-key-0123456789"
#: The environment a policy's ``${GB_PD_TOKEN}`` / ``${GB_OG_KEY}`` read.
ONCALL_ENV = {"GB_PD_TOKEN": PD_TOKEN, "GB_OG_KEY": OG_KEY}
#: Carol is on call for PagerDuty's PSCHED1, with no end.
PD_USERS = (PagerDutyUser("PCAROL", "Carol", "carol@example.com"),)
PD_ONCALLS = (PagerDutyOnCall("PCAROL", "PEP1", "PSCHED1"),)
#: Carol is on call for the Opsgenie schedules SRE and DBA.
OG_SCHEDULES: dict[str, Any] = {"SRE": ["carol@example.com"], "DBA": ["carol@example.com"]}
