"""`grantbot serve` as a real process: the Slack emulator as a real process, real Redis, a
real credential target, driven by signed requests exactly as Slack sends them.

One bot process and one emulator process serve the whole module; each test uses its own
users' requests and reads back what the bot did from the emulator's recorded state.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis

from bot.devtools.redis_server import RedisServer, free_port
from bot.devtools.slack_driver import Delivery, SlackDriver
from bot.devtools.slack_emulator import DEFAULT_BOT_TOKEN, EmulatorControl
from bot.domain.model import Grant, Status
from bot.slack import ids
from bot.store.connection import connect
from bot.store.grants import GrantStore
from bot.store.keys import Keys

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "tests" / "fixtures" / "slack_policy.yaml"
SECRET = "e2e-signing-secret-" + uuid.uuid4().hex
ALICE, BOB, CAROL, DAVE = "U0ALICE", "U0BOB", "U0CAROL", "U0DAVE"
START_TIMEOUT_S = 20.0
#: What the bot logs when it drops the work of a delivery it has already processed.
DUPLICATE_DROPPED = "duplicate delivery ignored"


@dataclass(frozen=True)
class Stack:
    """The running processes and where they answer."""

    bot_url: str
    emulator_url: str
    redis_url: str
    prefix: str
    bot: subprocess.Popen[bytes]
    cache_url: str
    #: The bot's log (its stderr: one JSON object per line).
    log: Path

    def logged(self, message: str) -> int:
        """How many of the bot's log lines so far have ``message`` as their msg."""
        lines = self.log.read_text().splitlines()
        return sum(
            1 for line in lines if line.startswith("{") and json.loads(line)["msg"] == message
        )


def _start_emulator() -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.devtools.slack_emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        line = proc.stdout.readline().decode()
        if line.startswith("SLACK_EMULATOR_URL="):
            return proc, line.split("=", 1)[1].strip()
    proc.kill()
    raise RuntimeError("the emulator did not start")


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path | None = None) -> None:
    import urllib.request

    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            said = log.read_text()[-2000:] if log is not None else ""
            raise RuntimeError(f"grantbot serve exited with {proc.returncode}: {said}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as r:  # noqa: S310
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("grantbot serve did not become healthy")


def _stop(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM, wait, and close our end of its pipes; the exit code (-9 if it had to be
    killed)."""
    code = proc.poll()
    if code is None:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = -9
    if proc.stdout is not None:
        proc.stdout.close()
    return code


def serve_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GRANTBOT_"))}
    env.update(overrides)
    return env


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One emulator, one `grantbot serve` and one credential-target Redis for the module."""
    emulator, emulator_url = _start_emulator()
    cache = RedisServer(appendonly=False).start()
    prefix = f"e2e-{uuid.uuid4().hex[:10]}"
    port = free_port()
    bot_url = f"http://127.0.0.1:{port}"
    env = serve_env(
        SLACK_BOT_TOKEN=DEFAULT_BOT_TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=f"{emulator_url.rstrip('/')}/api/",
        REDIS_URL=redis_url,
        GRANTBOT_POLICY=str(POLICY),
        GRANTBOT_REDIS_PREFIX=prefix,
        GRANTBOT_HOST="127.0.0.1",
        GRANTBOT_PORT=str(port),
        GRANTBOT_DATA_DIR=str(tmp_path_factory.mktemp("data")),
        GRANTBOT_TEST_CACHE_URL=cache.url,
    )
    log = tmp_path_factory.mktemp("log") / "serve.log"
    with log.open("wb") as stderr:
        bot = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve"], env=env, cwd=ROOT, stderr=stderr
        )
    try:
        _wait_healthy(bot_url, bot, log)
        yield Stack(bot_url, emulator_url, redis_url, prefix, bot, cache.url, log)
        assert _stop(bot) == 0, "grantbot serve exits 0 on SIGTERM"
    finally:
        _stop(bot)
        _stop(emulator)
        cache.stop()
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match="{" + prefix + "}*", count=1000):
            client.delete(key)
        client.close()


