"""The Slack emulator and driver, exercised through slack_sdk's and slack_bolt's real clients.

The emulator stands in for Slack's servers only: every test here talks to it with slack_sdk's
AsyncWebClient, or receives the driver's signed requests in a real Bolt AsyncApp.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.devtools.slack_driver import Delivery, SlackDriver, plain_text_value
from bot.devtools.slack_emulator import (
    MAX_ACTION_ID_CHARS,
    MAX_ACTIONS_ELEMENTS,
    MAX_BLOCK_ID_CHARS,
    MAX_BUTTON_TEXT_CHARS,
    MAX_BUTTON_VALUE_CHARS,
    MAX_HEADER_TEXT_CHARS,
    MAX_MESSAGE_BLOCKS,
    MAX_MESSAGE_TEXT_CHARS,
    MAX_MODAL_TITLE_CHARS,
    MAX_PRIVATE_METADATA_CHARS,
    MAX_SECTION_TEXT_CHARS,
    MAX_VIEW_BLOCKS,
    RESPONSE_URL_MAX_USES,
    RESPONSE_URL_METHOD,
    TRIGGER_ID_TTL_S,
    EmulatorControl,
    FakeUser,
    Fault,
    FaultKind,
    SlackEmulator,
)

SIGNING_SECRET = "test-signing-secret-0123456789abcdef"
REPO_ROOT = Path(__file__).resolve().parents[2]
TS_RE = re.compile(r"^\d{10}\.\d{6}$")


class FakeClock:
    """A clock a test moves by hand."""

    def __init__(self, now: float = 1_732_352_400.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- block builders -------------------------------------------------------------------------
def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button(action_id: str, value: str, label: str = "Approve") -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "value": value,
        "text": {"type": "plain_text", "text": label},
    }


def actions(*elements: dict[str, Any], block_id: str = "decide") -> dict[str, Any]:
    return {"type": "actions", "block_id": block_id, "elements": list(elements)}


def modal(title: str = "Request access", **extra: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "request_modal",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Submit"},
        "blocks": [
            {
                "type": "input",
                "block_id": "reason",
                "label": {"type": "plain_text", "text": "Reason"},
                "element": {"type": "plain_text_input", "action_id": "reason_input"},
            }
        ],
        **extra,
    }


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


async def slack_error(call: Callable[[], Any]) -> dict[str, Any]:
    """The body of the SlackApiError that ``call`` raises."""
    with pytest.raises(SlackApiError) as caught:
        await call()
    data = caught.value.response.data
    assert isinstance(data, dict)
    return data


# --- Web API round trips --------------------------------------------------------------------
async def test_post_message_returns_slack_shaped_increasing_ts(
    emu: SlackEmulator, client: AsyncWebClient
) -> None:
    """chat.postMessage answers ok with channel, a unique increasing ts and the message echo."""
    first = await client.chat_postMessage(channel="C0ACCESS", text="one", blocks=[section("a")])
    second = await client.chat_postMessage(channel="#access-requests", text="two")

    assert first["channel"] == second["channel"] == "C0ACCESS"
    assert TS_RE.match(first["ts"])
    assert TS_RE.match(second["ts"])
    assert float(second["ts"]) > float(first["ts"])
    assert first["message"]["text"] == "one"
    assert first["message"]["blocks"] == [section("a")]
    assert first["message"]["bot_id"] == "B0GRANTBOT"
    assert [m.text for m in emu.messages("C0ACCESS")] == ["one", "two"]
    call = emu.calls("chat.postMessage")[0]
    assert call.ok
    assert call.args["channel"] == "C0ACCESS"
    assert "token" not in call.args


async def test_post_message_to_unknown_channel_or_without_text_is_refused(
    client: AsyncWebClient,
) -> None:
    """An unknown channel is channel_not_found; neither text nor blocks is no_text."""
    unknown = await slack_error(lambda: client.chat_postMessage(channel="C0NOPE", text="x"))
    with pytest.warns(UserWarning, match="top-level `text` argument is missing"):
        empty = await slack_error(lambda: client.chat_postMessage(channel="C0ACCESS"))
    assert unknown["error"] == "channel_not_found"
    assert empty["error"] == "no_text"


async def test_update_replaces_message_and_keeps_history(
    emu: SlackEmulator, client: AsyncWebClient
) -> None:
    """chat.update rewrites an existing message and records what it said before."""
    posted = await client.chat_postMessage(channel="C0ACCESS", text="pending")
    updated = await client.chat_update(channel="C0ACCESS", ts=posted["ts"], text="approved")

    assert updated["ts"] == posted["ts"]
    assert updated["text"] == "approved"
    message = emu.last_message("C0ACCESS")
    assert message is not None
    assert message.text == "approved"
    assert [v.text for v in message.history] == ["pending"]


async def test_update_of_unknown_ts_is_message_not_found(client: AsyncWebClient) -> None:
    """chat.update on a ts the channel never had answers message_not_found."""
    error = await slack_error(
        lambda: client.chat_update(channel="C0ACCESS", ts="1732352400.000100", text="x")
    )
    assert error["error"] == "message_not_found"


async def test_post_ephemeral_returns_message_ts_and_is_recorded(
    emu: SlackEmulator, client: AsyncWebClient
) -> None:
    """chat.postEphemeral answers message_ts and keeps the message for that user only."""
    resp = await client.chat_postEphemeral(channel="C0ACCESS", user="U0ALICE", text="only you")
    assert TS_RE.match(resp["message_ts"])
    assert [e.text for e in emu.ephemerals(user="U0ALICE")] == ["only you"]
    assert emu.ephemerals(user="U0BOB") == []
    assert emu.messages("C0ACCESS") == []


async def test_conversations_open_gives_a_stable_dm_and_posting_to_a_user_lands_there(
    emu: SlackEmulator, client: AsyncWebClient
) -> None:
    """conversations.open returns the same D-channel per user; posting to a user id uses it."""
    first = await client.conversations_open(users="U0BOB")
    again = await client.conversations_open(users=["U0BOB"])
    await client.chat_postMessage(channel="U0BOB", text="your credential")

    assert first["channel"]["id"] == again["channel"]["id"] == emu.dm_channel("U0BOB")
    assert again["already_open"] is True
    assert [m.text for m in emu.dms("U0BOB")] == ["your credential"]


async def test_directory_methods_answer_from_the_configured_workspace() -> None:
    """users.info, users.lookupByEmail, usergroups.users.list, conversations.info use the
    directory given at construction, with Slack's not-found errors."""
    zed = FakeUser("U0ZED", "zed", "Zed Z", "zed@example.com", tz="Europe/Paris")
    async with SlackEmulator(users=[zed], usergroups={"S0DBA": ["U0ZED"]}, channels=[]) as emu:
        client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
        info = await client.users_info(user="U0ZED")
        found = await client.users_lookupByEmail(email="ZED@example.com")
        group = await client.usergroups_users_list(usergroup="S0DBA")
        missing_email = await slack_error(lambda: client.users_lookupByEmail(email="no@x.io"))
        missing_group = await slack_error(lambda: client.usergroups_users_list(usergroup="S0X"))
        missing_user = await slack_error(lambda: client.users_info(user="U0NOPE"))

    assert info["user"]["profile"]["email"] == "zed@example.com"
    assert info["user"]["tz"] == "Europe/Paris"
    assert info["user"]["is_bot"] is False
    assert found["user"]["id"] == "U0ZED"
    assert group["users"] == ["U0ZED"]
    assert missing_email["error"] == "users_not_found"
    assert missing_group["error"] == "no_such_subteam"
    assert missing_user["error"] == "user_not_found"


