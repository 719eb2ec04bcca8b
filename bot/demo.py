"""``grantbot demo``: the whole life of one grant, locally, narrated in plain text.

Nothing needs configuring. The demo starts a private redis-server for grantbot's state and
another as the credential target (a real Redis whose ACL users grantbot creates and deletes),
the Slack emulator in place of Slack, and the real bot (the same assembly ``grantbot serve``
runs) on a local port. It then sends the signed requests Slack would send: a request, an
approval click, and reads back what the bot posted. The credential is used for a real login;
before the grant ends Alice is reminded and clicks ``Extend`` (applied without approval, as
the demo policy's ``extend_without_approval`` allows); once its extended time is up the
scheduler revokes it and the same login fails. Exit status 0 when every step happened as
narrated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Final, TextIO

import redis.asyncio as aioredis
from aiohttp import web
from redis import exceptions as redis_errors

from bot.config import Settings
from bot.devtools.redis_server import RedisServer
from bot.devtools.slack_driver import SlackDriver
from bot.devtools.slack_emulator import Message, SlackEmulator
from bot.domain.model import Grant, Status
from bot.server import check_slack
from bot.slack import ids
from bot.wiring import Bot, assemble

log = logging.getLogger(__name__)

GRANT_SECONDS: Final = 20
REQUESTER, APPROVER = "U0ALICE", "U0BOB"
APPROVAL_CHANNEL: Final = "C0ACCESS"
STEP_TIMEOUT_S: Final = 15.0
MANIFEST: Final = "manifests/slack-app.yaml"

DEMO_POLICY: Final = """\
# The demo's policy: Alice may ask for read access to the cache; Bob or Carol approve.
# Alice is reminded {remind}s before her grant ends; Extend adds {extend}s, no approval needed.
groups:
  engineers:
    members: [U0ALICE, U0BOB, U0CAROL]
  approvers:
    members: [U0BOB, U0CAROL]
defaults:
  requesters: {groups: [engineers]}
  approvers: {groups: [approvers], channel: C0ACCESS}
  max_duration: 1h
  default_duration: {extend}s
  request_timeout: 10m
  remind_before: {remind}s
  extend_without_approval: 1h
resources:
  cache:
    description: A real Redis; access is an ACL user of its own
    provider:
      type: redis_acl
      url: ${DEMO_CACHE_URL}
    roles:
      read:
        provider:
          commands: "+@read +ping"
          keys: "~cache:*"
"""


class DemoFailed(Exception):
    """A step did not happen as narrated."""


class Narrator:
    """Numbered steps and indented detail lines, flushed as they happen."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.step_no = 0
        self.started = time.monotonic()

    def step(self, text: str) -> None:
        self.step_no += 1
        elapsed = time.monotonic() - self.started
        print(f"\n[{elapsed:5.1f}s] {self.step_no}. {text}", file=self.out, flush=True)

    def say(self, text: str) -> None:
        for line in text.splitlines() or [""]:
            print(f"          {line}", file=self.out, flush=True)


def _plain(mrkdwn: str) -> str:
    """Slack mrkdwn as a terminal shows it: dates by their fallback, mentions by id."""
    out = mrkdwn.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    while "<!date^" in out:
        start = out.index("<!date^")
        end = out.index(">", start)
        fallback = out[start:end].rsplit("|", 1)[-1]
        out = out[:start] + fallback + out[end + 1 :]
    return out.replace("<@", "@").replace("<#", "#").replace(">", "")


