"""The ephemeral lists and texts ``/access`` answers with: list, pending, resources, help,
ssh-key show. Pure; however long, each fits one message (Slack allows 50 blocks)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.domain.duration import format_duration
from bot.domain.model import Grant
from bot.domain.policy.rules import RoleRule
from bot.slack.blocks.describe import approvals_text, grant_line, reason_text, what
from bot.slack.blocks.kit import (
    MESSAGE_BLOCKS_MAX,
    Message,
    chunked_sections,
    escape,
    fallback_text,
    fit,
    section,
    truncate,
    user,
)
from bot.slack.commands.usage import USAGE


def _list_message(title: str, lines: Sequence[str], *, empty: str) -> Message:
    body = "\n".join(lines) if lines else empty
    blocks = fit(
        [section(f"*{title}*"), *chunked_sections(body)],
        limit=MESSAGE_BLOCKS_MAX,
        more="…more than fits in one message (Slack allows 50 blocks).",
    )
    return Message(text=fallback_text(f"{title}\n{body}"), blocks=blocks)


def grants_list(
    grants: Sequence[Grant], *, now: float, for_others: Sequence[Grant] = ()
) -> Message:
    """``/access list``: the user's pending requests and live grants, and (``for_others``)
    those they asked for on someone's behalf, in a section of their own."""
    mine = _list_message(
        "Your requests and grants",
        [grant_line(g, now=now) for g in grants],
        empty="You have no pending requests and no active grants.",
    )
    if not for_others:
        return mine
    theirs = _list_message(
        "Asked by you for others",
        [f"{user(g.requester)}: {grant_line(g, now=now)}" for g in for_others],
        empty="",
    )
    return Message(
        text=f"{mine.text}\n{theirs.text}",
        blocks=fit(
            [*mine.blocks, *theirs.blocks],
            limit=MESSAGE_BLOCKS_MAX,
            more="…more than fits in one message (Slack allows 50 blocks).",
        ),
    )


def pending_list(grants: Sequence[Grant], *, now: float) -> Message:
    """``/access pending``: requests waiting for the user's approval."""
    lines = [
        f"`{g.id}` {user(g.requester)} asks for {what(g)} for {format_duration(g.duration_s)}"
        f" ({approvals_text(g)}): {reason_text(g)}"
        for g in grants
    ]
    return _list_message(
        "Waiting for your approval", lines, empty="Nothing is waiting for your approval."
    )


def rule_line(rule: RoleRule) -> str:
    """One requestable role with its limits."""
    n = rule.approvals_required
    approvals = f"{n} approval{'s' if n != 1 else ''}"
    extras = [f"up to {format_duration(rule.max_duration_s)}", approvals]
    if rule.auto_approve:
        extras.append("may be auto-approved")
    if rule.require_ticket is not None:
        extras.append("ticket required")
    desc = f" — {escape(truncate(rule.description, 200))}" if rule.description else ""
    return f"*{rule.resource}* {rule.role}{desc} ({', '.join(extras)})"


def resources_list(rules: Sequence[RoleRule]) -> Message:
    """``/access resources``: what the user may request, with limits."""
    return _list_message(
        "What you may request",
        [rule_line(r) for r in rules],
        empty="The policy lets you request nothing. Ask an admin.",
    )


def help_message() -> Message:
    """``/access help``: the grammar's usage text (already mrkdwn-escaped)."""
    return Message(text=fallback_text(USAGE), blocks=chunked_sections(USAGE))


def ssh_key_message(public_key: str | None) -> Message:
    """``/access ssh-key show``: the registered public key, or how to register one."""
    if public_key is None:
        text = "You have not registered an SSH public key. Use `/access ssh-key add <key>`."
    else:
        text = f"Your SSH public key:\n```{escape(truncate(public_key, 2800))}```"
    return Message(text=fallback_text(text), blocks=[section(text)])
