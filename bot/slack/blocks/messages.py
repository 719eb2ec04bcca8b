"""The messages about one grant: the approvers' copies, the requester's DMs and ephemeral
answers, and what the thread or incident channel it was asked in hears.

Pure: each builder takes the grant (and ``now``) and returns a
:class:`~bot.slack.blocks.kit.Message`. Secrets: only :func:`credential_dm` renders a
credential's secret values; every other builder shows at most the credential's non-secret
``ref``. Buttons carry nothing but a grant id in their ``value``; whoever clicks is judged by
the service against the policy and the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from bot.domain.duration import format_duration
from bot.domain.model import Grant, Status
from bot.domain.policy.rules import RoleRule, describe
from bot.slack import ids
from bot.slack.blocks.describe import (
    STATUS_EMOJI,
    decision_actions,
    grant_line,
    id_context,
    outcome_text,
    reason_block,
    reason_text,
    start_text,
    summary_fields,
    title_of,
    what,
)
from bot.slack.blocks.kit import (
    MESSAGE_BLOCKS_MAX,
    Block,
    Message,
    button,
    channel,
    chunked_sections,
    confirm_dialog,
    context,
    escape,
    escape_keeping_mentions,
    fallback_text,
    fit,
    header,
    section,
    truncate,
    user,
    when,
)

if TYPE_CHECKING:
    from bot.domain.credentials import Credential

#: Longer credential values (or any with a line break) get a code block of their own.
CREDENTIAL_INLINE_MAX: Final = 200
#: One code block's share of a long credential value: a section's 3000 characters, less the
#: label, the part note and the fences.
CREDENTIAL_PART_MAX: Final = 2850


def _one_section(text: str, *, note: str | None = None) -> Message:
    """``text`` as a one-section message, with ``note`` (what to know besides) appended."""
    if note:
        text += f"\n:information_source: {escape(truncate(note, 500))}"
    return Message(text=fallback_text(text), blocks=[section(text)])


# -- approvers' copies ------------------------------------------------------------------------


def approval_request(grant: Grant, *, now: float) -> Message:
    """The message approvers get for a PENDING request, with Approve and Deny buttons.

    Shows requester, resource and role, duration, reason, tickets, where it was asked from,
    approvals so far out of those required, and when it lapses. Each button's value is the
    grant id and nothing else.
    """
    blocks: list[Block] = [
        header(title_of(grant)),
        summary_fields(grant, now=now),
        reason_block(grant),
        decision_actions(grant, block_id=ids.DECISION_BLOCK),
        context(f"Request `{grant.id}` · {outcome_text(grant, now=now)}"),
    ]
    who = (
        f"A pipeline (client {grant.client})" if grant.client is not None else user(grant.requester)
    )
    asks = f"{who} asks for"
    by = grant.requested_by
    if by is not None and by != grant.requester:  # on someone's behalf: who asked, for whom
        asks = f"{user(by)} asks for {user(grant.requester)}:"
    text = (
        f"{asks} {grant.resource} {grant.role} for "
        f"{format_duration(grant.duration_s)}: {reason_text(grant)}"
    )
    return Message(text=fallback_text(text), blocks=blocks)


def approval_outcome(grant: Grant, *, now: float) -> Message:
    """An approver's copy once the request is no longer pending: no Approve/Deny buttons.

    Names who decided (or why it ended). While the grant is ACTIVE (or its revocation is
    being retried) it carries a "Revoke now" button.
    """
    emoji = STATUS_EMOJI.get(grant.status, "")
    line = outcome_text(grant, now=now)
    blocks: list[Block] = [
        header(title_of(grant)),
        summary_fields(grant, now=now),
        reason_block(grant),
        section(f"{emoji} {line}".strip(), block_id=ids.DECISION_BLOCK),
    ]
    if grant.status in (Status.ACTIVE, Status.REVOKE_FAILED) and grant.kind == "access":
        blocks.append(_revoke_actions(grant))
    blocks.append(id_context(grant))
    text = f"{grant.resource} {grant.role} for {user(grant.requester)}: {line}"
    return Message(text=fallback_text(text), blocks=blocks)


def approver_copy(grant: Grant, *, now: float) -> Message:
    """The right approver's copy for the grant's current state."""
    if grant.status is Status.PENDING:
        return approval_request(grant, now=now)
    return approval_outcome(grant, now=now)


def _revoke_actions(grant: Grant) -> Block:
    return {
        "type": "actions",
        "block_id": ids.GRANT_ACTIONS_BLOCK,
        "elements": [
            button(
                "Revoke now",
                action_id=ids.REVOKE,
                value=grant.id,
                style="danger",
                confirm=confirm_dialog(
                    "Revoke this grant?",
                    f"{grant.resource} {grant.role} for this grant ends now.",
                    ok="Revoke",
                ),
            )
        ],
    }


# -- the requester's messages -----------------------------------------------------------------


def credential_dm(grant: Grant, credential: Credential, *, now: float) -> Message:
    """The requester's DM carrying the credential: the one place secrets are rendered.

    Each field is shown with its label; values in code spans. The expiry is the grant's.
    A "Revoke now" button ends it early. The notification fallback ``text`` names no secret.
    """
    expires = credential.expires_at or grant.expires_at or now
    lines = []
    long_values: list[Block] = []
    for f in credential.fields[:40]:
        value = f.value.replace("`", "ˋ")  # a backtick would end the code span
        if "\n" not in value and len(value) <= CREDENTIAL_INLINE_MAX:
            lines.append(f"*{escape(f.label)}*: `{value}`")
            continue
        # Certificates, keys, long DSNs: a code block each, never cut short (a truncated
        # certificate is useless); past one section's room, in numbered parts.
        parts = [
            value[i : i + CREDENTIAL_PART_MAX] for i in range(0, len(value), CREDENTIAL_PART_MAX)
        ]
        for n, part in enumerate(parts, 1):
            of = f" (part {n} of {len(parts)}: join them without spaces)" if len(parts) > 1 else ""
            long_values.append(section(f"*{escape(truncate(f.label, 60))}*{of}\n```{part}```"))
    body = "\n".join(lines)
    if not body and not long_values:
        body = "_(this target needs no credential: your access is live)_"
    approved = (
        f"Auto-approved ({escape(truncate(grant.auto_approved, 200))})"
        if grant.auto_approved
        else f"Approved by {user(grant.decided_by)}"
    )
    blocks: list[Block] = [
        header(f"Your access to {grant.resource} {grant.role}"),
        section(
            f"{approved}. Valid until {when(expires)} "
            f"({format_duration(max(0.0, expires - now))} from now)."
        ),
        *chunked_sections(body),
        *long_values,
        context(
            f"Grant `{grant.id}` · Only you can see this. Do not share it; it stops working "
            "at expiry or when revoked."
        ),
        _revoke_actions(grant),
    ]
    text = f"Your access to {grant.resource} {grant.role} is ready (grant {grant.id})"
    return Message(text=text, blocks=fit(blocks, limit=MESSAGE_BLOCKS_MAX, more="…"))


def credential_ended(grant: Grant, *, now: float) -> Message:
    """What the credential DM becomes once the grant is over: the secret is gone from it."""
    line = outcome_text(grant, now=now)
    blocks: list[Block] = [
        header(f"Your access to {grant.resource} {grant.role}"),
        section(f"{STATUS_EMOJI.get(grant.status, '')} {line}. The credential no longer works."),
        id_context(grant),
    ]
    return Message(text=fallback_text(f"{grant.resource} {grant.role}: {line}"), blocks=blocks)


def credential_replaced(grant: Grant) -> Message:
    """What an earlier credential DM becomes when a newer one replaces it (an extension
    re-issued the credential): the old secret is removed from Slack."""
    text = (
        f"This credential for {what(grant)} (`{grant.id}`) was replaced by a newer message "
        "below; use that one."
    )
    return Message(text=fallback_text(text), blocks=[section(text), id_context(grant)])


def requester_notice(grant: Grant, *, now: float) -> Message:
    """A DM telling the requester what happened to their request or grant."""
    line = outcome_text(grant, now=now)
    emoji = STATUS_EMOJI.get(grant.status, "")
    head = "Your extension" if grant.kind == "extension" else "Your request"
    blocks = [
        section(f"{emoji} {head} for {what(grant)} (`{grant.id}`): {line}.".strip()),
    ]
    return Message(
        text=fallback_text(f"{head} for {grant.resource} {grant.role}: {line}"), blocks=blocks
    )


def extended_notice(grant: Grant, *, now: float) -> Message:
    """A DM: the grant's expiry moved later."""
    until = when(grant.expires_at) if grant.expires_at is not None else "unknown"
    text = (
        f":arrow_forward: Your grant `{grant.id}` for {what(grant)} now lasts until {until} "
        f"({format_duration(grant.remaining_s(now))} left)."
    )
    return _one_section(text)


