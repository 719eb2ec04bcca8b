"""What the Slack listeners need, assembled once per process, and how they hand off work."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from slack_bolt.request.async_request import AsyncBoltRequest

from bot.ports import FirstSeen
from bot.service import GrantService
from bot.slack.dedupe import delivery_token
from bot.slack.directory import SlackDirectory
from bot.slack.notifier import SlackNotifier
from bot.slack.reminder_buttons import ReminderButtons
from bot.slack.tasks import BackgroundTasks

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class SlackDeps:
    """The service (all authority lives there), the Slack directory (channel names for
    incident detection), the owner of post-ack work, the delivery dedupe (None: off), the
    Slack notifier (which keeps the messages a request was announced with; None: none kept)
    and the clock (epoch seconds)."""

    service: GrantService
    directory: SlackDirectory
    tasks: BackgroundTasks = field(default_factory=BackgroundTasks)
    dedupe: FirstSeen | None = None
    notifier: SlackNotifier | None = None
    clock: Callable[[], float] = time.time
    #: What the reminder's buttons do (None: this process sends no reminders).
    reminders: ReminderButtons | None = None

    def later(
        self,
        request: AsyncBoltRequest,
        work: Coroutine[Any, Any, None],
        *,
        name: str,
        urgent: bool = False,
    ) -> None:
        """Run ``work`` after the ack, once per delivery: a repeated delivery (Slack's retry,
        a replay) is dropped there, so the ack itself never waits on Redis."""
        token = delivery_token(request.body, request.raw_body)
        self.tasks.spawn(self._once(token, work), name=name, urgent=urgent)

    async def _once(self, token: str, work: Coroutine[Any, Any, None]) -> None:
        if self.dedupe is not None and not await self.dedupe.first_time(token):
            work.close()
            log.info("duplicate delivery ignored", extra={"token": token[:24]})
            return
        await work
