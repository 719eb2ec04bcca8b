"""The global shortcut "Request access" (opens the request form) and the form's
external_select asking for options as the person types (Bolt's ``app.options``).

Options must be answered within Slack's 3 s in the ack itself: the answer reads only the
policy and cached user groups (:func:`bot.slack.modals.request_extras.search_targets`)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.duration import format_duration
from bot.slack import ids
from bot.slack.asking import open_request_form
from bot.slack.context import SlackDeps
from bot.slack.listeners.actions import user_of
from bot.slack.modals.request_extras import search_targets
from bot.slack.reply import Reply

log = logging.getLogger(__name__)


def register(app: AsyncApp, deps: SlackDeps) -> None:
    @app.shortcut(ids.REQUEST_SHORTCUT)
    async def request_shortcut(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, request: AsyncBoltRequest
    ) -> None:
        await ack()
        user, trigger_id = user_of(body), str(body.get("trigger_id") or "")
        deps.later(request, _open(deps, client, user, trigger_id), name="shortcut", urgent=True)

    @app.options(ids.FORM_TARGET_ACTION)
    async def target_options(ack: AsyncAck, body: dict[str, Any]) -> None:
        user, query = user_of(body), str(body.get("value") or "")[:100]
        try:
            rules = await deps.service.requestable(user)
            bundles, _ = await deps.service.asking_options(user)
        except Exception as e:  # an empty list says "nothing found"; the log says why
            log.warning("options for the request form failed: %s", type(e).__name__)
            await ack(options=[])
            return
        pairs = [
            (r.resource, r.role, f"{r.role} · up to {format_duration(r.max_duration_s)}")
            for r in rules
        ]
        await ack(option_groups=search_targets(pairs, bundles, query))


async def _open(deps: SlackDeps, client: AsyncWebClient, user: str, trigger_id: str) -> None:
    try:
        await open_request_form(
            deps, client, user=user, trigger_id=trigger_id, channel=None, channel_name=None
        )
    except Exception as e:
        await Reply(client=client, user=user).error(e)