async def test_demo_directory_has_users_groups_and_an_incident_channel(
    client: AsyncWebClient,
) -> None:
    """The default workspace knows approvers, a deleted user and an incident channel's topic."""
    approvers = await client.usergroups_users_list(usergroup="S0APPROVERS")
    dave = await client.users_info(user="U0DAVE")
    incident = await client.conversations_info(channel="C0INC42")
    gone = await slack_error(lambda: client.users_lookupByEmail(email="dave@example.com"))

    assert approvers["users"] == ["U0BOB", "U0CAROL"]
    assert dave["user"]["deleted"] is True
    assert incident["channel"]["name"] == "inc-42-orders-db"
    assert incident["channel"]["topic"]["value"].startswith("INC-42")
    assert gone["error"] == "users_not_found"


async def test_auth_test_describes_the_bot(client: AsyncWebClient) -> None:
    """auth.test answers the bot's user, bot and team ids."""
    resp = await client.auth_test()
    assert (resp["user_id"], resp["bot_id"], resp["team_id"]) == (
        "U0GRANTBOT",
        "B0GRANTBOT",
        "T0001",
    )


# --- views ----------------------------------------------------------------------------------
async def test_views_open_accepts_an_issued_trigger_once() -> None:
    """views.open takes an emulator-issued trigger once, within 3 s; otherwise Slack's errors."""
    clock = FakeClock()
    async with SlackEmulator(clock=clock) as emu:
        client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
        trigger = emu.issue_trigger_id("U0ALICE")
        opened = await client.views_open(trigger_id=trigger, view=modal())
        reused = await slack_error(lambda: client.views_open(trigger_id=trigger, view=modal()))
        unknown = await slack_error(
            lambda: client.views_open(trigger_id="1.2.deadbeef", view=modal())
        )
        stale = emu.issue_trigger_id("U0ALICE")
        clock.now += TRIGGER_ID_TTL_S + 0.1
        expired = await slack_error(lambda: client.views_open(trigger_id=stale, view=modal()))

        assert opened["view"]["id"].startswith("V")
        assert opened["view"]["hash"]
        assert opened["view"]["callback_id"] == "request_modal"
        assert [v.user for v in emu.views()] == ["U0ALICE"]
    assert reused["error"] == "exchanged_trigger_id"
    assert unknown["error"] == "invalid_trigger_id"
    assert expired["error"] == "expired_trigger_id"


