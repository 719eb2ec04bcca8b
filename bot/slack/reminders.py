"""The lifecycle's messages in Slack (issue 13): reminders with their buttons, the reminders
updated with what came of them, and the notice that an approved grant waits for its start.

A reminder goes to the requester's DM and, when the request came from an incident channel or
a thread, to that thread too; each copy is remembered (kind ``reminder``, the grant's message
refs) so both show the outcome once a button was used. Implements
:class:`bot.lifecycle.reminders.ReminderNotices` and
:class:`bot.lifecycle.starts.StartNotices`; never raises into them (a Slack failure is logged
and counted).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from slack_sdk.web.async_client import AsyncWebClient

from bot import metrics
from bot.domain.model import Grant, Status
from bot.errors import SlackError
from bot.notify import Notifier, WithoutEnds
from bot.ports import MessageRefStore
from bot.slack.blocks import reminders as blocks
from bot.slack.blocks.kit import Message
from bot.slack.notifier import ORIGIN_ROOT

log = logging.getLogger(__name__)

#: Message-ref kinds: a reminder with its buttons, and one whose outcome it shows.
REMINDER: Final = "reminder"
REMINDER_DONE: Final = "reminder-done"


class SlackLifecycleNotices:
    """Posts and updates the lifecycle's messages through ``client``."""

    def __init__(
        self,
        *,
        client: AsyncWebClient,
        refs: MessageRefStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.refs = refs
        self.clock = clock

    async def remind(self, grant: Grant, *, offer_s: int | None) -> None:
        if grant.client is not None:  # no DM to a machine client (bot.api delivers to it)
            return
        message = blocks.reminder(grant, offer_s=offer_s, now=self.clock())
        posted = [await self._post(grant.id, grant.requester, message)]
        origin = grant.origin
        from_thread = origin.surface == "mention" or origin.incident is not None
        if from_thread and origin.channel and not origin.channel.startswith("D"):
            thread_ts = origin.thread_ts or await self._origin_root(grant.id)
            posted.append(await self._post(grant.id, origin.channel, message, thread_ts=thread_ts))
        refs = {ref: REMINDER for ref in posted if ref is not None}
        if refs:
            try:
                await self.refs.remember(grant.id, refs)
            except Exception as e:  # the reminder is out; its outcome just cannot be shown
                log.warning("could not remember the reminder of %s: %s", grant.id, e)

    async def reminder_outcome(self, grant_id: str, text: str) -> None:
        try:
            refs = await self.refs.read(grant_id)
        except Exception as e:
            log.warning("cannot read the reminders of %s: %s", grant_id, e)
            return
        message = blocks.reminder_done(grant_id, text)
        for (channel, ts), kind in refs.items():
            if kind not in (REMINDER, REMINDER_DONE):
                continue
            try:
                await self.client.chat_update(channel=channel, ts=ts, **message.as_kwargs())
            except SlackError as e:
                metrics.record_slack_api_error("chat.update", e)
                log.warning("could not update the reminder of %s: %s", grant_id, e.code)
                continue
            if kind == REMINDER:
                await self._remember(grant_id, (channel, ts), REMINDER_DONE)

    async def scheduled(self, grant: Grant) -> None:
        if grant.client is not None:
            return
        await self._post(grant.id, grant.requester, blocks.scheduled_notice(grant))

    async def _post(
        self, grant_id: str, channel: str, message: Message, *, thread_ts: str | None = None
    ) -> tuple[str, str] | None:
        try:
            resp = await self.client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, unfurl_links=False, **message.as_kwargs()
            )
        except SlackError as e:
            metrics.record_slack_api_error("chat.postMessage", e)
            log.warning("could not post the lifecycle message of %s: %s", grant_id, e.code)
            return None
        return (str(resp.get("channel") or channel), str(resp.get("ts")))

    async def _origin_root(self, grant_id: str) -> str | None:
        try:
            refs = await self.refs.read(grant_id)
        except Exception:
            return None
        return next((ts for (_, ts), kind in refs.items() if kind == ORIGIN_ROOT), None)

    async def _remember(self, grant_id: str, ref: tuple[str, str], kind: str) -> None:
        try:
            await self.refs.remember(grant_id, {ref: kind})
        except Exception as e:
            log.warning("could not remember a reminder of %s: %s", grant_id, e)


class FollowingReminders(WithoutEnds):
    """The service's notifier in serve: :class:`~bot.notify.WithoutEnds` (ends come from the
    audit stream), which also shows on a grant's reminder what a person decided on an
    extension asked from it (approved or denied), since that comes after the click."""

    def __init__(self, inner: Notifier, notices: SlackLifecycleNotices) -> None:
        super().__init__(inner)
        self.notices = notices

    async def decided(self, grant: Grant) -> None:
        await super().decided(grant)
        decided_by_person = grant.auto_approved is None and grant.decided_by is not None
        if (
            grant.kind == "extension"
            and grant.parent_id is not None
            and decided_by_person
            and grant.status in (Status.APPROVED, Status.DENIED)
        ):
            await self.notices.reminder_outcome(grant.parent_id, blocks.extension_decided(grant))