def request_confirmation(
    grant: Grant,
    rule: RoleRule,
    *,
    now: float,
    note: str | None = None,
    credential_sent: bool = True,
) -> Message:
    """The requester's ephemeral confirmation: the request id and who was asked, and
    ``note`` (why it could not be auto-approved, what Slack did not deliver) when there is
    one. An active grant points to the credential DM unless ``credential_sent`` is False."""
    asked = escape(describe(rule.approvers))
    if rule.approvers is not None and rule.approvers.channel:
        asked += f", posted in {channel(rule.approvers.channel)}"
    if grant.status is Status.PENDING:
        lapses = (
            f" It lapses {when(grant.request_expires_at)} if nobody decides."
            if grant.request_expires_at
            else ""
        )
        need = (
            f" ({grant.approvals_required} distinct approvals needed)"
            if grant.approvals_required > 1
            else ""
        )
        noun = "Extension request" if grant.kind == "extension" else "Request"
        text = (
            f":inbox_tray: {noun} `{grant.id}` for {what(grant)}, "
            f"{format_duration(grant.duration_s)}{_starting(grant)}, sent."
            f" Asked: {asked}{need}.{lapses}"
        )
    else:
        text = f"{STATUS_EMOJI.get(grant.status, '')} `{grant.id}` for {what(grant)}: " + (
            outcome_text(grant, now=now)
            + (
                ". Your credential is in your DMs."
                if grant.status is Status.ACTIVE and credential_sent
                else "."
            )
        )
    return _one_section(text, note=note)