async def test_views_update_by_id_or_external_id_and_checks_hash(
    emu: SlackEmulator, client: AsyncWebClient
) -> None:
    """views.update finds a view by view_id or external_id, and refuses a stale hash."""
    trigger = emu.issue_trigger_id("U0ALICE")
    opened = await client.views_open(trigger_id=trigger, view=modal(external_id="req-1"))
    view_id, old_hash = opened["view"]["id"], opened["view"]["hash"]

    by_id = await client.views_update(view_id=view_id, view=modal("Step 2"), hash=old_hash)
    by_external = await client.views_update(external_id="req-1", view=modal("Step 3"))
    conflict = await slack_error(
        lambda: client.views_update(view_id=view_id, view=modal(), hash=old_hash)
    )
    missing = await slack_error(lambda: client.views_update(view_id="V0NOPE", view=modal()))

    assert by_id["view"]["title"]["text"] == "Step 2"
    assert by_external["view"]["id"] == view_id
    view = emu.view(view_id)
    assert view is not None
    assert view.view["title"]["text"] == "Step 3"
    assert len(view.history) == 2
    assert conflict["error"] == "hash_conflict"
    assert missing["error"] == "not_found"


async def test_views_publish_sets_the_users_home(
    emu: SlackEmulator, client: AsyncWebClient
) -> None:
    """views.publish stores the App Home per user; publishing again replaces it."""
    await client.views_publish(user_id="U0BOB", view={"type": "home", "blocks": [section("1")]})
    resp = await client.views_publish(
        user_id="U0BOB", view={"type": "home", "blocks": [section("2")]}
    )
    home = emu.home_view("U0BOB")
    assert home is not None
    assert home["id"] == resp["view"]["id"]
    assert home["blocks"] == [section("2")]
    assert emu.home_view("U0ALICE") is None


# --- limits ---------------------------------------------------------------------------------
def _over(limit: int) -> str:
    return "x" * (limit + 1)


