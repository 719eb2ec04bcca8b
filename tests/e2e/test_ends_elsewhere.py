"""Ends made by the CLI reach Slack through `grantbot serve`, all as real processes: the Slack
emulator, one or two `grantbot serve`, `grantbot grants revoke`, real Redis and a real Redis
ACL target. Slack is updated once, by a running bot; with none running the CLI says so, and
the next bot to start does it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis

from bot.cli import SLACK_BY_RUNNING_BOT, SLACK_WHEN_A_BOT_STARTS
from bot.devtools.redis_server import RedisServer, free_port
from bot.devtools.slack_driver import SlackDriver
from bot.devtools.slack_emulator import DEFAULT_BOT_TOKEN, EmulatorControl
from bot.domain.model import Status
from bot.slack import ids
from bot.store.connection import connect
from bot.store.grants import GrantStore
from bot.store.keys import Keys

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "tests" / "fixtures" / "slack_policy.yaml"
SECRET = "e2e-ends-" + uuid.uuid4().hex
ALICE, BOB = "U0ALICE", "U0BOB"
INCIDENT, INCIDENT_NAME = "C0INC42", "inc-42-orders-db"
START_TIMEOUT_S = 30.0

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Outside:
    """What every test shares: the emulator process and the credential target."""

    emulator_url: str
    cache_url: str


@pytest.fixture(scope="module")
def outside() -> Iterator[Outside]:
    emulator = subprocess.Popen(
        [sys.executable, "-m", "bot.devtools.slack_emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    assert emulator.stdout is not None
    url = ""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not url and time.monotonic() < deadline:
        line = emulator.stdout.readline().decode()
        if line.startswith("SLACK_EMULATOR_URL="):
            url = line.split("=", 1)[1].strip()
    cache = RedisServer(appendonly=False).start()
    try:
        assert url, "the emulator did not start"
        yield Outside(url, cache.url)
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
        emulator.stdout.close()
        cache.stop()


@dataclass
class World:
    """One test's Redis prefix, its processes' environment, and how to look at Slack."""

    outside: Outside
    redis_url: str
    prefix: str
    store: GrantStore
    control: EmulatorControl
    tmp: Path

    def env(self, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GRANTBOT_"))}
        return {
            **base,
            "REDIS_URL": self.redis_url,
            "GRANTBOT_REDIS_PREFIX": self.prefix,
            "GRANTBOT_POLICY": str(POLICY),
            "GRANTBOT_TEST_CACHE_URL": self.outside.cache_url,
            "GRANTBOT_DATA_DIR": str(self.tmp),
            **extra,
        }

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[SlackDriver]:
        """One `grantbot serve` process, healthy; SIGTERM (exit 0) on leaving."""
        port = free_port()
        env = self.env(
            SLACK_BOT_TOKEN=DEFAULT_BOT_TOKEN,
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=f"{self.outside.emulator_url.rstrip('/')}/api/",
            GRANTBOT_HOST="127.0.0.1",
            GRANTBOT_PORT=str(port),
        )
        proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], env=env, cwd=ROOT)
        try:
            await _healthy(f"http://127.0.0.1:{port}", proc)
            async with SlackDriver(
                f"http://127.0.0.1:{port}/slack/events",
                signing_secret=SECRET,
                emulator_url=self.outside.emulator_url,
            ) as driver:
                yield driver
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.wait, 20) == 0, "grantbot serve exits 0"

    async def cli_revoke(self, grant_id: str) -> list[str]:
        """`grantbot grants revoke ID`; its stdout lines."""
        done = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "bot",
                "grants",
                "revoke",
                grant_id,
                "--operator",
                "ops",
                "--reason",
                "offboarded",
            ],
            env=self.env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    async def messages(self) -> list[dict[str, Any]]:
        state = await self.control.state()
        return [m for ms in state["messages"].values() for m in ms if not m["deleted"]]


async def _healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"grantbot serve exited with {proc.returncode}"
            try:
                async with http.get(f"{url}/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("grantbot serve did not become healthy")


async def eventually(check: Any, what: str, *, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@pytest.fixture
async def world(outside: Outside, redis_url: str, tmp_path: Path) -> AsyncIterator[World]:
    prefix = f"e2e-ends-{uuid.uuid4().hex[:10]}"
    client = connect(redis_url)
    async with EmulatorControl(outside.emulator_url) as control:
        yield World(
            outside,
            redis_url,
            prefix,
            GrantStore(client, keys=Keys(prefix=prefix)),
            control,
            tmp_path,
        )
    await client.aclose()
    sync = redis.Redis.from_url(redis_url)
    for key in sync.scan_iter(match="{" + prefix + "}*", count=1000):
        sync.delete(key)
    sync.close()


@dataclass(frozen=True)
class Issued:
    grant_id: str
    dm_ts: str
    root_ts: str
    password: str


async def _issue(world: World, driver: SlackDriver, reason: str) -> Issued:
    """Alice asks for the cache in the incident channel; Bob approves from the approval
    channel; the credential DM carries a real password."""
    await driver.slash_command(
        ALICE, f"request cache read 30m {reason}", channel_id=INCIDENT, channel_name=INCIDENT_NAME
    )

    async def pending() -> str | None:
        for g in await world.store.list_grants(user=ALICE, limit=20):
            if g.status is Status.PENDING and g.reason == reason:
                return g.id
        return None

    grant_id: str = await eventually(pending, "the request")

    async def copy() -> dict[str, Any] | None:
        return next(
            (
                m
                for m in await world.messages()
                if m["channel"] == "C0ACCESS" and f"Request `{grant_id}`" in json.dumps(m["blocks"])
            ),
            None,
        )

    approval = await eventually(copy, "the approval channel's copy")
    await driver.block_action(BOB, ids.APPROVE, message=approval, channel_id="C0ACCESS")

    async def credential_dm() -> dict[str, Any] | None:
        return next(
            (
                m
                for m in await world.messages()
                if m["channel"] == "D0ALICE"
                and "*password*" in json.dumps(m["blocks"])
                and grant_id in json.dumps(m["blocks"])
            ),
            None,
        )

    dm = await eventually(credential_dm, "the credential DM")
    password = json.dumps(dm["blocks"]).split("*password*: `", 1)[1].split("`", 1)[0]
    root = next(
        m
        for m in await world.messages()
        if m["channel"] == INCIDENT and grant_id in m["text"] and not m.get("thread_ts")
    )
    return Issued(grant_id, dm["ts"], root["ts"], password)


async def _announced_once(world: World, issued: Issued) -> None:
    """Once every audit entry has been handled: the DM rewritten once without the password,
    every approver copy revoked, one thread post, one requester notice."""
    feed = world.store.audit_feed()

    async def settled() -> bool:
        return await feed.caught_up()

    await eventually(settled, "the bots to handle every audit entry")
    messages = await world.messages()
    [dm] = [m for m in messages if m["channel"] == "D0ALICE" and m["ts"] == issued.dm_ts]
    assert issued.password not in json.dumps(dm["blocks"])
    assert "Revoked by cli:ops" in json.dumps(dm["blocks"])
    assert len(dm["history"]) == 1
    copies = [
        m
        for m in messages
        if m["channel"] in ("C0ACCESS", "D0BOB", "D0CAROL")
        and f"Request `{issued.grant_id}`" in json.dumps(m["blocks"])
    ]
    assert len(copies) == 3
    assert all("Revoked by cli:ops" in json.dumps(c["blocks"]) for c in copies)
    thread = [
        m
        for m in messages
        if m["channel"] == INCIDENT
        and m.get("thread_ts") == issued.root_ts
        and "Revoked" in m["text"]
    ]
    assert len(thread) == 1
    notices = [
        m
        for m in messages
        if m["channel"] == "D0ALICE"
        and m["ts"] != issued.dm_ts
        and "Revoked by cli:ops" in m["text"]
        and issued.grant_id in json.dumps(m["blocks"])
    ]
    assert len(notices) == 1
    assert (await world.store.get(issued.grant_id)).status is Status.REVOKED


async def test_cli_end_while_serve_runs_is_in_slack_once(world: World) -> None:
    """`grantbot grants revoke` beside a running `grantbot serve`: the CLI says the running
    bot updates Slack, and it does, once."""
    async with world.serve() as driver:
        issued = await _issue(world, driver, "while serving")
        out = await world.cli_revoke(issued.grant_id)
        assert out == [f"{issued.grant_id}: REVOKED", SLACK_BY_RUNNING_BOT.format(it="it")]
        await _announced_once(world, issued)


async def test_cli_end_with_no_serve_running_is_in_slack_once_one_starts(world: World) -> None:
    """With `grantbot serve` stopped the CLI says Slack will be updated when one starts;
    nothing changes in Slack; the next `grantbot serve` updates it, once."""
    async with world.serve() as driver:
        issued = await _issue(world, driver, "before a stop")
    before = await world.control.calls()
    out = await world.cli_revoke(issued.grant_id)
    assert out == [f"{issued.grant_id}: REVOKED", SLACK_WHEN_A_BOT_STARTS.format(it="it")]
    assert await world.control.calls() == before
    async with world.serve():
        await _announced_once(world, issued)


async def test_cli_end_beside_two_replicas_is_in_slack_once(world: World) -> None:
    """Two `grantbot serve` replicas on one Redis: a CLI end is announced by one of them."""
    async with world.serve() as driver, world.serve():
        issued = await _issue(world, driver, "two replicas")
        out = await world.cli_revoke(issued.grant_id)
        assert out[-1] == SLACK_BY_RUNNING_BOT.format(it="it")
        await _announced_once(world, issued)
