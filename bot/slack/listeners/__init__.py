"""Bolt listeners, one module per Slack surface. Each acks first, then hands the rest of the
work to :class:`~bot.slack.tasks.BackgroundTasks`; what the work does is elsewhere in
:mod:`bot.slack` (``commands.dispatch``, ``asking``, ``home``)."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.context import SlackDeps
from bot.slack.listeners import actions, commands, events, reminders, shortcuts, views


def register_all(app: AsyncApp, deps: SlackDeps) -> None:
    """Register every grantbot listener on ``app``."""
    commands.register(app, deps)
    actions.register(app, deps)
    views.register(app, deps)
    events.register(app, deps)
    reminders.register(app, deps)
    shortcuts.register(app, deps)