MESSAGE_LIMIT_CASES = {
    "blocks": (
        [section("b")] * (MAX_MESSAGE_BLOCKS + 1),
        "no more than 50 items allowed [json-pointer:/blocks]",
    ),
    "section_text": (
        [section(_over(MAX_SECTION_TEXT_CHARS))],
        "must be less than 3001 characters [json-pointer:/blocks/0/text/text]",
    ),
    "header_text": (
        [{"type": "header", "text": {"type": "plain_text", "text": _over(MAX_HEADER_TEXT_CHARS)}}],
        "must be less than 151 characters [json-pointer:/blocks/0/text/text]",
    ),
    "button_label": (
        [actions(button("a", "v", label=_over(MAX_BUTTON_TEXT_CHARS)))],
        "must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]",
    ),
    "button_value": (
        [actions(button("a", _over(MAX_BUTTON_VALUE_CHARS)))],
        "must be less than 2001 characters [json-pointer:/blocks/0/elements/0/value]",
    ),
    "action_id": (
        [actions(button(_over(MAX_ACTION_ID_CHARS), "v"))],
        "must be less than 256 characters [json-pointer:/blocks/0/elements/0/action_id]",
    ),
    "block_id": (
        [section("b", block_id=_over(MAX_BLOCK_ID_CHARS))],
        "must be less than 256 characters [json-pointer:/blocks/0/block_id]",
    ),
    "actions_elements": (
        [actions(*[button(f"a{i}", "v") for i in range(MAX_ACTIONS_ELEMENTS + 1)])],
        "no more than 25 items allowed [json-pointer:/blocks/0/elements]",
    ),
}


@pytest.mark.parametrize("case", MESSAGE_LIMIT_CASES)
async def test_message_block_limits_answer_invalid_blocks(
    emu: SlackEmulator, client: AsyncWebClient, case: str
) -> None:
    """Each Block Kit limit on a message is enforced with invalid_blocks and Slack's message."""
    blocks, problem = MESSAGE_LIMIT_CASES[case]
    error = await slack_error(
        lambda: client.chat_postMessage(channel="C0ACCESS", text="t", blocks=blocks)
    )
    assert error["error"] == "invalid_blocks"
    assert error["errors"] == [problem]
    assert error["response_metadata"]["messages"] == [f"[ERROR] {problem}"]
    assert emu.messages("C0ACCESS") == []


async def test_message_exactly_at_every_limit_is_accepted(client: AsyncWebClient) -> None:
    """Limits are inclusive: a message at each maximum is posted."""
    at_limit = [
        section("x" * MAX_SECTION_TEXT_CHARS, block_id="b" * MAX_BLOCK_ID_CHARS),
        {"type": "header", "text": {"type": "plain_text", "text": "h" * MAX_HEADER_TEXT_CHARS}},
        actions(
            button(
                "a" * MAX_ACTION_ID_CHARS,
                "v" * MAX_BUTTON_VALUE_CHARS,
                label="l" * MAX_BUTTON_TEXT_CHARS,
            ),
            *[button(f"a{i}", "v") for i in range(MAX_ACTIONS_ELEMENTS - 1)],
        ),
    ]
    at_limit += [section("pad")] * (MAX_MESSAGE_BLOCKS - len(at_limit))
    resp = await client.chat_postMessage(
        channel="C0ACCESS", text="t" * MAX_MESSAGE_TEXT_CHARS, blocks=at_limit
    )
    assert resp["ok"] is True


async def test_text_over_40000_chars_is_msg_too_long(client: AsyncWebClient) -> None:
    """Top-level text beyond 40,000 characters answers msg_too_long, on post and on update."""
    posted = await client.chat_postMessage(channel="C0ACCESS", text="short")
    too_long = _over(MAX_MESSAGE_TEXT_CHARS)
    on_post = await slack_error(lambda: client.chat_postMessage(channel="C0ACCESS", text=too_long))
    on_update = await slack_error(
        lambda: client.chat_update(channel="C0ACCESS", ts=posted["ts"], text=too_long)
    )
    assert on_post["error"] == on_update["error"] == "msg_too_long"


