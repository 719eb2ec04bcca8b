"""The Slack edge over Socket Mode: the assembled bot connected to the emulator's websocket
through EdgeSocketModeHandler (as `grantbot serve --socket-mode` runs it), with malformed
envelopes and envelopes from another workspace."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis

from bot.devtools.slack_driver import Payloads
from bot.devtools.slack_emulator import SlackEmulator
from bot.devtools.socket_mode import Delivered
from bot.domain.model import Grant
from bot.log_throttle import Throttle
from bot.server import check_slack
from bot.slack import ids
from bot.slack.edge import FOREIGN_WORKSPACE_TEXT, WORKSPACE_UNKNOWN_TEXT, EdgeSocketModeHandler
from bot.store.keys import Keys
from bot.wiring import Bot, assemble
from tests.integration.slack_harness import (
    ALICE,
    BOB,
    GENERAL,
    FakeClock,
    background_ready,
    settings_for,
)

EDGE_LOGGER = "bot.slack.edge"


@dataclass
class SocketBot:
    emulator: SlackEmulator
    bot: Bot
    payloads: Payloads

    async def deliver(self, envelope_type: str, payload: Any, **kwargs: Any) -> Delivered:
        delivered = await self.emulator.socket_mode.deliver(envelope_type, payload, **kwargs)
        await self.bot.tasks.idle()
        return delivered

    def command(self, text: str, *, team_id: str | None = None) -> dict[str, str]:
        fields = {
            "token": "t",
            "team_id": team_id or self.payloads.team_id,
            "team_domain": "grantbot-demo",
            "channel_id": GENERAL,
            "channel_name": "general",
            "user_id": ALICE,
            "user_name": "alice",
            "command": ids.COMMAND,
            "text": text,
            "api_app_id": "A0GRANTBOT",
            "is_enterprise_install": "false",
            "response_url": f"{self.emulator.base_url}/nowhere",
            "trigger_id": "1.2.3",
        }
        return fields

    def click(self, **changes: Any) -> dict[str, Any]:
        payload = self.payloads.interaction_base("block_actions", BOB, None, "1.2.3")
        payload["actions"] = [{"type": "button", "action_id": ids.APPROVE, "value": "g-x"}]
        payload.update(changes)
        return payload

    async def grants(self) -> list[Grant]:
        return await self.bot.service.my_grants(ALICE)


@asynccontextmanager
async def socket_bot(
    redis_url: str, prefix: str, *, auth_test: bool = True
) -> AsyncIterator[SocketBot]:
    async with SlackEmulator() as emulator:
        settings = settings_for(emulator, prefix=prefix)
        async with assemble(
            settings,
            redis_url=redis_url,
            bot_token=emulator.bot_token,
            signing_secret="",
            clock=FakeClock(time.time()),
            environ=dict(os.environ),
            http_events=False,
            install_reload_triggers=False,
        ) as bot:
            if auth_test:
                await check_slack(bot)
            await background_ready(bot)
            handler = EdgeSocketModeHandler(bot.edge, emulator.socket_mode.app_token)
            await handler.connect_async()  # type: ignore[no-untyped-call]
            try:
                yield SocketBot(emulator, bot, Payloads())
            finally:
                await handler.close_async()  # type: ignore[no-untyped-call]


@pytest.fixture
async def sm(redis_url: str, keys: Keys, redis_client: aioredis.Redis) -> AsyncIterator[SocketBot]:
    async with socket_bot(redis_url, keys.prefix) as harness:
        yield harness


async def _keys(redis: aioredis.Redis, prefix: str) -> set[bytes]:
    return {k async for k in redis.scan_iter(match="{" + prefix + "}*")}


async def test_malformed_and_foreign_envelopes_are_acked_and_change_nothing(
    sm: SocketBot,
    redis_client: aioredis.Redis,
    keys: Keys,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`actions: []`, `event: 5`, a non-string command, and a click or a command from
    another workspace: each envelope is acknowledged (a redelivery could not help), the
    foreign command with the ephemeral answer Slack shows; nothing is stored, Slack is not
    called, one warning line each and no traceback."""
    caplog.set_level(logging.INFO)
    event_5 = {"type": "event_callback", "event_id": "Ev1", "team_id": "T0001", "event": 5}
    cases: list[tuple[str, str, Any, Any]] = [
        ("actions: []", "interactive", sm.click(actions=[]), None),
        ("event: 5", "events_api", event_5, None),
        ("command: 5", "slash_commands", {**sm.command("help"), "command": 5}, None),
        (
            "foreign click",
            "interactive",
            sm.click(team={"id": "T0OTHER"}, user={"id": BOB, "team_id": "T0OTHER"}),
            None,
        ),
        (
            "foreign command",
            "slash_commands",
            sm.command("request sandbox play 20m x", team_id="T0OTHER"),
            {"response_type": "ephemeral", "text": FOREIGN_WORKSPACE_TEXT},
        ),
    ]
    for case, envelope_type, payload, answer in cases:
        sm.bot.edge.refusals = Throttle(logging.getLogger(EDGE_LOGGER))
        before_keys = await _keys(redis_client, keys.prefix)
        before_calls = len(sm.emulator.calls())
        start = len(caplog.records)
        delivered = await sm.deliver(envelope_type, payload)
        assert delivered.acked, case
        assert delivered.ack is not None and delivered.ack.get("payload") == answer, case
        assert await _keys(redis_client, keys.prefix) == before_keys, case
        assert len(sm.emulator.calls()) == before_calls, case
        loud = [r for r in caplog.records[start:] if r.levelno >= logging.WARNING]
        assert len(loud) == 1 and loud[0].name == EDGE_LOGGER, (case, loud)
        assert loud[0].levelno == logging.WARNING and loud[0].exc_info is None, case
    assert "Traceback" not in caplog.text
    assert await sm.grants() == []


