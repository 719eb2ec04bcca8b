"""The real bot in process, served over real HTTP, driven as Slack drives it.

``SlackHarness`` assembles the bot exactly as ``grantbot serve`` does (bot.wiring.assemble)
on the test's Redis prefix, serves its aiohttp app on a free port, points its Web API client
at a :class:`SlackEmulator` and signs requests with a :class:`SlackDriver`. Only Slack is
fake, and only at the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.config import Settings
from bot.devtools.slack_driver import SlackDriver
from bot.devtools.slack_emulator import FakeChannel, FakeUser, Message, SlackEmulator
from bot.domain.model import Grant
from bot.errors import StoreUnavailable
from bot.server import ONCALL_TIMEOUT_S, check_slack
from bot.wiring import Bot, assemble
from tests.integration.support import FakeClock

POLICY_FILE = Path(__file__).parent.parent / "fixtures" / "slack_policy.yaml"
SIGNING_SECRET = "test-signing-secret-0123456789abcdef"

ALICE, BOB, CAROL, DAVE = "U0ALICE", "U0BOB", "U0CAROL", "U0DAVE"
ACCESS_CHANNEL, GENERAL, INCIDENT = "C0ACCESS", "C0GENERAL", "C0INC42"


class SlackHarness:
    """The emulator, the bot and a driver, wired together."""

    def __init__(self, emulator: SlackEmulator, bot: Bot, driver: SlackDriver) -> None:
        self.emulator = emulator
        self.bot = bot
        self.driver = driver

    async def settle(self) -> None:
        """Wait until the work listeners started after their acks has finished, and every
        end it made has been announced (ends reach Slack from the audit stream)."""
        await self.bot.tasks.idle()
        await self.bot.announcer.settled()

    async def command(self, user: str, text: str, *, channel: str = GENERAL) -> Any:
        """``/access text`` from ``user`` in ``channel``; returns the driver's response."""
        name = self.emulator.directory.channels[channel].name if channel[0] == "C" else channel
        resp = await self.driver.slash_command(user, text, channel_id=channel, channel_name=name)
        await self.settle()
        return resp

    async def click(self, user: str, message: Message, action_id: str, **kwargs: Any) -> Any:
        """``user`` clicks ``action_id`` on ``message`` (as it is in Slack now)."""
        resp = await self.driver.block_action(
            user, action_id, message=message.as_slack(), channel_id=message.channel, **kwargs
        )
        await self.settle()
        return resp

    def ephemerals(self, user: str) -> list[str]:
        """Texts of the ephemeral messages ``user`` has seen, oldest first."""
        return [e.text for e in self.emulator.ephemerals(user=user)]

    def last_ephemeral(self, user: str) -> str:
        texts = self.ephemerals(user)
        assert texts, f"{user} got no ephemeral message"
        return texts[-1]

    def copies(self, grant_id: str) -> list[Message]:
        """Every approval message about ``grant_id``, in approvers' DMs and channels."""
        marker = f"Request `{grant_id}`"
        return [
            m
            for messages in self.emulator.workspace.messages.values()
            for m in messages
            if not m.deleted and marker in json.dumps(m.blocks)
        ]

    def dms(self, user: str) -> list[Message]:
        return self.emulator.dms(user)

    async def grants_of(self, user: str) -> list[Grant]:
        return await self.bot.service.my_grants(user)

    async def only_grant_of(self, user: str) -> Grant:
        grants = await self.grants_of(user)
        assert len(grants) == 1, grants
        return grants[0]


def settings_for(
    emulator: SlackEmulator, *, prefix: str, policy: Path = POLICY_FILE, **extra: str
) -> Settings:
    values: dict[str, Any] = {
        "SLACK_BOT_TOKEN": emulator.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": emulator.api_url,
        "GRANTBOT_POLICY": str(policy),
        "GRANTBOT_REDIS_PREFIX": prefix,
        **extra,
    }
    return Settings(**values)


async def background_ready(bot: Bot, *, timeout_s: float = 10.0) -> None:
    """Wait until the bot's own background writers are up (the announcer's heartbeat), so a
    test's snapshot of the keys is not disturbed by them arriving later."""
    deadline = time.monotonic() + timeout_s
    try:
        while await bot.announcer.feed.readers_alive() < 1:
            assert time.monotonic() < deadline, "the announcer never started"
            await asyncio.sleep(0.01)
    except StoreUnavailable:
        return  # Redis is down on purpose: nothing of the bot's can be written either


@asynccontextmanager
async def running_bot(
    *,
    redis_url: str,
    prefix: str,
    clock: Callable[[], float] | None = None,
    environ: Mapping[str, str] | None = None,
    policy: Path = POLICY_FILE,
    oncall_timeout_s: float = ONCALL_TIMEOUT_S,
    enterprise_id: str | None = None,
    auth_test: bool = True,
    extra_settings: Mapping[str, str] | None = None,
    emulator: SlackEmulator | None = None,
    extra_users: Sequence[FakeUser] = (),
    extra_channels: Sequence[FakeChannel] = (),
    **assemble_options: Any,
) -> AsyncIterator[SlackHarness]:
    """Emulator + the assembled bot on a free local port + a driver; all closed on exit.
    ``oncall_timeout_s`` bounds each PagerDuty / Opsgenie lookup (as in serve).
    ``enterprise_id`` puts the emulated workspace in an Enterprise Grid organisation;
    ``auth_test`` False serves before auth.test has answered; ``extra_settings`` are more
    environment settings (``SLACK_TEAM_ID``...). Pass an ``emulator`` to share one Slack
    between bots (replicas, a restart); it is left running. ``extra_users`` and
    ``extra_channels`` join the emulated workspace before the bot starts. Other keyword
    options go to :func:`bot.wiring.assemble` (e.g. ``slack_timeout_s``)."""
    async with contextlib.AsyncExitStack() as stack:
        if emulator is None:
            emulator = await stack.enter_async_context(SlackEmulator(enterprise_id=enterprise_id))
        for user in extra_users:
            emulator.directory.add_user(user)
        for channel in extra_channels:
            emulator.directory.add_channel(channel)
        settings = settings_for(emulator, prefix=prefix, policy=policy, **(extra_settings or {}))
        env = {**os.environ, **(environ or {})}
        bot = await stack.enter_async_context(
            assemble(
                settings,
                redis_url=redis_url,
                bot_token=emulator.bot_token,
                signing_secret=SIGNING_SECRET,
                clock=clock or FakeClock(time.time()),
                environ=env,
                install_reload_triggers=False,
                oncall_timeout_s=oncall_timeout_s,
                **assemble_options,
            )
        )
        if auth_test:
            await check_slack(bot)
        await background_ready(bot)
        runner = web.AppRunner(bot.web_app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        driver = await stack.enter_async_context(
            SlackDriver(
                f"http://127.0.0.1:{port}/slack/events",
                signing_secret=SIGNING_SECRET,
                emulator_url=emulator.base_url,
                enterprise_id=enterprise_id,
            )
        )
        yield SlackHarness(emulator, bot, driver)