def _block_lines(message_blocks: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for block in message_blocks:
        if block["type"] in ("header", "section") and "text" in block:
            lines.append(_plain(block["text"]["text"]).replace("\n", ": ", 1))
        for f in block.get("fields", []):
            lines.append(_plain(f["text"]).replace("\n", ": ", 1))
        if block["type"] == "actions":
            buttons = [f"[{e['text']['text']}]" for e in block["elements"]]
            lines.append(" ".join(buttons))
    return lines


async def _eventually(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise DemoFailed(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def _demo_bot(
    emulator: SlackEmulator,
    *,
    state_url: str,
    cache_url: str,
    workdir: Path,
    secret: str,
    remind_s: int,
    extend_s: int,
) -> AsyncIterator[tuple[Bot, SlackDriver]]:
    policy = workdir / "demo-policy.yaml"
    text = DEMO_POLICY.replace("{remind}", str(remind_s)).replace("{extend}", str(extend_s))
    policy.write_text(text)
    settings = Settings.model_validate(
        {
            "SLACK_BOT_TOKEN": emulator.bot_token,
            "SLACK_SIGNING_SECRET": secret,
            "SLACK_API_URL": emulator.api_url,
            "GRANTBOT_POLICY": str(policy),
            "GRANTBOT_REDIS_PREFIX": "demo",
            "GRANTBOT_DATA_DIR": str(workdir),
        }
    )
    async with assemble(
        settings,
        redis_url=state_url,
        bot_token=emulator.bot_token,
        signing_secret=secret,
        environ={"DEMO_CACHE_URL": cache_url},
        install_reload_triggers=False,
    ) as bot:
        await check_slack(bot)
        runner = web.AppRunner(bot.web_app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with SlackDriver(
                f"http://127.0.0.1:{port}/slack/events",
                signing_secret=secret,
                emulator_url=emulator.base_url,
            ) as driver:
                yield bot, driver
        finally:
            await runner.cleanup()


async def _story(
    n: Narrator,
    emulator: SlackEmulator,
    bot: Bot,
    driver: SlackDriver,
    *,
    cache_url: str,
    grant_s: int,
) -> None:
    command = f"request cache read {grant_s}s checking the cache keys"
    n.step(f"Alice types in #general:  /access {command}")
    resp = await driver.slash_command(
        REQUESTER,
        command,
        channel_id="C0GENERAL",
        channel_name="general",
    )
    n.say(f"grantbot acknowledged in {resp.latency_s * 1000:.0f} ms (HTTP {resp.status}).")
    ephemeral = await _eventually(lambda: emulator.ephemerals(user=REQUESTER), "the confirmation")
    n.say("Only Alice sees: " + _plain(ephemeral[-1].text))
    grant: Grant = (await bot.service.my_grants(REQUESTER))[0]

    n.step("The approvers the policy names are asked")
    copies: list[Message] = await _eventually(
        lambda: [
            m
            for ms in emulator.workspace.messages.values()
            for m in ms
            if f"Request `{grant.id}`" in json.dumps(m.blocks)
        ],
        "the approval messages",
    )
    where = ", ".join(
        f"#{emulator.directory.channels[m.channel].name}"
        if m.channel in emulator.directory.channels
        else f"a DM to {emulator.directory.dm_user(m.channel)}"
        for m in copies
    )
    n.say(f"{len(copies)} copies: {where}. Bob's DM shows:")
    bob_copy = next(m for m in copies if m.channel == emulator.dm_channel(APPROVER))
    for line in _block_lines(bob_copy.blocks):
        n.say("  | " + line)

    n.step("Bob clicks Approve (the click is checked against the policy, not the button)")
    await driver.block_action(
        APPROVER, ids.APPROVE, message=bob_copy.as_slack(), channel_id=bob_copy.channel
    )

    async def active() -> Grant | None:
        current = await bot.store.get(grant.id)
        return current if current.status is Status.ACTIVE else None

    grant = await _eventually(active, "the grant to become active")
    await bot.tasks.idle()
    channel_copy = next(m for m in copies if m.channel == APPROVAL_CHANNEL)
    n.say("Every copy was updated, buttons gone; #access-requests now says:")
    n.say("  | " + next(line for line in _block_lines(channel_copy.blocks) if "Approved" in line))

    n.step("Alice's credential arrives by DM, and only there")
    credential_dm = await _eventually(
        lambda: next(
            (m for m in emulator.dms(REQUESTER) if "*password*" in json.dumps(m.blocks)), None
        ),
        "the credential DM",
    )
    rendered = json.dumps(credential_dm.blocks)
    password = rendered.split("*password*: `", 1)[1].split("`", 1)[0]
    login = grant.credential_ref or ""
    elsewhere = [c for c in emulator.calls() if password in json.dumps(c.args)]
    n.say(f"user {login}, a {len(password)}-character password (shown only in Alice's DM)")
    n.say(
        f"The password is in {len(elsewhere)} of {len(emulator.calls())} Slack API calls "
        f"grantbot made: {elsewhere[0].method} to {elsewhere[0].args['channel']}."
    )
    if len(elsewhere) != 1:
        raise DemoFailed("the credential went somewhere other than the requester's DM")

    n.step("Alice logs in to the real Redis with it")
    target = aioredis.Redis.from_url(cache_url, username=login, password=password)
    try:
        await target.ping()
        value = await target.get("cache:greeting")
        n.say(f"AUTH ok; GET cache:greeting -> {value!r}")
        try:
            await target.set("cache:greeting", "overwritten")
            raise DemoFailed("the read-only credential could write")
        except redis_errors.NoPermissionError:
            n.say("SET cache:greeting -> refused (NOPERM): the role is read-only.")
    finally:
        await target.aclose()

    n.step(f"{remind_s(grant_s)}s before the end, Alice is reminded by DM")
    reminder: Message = await _eventually(
        lambda: next(
            (m for m in emulator.dms(REQUESTER) if m.text.startswith(":hourglass:")), None
        ),
        "the reminder",
    )
    for line in _block_lines(reminder.blocks):
        n.say("  | " + line)
    extend = next(
        e
        for b in reminder.blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == ids.REMIND_EXTEND
    )
    n.step(f"Alice clicks [{extend['text']['text']}]")
    await driver.block_action(
        REQUESTER, ids.REMIND_EXTEND, message=reminder.as_slack(), channel_id=reminder.channel
    )

    async def extended() -> Grant | None:
        current = await bot.store.get(grant.id)
        return current if (current.expires_at or 0) > (grant.expires_at or 0) else None

    grant = await _eventually(extended, "the extension")
    await _eventually(lambda: not reminder.text.startswith(":hourglass: Your"), "the update")
    n.say("No approval needed (extend_without_approval); the reminder now says:")
    n.say("  | " + _plain(reminder.text))
    credential_dm = await _eventually(
        lambda: next(
            (m for m in reversed(emulator.dms(REQUESTER)) if "*password*" in json.dumps(m.blocks)),
            None,
        ),
        "the re-issued credential DM",
    )
    rendered = json.dumps(credential_dm.blocks)
    password = rendered.split("*password*: `", 1)[1].split("`", 1)[0]
    n.say("Its credential was re-issued to end at the new time; the new one is in her DM.")

    expires_at = grant.expires_at or time.time()
    total = grant_s + extend_s(grant_s)
    n.step(f"Waiting for the grant to run out ({total}s from approval)…")

    async def ended() -> Grant | None:
        current = await bot.store.get(grant.id)
        return current if current.status is Status.EXPIRED else None

    deadline = time.monotonic() + total + STEP_TIMEOUT_S
    finished: Grant | None = None
    while finished is None:
        finished = await ended()
        if time.monotonic() > deadline:
            raise DemoFailed("the grant was not revoked on time")
        await asyncio.sleep(0.05)
    lag_ms = ((finished.ended_at or expires_at) - expires_at) * 1000
    n.say(f"The scheduler revoked it {lag_ms:.0f} ms after its expiry; the grant is EXPIRED.")
    target = aioredis.Redis.from_url(cache_url, username=login, password=password)
    try:
        await target.ping()
        raise DemoFailed("the credential still works after expiry")
    except redis_errors.AuthenticationError:
        n.say("The same login now fails: WRONGPASS. The ACL user is gone from Redis.")
    finally:
        await target.aclose()
    await bot.tasks.idle()
    await _eventually(
        lambda: "Expired" in json.dumps(credential_dm.blocks), "the credential DM update"
    )
    n.say("Alice's DM no longer holds the password: " + _block_lines(credential_dm.blocks)[1])
    audit = [e.data["event"] async for e in bot.store.audit.entries()]
    n.say("Audit trail: " + " -> ".join(audit))
    verify = await bot.store.audit.verify()
    n.say(f"audit chain verified: {verify.entries} entries, hash-chained.")


def remind_s(grant_s: int) -> int:
    """How long before the demo grant ends Alice is reminded: a third of it in, so there is
    time to click."""
    return max(1, grant_s * 2 // 3)


def extend_s(grant_s: int) -> int:
    """What the reminder's Extend adds (the demo role's default duration)."""
    return grant_s


async def run_demo(
    settings: Settings, *, out: TextIO | None = None, grant_s: int = GRANT_SECONDS
) -> int:
    """Run the narrated demo; 0 when every step happened as described, 1 otherwise.

    ``settings`` is accepted for the CLI's sake; the demo needs none of it (its Slack, Redis
    and policy are its own). ``out`` receives the narration (default stdout); ``grant_s`` is
    how long the demo grant lasts."""
    stream = out or sys.stdout
    n = Narrator(stream)
    root = logging.getLogger()
    quiet = not root.isEnabledFor(logging.DEBUG)
    previous = root.level
    if quiet:
        root.setLevel(logging.ERROR)  # the narration is the output; errors still show
    print(
        "grantbot demo: request -> approval -> a real credential -> a reminder, Extend ->\n"
        "revocation on time.\n"
        "Slack is emulated locally; Redis (state and credential target) is real.",
        file=stream,
    )
    try:
        with (
            tempfile.TemporaryDirectory(prefix="grantbot-demo-") as tmp,
            RedisServer(appendonly=False) as state,
            RedisServer(appendonly=False) as cache,
        ):
            seed = aioredis.Redis.from_url(cache.url)
            await seed.set("cache:greeting", "hello from the cache")
            await seed.aclose()
            async with (
                SlackEmulator() as emulator,
                _demo_bot(
                    emulator,
                    state_url=state.url,
                    cache_url=cache.url,
                    workdir=Path(tmp),
                    secret=secrets.token_hex(16),
                    remind_s=remind_s(grant_s),
                    extend_s=extend_s(grant_s),
                ) as (bot, driver),
            ):
                await _story(n, emulator, bot, driver, cache_url=cache.url, grant_s=grant_s)
    except DemoFailed as e:
        print(f"\nThe demo failed: {e}", file=stream)
        return 1
    finally:
        root.setLevel(previous)
    print(
        f"\nDone. To use grantbot with a real workspace:\n"
        f"  1. Create a Slack app from {MANIFEST} (api.slack.com/apps -> Create New App ->\n"
        f"     From a manifest); set your public URL in its request URLs, install it.\n"
        f"  2. export SLACK_BOT_TOKEN=xoxb-... SLACK_SIGNING_SECRET=...\n"
        f"     (or SLACK_APP_TOKEN=xapp-... for Socket Mode, no public URL needed)\n"
        f"  3. Edit policies.yaml (check it with: grantbot policy check), then: make run",
        file=stream,
    )
    return 0