VIEW_LIMIT_CASES = {
    "title": (
        modal(_over(MAX_MODAL_TITLE_CHARS)),
        "must be less than 25 characters [json-pointer:/view/title/text]",
    ),
    "blocks": (
        {**modal(), "blocks": [section("b")] * (MAX_VIEW_BLOCKS + 1)},
        "no more than 100 items allowed [json-pointer:/view/blocks]",
    ),
    "private_metadata": (
        modal(private_metadata=_over(MAX_PRIVATE_METADATA_CHARS)),
        "must be less than 3001 characters [json-pointer:/view/private_metadata]",
    ),
}


@pytest.mark.parametrize("case", VIEW_LIMIT_CASES)
async def test_modal_limits_answer_invalid_arguments(
    emu: SlackEmulator, client: AsyncWebClient, case: str
) -> None:
    """views.open refuses a modal over a limit as Slack does: invalid_arguments plus messages."""
    view, problem = VIEW_LIMIT_CASES[case]
    trigger = emu.issue_trigger_id("U0ALICE")
    error = await slack_error(lambda: client.views_open(trigger_id=trigger, view=view))
    assert error["error"] == "invalid_arguments"
    assert error["response_metadata"]["messages"] == [f"[ERROR] {problem}"]
    assert emu.views() == []


async def test_home_view_accepts_100_blocks_but_not_101(client: AsyncWebClient) -> None:
    """An App Home holds up to 100 blocks."""
    full = {"type": "home", "blocks": [section("b")] * MAX_VIEW_BLOCKS}
    await client.views_publish(user_id="U0BOB", view=full)
    over = {"type": "home", "blocks": [section("b")] * (MAX_VIEW_BLOCKS + 1)}
    error = await slack_error(lambda: client.views_publish(user_id="U0BOB", view=over))
    assert error["error"] == "invalid_arguments"


# --- auth, wire formats ---------------------------------------------------------------------
async def test_wrong_token_is_invalid_auth_and_missing_token_is_not_authed(
    emu: SlackEmulator,
) -> None:
    """A wrong bot token answers invalid_auth; no token at all answers not_authed."""
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=emu.api_url)
    anonymous = AsyncWebClient(base_url=emu.api_url)
    bad = await slack_error(lambda: wrong.chat_postMessage(channel="C0ACCESS", text="x"))
    none = await slack_error(lambda: anonymous.auth_test())
    assert bad["error"] == "invalid_auth"
    assert none["error"] == "not_authed"
    assert emu.messages("C0ACCESS") == []


async def test_form_bodies_with_token_field_and_json_string_blocks_are_understood(
    emu: SlackEmulator,
) -> None:
    """A form-encoded call carries its token as a field and blocks as a JSON string; a JSON
    body's token field is ignored (Slack wants a Bearer header), and unknown methods say so."""
    blocks = '[{"type": "section", "text": {"type": "plain_text", "text": "hi"}}]'
    form = {"token": emu.bot_token, "channel": "C0ACCESS", "text": "hi", "blocks": blocks}
    async with aiohttp.ClientSession() as http:
        async with http.post(emu.api_url + "chat.postMessage", data=form) as r:
            posted = await r.json()
        async with http.post(emu.api_url + "auth.test", json={"token": emu.bot_token}) as r:
            json_token = await r.json()
        async with http.post(emu.api_url + "chat.unfurlEverything", data=form) as r:
            unknown = await r.json()
    assert posted["ok"] is True
    message = emu.last_message("C0ACCESS")
    assert message is not None
    assert message.blocks[0]["text"]["text"] == "hi"
    assert json_token == {"ok": False, "error": "not_authed"}
    assert unknown["error"] == "unknown_method"


