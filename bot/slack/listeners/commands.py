"""``/access``: ack at once, then parse, call the service and answer privately."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import ids
from bot.slack.asking import origin_for
from bot.slack.commands.dispatch import run_command
from bot.slack.commands.grammar import parse_command
from bot.slack.context import SlackDeps
from bot.slack.reply import Reply


def register(app: AsyncApp, deps: SlackDeps) -> None:
    @app.command(ids.COMMAND)
    async def access_command(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, request: AsyncBoltRequest
    ) -> None:
        await ack()
        # A bare `/access` opens the form: its trigger_id lapses 3 s after Slack sent it.
        opens_form = not str(body.get("text", "")).strip()
        deps.later(request, handle(deps, client, body), name="command", urgent=opens_form)


async def handle(deps: SlackDeps, client: AsyncWebClient, body: dict[str, Any]) -> None:
    """The work after the ack. Usage errors come back with the grammar's own message."""
    user = str(body.get("user_id", ""))
    channel = body.get("channel_id") or None
    reply = Reply(client=client, user=user, response_url=body.get("response_url"), channel=channel)
    try:
        command = parse_command(str(body.get("text", "")))
    except Exception as e:  # UsageError, with the grammar's specific message
        await reply.error(e)
        return
    origin = await origin_for(
        deps, surface="command", channel=channel, channel_name=body.get("channel_name")
    )
    await run_command(
        deps,
        client,
        command,
        user=user,
        origin=origin,
        reply=reply,
        trigger_id=body.get("trigger_id"),
    )
