"""App Home: published for a person from the service's view of their grants."""

from __future__ import annotations

import logging

from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import GrantbotError, SlackError
from bot.slack.blocks.home import app_home
from bot.slack.context import SlackDeps

log = logging.getLogger(__name__)


async def publish_home(deps: SlackDeps, client: AsyncWebClient, user: str) -> None:
    """views.publish the user's App Home from the store as it is now."""
    try:
        mine = await deps.service.my_grants(user)
        waiting = await deps.service.waiting_for(user)
        view = app_home(mine=mine, waiting=waiting, now=deps.clock())
        await client.views_publish(user_id=user, view=view)
    except GrantbotError as e:  # SlackError among them
        code = e.code if isinstance(e, SlackError) else str(e)
        log.warning("could not publish App Home for %s: %s", user, code)