# --- faults ---------------------------------------------------------------------------------
async def test_ratelimit_is_retried_by_slack_sdk_after_retry_after(emu: SlackEmulator) -> None:
    """A 429 with Retry-After is retried by AsyncRateLimitErrorRetryHandler and then succeeds."""
    emu.faults.ratelimit("chat.postMessage", times=1, retry_after_s=1)
    client = AsyncWebClient(
        token=emu.bot_token,
        base_url=emu.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    started = time.monotonic()
    resp = await client.chat_postMessage(channel="C0ACCESS", text="eventually")
    elapsed = time.monotonic() - started

    assert resp["ok"] is True
    assert elapsed >= 1.0
    statuses = [(c.status, c.error) for c in emu.calls("chat.postMessage")]
    assert statuses == [(429, "ratelimited"), (200, None)]
    assert [m.text for m in emu.messages("C0ACCESS")] == ["eventually"]


async def test_ratelimit_without_retry_surfaces_429_and_retry_after(
    emu: SlackEmulator, client: AsyncWebClient
) -> None:
    """Without a retry handler the caller sees status 429, error ratelimited, Retry-After."""
    emu.faults.ratelimit("chat.update", retry_after_s=7)
    with pytest.raises(SlackApiError) as caught:
        await client.chat_update(channel="C0ACCESS", ts="1.000100", text="x")
    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "7"
    assert caught.value.response["error"] == "ratelimited"


async def test_server_error_fails_then_retry_handler_recovers(
    emu: SlackEmulator, client: AsyncWebClient
) -> None:
    """An injected 500 changes nothing and fails the call; AsyncServerErrorRetryHandler recovers."""
    emu.faults.server_error("chat.postMessage", times=2)
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="C0ACCESS", text="lost")
    retrying = AsyncWebClient(
        token=emu.bot_token,
        base_url=emu.api_url,
        retry_handlers=[AsyncServerErrorRetryHandler(max_retry_count=1)],
    )
    resp = await retrying.chat_postMessage(channel="C0ACCESS", text="kept")

    assert caught.value.response.status_code == 500
    assert resp["ok"] is True
    assert [m.text for m in emu.messages("C0ACCESS")] == ["kept"]


async def test_delay_fault_slows_the_answer(emu: SlackEmulator, client: AsyncWebClient) -> None:
    """A delay fault answers normally, after the delay, once."""
    emu.faults.delay("auth.test", delay_s=0.3)
    started = time.monotonic()
    await client.auth_test()
    slow = time.monotonic() - started
    started = time.monotonic()
    await client.auth_test()
    fast = time.monotonic() - started
    assert slow >= 0.3 > fast


async def test_latency_delays_every_web_api_call_and_response_url_post() -> None:
    """With ``latency_s`` every Web API method and every response_url post is answered that
    long after it arrived, and each call records both moments."""
    async with SlackEmulator(latency_s=0.2) as emu:
        client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
        url = emu.issue_response_url("U0ALICE", "C0GENERAL")
        await client.auth_test()
        await client.chat_postMessage(channel="U0BOB", text="hello")
        async with aiohttp.ClientSession() as http, http.post(url, json={"text": "x"}) as resp:
            assert resp.status == 200
        calls = emu.calls()
    assert [c.method for c in calls] == ["auth.test", "chat.postMessage", RESPONSE_URL_METHOD]
    # asyncio may wake a timer up to one clock tick early: allow 10 ms of it.
    assert all(c.at - c.received_at >= 0.19 for c in calls)


async def test_latency_can_be_set_over_http_and_calls_polled_since_an_offset(
    emu: SlackEmulator, client: AsyncWebClient
) -> None:
    """POST /_emulator/latency changes the latency of later calls; /calls?since=N returns only
    the calls after the first N, with the offset to poll from next."""
    await client.auth_test()
    async with EmulatorControl(emu.base_url) as control:
        first, offset = await control.calls_since(0)
        await control.set_latency(200)
        await client.chat_postMessage(channel="C0ACCESS", text="slow")
        await client.auth_test()
        later, end = await control.calls_since(offset, method="chat.postMessage")
        none_yet, same = await control.calls_since(end)
        async with aiohttp.ClientSession() as http:
            bad = f"{emu.base_url}_emulator/latency"
            async with http.post(bad, json={"latency_ms": -1}) as refused:
                assert refused.status == 400
    assert [c["method"] for c in first] == ["auth.test"]
    assert offset == 1 and end == 3 and same == 3 and none_yet == []
    assert [c["args"]["text"] for c in later] == ["slow"]
    assert later[0]["at"] - later[0]["received_at"] >= 0.19
    assert emu.latency_s == 0.2


