"""Answering one person privately about one interaction, and turning errors into answers.

A slash command or a click in a message comes with a ``response_url``: an ephemeral reply
goes there. Elsewhere (a submitted modal, a click in App Home, a mention), or when the
response_url fails, the answer is an ephemeral message in the channel when there is one,
else a DM from the app.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from slack_sdk.web.async_client import AsyncWebClient

from bot import metrics
from bot.errors import GrantbotError, SlackError, StoreUnavailable
from bot.slack.api import post_to_response_url
from bot.slack.blocks import kit, messages
from bot.slack.retry import BACKOFF_S

log = logging.getLogger(__name__)

UNEXPECTED_TEXT: Final = "Something went wrong on grantbot's side; it has been logged."


def error_reply(error: BaseException) -> kit.Message:
    """What a person is told about ``error``: grantbot's own one-line message, "try again
    shortly" when Redis is down, and nothing internal for anything unexpected."""
    if isinstance(error, StoreUnavailable):
        return messages.error_message(messages.STORE_DOWN_TEXT)
    if isinstance(error, GrantbotError):
        return messages.error_message(str(error))
    return messages.error_message(UNEXPECTED_TEXT)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """Where to answer ``user`` privately: ``response_url``, else an ephemeral message in
    ``channel`` (in ``thread_ts``), else the app's DM with the user."""

    client: AsyncWebClient
    user: str
    response_url: str | None = None
    channel: str | None = None
    thread_ts: str | None = None

    async def send(self, message: kit.Message) -> None:
        """Deliver ``message``: to the response_url, and if that fails in any way, as an
        ephemeral in the channel, and if that fails too, by DM. Each failure is logged and
        counted; a message nobody could take is logged once more (it changes no state)."""
        if self.response_url:
            try:
                await post_to_response_url(
                    self.response_url,
                    session=self.client.session,
                    timeout_s=float(self.client.timeout),
                    backoff_s=getattr(self.client, "retry_backoff_s", BACKOFF_S),
                    response_type="ephemeral",
                    replace_original=False,
                    text=message.text,
                    blocks=message.blocks,
                )
                return
            except SlackError as e:
                self._failed(e)
        if self.channel and not self.channel.startswith("D"):
            try:
                await self.client.chat_postEphemeral(
                    channel=self.channel,
                    user=self.user,
                    thread_ts=self.thread_ts,
                    **message.as_kwargs(),
                )
                return
            except SlackError as e:
                self._failed(e)
        try:
            await self.client.chat_postMessage(channel=self.user, **message.as_kwargs())
        except SlackError as e:
            self._failed(e)
            log.warning("could not answer %s by any route", self.user)

    def _failed(self, error: SlackError) -> None:
        metrics.record_slack_api_error("reply", error)
        log.warning("could not answer %s via %s: %s", self.user, error.method, error.code)

    async def error(self, error: BaseException) -> None:
        """Tell the user about ``error``; log it first when it is not one of ours."""
        if not isinstance(error, GrantbotError):
            log.error("unexpected error answering %s", self.user, exc_info=error)
        await self.send(error_reply(error))
