"""What the reminder's buttons do, from Slack: ``Extend +<d>`` asks the service for the
extension exactly as ``/access extend`` does (its policy decides whether approvers are
asked), ``I'm done`` ends the grant now as its requester; then every copy of the reminder
shows what came of it. Authority stays in the service: a click carries only the grant id,
and ``d`` is worked out again from the grant and the policy as they are now."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from bot.domain.duration import format_duration
from bot.domain.model import Grant, Status
from bot.errors import NotAuthorized
from bot.service import GrantService
from bot.slack.blocks.describe import what
from bot.slack.blocks.kit import user as mention
from bot.slack.blocks.kit import when
from bot.slack.reminders import SlackLifecycleNotices

EXTEND_REASON = "extended from the reminder"
DONE_REASON = "done (from the reminder)"


class ExtensionOffers(Protocol):
    """:class:`bot.lifecycle.reminders.Reminders`, as the buttons need it."""

    async def check_extendable(self, grant_id: str, *, user: str) -> int: ...

    async def grant(self, grant_id: str) -> Grant: ...


class ReminderButtons:
    """The two buttons' work, for the listeners (bot/slack/listeners/reminders.py)."""

    def __init__(
        self,
        *,
        service: GrantService,
        offers: ExtensionOffers,
        notices: SlackLifecycleNotices,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self.offers = offers
        self.notices = notices
        self.clock = clock

    async def extend(self, grant_id: str, *, user: str) -> str:
        """Ask for the offered extension; the reminder is updated with the outcome, which is
        returned (mrkdwn). Raises what the service raises (nothing changed then)."""
        offer = await self.offers.check_extendable(grant_id, user=user)
        parent = await self.offers.grant(grant_id)
        result = await self.service.request_extension(
            grant_id, user=user, duration_s=offer, reason=EXTEND_REASON, origin=parent.origin
        )
        extension = result.grant
        plus = f"+{format_duration(offer)}"
        if extension.status is Status.PENDING:
            text = (
                f"{mention(user)} asked for {plus}; extension `{extension.id}` is waiting for"
                " approval."
            )
        else:
            grant = await self.offers.grant(grant_id)
            if grant.expires_at is not None and grant.expires_at > (parent.expires_at or 0):
                text = (
                    f"extended {plus} by {mention(user)}; {what(grant)} now lasts until"
                    f" {when(grant.expires_at)}."
                )
            else:
                why = extension.end_reason or "the grant ended"
                text = f"the extension {plus} could not be applied: {why}."
        await self.notices.reminder_outcome(grant_id, text)
        return text

    async def done(self, grant_id: str, *, user: str) -> str:
        """End the grant now as its requester (only they may); the reminder says so."""
        grant = await self.offers.grant(grant_id)
        if grant.requester != user:
            raise NotAuthorized(f"only <@{grant.requester}> may end {grant_id} from its reminder")
        ended = await self.service.revoke(grant_id, user=user, reason=DONE_REASON)
        text = (
            f"{mention(user)} is done; the grant was ended {when(ended.ended_at or self.clock())}."
        )
        await self.notices.reminder_outcome(grant_id, text)
        return text