# -- where the request was asked ---------------------------------------------------------------


def _starting(grant: Grant) -> str:
    """``, starting <when in the requester's zone>`` for a scheduled request (else empty)."""
    return f", starting {start_text(grant)}" if grant.starts_at is not None else ""


def thread_outcome(grant: Grant, *, now: float) -> Message:
    """What the thread (or incident channel) a request was asked in hears when it is
    decided or ends. Public: names the requester, never a credential."""
    line = outcome_text(grant, now=now)
    emoji = STATUS_EMOJI.get(grant.status, "")
    noun = "extension" if grant.kind == "extension" else "request"
    text = f"{emoji} {user(grant.requester)}'s {noun} for {what(grant)} (`{grant.id}`): {line}."
    return _one_section(text.strip())


def thread_request(grant: Grant, rule: RoleRule, *, now: float, note: str | None) -> Message:
    """The announcement of a new request in the thread or incident channel it was asked
    in, so the responders see it: who asked for what and why, who was asked, and ``note``
    (why it could not be auto-approved) when there is one."""
    asked = escape(describe(rule.approvers))
    text = (
        f":inbox_tray: {user(grant.requester)} asked for {what(grant)} for "
        f"{format_duration(grant.duration_s)} (`{grant.id}`): {reason_text(grant)}\n"
        f"Waiting for approval by {asked}."
    )
    return _one_section(text, note=note)


# -- ephemeral answers ---------------------------------------------------------------------------


def grant_status(grant: Grant, *, now: float, note: str | None = None) -> Message:
    """An ephemeral one-liner: where a grant stands now (after revoke, cancel...), and
    ``note`` (what Slack did not deliver about it) when there is one."""
    text = grant_line(grant, now=now)
    return _one_section(text, note=note)


def error_message(message: str) -> Message:
    """An ephemeral refusal or error: grantbot's own one-line message, escaped except for
    the user mentions it makes (``already approved by <@U1>``)."""
    text = f":warning: {escape_keeping_mentions(truncate(message, 1000))}"
    return Message(text=text, blocks=[section(text)])


def info_message(message: str) -> Message:
    """An ephemeral plain acknowledgement, escaped."""
    text = escape(truncate(message, 2000))
    return Message(text=text, blocks=[section(text)])


STORE_DOWN_TEXT: Final = "grantbot cannot reach its database right now; try again shortly."
