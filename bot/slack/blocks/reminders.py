"""The lifecycle's messages (pure): the reminder before a grant ends, with ``Extend +<d>`` and
``I'm done``; the reminder once acted on; the requester's notice that a grant is scheduled."""

from __future__ import annotations

from bot.domain.duration import format_duration
from bot.domain.model import Grant, Status
from bot.slack import ids
from bot.slack.blocks.describe import start_text, what
from bot.slack.blocks.kit import (
    Block,
    Message,
    button,
    context,
    escape,
    fallback_text,
    section,
    truncate,
    user,
    when,
)


def extend_label(offer_s: int) -> str:
    """``Extend +1h``: the button's text."""
    return f"Extend +{format_duration(offer_s)}"


def reminder(grant: Grant, *, offer_s: int | None, now: float) -> Message:
    """The reminder: when the grant ends, and its buttons (no ``Extend`` when nothing is
    left under ``max_duration``). Each button's value is the grant id only."""
    until = when(grant.expires_at) if grant.expires_at is not None else "soon"
    left = format_duration(int(grant.remaining_s(now)))
    text = f":hourglass: Your grant `{grant.id}` for {what(grant)} ends {until} ({left} left)."
    elements: list[Block] = []
    if offer_s is not None:
        elements.append(
            button(
                extend_label(offer_s),
                action_id=ids.REMIND_EXTEND,
                value=grant.id,
                style="primary",
            )
        )
    elements.append(button("I'm done", action_id=ids.REMIND_DONE, value=grant.id))
    hint = (
        "Extending follows the same rules as `/access extend`."
        if offer_s is not None
        else "It has all the time its role allows; ask again with `/access request` if needed."
    )
    blocks: list[Block] = [
        section(text),
        {"type": "actions", "block_id": ids.REMINDER_ACTIONS_BLOCK, "elements": elements},
        context(hint),
    ]
    return Message(text=fallback_text(text), blocks=blocks)


def reminder_done(grant_id: str, outcome: str) -> Message:
    """A reminder after one of its buttons was used: what came of it, buttons gone."""
    text = f":hourglass: Reminder for `{grant_id}`: {outcome}"
    return Message(text=fallback_text(text), blocks=[section(text)])


def scheduled_notice(grant: Grant) -> Message:
    """A DM: the request is approved and waits for its start; nothing is issued before."""
    text = (
        f":calendar: Your request `{grant.id}` for {what(grant)} is approved. It starts "
        f"{start_text(grant)}, for {format_duration(grant.duration_s)}; your credential "
        "arrives here then."
    )
    return Message(text=fallback_text(text), blocks=[section(text)])


def extension_decided(extension: Grant) -> str:
    """What a reminder says once a person decided the extension asked from it (mrkdwn)."""
    plus = f"+{format_duration(extension.duration_s)}"
    who = user(extension.decided_by)
    if extension.status is Status.DENIED:
        why = f": {escape(truncate(extension.end_reason, 300))}" if extension.end_reason else ""
        return f"extension `{extension.id}` ({plus}) was denied by {who}{why}."
    return f"extension `{extension.id}` ({plus}) was approved by {who}."
