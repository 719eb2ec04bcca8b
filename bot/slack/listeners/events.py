"""Events: ``app_mention`` (the grammar, answered in the thread) and ``app_home_opened``.

Bolt acknowledges Events API deliveries before the listener runs; the work goes to
background tasks either way. Retried deliveries are dropped by the dedupe middleware.
"""

from __future__ import annotations

import re
from typing import Any, Final

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.model import Origin
from bot.slack import ids
from bot.slack.asking import file_and_announce, origin_for
from bot.slack.blocks import messages
from bot.slack.commands.dispatch import run_command
from bot.slack.commands.grammar import parse_command
from bot.slack.commands.parsed import RequestAccess
from bot.slack.context import SlackDeps
from bot.slack.home import publish_home
from bot.slack.reply import Reply

#: A leading mention of the bot (``<@U0GRANTBOT>`` or ``<@U0GRANTBOT|grantbot>``).
_LEADING_MENTION: Final = re.compile(r"^\s*<@[A-Z0-9]+(?:\|[^>]*)?>[\s:,]*")


def mention_text(text: str) -> str:
    """The command text after the leading bot mention."""
    return _LEADING_MENTION.sub("", text, count=1).strip()


def register(app: AsyncApp, deps: SlackDeps) -> None:
    @app.event(ids.MENTION_EVENT)
    async def mentioned(
        ack: AsyncAck, event: dict[str, Any], client: AsyncWebClient, request: AsyncBoltRequest
    ) -> None:
        await ack()
        deps.later(request, on_mention(deps, client, event), name="mention")

    @app.event(ids.HOME_OPENED_EVENT)
    async def home_opened(
        ack: AsyncAck, event: dict[str, Any], client: AsyncWebClient, request: AsyncBoltRequest
    ) -> None:
        await ack()
        if event.get("tab", "home") == "home" and event.get("user"):
            deps.later(request, publish_home(deps, client, str(event["user"])), name="home")


async def on_mention(deps: SlackDeps, client: AsyncWebClient, event: dict[str, Any]) -> None:
    """``@grantbot request ...`` in a channel or thread. A filed request is confirmed in the
    thread (its outcome is posted there later); anything else is answered privately."""
    user = str(event.get("user", ""))
    channel = str(event.get("channel", "")) or None
    thread_ts = str(event.get("thread_ts") or event.get("ts") or "") or None
    private = Reply(client=client, user=user, channel=channel, thread_ts=thread_ts)
    try:
        command = parse_command(mention_text(str(event.get("text", ""))))
    except Exception as e:
        await private.error(e)
        return
    channel_name = await deps.directory.channel_name(channel) if channel else None
    origin = await origin_for(
        deps, surface="mention", channel=channel, channel_name=channel_name, thread_ts=thread_ts
    )
    if isinstance(command, RequestAccess) and channel:
        await _request_in_thread(deps, client, command, user, origin, private)
        return
    await run_command(
        deps, client, command, user=user, origin=origin, reply=private, trigger_id=None
    )


async def _request_in_thread(
    deps: SlackDeps,
    client: AsyncWebClient,
    command: RequestAccess,
    user: str,
    origin: Origin,
    private: Reply,
) -> None:
    try:
        result, announced = await file_and_announce(deps, client, user, command, origin)
    except Exception as e:
        await private.error(e)
        return
    # A pending request is announced in the thread (with why it was not auto-approved, if
    # something stood in the way); a decided one was told there by the notifier with its
    # outcome. Either way the requester hears privately when the thread did not.
    if announced:
        return
    message = messages.request_confirmation(
        result.grant,
        result.rule,
        now=deps.clock(),
        note=result.note,
        credential_sent=result.credential is not None,
    )
    await private.send(message)