async def test_a_good_command_over_the_websocket_still_files(sm: SocketBot) -> None:
    """The edge lets a well-formed command from the installed workspace through (its text
    may say "payload")."""
    delivered = await sm.deliver(
        "slash_commands",
        sm.command("request sandbox play 20m fix the payload parser"),
        accepts_response_payload=True,
    )
    assert delivered.acked
    assert [g.reason for g in await sm.grants()] == ["fix the payload parser"]


async def test_before_auth_test_a_click_is_left_for_slack_to_redeliver(
    redis_url: str, keys: Keys, redis_client: aioredis.Redis
) -> None:
    """While the installed workspace is unknown, a command is acked with "try again" and a
    click is not acked at all (Slack redelivers it); nothing is filed."""
    async with socket_bot(redis_url, keys.prefix, auth_test=False) as sm:
        delivered = await sm.deliver("slash_commands", sm.command("request sandbox play 20m x"))
        assert delivered.ack is not None
        assert delivered.ack["payload"] == {
            "response_type": "ephemeral",
            "text": WORKSPACE_UNKNOWN_TEXT,
        }
        delivered = await sm.deliver("interactive", sm.click(), timeout_s=0.5)
        assert not delivered.acked
        assert await sm.grants() == []


async def test_the_shortcut_and_the_form_search_work_over_socket_mode(sm: SocketBot) -> None:
    """Issue 13: the global shortcut opens the form, and the external_select's question
    (block_suggestion) is answered in the envelope's ack, as Socket Mode carries it."""
    trigger = sm.emulator.issue_trigger_id(ALICE)
    shortcut = sm.payloads.interaction_base("shortcut", ALICE, None, trigger)
    shortcut.update(callback_id=ids.REQUEST_SHORTCUT, action_ts="1.2")
    delivered = await sm.deliver("interactive", shortcut)
    assert delivered.acked
    [form] = sm.emulator.views(ALICE)
    assert form.view["callback_id"] == ids.REQUEST_FORM
    suggestion = sm.payloads.interaction_base("block_suggestion", ALICE, None, "")
    suggestion.update(action_id=ids.FORM_TARGET_ACTION, block_id=ids.FORM_TARGET_BLOCK)
    suggestion["value"] = "sandbox"
    answered = await sm.deliver("interactive", suggestion)
    assert answered.ack is not None
    groups = answered.ack["payload"]["option_groups"]
    assert [o["value"] for g in groups for o in g["options"]] == ["sandbox/play"]