async def test_wait_for_times_out_naming_what_it_saw(emu: SlackEmulator) -> None:
    """wait_for raises TimeoutError, listing the calls so far, when the condition never holds."""
    with pytest.raises(TimeoutError, match=r"chat\.postMessage"):
        await emu.wait_for("chat.postMessage", timeout_s=0.05)


# --- response_url ---------------------------------------------------------------------------
async def test_response_url_posts_ephemeral_in_channel_replace_and_delete(
    emu: SlackEmulator, client: AsyncWebClient
) -> None:
    """response_url posts make ephemeral or in-channel messages, replace or delete the
    original, refuse bad blocks without using up the URL, and expire after five uses."""
    ok = (200, {"ok": True})
    posted = await client.chat_postMessage(channel="C0ACCESS", text="approve?")
    url = emu.issue_response_url("U0BOB", "C0ACCESS", message_ts=posted["ts"])
    async with aiohttp.ClientSession() as http:

        async def post(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            async with http.post(url, json=body) as r:
                return r.status, await r.json()

        assert await post({"text": "just you"}) == ok
        assert await post({"text": "everyone", "response_type": "in_channel"}) == ok
        assert await post({"text": "approved", "replace_original": True}) == ok
        replaced = emu.messages("C0ACCESS")[0]
        assert replaced.text == "approved"
        assert replaced.history[0].text == "approve?"
        assert await post({"delete_original": True}) == ok
        bad_blocks = [section(_over(MAX_SECTION_TEXT_CHARS))]
        status, refused = await post({"text": "x", "blocks": bad_blocks})
        assert (status, refused["error"]) == (400, "invalid_blocks")
        assert await post({"text": "fifth", "response_type": "in_channel"}) == ok
        assert await post({"text": "sixth"}) == (404, {"ok": False, "error": "expired_url"})

    assert [e.text for e in emu.ephemerals(user="U0BOB")] == ["just you"]
    assert [m.text for m in emu.messages("C0ACCESS")] == ["everyone", "fifth"]
    assert len(emu.calls("response_url")) == RESPONSE_URL_MAX_USES + 2


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


# --- standalone process ---------------------------------------------------------------------
@pytest.fixture
def emulator_process() -> Iterator[dict[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.devtools.slack_emulator", "--port", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        printed: dict[str, str] = {}
        while len(printed) < 3:
            line = proc.stdout.readline()
            assert line, "the emulator exited before printing its URLs"
            key, _, value = line.strip().partition("=")
            printed[key] = value
        yield printed
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0


async def test_standalone_process_serves_api_and_control_endpoints(
    emulator_process: dict[str, str],
) -> None:
    """``python -m bot.devtools.slack_emulator --port 0`` prints its URL, answers the Web API,
    and reports, faults and resets calls over /_emulator/."""
    api_url = emulator_process["SLACK_API_URL"]
    assert re.match(r"^http://127\.0\.0\.1:\d+/api/$", api_url)
    client = AsyncWebClient(token=emulator_process["SLACK_BOT_TOKEN"], base_url=api_url)
    async with EmulatorControl(emulator_process["SLACK_EMULATOR_URL"]) as control:
        await client.chat_postMessage(channel="C0ACCESS", text="from afar")
        await control.inject_fault("auth.test", Fault(FaultKind.SERVER_ERROR, status=503))
        failed = await slack_error(lambda: client.auth_test())
        calls = await control.calls()
        state = await control.state()
        await control.reset()
        after_reset = await control.calls()

    assert [c["method"] for c in calls] == ["chat.postMessage", "auth.test"]
    assert calls[0]["args"]["text"] == "from afar"
    assert calls[0]["response"]["ok"] is True
    assert calls[1]["status"] == 503
    assert failed["error"] == "service_unavailable"
    assert state["messages"]["C0ACCESS"][0]["text"] == "from afar"
    assert after_reset == []
