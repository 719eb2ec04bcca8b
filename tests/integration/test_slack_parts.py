"""The Slack parts on their own, against the emulator: the user-group directory's cache, the
background-task owner (its concurrency and ack priority: tests/unit/test_slack_tasks.py), and
`grantbot serve`'s fail-fast configuration."""

from __future__ import annotations

import asyncio
import logging

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.devtools.redis_server import free_port
from bot.devtools.slack_emulator import SlackEmulator
from bot.errors import ConfigError
from bot.server import serve
from bot.slack.app import build_client
from bot.slack.directory import SlackDirectory
from bot.slack.tasks import BackgroundTasks
from tests.integration.support import FakeClock


def _client(emulator: SlackEmulator) -> AsyncWebClient:
    return build_client(token=emulator.bot_token, base_url=emulator.api_url)


async def test_usergroup_members_are_cached_for_their_ttl(emulator: SlackEmulator) -> None:
    """One usergroups.users.list per group per TTL, shared by concurrent lookups."""
    clock = FakeClock(100.0)
    directory = SlackDirectory(_client(emulator), ttl_s=60, clock=clock)
    answers = await asyncio.gather(*(directory.members(["S0APPROVERS"]) for _ in range(10)))
    assert all(a == {"S0APPROVERS": frozenset({"U0BOB", "U0CAROL"})} for a in answers)
    assert len(emulator.calls("usergroups.users.list")) == 1
    clock.now += 61
    await directory.members(["S0APPROVERS", "S0ONCALL"])
    assert len(emulator.calls("usergroups.users.list")) == 3


async def test_an_unknown_or_failing_group_counts_as_empty(emulator: SlackEmulator) -> None:
    """A group Slack does not know is left out (empty: grants nothing); when Slack fails
    later, the last known members are used."""
    clock = FakeClock(100.0)
    directory = SlackDirectory(_client(emulator), ttl_s=60, clock=clock)
    assert await directory.members(["S0NOSUCH"]) == {}
    assert await directory.members(["S0ONCALL"]) == {"S0ONCALL": frozenset({"U0CAROL"})}
    clock.now += 61
    emulator.faults.server_error("usergroups.users.list", times=10, status=500)
    assert await directory.members(["S0ONCALL"]) == {"S0ONCALL": frozenset({"U0CAROL"})}


async def test_channel_names_and_users(emulator: SlackEmulator) -> None:
    """conversations.info gives incident detection its channel name; DMs have none."""
    directory = SlackDirectory(_client(emulator))
    assert await directory.channel_name("C0INC42") == "inc-42-orders-db"
    assert await directory.channel_name("C0NOPE") is None
    user = await directory.user_info("U0BOB")
    assert user is not None and user["name"] == "bob"
    assert await directory.user_info("U0NOPE") is None


async def test_a_users_email_comes_from_users_info(emulator: SlackEmulator) -> None:
    """The people directory (what AWS Identity Center matches on) reads the email from
    users.info; an unknown user, or Slack failing, gives None."""
    directory = SlackDirectory(_client(emulator))
    assert await directory.email("U0ALICE") == "alice@example.com"
    assert await directory.email("U0NOPE") is None
    emulator.faults.server_error("users.info", times=10, status=500)
    assert await directory.email("U0CAROL") is None


async def test_background_failures_are_logged_and_drain_cancels_stragglers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failing job is logged with its name; drain waits, then cancels what is left."""
    tasks = BackgroundTasks()

    async def boom() -> None:
        raise RuntimeError("boom")

    async def forever() -> None:
        await asyncio.sleep(3600)

    with caplog.at_level(logging.ERROR):
        tasks.spawn(boom(), name="boom-job")
        await tasks.idle()
    assert tasks.failures == 1 and "boom-job" in caplog.text
    tasks.spawn(forever(), name="forever", urgent=True)
    await tasks.drain(timeout_s=0.1)
    assert len(tasks) == 0


@pytest.mark.parametrize(
    ("env", "socket_mode", "missing"),
    [
        ({}, False, "SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, False, "SLACK_SIGNING_SECRET"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, True, "SLACK_APP_TOKEN"),
        ({"SLACK_APP_TOKEN": "xapp-1"}, False, "SLACK_BOT_TOKEN"),
    ],
)
async def test_serve_fails_fast_naming_the_missing_setting(
    env: dict[str, str], socket_mode: bool, missing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`grantbot serve` (HTTP or Socket Mode) refuses to start without its credentials,
    naming the variable, before touching Redis or Slack."""
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    # A Redis nothing answers at: the Slack setting is named before Redis is touched.
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    settings = Settings.model_validate({**env, "REDIS_URL": nowhere})
    with pytest.raises(ConfigError, match=missing):
        await serve(settings, socket_mode=socket_mode)
