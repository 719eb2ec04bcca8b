"""Buttons on the reminder before a grant ends: ``Extend +<d>`` and ``I'm done``
(bot/slack/reminder_buttons.py does the work). Each acks, then works after the ack; a refusal
is told to the clicker privately and changes nothing."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import ids
from bot.slack.context import SlackDeps
from bot.slack.listeners.actions import Click, _listener


def register(app: AsyncApp, deps: SlackDeps) -> None:
    app.action(ids.REMIND_EXTEND)(_listener(deps, on_extend, name="reminder-extend"))
    app.action(ids.REMIND_DONE)(_listener(deps, on_done, name="reminder-done"))


async def on_extend(deps: SlackDeps, client: AsyncWebClient, click: Click) -> None:
    try:
        if deps.reminders is None:
            raise LookupError("reminders are not served by this process")
        await deps.reminders.extend(click.grant_id(), user=click.user)
    except Exception as e:
        await click.reply(client).error(e)


async def on_done(deps: SlackDeps, client: AsyncWebClient, click: Click) -> None:
    try:
        if deps.reminders is None:
            raise LookupError("reminders are not served by this process")
        await deps.reminders.done(click.grant_id(), user=click.user)
    except Exception as e:
        await click.reply(client).error(e)