@pytest.fixture
async def slack(stack: Stack) -> AsyncIterator[Slack]:
    """A driver and emulator control for this test, and the store the bot writes."""
    store_client = connect(stack.redis_url)
    async with (
        SlackDriver(
            f"{stack.bot_url}/slack/events", signing_secret=SECRET, emulator_url=stack.emulator_url
        ) as driver,
        EmulatorControl(stack.emulator_url) as control,
    ):
        yield Slack(driver, control, GrantStore(store_client, keys=Keys(prefix=stack.prefix)))
    await store_client.aclose()


@dataclass
class Slack:
    driver: SlackDriver
    control: EmulatorControl
    store: GrantStore

    async def eventually(self, check: Any, *, timeout_s: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            result = await check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {check.__name__}")
            await asyncio.sleep(0.05)

    async def messages(self) -> list[dict[str, Any]]:
        state = await self.control.state()
        return [m for ms in state["messages"].values() for m in ms if not m["deleted"]]

    async def ephemerals(self, user: str) -> list[str]:
        state = await self.control.state()
        return [e["text"] for e in state["ephemerals"] if e["user"] == user]

    async def newest_grant(self, user: str) -> Grant:
        async def found() -> Grant | None:
            grants = await self.store.list_grants(user=user, limit=1)
            return grants[0] if grants else None

        grant: Grant = await self.eventually(found)
        return grant

    async def copy_in(self, grant_id: str, channel: str) -> dict[str, Any]:
        async def found() -> dict[str, Any] | None:
            for m in await self.messages():
                if m["channel"] == channel and f"Request `{grant_id}`" in json.dumps(m["blocks"]):
                    return m
            return None

        message: dict[str, Any] = await self.eventually(found)
        return message


async def refused_total(stack: Stack) -> float:
    """Deliveries the process's edge has refused so far, whatever the cause (/metrics)."""
    async with aiohttp.ClientSession() as http, http.get(f"{stack.bot_url}/metrics") as r:
        assert r.status == 200
        text = await r.text()
    family = "grantbot_slack_requests_refused_total{"
    return sum(
        float(line.rpartition(" ")[2]) for line in text.splitlines() if line.startswith(family)
    )


async def scrape(stack: Stack, sample: str) -> float:
    """One sample's value from the process's /metrics (0 when absent)."""
    async with aiohttp.ClientSession() as http, http.get(f"{stack.bot_url}/metrics") as r:
        assert r.status == 200
        text = await r.text()
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == sample:
            return float(value)
    return 0.0


async def test_health_and_readiness(stack: Stack) -> None:
    """/healthz answers; /readyz reports Redis, policy and Slack (auth.test) all ok."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{stack.bot_url}/healthz") as r:
            assert r.status == 200
        async with http.get(f"{stack.bot_url}/readyz") as r:
            body = await r.json()
            assert r.status == 200 and body["ready"] is True, body
            assert set(body["checks"]) == {"redis", "policy", "slack"}
        async with http.get(f"{stack.bot_url}/metrics") as r:
            assert r.status == 200 and r.content_type == "text/plain"
            text = await r.text()
        async with http.get(
            f"{stack.bot_url}/metrics", headers={"Accept": "application/openmetrics-text"}
        ) as r:
            assert r.status == 200 and r.content_type == "application/openmetrics-text"
    # The one replica leads the scheduler and says so; the families a dashboard needs exist.
    assert re.search(r'^grantbot_scheduler_lease_holder\{replica="[^"]+"\} 1\.0$', text, re.M)
    for family in (
        "grantbot_revocation_lag_seconds_bucket",
        "grantbot_time_to_credential_seconds",
        "grantbot_requests_total",
        "grantbot_slack_api_errors_total",
        "grantbot_active_grants",
    ):
        assert f"# TYPE {family.removesuffix('_bucket')}" in text or family in text, family


@pytest.mark.parametrize(
    "delivery", [Delivery.unsigned(), Delivery.bad_signature(), Delivery.stale()], ids=str
)
async def test_bad_signatures_are_refused(slack: Slack, stack: Stack, delivery: Delivery) -> None:
    """Unsigned, wrongly signed and replayed-old requests get 401 and file nothing."""
    before = len(await slack.store.list_grants(user=DAVE))
    refused = await refused_total(stack)
    resp = await slack.driver.slash_command(
        DAVE,
        "request sandbox play 10m x",
        channel_id="C0GENERAL",
        channel_name="general",
        delivery=delivery,
    )
    assert resp.status == 401

    async def counted() -> bool:
        """The edge counted the refusal: the delivery ended there, before Bolt."""
        return await refused_total(stack) >= refused + 1

    await slack.eventually(counted)
    assert len(await slack.store.list_grants(user=DAVE)) == before


async def test_request_approve_credential_and_revoke(slack: Slack, stack: Stack) -> None:
    """The whole path through the real process: ack within 3 s, approval copies, a click
    that approves, a real Redis credential by DM only, Revoke now, every copy updated."""
    standing = await scrape(stack, 'grantbot_active_grants{resource="cache"}')
    resp = await slack.driver.slash_command(
        ALICE, "request cache read 30m e2e check", channel_id="C0GENERAL", channel_name="general"
    )
    assert resp.status == 200 and resp.latency_s < 3
    grant = await slack.newest_grant(ALICE)
    copy = await slack.copy_in(grant.id, "C0ACCESS")

    async def confirmed() -> bool:
        return any(grant.id in t for t in await slack.ephemerals(ALICE))

    await slack.eventually(confirmed)
    await slack.driver.block_action(BOB, ids.APPROVE, message=copy, channel_id="C0ACCESS")

    async def credential_dm() -> dict[str, Any] | None:
        for m in await slack.messages():
            if m["channel"] == "D0ALICE" and "*password*" in json.dumps(m["blocks"]):
                return m
        return None

    dm = await slack.eventually(credential_dm)
    password = json.dumps(dm["blocks"]).split("*password*: `", 1)[1].split("`", 1)[0]
    calls = await slack.control.calls()
    carrying = [c for c in calls if password in json.dumps(c["args"])]
    assert [(c["method"], c["args"]["channel"]) for c in carrying] == [("chat.postMessage", ALICE)]
    active = await slack.store.get(grant.id)
    assert active.status is Status.ACTIVE
    target = redis.Redis.from_url(
        stack.cache_url, username=active.credential_ref, password=password
    )
    assert target.ping()
    target.close()
    # The standing privilege shows on /metrics while it lasts, and goes when it ends.
    assert await scrape(stack, 'grantbot_active_grants{resource="cache"}') == standing + 1

    await slack.driver.block_action(ALICE, ids.REVOKE, message=dm, channel_id="D0ALICE")

    async def revoked() -> bool:
        return (await slack.store.get(grant.id)).status is Status.REVOKED

    await slack.eventually(revoked)
    assert await scrape(stack, 'grantbot_active_grants{resource="cache"}') == standing

    async def copies_updated() -> bool:
        copy_now = await slack.copy_in(grant.id, "C0ACCESS")
        return "Revoked by <@U0ALICE>" in json.dumps(copy_now["blocks"])

    await slack.eventually(copies_updated)
    with pytest.raises(redis.AuthenticationError):
        redis.Redis.from_url(
            stack.cache_url, username=active.credential_ref, password=password
        ).ping()


async def test_grant_expires_on_time_in_the_real_process(slack: Slack) -> None:
    """A 3-second auto-approved grant is revoked by the scheduler and the DM says so."""
    await slack.driver.slash_command(
        CAROL, "request lab play 3s quick", channel_id="C0GENERAL", channel_name="general"
    )
    grant = await slack.newest_grant(CAROL)

    async def expired() -> bool:
        return (await slack.store.get(grant.id)).status is Status.EXPIRED

    await slack.eventually(expired, timeout_s=15)
    ended = await slack.store.get(grant.id)
    assert ended.ended_at is not None and ended.expires_at is not None
    assert ended.ended_at - ended.expires_at < 2.0


async def test_retried_event_delivery_is_processed_once(slack: Slack, stack: Stack) -> None:
    """Slack's retry of an app_mention (same event_id, X-Slack-Retry-Num) files one request."""
    before = len(await slack.store.list_grants(user=DAVE))
    dropped = stack.logged(DUPLICATE_DROPPED)
    first = await slack.driver.app_mention(
        BOB, "request sandbox play 10m e2e retry", channel="C0GENERAL"
    )
    again = await slack.driver.redeliver(first.request, retry_num=1)
    assert first.status == again.status == 200
    grant = await slack.newest_grant(BOB)

    async def retry_dropped() -> bool:
        """The retry's work has run: it found the delivery already claimed, and stopped."""
        return stack.logged(DUPLICATE_DROPPED) >= dropped + 1

    await slack.eventually(retry_dropped)
    mine = [g for g in await slack.store.list_grants(user=BOB) if g.reason == "e2e retry"]
    assert [g.id for g in mine] == [grant.id]
    assert len(await slack.store.list_grants(user=DAVE)) == before


def test_missing_signing_secret_fails_fast_naming_it(tmp_path: Path) -> None:
    """`grantbot serve` without SLACK_SIGNING_SECRET exits 1 naming the variable."""
    env = serve_env(
        SLACK_BOT_TOKEN="xoxb-1",
        GRANTBOT_POLICY=str(POLICY),
        GRANTBOT_DATA_DIR=str(tmp_path),
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",  # never reached: it fails before
    )
    done = subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert "SLACK_SIGNING_SECRET" in done.stderr


# Last in the module: it leaves ALICE a pending request, and the tests above take a user's
# newest grant (Slack.newest_grant) as the one they just asked for.
async def test_the_edge_refuses_malformed_foreign_and_reads_payload_words(
    slack: Slack, stack: Stack
) -> None:
    """Against the real process: a malformed body signed with a non-numeric timestamp gets
    401, a signed `actions: []` click 400, an Approve click from another workspace 403 (the
    request stays pending), each counted by cause; `/access help payload` is answered."""
    refused = 'grantbot_slack_requests_refused_total{cause="%s"}'
    before = {c: await scrape(stack, refused % c) for c in ("bad_timestamp", "malformed")}
    resp = await slack.driver.send(
        b"payload={not json",
        "application/x-www-form-urlencoded",
        delivery=Delivery.odd_timestamp("abc"),
    )
    assert resp.status == 401
    click = slack.driver.payloads.interaction_base("block_actions", BOB, None, "1.2.3")
    click["actions"] = []
    body = slack.driver.payloads.interactive(click)
    resp = await slack.driver.send(body, "application/x-www-form-urlencoded")
    assert resp.status == 400 and resp.json["error"].startswith("malformed request")
    for cause, count in before.items():
        assert await scrape(stack, refused % cause) == count + 1, cause

    await slack.driver.slash_command(
        ALICE, "request sandbox play 10m edge e2e", channel_id="C0GENERAL", channel_name="g"
    )

    async def filed() -> Grant | None:
        grants = await slack.store.list_grants(user=ALICE)
        return next((g for g in grants if g.reason == "edge e2e"), None)

    grant = await slack.eventually(filed)
    copy = await slack.copy_in(grant.id, "C0ACCESS")
    async with slack.driver.from_workspace(team_id="T0OTHER") as foreign:
        resp = await foreign.block_action(BOB, ids.APPROVE, message=copy, channel_id="C0ACCESS")
    assert resp.status == 403
    assert (await slack.store.get(grant.id)).status is Status.PENDING

    seen = len(await slack.ephemerals(ALICE))
    resp = await slack.driver.slash_command(
        ALICE, "help payload", channel_id="C0GENERAL", channel_name="payload-team"
    )
    assert resp.status == 200

    async def answered() -> bool:
        return len(await slack.ephemerals(ALICE)) > seen

    await slack.eventually(answered)
