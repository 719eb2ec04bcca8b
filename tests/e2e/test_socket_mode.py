"""`grantbot serve --socket-mode` as a real process over a real websocket.

The emulator process plays Slack's Socket Mode: apps.connections.open with the app-level
token, a one-time websocket URL, a hello, then envelopes the bot must ack within 3 s. The
same driver methods as the HTTP tests send the same payloads, wrapped in envelopes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import redis

from bot.devtools.redis_server import free_port
from bot.devtools.slack_driver import SlackDriver
from bot.devtools.slack_emulator import DEFAULT_BOT_TOKEN, EmulatorControl
from bot.devtools.socket_mode import DEFAULT_APP_TOKEN
from bot.domain.model import Status
from bot.slack import ids
from bot.store.connection import connect
from bot.store.grants import GrantStore
from bot.store.keys import Keys
from tests.e2e.test_serve import (
    ALICE,
    BOB,
    POLICY,
    ROOT,
    Slack,
    _start_emulator,
    _stop,
    _wait_healthy,
    serve_env,
)


@dataclass(frozen=True)
class SocketStack:
    bot_url: str
    emulator_url: str
    prefix: str
    bot: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def socket_stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SocketStack]:
    """An emulator and `grantbot serve --socket-mode`: no signing secret, an app token."""
    emulator, emulator_url = _start_emulator()
    prefix = f"e2e-sm-{uuid.uuid4().hex[:10]}"
    port = free_port()
    env = serve_env(
        SLACK_BOT_TOKEN=DEFAULT_BOT_TOKEN,
        SLACK_APP_TOKEN=DEFAULT_APP_TOKEN,
        SLACK_API_URL=f"{emulator_url.rstrip('/')}/api/",
        REDIS_URL=redis_url,
        GRANTBOT_POLICY=str(POLICY),
        GRANTBOT_REDIS_PREFIX=prefix,
        GRANTBOT_HOST="127.0.0.1",
        GRANTBOT_PORT=str(port),
        GRANTBOT_DATA_DIR=str(tmp_path_factory.mktemp("data")),
    )
    bot = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--socket-mode"], env=env, cwd=ROOT
    )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", bot)
        yield SocketStack(f"http://127.0.0.1:{port}", emulator_url, prefix, bot)
        assert _stop(bot) == 0, "grantbot serve --socket-mode exits 0 on SIGTERM"
    finally:
        _stop(bot)
        _stop(emulator)
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match="{" + prefix + "}*", count=1000):
            client.delete(key)
        client.close()


@pytest.fixture
async def slack(socket_stack: SocketStack, redis_url: str) -> AsyncIterator[Slack]:
    store_client = connect(redis_url)
    async with (
        SlackDriver(
            f"{socket_stack.bot_url}/slack/events",
            signing_secret="unused-over-socket-mode",  # nothing is signed over Socket Mode
            emulator_url=socket_stack.emulator_url,
            socket_mode=True,
        ) as driver,
        EmulatorControl(socket_stack.emulator_url) as control,
    ):
        yield Slack(
            driver, control, GrantStore(store_client, keys=Keys(prefix=socket_stack.prefix))
        )
    await store_client.aclose()


async def test_the_bot_connects_with_its_app_token_and_serves_no_http_events(
    socket_stack: SocketStack, slack: Slack
) -> None:
    """The bot opened its connection with the app-level token (Slack's only method that takes
    one); /slack/events is not served, since Slack comes over the websocket."""
    opens = await slack.control.calls("apps.connections.open")
    assert opens and all(c["response"]["ok"] for c in opens), opens
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{socket_stack.bot_url}/slack/events", data=b"x") as r:
            assert r.status == 404
        async with http.get(f"{socket_stack.bot_url}/readyz") as r:
            assert r.status == 200


async def test_request_and_approval_over_the_websocket(slack: Slack) -> None:
    """A slash command and an Approve click, each an envelope acked within Slack's 3 s: the
    request is filed, the approver's click approves it, and the grant becomes ACTIVE."""
    resp = await slack.driver.slash_command(
        ALICE, "request sandbox play 10m socket check", channel_id="C0GENERAL", channel_name="g"
    )
    assert resp.status == 200 and resp.latency_s < 3
    grant = await slack.newest_grant(ALICE)
    assert grant.reason == "socket check" and grant.status is Status.PENDING
    copy = await slack.copy_in(grant.id, "C0ACCESS")

    click = await slack.driver.block_action(BOB, ids.APPROVE, message=copy, channel_id="C0ACCESS")
    assert click.status == 200 and click.latency_s < 3

    async def active() -> bool:
        return (await slack.store.get(grant.id)).status is Status.ACTIVE

    await slack.eventually(active)


async def test_a_mention_files_a_request_answered_in_its_thread(slack: Slack) -> None:
    """An app_mention arrives as an events_api envelope; the request it files is confirmed in
    the thread it came from."""
    resp = await slack.driver.app_mention(
        BOB, "request sandbox play 10m socket mention", channel="C0GENERAL", thread_ts="1700.0001"
    )
    assert resp.status == 200 and resp.latency_s < 3
    grant = await slack.newest_grant(BOB)
    assert grant.reason == "socket mention"

    async def answered() -> list[dict[str, Any]]:
        return [
            m
            for m in await slack.messages()
            if m["channel"] == "C0GENERAL"
            and m.get("thread_ts") == "1700.0001"
            and grant.id in json.dumps(m)
        ]

    await slack.eventually(answered)


# Last in the module: it leaves ALICE a request, and the tests above take a user's newest
# grant (Slack.newest_grant) as the one they just asked for.
async def test_malformed_and_foreign_envelopes_are_acked_and_file_nothing(slack: Slack) -> None:
    """Over the websocket, a click with `actions: []` is acknowledged and does nothing, and a
    command from another workspace is acknowledged with the ephemeral "not the workspace
    grantbot is installed in"; the bot keeps serving."""
    click = slack.driver.payloads.interaction_base("block_actions", BOB, None, "1.2.3")
    click["actions"] = []
    answer = await slack.control.socket_deliver("interactive", click)
    assert answer["acked"]
    async with slack.driver.from_workspace(team_id="T0OTHER") as foreign:
        resp = await foreign.slash_command(
            ALICE, "request sandbox play 10m from afar", channel_id="C0GENERAL", channel_name="g"
        )
    assert resp.status == 200
    assert "not the one grantbot is installed in" in resp.body["text"]
    assert not [g for g in await slack.store.list_grants(user=ALICE) if g.reason == "from afar"]
    resp = await slack.driver.slash_command(
        ALICE, "request sandbox play 10m after the noise", channel_id="C0GENERAL", channel_name="g"
    )
    assert resp.status == 200

    async def filed() -> list[str]:
        grants = await slack.store.list_grants(user=ALICE)
        return [g.id for g in grants if g.reason == "after the noise"]

    await slack.eventually(filed)
    # The foreign one was refused at its ack, before anything could be filed.
    assert not [g for g in await slack.store.list_grants(user=ALICE) if g.reason == "from afar"]
