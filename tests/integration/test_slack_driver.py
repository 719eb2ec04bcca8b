"""The Slack driver, exercised through a real Bolt app: its requests are signed as Slack signs
them (slack_sdk's SignatureVerifier agrees), replayed and redelivered as Slack does, and every
kind it sends (command, click, submission, events, url_verification) reaches Bolt's listeners,
whose client posts back to the emulator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.devtools.slack_driver import Delivery, SlackDriver, plain_text_value
from bot.devtools.slack_emulator import SlackEmulator
from tests.integration.emulator_support import actions, button, modal, section

SIGNING_SECRET = "test-signing-secret-0123456789abcdef"


# --- fixtures -------------------------------------------------------------------------------
@pytest.fixture
async def emu() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator() as emulator:
        yield emulator


@pytest.fixture
def client(emu: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)


@dataclass
class BoltHarness:
    """A tiny Bolt app served on a local port, with what its listeners saw."""

    events_url: str
    seen: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
async def bolt(emu: SlackEmulator) -> AsyncIterator[BoltHarness]:
    app = AsyncApp(
        client=AsyncWebClient(token=emu.bot_token, base_url=emu.api_url),
        signing_secret=SIGNING_SECRET,
    )
    harness = BoltHarness(events_url="")

    @app.command("/access")
    async def on_access(ack: Any, command: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        harness.seen.append({"command": command})
        if command["text"] == "form":
            await client.views_open(trigger_id=command["trigger_id"], view=modal())
            return
        await client.chat_postMessage(
            channel=command["channel_id"],
            text=f"<@{command['user_id']}> asks: {command['text']}",
            blocks=[section(f"Request: {command['text']}"), actions(button("approve", "g-1"))],
        )

    @app.action("approve")
    async def on_approve(
        ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any
    ) -> None:
        await ack()
        harness.seen.append({"action": action, "user": body["user"]["id"]})
        await respond(replace_original=True, text=f"Approved by <@{body['user']['id']}>")

    @app.view("request_modal")
    async def on_submit(ack: Any, view: dict[str, Any], body: dict[str, Any]) -> None:
        await ack()
        harness.seen.append({"view": view, "user": body["user"]["id"]})

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: Any) -> None:
        harness.seen.append({"event": event})
        await say(text="on it", thread_ts=event["ts"])

    @app.event("app_home_opened")
    async def on_home(event: dict[str, Any], client: AsyncWebClient) -> None:
        home = {"type": "home", "blocks": [section("Your grants: none")]}
        await client.views_publish(user_id=event["user"], view=home)

    runner = web.AppRunner(app.web_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    harness.events_url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    yield harness
    await runner.cleanup()


@pytest.fixture
async def driver(emu: SlackEmulator, bolt: BoltHarness) -> AsyncIterator[SlackDriver]:
    async with SlackDriver(
        bolt.events_url, signing_secret=SIGNING_SECRET, emulator_url=emu.base_url
    ) as slack_driver:
        yield slack_driver


# --- driver signatures ----------------------------------------------------------------------
async def test_driver_signatures_verify_with_slack_sdk_and_tampering_breaks_them(
    emu: SlackEmulator, driver: SlackDriver
) -> None:
    """SignatureVerifier accepts the driver's signature and rejects a tampered body, a bad
    signature, a missing one and a stale timestamp."""
    verifier = SignatureVerifier(SIGNING_SECRET)
    sent = (
        await driver.slash_command(
            "U0ALICE", "list", channel_id="C0ACCESS", channel_name="access-requests"
        )
    ).request
    assert verifier.is_valid_request(sent.body, dict(sent.headers))
    assert not verifier.is_valid_request(sent.body.replace(b"list", b"lisT"), dict(sent.headers))

    for delivery in (Delivery.bad_signature(), Delivery.unsigned(), Delivery.stale()):
        resp = await driver.send(sent.body, sent.content_type, delivery=delivery)
        assert not verifier.is_valid_request(resp.request.body, dict(resp.request.headers))
        assert resp.status == 401  # Bolt's own verification agrees
    assert len(await emu.wait_for(lambda: emu.messages("C0ACCESS"))) == 1


async def test_replay_is_byte_identical_and_redelivery_carries_retry_headers(
    emu: SlackEmulator, driver: SlackDriver
) -> None:
    """replay resends the same bytes and headers; redeliver re-signs and adds Slack's retry
    headers, still passing verification."""
    first = await driver.app_mention("U0ALICE", "help", channel="C0ACCESS", event_id="Ev0001")
    replayed = await driver.replay(first.request)
    retried = await driver.redeliver(first.request, retry_num=1, retry_reason="http_timeout")

    assert replayed.request == first.request
    assert retried.request.body == first.request.body
    assert retried.request.headers["X-Slack-Retry-Num"] == "1"
    assert retried.request.headers["X-Slack-Retry-Reason"] == "http_timeout"
    verifier = SignatureVerifier(SIGNING_SECRET)
    assert verifier.is_valid_request(retried.request.body, dict(retried.request.headers))
    assert first.status == replayed.status == retried.status == 200
    # Bolt itself does not drop a replay or a retry: all three reach the listener.
    await emu.wait_for("chat.postMessage", count=3)


# --- through a real Bolt app ----------------------------------------------------------------
async def test_slash_command_reaches_bolt_and_its_client_posts_to_the_emulator(
    emu: SlackEmulator, bolt: BoltHarness, driver: SlackDriver
) -> None:
    """The driver's /access command is acked by Bolt within 3 s and the handler's message is
    recorded by the emulator."""
    resp = await driver.slash_command(
        "U0ALICE",
        "request orders-db read 30m",
        channel_id="C0ACCESS",
        channel_name="access-requests",
    )
    call = await emu.wait_for("chat.postMessage")

    assert resp.status == 200
    assert resp.latency_s < 3.0
    command = bolt.seen[0]["command"]
    assert command["user_id"] == "U0ALICE"
    assert command["command"] == "/access"
    assert command["response_url"].startswith(emu.base_url)
    assert call.ok
    assert call.args["channel"] == "C0ACCESS"
    assert emu.last_message("C0ACCESS") is not None
    assert emu.calls("auth.test"), "Bolt checks its token with auth.test first"


async def test_block_action_reaches_bolt_with_action_value_and_user(
    emu: SlackEmulator, bolt: BoltHarness, driver: SlackDriver
) -> None:
    """Clicking the rendered Approve button gives Bolt's listener its action_id, value and the
    clicking user, and respond(replace_original) edits that message on the emulator."""
    await driver.slash_command(
        "U0ALICE", "orders-db", channel_id="C0ACCESS", channel_name="access-requests"
    )
    message = await emu.wait_for(lambda: emu.last_message("C0ACCESS"))

    resp = await driver.block_action(
        "U0BOB", "approve", message=message.as_slack(), channel_id="C0ACCESS"
    )
    await emu.wait_for("response_url")

    assert resp.status == 200
    seen = bolt.seen[-1]
    assert seen["user"] == "U0BOB"
    assert (seen["action"]["action_id"], seen["action"]["value"]) == ("approve", "g-1")
    assert seen["action"]["block_id"] == "decide"
    assert message.text == "Approved by <@U0BOB>"


async def test_block_action_refuses_a_button_that_is_not_rendered(
    emu: SlackEmulator, client: AsyncWebClient, driver: SlackDriver
) -> None:
    """The driver only clicks elements present in the message unless a block_id forges one."""
    await client.chat_postMessage(channel="C0ACCESS", text="no buttons", blocks=[section("x")])
    message = emu.last_message("C0ACCESS")
    assert message is not None
    with pytest.raises(LookupError):
        await driver.block_action(
            "U0BOB", "approve", message=message.as_slack(), channel_id="C0ACCESS"
        )


async def test_modal_opened_from_a_command_can_be_submitted_to_bolt(
    emu: SlackEmulator, bolt: BoltHarness, driver: SlackDriver
) -> None:
    """The command's trigger_id opens a modal on the emulator, and submitting it delivers the
    typed values to Bolt's view listener."""
    await driver.slash_command(
        "U0ALICE", "form", channel_id="C0ACCESS", channel_name="access-requests"
    )
    opened = await emu.wait_for(lambda: emu.views("U0ALICE"))

    resp = await driver.view_submission(
        "U0ALICE",
        opened[0].as_slack(),
        values={"reason": {"reason_input": plain_text_value("INC-42 debugging")}},
    )
    submitted = await emu.wait_for(lambda: [s for s in bolt.seen if "view" in s])

    assert resp.status == 200
    values = submitted[0]["view"]["state"]["values"]
    assert values["reason"]["reason_input"]["value"] == "INC-42 debugging"
    assert submitted[0]["user"] == "U0ALICE"


async def test_app_mention_and_home_opened_events_reach_bolt(
    emu: SlackEmulator, bolt: BoltHarness, driver: SlackDriver
) -> None:
    """Events API callbacks are accepted by Bolt: a mention is answered in its thread and
    opening App Home publishes a home view."""
    mention = await driver.app_mention("U0ALICE", "status?", channel="C0INC42")
    reply = await emu.wait_for(lambda: emu.last_message("C0INC42"))
    home = await driver.app_home_opened("U0BOB")
    await emu.wait_for(lambda: emu.home_view("U0BOB"))

    assert mention.status == home.status == 200
    event = bolt.seen[0]["event"]
    assert event["text"] == "<@U0GRANTBOT> status?"
    assert event["channel"] == "C0INC42"
    assert reply.thread_ts == event["ts"]


async def test_url_verification_is_answered_by_bolt(driver: SlackDriver) -> None:
    """The url_verification handshake gets its challenge echoed."""
    resp = await driver.url_verification("challenge-123")
    assert resp.status == 200
    assert resp.json == {"challenge": "challenge-123"}
