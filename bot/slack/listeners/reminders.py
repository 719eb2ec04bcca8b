"""Buttons on the reminder before a grant ends: ``Extend +<d>`` and ``I'm done``
(bot/slack/reminder_buttons.py does the work). Each acks, then works after the ack; a refusal
is told to the clicker privately and changes nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import ids
from bot.slack.context import SlackDeps
from bot.slack.listeners.actions import Click, OnClick, _listener
from bot.slack.reminder_buttons import ReminderButtons


def register(app: AsyncApp, deps: SlackDeps) -> None:
    app.action(ids.REMIND_EXTEND)(_listener(deps, on_extend, name="reminder-extend"))
    app.action(ids.REMIND_DONE)(_listener(deps, on_done, name="reminder-done"))


#: A reminder button's work: on the clicked grant, as the clicking user.
Work = Callable[[ReminderButtons, str, str], Awaitable[object]]


def _on_click(work: Work) -> OnClick:
    """Do ``work``; a refusal (or a process that sends no reminders) is told privately."""

    async def on_click(deps: SlackDeps, client: AsyncWebClient, click: Click) -> None:
        try:
            if deps.reminders is None:
                raise LookupError("reminders are not served by this process")
            await work(deps.reminders, click.grant_id(), click.user)
        except Exception as e:
            await click.reply(client).error(e)

    return on_click


on_extend: Final = _on_click(lambda r, grant_id, user: r.extend(grant_id, user=user))
on_done: Final = _on_click(lambda r, grant_id, user: r.done(grant_id, user=user))
