"""The App Home tab's view. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.domain.duration import format_duration
from bot.domain.model import Grant, Status
from bot.slack import ids
from bot.slack.blocks.describe import (
    STATUS_EMOJI,
    approvals_text,
    decision_actions,
    reason_text,
    what,
)
from bot.slack.blocks.kit import (
    VIEW_BLOCKS_MAX,
    Block,
    button,
    context,
    fit,
    header,
    section,
    user,
    when,
)


def app_home(
    *,
    mine: Sequence[Grant],
    waiting: Sequence[Grant],
    now: float,
) -> dict[str, Any]:
    """The App Home tab: my active grants (time left, Revoke), my pending requests (Cancel),
    and requests waiting for my approval (Approve / Deny). At most 100 blocks (Slack's limit
    for a view); what does not fit is counted and pointed to ``/access list``."""
    live = (Status.ACTIVE, Status.APPROVED, Status.SCHEDULED, Status.REVOKE_FAILED)
    active = [g for g in mine if g.status in live]
    pending = [g for g in mine if g.status is Status.PENDING]
    blocks: list[Block] = [
        header("Just-in-time access"),
        {
            "type": "actions",
            "block_id": ids.HOME_ACTIONS_BLOCK,
            "elements": [
                button("Request access", action_id=ids.OPEN_FORM, value="open", style="primary")
            ],
        },
        {"type": "divider"},
        *_part("Your active grants", [_active_item(g, now=now) for g in active], empty="None."),
        *_part("Your pending requests", [_pending_item(g) for g in pending], empty="None."),
        {"type": "divider"},
        *_part(
            "Waiting for your approval",
            [block for g in waiting for block in _waiting_item(g)],
            empty="Nothing is waiting for you.",
        ),
    ]
    total = len(active) + len(pending) + len(waiting)
    return {
        "type": "home",
        "blocks": fit(
            blocks,
            limit=VIEW_BLOCKS_MAX,
            more=f"…{total} items in all; more than fits here (Slack allows 100 blocks). "
            "Use `/access list` and `/access pending`.",
        ),
    }


def _part(title: str, items: list[Block], *, empty: str) -> list[Block]:
    """A titled part of the tab: its items, or a line saying there are none."""
    return [section(f"*{title}*"), *(items or [context(empty)])]


def _active_item(g: Grant, *, now: float) -> Block:
    """An active grant: time left, and Revoke now once it is issued."""
    left = format_duration(g.remaining_s(now))
    until = f", until {when(g.expires_at)}" if g.expires_at else ""
    revoke = button("Revoke now", action_id=ids.REVOKE, value=g.id, style="danger")
    return section(
        f"{STATUS_EMOJI[g.status]} {what(g)} · `{g.id}` · *{left} left*{until}",
        block_id=f"active.{g.id}",
        accessory=revoke if g.status is not Status.APPROVED else None,
    )


def _pending_item(g: Grant) -> Block:
    """A request of mine still pending, with Cancel."""
    return section(
        f"{STATUS_EMOJI[g.status]} {what(g)} for {format_duration(g.duration_s)} · "
        f"`{g.id}` · {approvals_text(g)}",
        block_id=f"pending.{g.id}",
        accessory=button("Cancel", action_id=ids.CANCEL, value=g.id),
    )


def _waiting_item(g: Grant) -> list[Block]:
    """A request waiting for my approval, with Approve and Deny."""
    return [
        section(
            f"{user(g.requester)} asks for {what(g)} for {format_duration(g.duration_s)} "
            f"({approvals_text(g)}) · `{g.id}`\n{reason_text(g)}",
            block_id=f"waiting.{g.id}",
        ),
        decision_actions(g, block_id=f"{ids.DECISION_BLOCK}.{g.id}"),
    ]
