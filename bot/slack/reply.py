"""Answering one person privately about one interaction, and turning errors into answers.

A slash command or a click in a message comes with a ``response_url``: an ephemeral reply
goes there. Elsewhere (a submitted modal, a click in App Home, a mention) the answer is an
ephemeral message in the channel when there is one, else a DM from the app.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Final

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot import metrics
from bot.errors import GrantbotError, StoreUnavailable
from bot.slack import blocks
from bot.slack.retry import API_LOGGER, retry_handlers

log = logging.getLogger(__name__)

UNEXPECTED_TEXT: Final = "Something went wrong on grantbot's side; it has been logged."
_SLACK_ERRORS = (SlackApiError, SlackClientError, OSError, asyncio.TimeoutError)


def error_reply(error: BaseException) -> blocks.Message:
    """What a person is told about ``error``: grantbot's own one-line message, "try again
    shortly" when Redis is down, and nothing internal for anything unexpected."""
    if isinstance(error, StoreUnavailable):
        return blocks.error_message(blocks.STORE_DOWN_TEXT)
    if isinstance(error, GrantbotError):
        return blocks.error_message(str(error))
    return blocks.error_message(UNEXPECTED_TEXT)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """Where to answer ``user`` privately: ``response_url``, else an ephemeral message in
    ``channel`` (in ``thread_ts``), else the app's DM with the user."""

    client: AsyncWebClient
    user: str
    response_url: str | None = None
    channel: str | None = None
    thread_ts: str | None = None

    async def send(self, message: blocks.Message) -> None:
        """Deliver ``message``; a failure is logged (it never changes any state)."""
        try:
            if self.response_url:
                webhook = AsyncWebhookClient(
                    self.response_url,
                    session=self.client.session,
                    retry_handlers=retry_handlers(),
                    logger=API_LOGGER,
                )
                resp = await webhook.send(
                    response_type="ephemeral",
                    replace_original=False,
                    text=message.text,
                    blocks=message.blocks,
                )
                if resp.status_code == 200:
                    return
                log.warning("response_url answered %s; falling back", resp.status_code)
            if self.channel and not self.channel.startswith("D"):
                await self.client.chat_postEphemeral(
                    channel=self.channel,
                    user=self.user,
                    thread_ts=self.thread_ts,
                    **message.as_kwargs(),
                )
                return
            await self.client.chat_postMessage(channel=self.user, **message.as_kwargs())
        except _SLACK_ERRORS as e:
            metrics.record_slack_api_error("reply", e)
            code = e.response.get("error") if isinstance(e, SlackApiError) else type(e).__name__
            log.warning("could not answer %s: %s", self.user, code)

    async def error(self, error: BaseException) -> None:
        """Tell the user about ``error``; log it first when it is not one of ours."""
        if not isinstance(error, GrantbotError):
            log.error("unexpected error answering %s", self.user, exc_info=error)
        await self.send(error_reply(error))
