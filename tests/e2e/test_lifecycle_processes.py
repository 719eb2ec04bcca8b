"""Reminders and scheduled starts as real processes (issue 13): the Slack emulator and
`grantbot serve` are processes, Redis is real. A serve process is killed with SIGKILL after
the reminder and the starts are scheduled and before they fire: the next process sends the
reminder once, issues the start whose window is still open once, and never issues the one
whose window closed while nothing ran. Two live replicas remind once and start once."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bot.devtools.redis_server import free_port
from bot.devtools.slack_driver import SlackDriver
from bot.devtools.slack_emulator import DEFAULT_BOT_TOKEN, EmulatorControl
from bot.domain.model import Grant, Status
from bot.store.grants import GrantStore
from bot.store.keys import Keys
from bot.store.lifecycle_jobs import LifecycleJobs
from tests.e2e.test_serve import SECRET, _start_emulator, _stop, _wait_healthy, serve_env

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "tests" / "fixtures" / "lifecycle_policy.yaml"
ALICE, BOB, CAROL = "U0ALICE", "U0BOB", "U0CAROL"


async def eventually(check: Callable[[], Any], *, what: str, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def test_a_sigkilled_serve_still_reminds_once_and_starts_once(
    redis_url: str, keys: Keys, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    emulator, emulator_url = _start_emulator()
    port = free_port()
    bot_url = f"http://127.0.0.1:{port}"
    env = serve_env(
        SLACK_BOT_TOKEN=DEFAULT_BOT_TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=f"{emulator_url.rstrip('/')}/api/",
        REDIS_URL=redis_url,
        GRANTBOT_POLICY=str(POLICY),
        GRANTBOT_REDIS_PREFIX=keys.prefix,
        GRANTBOT_HOST="127.0.0.1",
        GRANTBOT_PORT=str(port),
        GRANTBOT_DATA_DIR=str(tmp_path),
    )

    def serve(name: str) -> subprocess.Popen[bytes]:
        with (tmp_path / f"{name}.log").open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve"], env=env, cwd=ROOT, stderr=stderr
            )
        _wait_healthy(bot_url, proc, tmp_path / f"{name}.log")
        return proc

    store = GrantStore(redis_client, keys=keys)
    jobs = LifecycleJobs(redis_client, keys=keys)
    first = serve("first")
    second: subprocess.Popen[bytes] | None = None
    try:
        async with (
            SlackDriver(
                f"{bot_url}/slack/events", signing_secret=SECRET, emulator_url=emulator_url
            ) as driver,
            EmulatorControl(emulator_url) as control,
        ):

            async def ask(user: str, text: str, status: Status) -> Grant:
                await driver.slash_command(
                    user, text, channel_id="C0GENERAL", channel_name="general"
                )

                async def filed() -> Grant | None:
                    grants = await store.list_grants(user=user, limit=1)
                    return grants[0] if grants and grants[0].status is status else None

                grant: Grant = await eventually(filed, what=f"{user}'s {status.value} grant")
                return grant

            # Reminded 4 s after issue; started in 4 s (window open an hour); started in 2 s
            # for 5 s (its window closes while no process runs).
            reminded = await ask(ALICE, "request sandbox play 1h reminded later", Status.ACTIVE)
            started = await ask(
                CAROL, "request sandbox play 1h in 4s starts later", Status.SCHEDULED
            )
            closed = await ask(BOB, "request sandbox play 5s in 2s window closes", Status.SCHEDULED)
            remind_at = await jobs.run_time("remind", reminded.id)
            assert remind_at is not None and remind_at > time.time(), "killed before it fired"
            assert await jobs.run_time("start", started.id) == started.starts_at
            assert await jobs.run_time("start", closed.id) == closed.starts_at

            first.send_signal(signal.SIGKILL)
            assert first.wait(timeout=10) == -signal.SIGKILL
            due = max(remind_at, (closed.starts_at or 0) + closed.duration_s) + 1
            while time.time() < due:  # every due time passes while no grantbot runs
                await asyncio.sleep(0.2)
            assert (await store.get(started.id)).status is Status.SCHEDULED
            assert await reminders(control, reminded.id) == []

            second = serve("second")

            async def caught_up() -> bool:
                statuses = [(await store.get(g.id)).status for g in (started, closed)]
                return statuses == [Status.ACTIVE, Status.TIMED_OUT] and bool(
                    await reminders(control, reminded.id)
                )

            await eventually(caught_up, what="the reminder and the starts after the restart")

            async def jobs_done() -> bool:
                left = [
                    await jobs.run_time("remind", reminded.id),
                    await jobs.run_time("start", started.id),
                    await jobs.run_time("start", closed.id),
                ]
                return left == [None, None, None]

            await eventually(jobs_done, what="every lifecycle job to have run")
            assert len(await reminders(control, reminded.id)) == 1
            issued = await audit_events(store, started.id, "ISSUE")
            assert len(issued) == 1
            active = await store.get(started.id)
            assert active.expires_at == (started.starts_at or 0) + 3600  # counted from the start
            assert len(await credential_dms(control, CAROL)) == 1
            lapsed = await store.get(closed.id)
            assert lapsed.activated_at is None and lapsed.credential_ref is None
            assert await audit_events(store, closed.id, "ISSUE") == []
            assert await credential_dms(control, BOB) == []
    finally:
        _stop(first)
        if second is not None:
            assert _stop(second) == 0
        _stop(emulator)


async def reminders(control: EmulatorControl, grant_id: str) -> list[dict[str, Any]]:
    state = await control.state()
    return [
        m
        for ms in state["messages"].values()
        for m in ms
        if not m["deleted"] and m["text"].startswith(":hourglass:") and grant_id in m["text"]
    ]


async def credential_dms(control: EmulatorControl, user: str) -> list[dict[str, Any]]:
    state = await control.state()
    return [
        m
        for ms in state["messages"].values()
        for m in ms
        if m["channel"] == f"D0{user[2:]}" and "Your access to" in json.dumps(m["blocks"])
    ]


async def audit_events(store: GrantStore, grant_id: str, event: str) -> list[dict[str, Any]]:
    entries = [e.data for e in await store.audit.read_page("-", count=10_000)]
    return [e for e in entries if e.get("grant_id") == grant_id and e["event"] == event]


async def test_two_live_replicas_remind_once_and_start_once(
    redis_url: str, keys: Keys, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    """Two serve processes on one Redis, both taking Slack traffic: the reminder and the
    start are each done once, by the lease holder, whichever replica filed them."""
    emulator, emulator_url = _start_emulator()
    ports = [free_port(), free_port()]
    procs: list[subprocess.Popen[bytes]] = []
    store = GrantStore(redis_client, keys=keys)
    jobs = LifecycleJobs(redis_client, keys=keys)
    try:
        for i, port in enumerate(ports):
            env = serve_env(
                SLACK_BOT_TOKEN=DEFAULT_BOT_TOKEN,
                SLACK_SIGNING_SECRET=SECRET,
                SLACK_API_URL=f"{emulator_url.rstrip('/')}/api/",
                REDIS_URL=redis_url,
                GRANTBOT_POLICY=str(POLICY),
                GRANTBOT_REDIS_PREFIX=keys.prefix,
                GRANTBOT_HOST="127.0.0.1",
                GRANTBOT_PORT=str(port),
                GRANTBOT_DATA_DIR=str(tmp_path),
            )
            log = tmp_path / f"replica-{i}.log"
            with log.open("wb") as stderr:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "bot", "serve"], env=env, cwd=ROOT, stderr=stderr
                    )
                )
            _wait_healthy(f"http://127.0.0.1:{port}", procs[-1], log)
        async with (
            SlackDriver(
                f"http://127.0.0.1:{ports[0]}/slack/events",
                signing_secret=SECRET,
                emulator_url=emulator_url,
            ) as first,
            SlackDriver(
                f"http://127.0.0.1:{ports[1]}/slack/events",
                signing_secret=SECRET,
                emulator_url=emulator_url,
            ) as second,
            EmulatorControl(emulator_url) as control,
        ):
            await first.slash_command(
                ALICE,
                "request sandbox play 1h two replicas",
                channel_id="C0GENERAL",
                channel_name="general",
            )
            await second.slash_command(
                CAROL,
                "request sandbox play 1h in 3s two replicas",
                channel_id="C0GENERAL",
                channel_name="general",
            )

            async def both_filed() -> list[Grant] | None:
                a = await store.list_grants(user=ALICE, limit=1)
                c = await store.list_grants(user=CAROL, limit=1)
                return [a[0], c[0]] if a and c else None

            reminded, started = await eventually(both_filed, what="both requests")

            async def done() -> bool:
                left = [
                    await jobs.run_time("remind", reminded.id),
                    await jobs.run_time("start", started.id),
                ]
                return left == [None, None] and bool(await reminders(control, reminded.id))

            await eventually(done, what="the reminder sent and the start run")
            assert (await store.get(started.id)).status is Status.ACTIVE
            assert len(await reminders(control, reminded.id)) == 1
            assert len(await audit_events(store, started.id, "ISSUE")) == 1
            assert len(await audit_events(store, started.id, "START")) == 1
            assert len(await credential_dms(control, CAROL)) == 1
    finally:
        for proc in procs:
            assert _stop(proc) == 0
        _stop(emulator)
