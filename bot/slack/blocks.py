"""Pure Block Kit builders: one function per message, modal or tab grantbot shows.

Contract: every builder takes plain data (grants, rules, ``now``) and returns a
:class:`Message` or a view ``dict`` ready for the Web API. No I/O, no clock, no Slack client.
Text a person typed (reasons, deny reasons) is escaped for mrkdwn so that a typed
``<!here>`` cannot ping; everything is cut to Slack's documented limits, each cut naming its
limit, so a long reason or a huge policy never makes Slack reject a message.

Secrets: only :func:`credential_dm` renders a credential's secret values. Every other builder
shows at most the credential's non-secret ``ref``.

Buttons carry nothing but a grant id in their ``value``; whoever clicks is judged by the
service against the policy and the store.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from bot.domain.duration import format_duration
from bot.domain.model import Grant, Status
from bot.domain.policy.rules import RoleRule, describe
from bot.domain.ssh_keys import SSH_CERT_PROVIDER_TYPE
from bot.slack import ids
from bot.slack.commands.reasons import MAX_REASON_CHARS
from bot.slack.commands.usage import USAGE

if TYPE_CHECKING:
    from bot.domain.credentials import Credential

Block = dict[str, Any]

# -- Slack's limits (https://docs.slack.dev/reference/block-kit) -----------------------------

#: A section's text: 3000 characters.
SECTION_TEXT_MAX: Final = 3000
#: Each of a section's fields: 2000 characters; at most 10 fields.
FIELD_TEXT_MAX: Final = 2000
FIELDS_MAX: Final = 10
#: A header block's plain_text: 150 characters.
HEADER_TEXT_MAX: Final = 150
#: A context block's elements: at most 10, each text at most 2000 characters.
CONTEXT_ELEMENTS_MAX: Final = 10
CONTEXT_TEXT_MAX: Final = 2000
#: A button's text: 75 characters; its value: 2000.
BUTTON_TEXT_MAX: Final = 75
#: An option's text: 75 characters; its value: 150. A select holds at most 100 options and
#: at most 100 option groups.
OPTION_TEXT_MAX: Final = 75
OPTION_VALUE_MAX: Final = 150
OPTIONS_MAX: Final = 100
#: A modal's title, submit and close texts: 24 characters each.
MODAL_TITLE_MAX: Final = 24
#: A view's private_metadata: 3000 characters.
PRIVATE_METADATA_MAX: Final = 3000
#: Blocks in a message: 50; in a modal or the App Home tab: 100.
MESSAGE_BLOCKS_MAX: Final = 50
VIEW_BLOCKS_MAX: Final = 100
#: A message's top-level ``text`` (the notification fallback). Slack truncates at 40,000;
#: we keep it to the length Slack recommends for readable notifications.
MESSAGE_TEXT_MAX: Final = 4000
#: An input's placeholder: 150 characters; its hint and label: 2000.
PLACEHOLDER_MAX: Final = 150
#: A plain_text_input's max_length may be at most 3000.
TEXT_INPUT_MAX: Final = 3000

#: The longest ticket field we accept in the form (several references, comma separated).
TICKETS_INPUT_MAX: Final = 200
#: Longer credential values (or any with a line break) get a code block of their own.
CREDENTIAL_INLINE_MAX: Final = 200
#: One code block's share of a long credential value: a section's 3000 characters, less the
#: label, the part note and the fences.
CREDENTIAL_PART_MAX: Final = 2850
#: An OpenSSH public key line: RSA 4096 is ~750 characters; room for a long comment.
SSH_KEY_INPUT_MAX: Final = 3000
#: The longest deny reason; the same bound as a request's reason.
DENY_REASON_MAX: Final = MAX_REASON_CHARS

ELLIPSIS: Final = "…"
_USER_ID_RE: Final = re.compile(r"[UW][A-Z0-9]{2,20}")
_CHANNEL_ID_RE: Final = re.compile(r"[CGD][A-Z0-9]{2,20}")

STATUS_EMOJI: Final[Mapping[Status, str]] = {
    Status.PENDING: ":hourglass_flowing_sand:",
    Status.APPROVED: ":white_check_mark:",
    Status.ACTIVE: ":large_green_circle:",
    Status.EXPIRED: ":checkered_flag:",
    Status.REVOKED: ":no_entry:",
    Status.DENIED: ":x:",
    Status.CANCELLED: ":heavy_multiplication_x:",
    Status.TIMED_OUT: ":alarm_clock:",
    Status.FAILED: ":warning:",
    Status.REVOKE_FAILED: ":rotating_light:",
}


@dataclass(frozen=True, slots=True)
class Message:
    """A chat message: ``text`` is the notification fallback, ``blocks`` what Slack shows."""

    text: str
    blocks: list[Block] = field(default_factory=list)

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for chat.postMessage / chat.update / respond()."""
        return {"text": self.text, "blocks": self.blocks}


# -- text helpers -----------------------------------------------------------------------------


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in an ellipsis when cut."""
    if limit <= 0:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def escape(text: str) -> str:
    """Plain text made safe inside mrkdwn: Slack reads ``<...>`` as links and mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_ESCAPED_MENTION_RE: Final = re.compile(r"&lt;@([UW][A-Z0-9]{2,20})&gt;")


def escape_keeping_mentions(text: str) -> str:
    """Like :func:`escape`, but user mentions (``<@U123>``) stay mentions. For grantbot's own
    messages, which name people that way; never for text a person typed."""
    return _ESCAPED_MENTION_RE.sub(r"<@\1>", escape(text))


def user(user_id: str | None) -> str:
    """A mention for a Slack user id; anything not shaped like one is shown escaped."""
    if user_id is None:
        return "someone"
    if _USER_ID_RE.fullmatch(user_id):
        return f"<@{user_id}>"
    return escape(user_id)


def channel(channel_id: str) -> str:
    """A channel link for a channel id; anything else escaped."""
    return f"<#{channel_id}>" if _CHANNEL_ID_RE.fullmatch(channel_id) else escape(channel_id)


def when(ts: float, *, style: str = "{date_short_pretty} at {time}") -> str:
    """A time as Slack renders it in each reader's own zone, with a UTC fallback."""
    fallback = datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(ts)}^{style}|{fallback}>"


def _mrkdwn(text: str, *, limit: int = SECTION_TEXT_MAX) -> Block:
    return {"type": "mrkdwn", "text": truncate(text, limit)}


def _plain(text: str, *, limit: int, emoji: bool = True) -> Block:
    return {"type": "plain_text", "text": truncate(text, limit), "emoji": emoji}


def _section(text: str, *, block_id: str | None = None, accessory: Block | None = None) -> Block:
    block: Block = {"type": "section", "text": _mrkdwn(text)}
    if block_id is not None:
        block["block_id"] = block_id
    if accessory is not None:
        block["accessory"] = accessory
    return block


def _fields(pairs: Sequence[tuple[str, str]]) -> Block:
    shown = pairs[:FIELDS_MAX]  # Slack: at most 10 fields per section
    return {
        "type": "section",
        "fields": [_mrkdwn(f"*{k}*\n{v}", limit=FIELD_TEXT_MAX) for k, v in shown],
    }


def _context(*texts: str) -> Block:
    return {
        "type": "context",
        "elements": [_mrkdwn(t, limit=CONTEXT_TEXT_MAX) for t in texts[:CONTEXT_ELEMENTS_MAX]],
    }


def _header(text: str) -> Block:
    return {"type": "header", "text": _plain(text, limit=HEADER_TEXT_MAX)}


def _button(
    text: str, *, action_id: str, value: str, style: str | None = None, confirm: Block | None = None
) -> Block:
    button: Block = {
        "type": "button",
        "text": _plain(text, limit=BUTTON_TEXT_MAX),
        "action_id": action_id,
        "value": value,
    }
    if style is not None:
        button["style"] = style
    if confirm is not None:
        button["confirm"] = confirm
    return button


def _confirm(title: str, text: str, *, ok: str) -> Block:
    return {
        "title": _plain(title, limit=100),  # confirm dialog title: 100 characters
        "text": _plain(text, limit=300),  # confirm dialog text: 300 characters
        "confirm": _plain(ok, limit=30),  # confirm button: 30 characters
        "deny": _plain("Cancel", limit=30),
    }


def _text_fallback(text: str) -> str:
    return truncate(text, MESSAGE_TEXT_MAX)


def _fit(blocks: list[Block], *, limit: int, more: str) -> list[Block]:
    """At most ``limit`` blocks; when cut, the last one says what was left out."""
    if len(blocks) <= limit:
        return blocks
    return [*blocks[: limit - 1], _context(more)]


# -- describing a grant -----------------------------------------------------------------------


def what(grant: Grant) -> str:
    """``*orders-db* read``: how a message names what was asked for."""
    return f"*{grant.resource}* {grant.role}"


def reason_text(grant: Grant) -> str:
    """The stored reason, escaped and bounded (the grammar caps it; stored data may not be)."""
    return escape(truncate(grant.reason, MAX_REASON_CHARS)) or "_none given_"


def tickets_text(tickets: Iterable[str]) -> str:
    shown = [escape(truncate(t, 64)) for t in list(tickets)[:10]]
    return ", ".join(shown) or "_none_"


def origin_text(grant: Grant) -> str:
    """Where the request was asked from."""
    o = grant.origin
    surface = {
        "command": "`/access`",
        "modal": "the request form",
        "mention": "a mention",
        "cli": "the command line",
        "home": "App Home",
    }.get(o.surface, escape(truncate(o.surface, 32)))
    where = f" in {channel(o.channel)}" if o.channel and not o.channel.startswith("D") else ""
    incident = f" (incident {escape(truncate(o.incident, 80))})" if o.incident else ""
    return f"{surface}{where}{incident}"


def approvals_text(grant: Grant) -> str:
    """``1 of 2 (<@U1>)``: distinct approvals so far out of those required."""
    done = len(grant.approvals)
    names = ", ".join(user(a.user) for a in grant.approvals[:10])
    return f"{done} of {grant.approvals_required}" + (f" ({names})" if names else "")


def title_of(grant: Grant) -> str:
    if grant.kind == "extension":
        parent = f" of {grant.parent_id}" if grant.parent_id else ""
        return (
            f"Extension{parent}: {grant.resource} {grant.role} +{format_duration(grant.duration_s)}"
        )
    return f"Access request: {grant.resource} {grant.role}"


def outcome_text(grant: Grant, *, now: float) -> str:
    """One line saying where the request stands and who made it so."""
    s = grant.status
    by = user(grant.decided_by)
    ender = user(grant.ended_by) if grant.ended_by else "grantbot"
    why = f": {escape(truncate(grant.end_reason, 300))}" if grant.end_reason else ""
    if s is Status.PENDING:
        return f"Waiting for approval: {approvals_text(grant)}"
    # An auto-approval names no person: its recorded reason says who and why.
    approved = (
        f"Approved ({escape(truncate(grant.auto_approved, 300))})"
        if grant.auto_approved
        else f"Approved by {by}"
    )
    if s is Status.APPROVED:
        if grant.kind == "extension":
            return f"Extension {approved[0].lower()}{approved[1:]}"
        return f"{approved}; issuing the credential…"
    if s is Status.ACTIVE:
        left = format_duration(grant.remaining_s(now))
        until = when(grant.expires_at) if grant.expires_at is not None else "unknown"
        return f"{approved}. Active until {until} ({left} left)"
    if s is Status.DENIED:
        return f"Denied by {by}{why}"
    if s is Status.CANCELLED:
        return f"Cancelled by {ender}{why}"
    if s is Status.TIMED_OUT:
        return "Lapsed: nobody decided in time; nothing was granted"
    if s is Status.FAILED:
        error = f": {escape(truncate(grant.last_error, 300))}" if grant.last_error else ""
        return f"Approved by {by}, but issuing the credential failed{error}"
    if s is Status.EXPIRED:
        if grant.kind == "extension":
            return f"Extension approved by {by} and applied to {grant.parent_id or 'the grant'}"
        at = when(grant.ended_at) if grant.ended_at else "its expiry"
        return f"Expired at {at}; access has been removed"
    if s is Status.REVOKED:
        return f"Revoked by {ender}{why}; access has been removed"
    return (  # REVOKE_FAILED
        f"Ending this grant failed ({grant.revoke_attempts} attempts); retrying. "
        "Approvers: check the target"
    )


def _summary_fields(grant: Grant, *, now: float) -> Block:
    pairs = [
        ("Requester", user(grant.requester)),
        ("Resource", what(grant)),
        ("Duration", format_duration(grant.duration_s)),
        ("Tickets", tickets_text(grant.tickets)),
        ("Asked from", origin_text(grant)),
        ("Approvals", approvals_text(grant)),
    ]
    if grant.status is Status.PENDING and grant.request_expires_at is not None:
        pairs.append(("Lapses", when(grant.request_expires_at)))
    if grant.kind == "extension" and grant.parent_id:
        pairs.append(("Extends", f"`{grant.parent_id}`"))
    return _fields(pairs)


def _reason_block(grant: Grant) -> Block:
    return _section(f"*Reason*\n{reason_text(grant)}")


def _id_context(grant: Grant) -> Block:
    return _context(f"Request `{grant.id}`")


# -- approvers' copies ------------------------------------------------------------------------


def approval_request(grant: Grant, *, now: float) -> Message:
    """The message approvers get for a PENDING request, with Approve and Deny buttons.

    Shows requester, resource and role, duration, reason, tickets, where it was asked from,
    approvals so far out of those required, and when it lapses. Each button's value is the
    grant id and nothing else.
    """
    blocks: list[Block] = [
        _header(title_of(grant)),
        _summary_fields(grant, now=now),
        _reason_block(grant),
        {
            "type": "actions",
            "block_id": ids.DECISION_BLOCK,
            "elements": [
                _button("Approve", action_id=ids.APPROVE, value=grant.id, style="primary"),
                _button("Deny", action_id=ids.DENY, value=grant.id, style="danger"),
            ],
        },
        _context(f"Request `{grant.id}` · {outcome_text(grant, now=now)}"),
    ]
    text = (
        f"{user(grant.requester)} asks for {grant.resource} {grant.role} for "
        f"{format_duration(grant.duration_s)}: {reason_text(grant)}"
    )
    return Message(text=_text_fallback(text), blocks=blocks)


def approval_outcome(grant: Grant, *, now: float) -> Message:
    """An approver's copy once the request is no longer pending: no Approve/Deny buttons.

    Names who decided (or why it ended). While the grant is ACTIVE (or its revocation is
    being retried) it carries a "Revoke now" button.
    """
    emoji = STATUS_EMOJI.get(grant.status, "")
    line = outcome_text(grant, now=now)
    blocks: list[Block] = [
        _header(title_of(grant)),
        _summary_fields(grant, now=now),
        _reason_block(grant),
        _section(f"{emoji} {line}".strip(), block_id=ids.DECISION_BLOCK),
    ]
    if grant.status in (Status.ACTIVE, Status.REVOKE_FAILED) and grant.kind == "access":
        blocks.append(_revoke_actions(grant))
    blocks.append(_id_context(grant))
    text = f"{grant.resource} {grant.role} for {user(grant.requester)}: {line}"
    return Message(text=_text_fallback(text), blocks=blocks)


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
            _button(
                "Revoke now",
                action_id=ids.REVOKE,
                value=grant.id,
                style="danger",
                confirm=_confirm(
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
            long_values.append(_section(f"*{escape(truncate(f.label, 60))}*{of}\n```{part}```"))
    body = "\n".join(lines)
    if not body and not long_values:
        body = "_(this target needs no credential: your access is live)_"
    approved = (
        f"Auto-approved ({escape(truncate(grant.auto_approved, 200))})"
        if grant.auto_approved
        else f"Approved by {user(grant.decided_by)}"
    )
    blocks: list[Block] = [
        _header(f"Your access to {grant.resource} {grant.role}"),
        _section(
            f"{approved}. Valid until {when(expires)} "
            f"({format_duration(max(0.0, expires - now))} from now)."
        ),
        *_chunked_sections(body),
        *long_values,
        _context(
            f"Grant `{grant.id}` · Only you can see this. Do not share it; it stops working "
            "at expiry or when revoked."
        ),
        _revoke_actions(grant),
    ]
    text = f"Your access to {grant.resource} {grant.role} is ready (grant {grant.id})"
    return Message(text=text, blocks=_fit(blocks, limit=MESSAGE_BLOCKS_MAX, more="…"))


def credential_ended(grant: Grant, *, now: float) -> Message:
    """What the credential DM becomes once the grant is over: the secret is gone from it."""
    line = outcome_text(grant, now=now)
    blocks: list[Block] = [
        _header(f"Your access to {grant.resource} {grant.role}"),
        _section(f"{STATUS_EMOJI.get(grant.status, '')} {line}. The credential no longer works."),
        _id_context(grant),
    ]
    return Message(text=_text_fallback(f"{grant.resource} {grant.role}: {line}"), blocks=blocks)


def credential_replaced(grant: Grant) -> Message:
    """What an earlier credential DM becomes when a newer one replaces it (an extension
    re-issued the credential): the old secret is removed from Slack."""
    text = (
        f"This credential for {what(grant)} (`{grant.id}`) was replaced by a newer message "
        "below; use that one."
    )
    return Message(text=_text_fallback(text), blocks=[_section(text), _id_context(grant)])


def requester_notice(grant: Grant, *, now: float) -> Message:
    """A DM telling the requester what happened to their request or grant."""
    line = outcome_text(grant, now=now)
    emoji = STATUS_EMOJI.get(grant.status, "")
    head = "Your extension" if grant.kind == "extension" else "Your request"
    blocks = [
        _section(f"{emoji} {head} for {what(grant)} (`{grant.id}`): {line}.".strip()),
    ]
    return Message(
        text=_text_fallback(f"{head} for {grant.resource} {grant.role}: {line}"), blocks=blocks
    )


def thread_outcome(grant: Grant, *, now: float) -> Message:
    """What the thread (or incident channel) a request was asked in hears when it is
    decided or ends. Public: names the requester, never a credential."""
    line = outcome_text(grant, now=now)
    emoji = STATUS_EMOJI.get(grant.status, "")
    noun = "extension" if grant.kind == "extension" else "request"
    text = f"{emoji} {user(grant.requester)}'s {noun} for {what(grant)} (`{grant.id}`): {line}."
    return Message(text=_text_fallback(text.strip()), blocks=[_section(text.strip())])


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
    if note:
        text += f"\n:information_source: {escape(truncate(note, 500))}"
    return Message(text=_text_fallback(text), blocks=[_section(text)])


def extended_notice(grant: Grant, *, now: float) -> Message:
    """A DM: the grant's expiry moved later."""
    until = when(grant.expires_at) if grant.expires_at is not None else "unknown"
    text = (
        f":arrow_forward: Your grant `{grant.id}` for {what(grant)} now lasts until {until} "
        f"({format_duration(grant.remaining_s(now))} left)."
    )
    return Message(text=_text_fallback(text), blocks=[_section(text)])


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
            f"{format_duration(grant.duration_s)}, sent. Asked: {asked}{need}.{lapses}"
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
    if note:
        text += f"\n:information_source: {escape(truncate(note, 500))}"
    return Message(text=_text_fallback(text), blocks=[_section(text)])


def grant_status(grant: Grant, *, now: float, note: str | None = None) -> Message:
    """An ephemeral one-liner: where a grant stands now (after revoke, cancel...), and
    ``note`` (what Slack did not deliver about it) when there is one."""
    text = _grant_line(grant, now=now)
    if note:
        text += f"\n:information_source: {escape(truncate(note, 500))}"
    return Message(text=_text_fallback(text), blocks=[_section(text)])


def error_message(message: str) -> Message:
    """An ephemeral refusal or error: grantbot's own one-line message, escaped except for
    the user mentions it makes (``already approved by <@U1>``)."""
    text = f":warning: {escape_keeping_mentions(truncate(message, 1000))}"
    return Message(text=text, blocks=[_section(text)])


def info_message(message: str) -> Message:
    """An ephemeral plain acknowledgement, escaped."""
    text = escape(truncate(message, 2000))
    return Message(text=text, blocks=[_section(text)])


STORE_DOWN_TEXT: Final = "grantbot cannot reach its database right now; try again shortly."


# -- ephemeral lists --------------------------------------------------------------------------


def _grant_line(grant: Grant, *, now: float) -> str:
    emoji = STATUS_EMOJI.get(grant.status, "")
    return f"{emoji} `{grant.id}` {what(grant)} — {outcome_text(grant, now=now)}"


def _chunked_sections(text: str) -> list[Block]:
    """``text`` as sections of at most 3000 characters, split at line ends where possible."""
    out: list[Block] = []
    rest = text
    while rest:
        if len(rest) <= SECTION_TEXT_MAX:
            out.append(_section(rest))
            break
        cut = rest.rfind("\n", 0, SECTION_TEXT_MAX)
        cut = cut if cut > 0 else SECTION_TEXT_MAX
        out.append(_section(rest[:cut]))
        rest = rest[cut:].lstrip("\n")
    return out


def _list_message(title: str, lines: Sequence[str], *, empty: str) -> Message:
    body = "\n".join(lines) if lines else empty
    blocks = _fit(
        [_section(f"*{title}*"), *_chunked_sections(body)],
        limit=MESSAGE_BLOCKS_MAX,
        more="…more than fits in one message (Slack allows 50 blocks).",
    )
    return Message(text=_text_fallback(f"{title}\n{body}"), blocks=blocks)


def grants_list(grants: Sequence[Grant], *, now: float) -> Message:
    """``/access list``: the user's pending requests and live grants."""
    return _list_message(
        "Your requests and grants",
        [_grant_line(g, now=now) for g in grants],
        empty="You have no pending requests and no active grants.",
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
    return Message(text=_text_fallback(USAGE), blocks=_chunked_sections(USAGE))


def ssh_key_message(public_key: str | None) -> Message:
    """``/access ssh-key show``: the registered public key, or how to register one."""
    if public_key is None:
        text = "You have not registered an SSH public key. Use `/access ssh-key add <key>`."
    else:
        text = f"Your SSH public key:\n```{escape(truncate(public_key, 2800))}```"
    return Message(text=_text_fallback(text), blocks=[_section(text)])


# -- modals -----------------------------------------------------------------------------------


def target_value(rule: RoleRule) -> str:
    """The form option value naming a rule: ``orders-db/read``."""
    return f"{rule.resource}{ids.TARGET_SEPARATOR}{rule.role}"


def _option(text: str, value: str) -> Block:
    return {
        "text": _plain(text, limit=OPTION_TEXT_MAX),
        "value": value[:OPTION_VALUE_MAX],
    }


def request_form(rules: Sequence[RoleRule], *, private_metadata: str = "") -> dict[str, Any]:
    """The request modal: only the resources and roles in ``rules`` (what this user may
    request), a duration, a reason and ticket references.

    Options are grouped by resource. Slack allows 100 option groups and 100 options in
    total; beyond that the form says so and ``/access request`` still reaches the rest.
    With no rules the modal explains that and has no submit button.
    """
    title = _plain("Request access", limit=MODAL_TITLE_MAX)
    metadata = private_metadata if len(private_metadata) <= PRIVATE_METADATA_MAX else ""
    if not rules:
        return {
            "type": "modal",
            "callback_id": ids.REQUEST_FORM,
            "title": title,
            "close": _plain("Close", limit=MODAL_TITLE_MAX),
            "private_metadata": metadata,
            "blocks": [
                _section("The policy lets you request nothing. Ask an admin to add you."),
            ],
        }
    groups: dict[str, list[Block]] = {}
    for rule in rules[:OPTIONS_MAX]:  # Slack: at most 100 options in one select
        label = f"{rule.role} · up to {format_duration(rule.max_duration_s)}"
        groups.setdefault(rule.resource, []).append(_option(label, target_value(rule)))
    element: Block = {
        "type": "static_select",
        "action_id": ids.FORM_TARGET_ACTION,
        "placeholder": _plain("Choose a resource and role", limit=PLACEHOLDER_MAX),
        "option_groups": [
            {"label": _plain(name, limit=OPTION_TEXT_MAX), "options": options}
            for name, options in list(groups.items())[:OPTIONS_MAX]
        ],
    }
    blocks: list[Block] = [
        {
            "type": "input",
            "block_id": ids.FORM_TARGET_BLOCK,
            "label": _plain("Resource and role", limit=2000),
            "element": element,
        },
        {
            "type": "input",
            "block_id": ids.FORM_DURATION_BLOCK,
            "label": _plain("Duration", limit=2000),
            "hint": _plain("Like 30m, 2h or 1h30m; each role's limit is shown above.", limit=2000),
            "element": {
                "type": "plain_text_input",
                "action_id": ids.FORM_DURATION_ACTION,
                "placeholder": _plain("30m", limit=PLACEHOLDER_MAX),
                "max_length": 16,
            },
        },
        {
            "type": "input",
            "block_id": ids.FORM_REASON_BLOCK,
            "label": _plain("Reason", limit=2000),
            "element": {
                "type": "plain_text_input",
                "action_id": ids.FORM_REASON_ACTION,
                "multiline": True,
                "max_length": MAX_REASON_CHARS,
                "placeholder": _plain("What you will do, e.g. debugging INC-42", limit=150),
            },
        },
        {
            "type": "input",
            "block_id": ids.FORM_TICKETS_BLOCK,
            "optional": True,
            "label": _plain("Tickets", limit=2000),
            "hint": _plain("Ticket references such as INC-42, comma separated.", limit=2000),
            "element": {
                "type": "plain_text_input",
                "action_id": ids.FORM_TICKETS_ACTION,
                "max_length": TICKETS_INPUT_MAX,
                "placeholder": _plain("INC-42", limit=PLACEHOLDER_MAX),
            },
        },
    ]
    if any(rule.provider_type == SSH_CERT_PROVIDER_TYPE for rule in rules[:OPTIONS_MAX]):
        blocks.append(
            {
                "type": "input",
                "block_id": ids.FORM_SSH_KEY_BLOCK,
                "optional": True,
                "label": _plain("SSH public key", limit=2000),
                "hint": _plain(
                    "For SSH roles: the one line of your .pub file, never the private key. It "
                    "is kept as your key, as /access ssh-key add does; leave it empty to use "
                    "the key you registered.",
                    limit=2000,
                ),
                "element": {
                    "type": "plain_text_input",
                    "action_id": ids.FORM_SSH_KEY_ACTION,
                    "max_length": SSH_KEY_INPUT_MAX,
                    "placeholder": _plain("ssh-ed25519 AAAA... you@laptop", limit=PLACEHOLDER_MAX),
                },
            }
        )
    if len(rules) > OPTIONS_MAX:
        blocks.append(
            _context(
                f"Showing {OPTIONS_MAX} of {len(rules)} roles (Slack allows {OPTIONS_MAX} "
                "options); use `/access request` for the rest."
            )
        )
    return {
        "type": "modal",
        "callback_id": ids.REQUEST_FORM,
        "title": title,
        "submit": _plain("Request", limit=MODAL_TITLE_MAX),
        "close": _plain("Cancel", limit=MODAL_TITLE_MAX),
        "private_metadata": metadata,
        "blocks": blocks,
    }


def deny_form(grant: Grant) -> dict[str, Any]:
    """The deny modal: an optional reason. ``private_metadata`` is the grant id only."""
    return {
        "type": "modal",
        "callback_id": ids.DENY_FORM,
        "title": _plain("Deny request", limit=MODAL_TITLE_MAX),
        "submit": _plain("Deny", limit=MODAL_TITLE_MAX),
        "close": _plain("Cancel", limit=MODAL_TITLE_MAX),
        "private_metadata": grant.id,
        "blocks": [
            _section(
                f"Deny {user(grant.requester)}'s request for {what(grant)} "
                f"({format_duration(grant.duration_s)})?\n*Reason given:* {reason_text(grant)}"
            ),
            {
                "type": "input",
                "block_id": ids.DENY_REASON_BLOCK,
                "optional": True,
                "label": _plain("Why (the requester sees this)", limit=2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": ids.DENY_REASON_ACTION,
                    "multiline": True,
                    "max_length": DENY_REASON_MAX,
                },
            },
        ],
    }


def form_metadata(*, channel_id: str | None, channel_name: str | None) -> str:
    """The request form's private_metadata: where ``/access`` was typed (JSON)."""
    data = {"channel": channel_id, "channel_name": channel_name}
    return json.dumps({k: v for k, v in data.items() if v}, separators=(",", ":"))


# -- App Home ---------------------------------------------------------------------------------


def app_home(
    *,
    mine: Sequence[Grant],
    waiting: Sequence[Grant],
    now: float,
) -> dict[str, Any]:
    """The App Home tab: my active grants (time left, Revoke), my pending requests (Cancel),
    and requests waiting for my approval (Approve / Deny). At most 100 blocks (Slack's limit
    for a view); what does not fit is counted and pointed to ``/access list``."""
    active = [g for g in mine if g.status in (Status.ACTIVE, Status.APPROVED, Status.REVOKE_FAILED)]
    pending = [g for g in mine if g.status is Status.PENDING]
    blocks: list[Block] = [
        _header("Just-in-time access"),
        {
            "type": "actions",
            "block_id": "home_actions",
            "elements": [
                _button("Request access", action_id=ids.OPEN_FORM, value="open", style="primary")
            ],
        },
        {"type": "divider"},
        _section("*Your active grants*"),
    ]
    for g in active:
        left = format_duration(g.remaining_s(now))
        until = f", until {when(g.expires_at)}" if g.expires_at else ""
        accessory = (
            _button("Revoke now", action_id=ids.REVOKE, value=g.id, style="danger")
            if g.status is not Status.APPROVED
            else None
        )
        blocks.append(
            _section(
                f"{STATUS_EMOJI[g.status]} {what(g)} · `{g.id}` · *{left} left*{until}",
                block_id=f"active.{g.id}",
                accessory=accessory,
            )
        )
    if not active:
        blocks.append(_context("None."))
    blocks.append(_section("*Your pending requests*"))
    for g in pending:
        blocks.append(
            _section(
                f"{STATUS_EMOJI[g.status]} {what(g)} for {format_duration(g.duration_s)} · "
                f"`{g.id}` · {approvals_text(g)}",
                block_id=f"pending.{g.id}",
                accessory=_button("Cancel", action_id=ids.CANCEL, value=g.id),
            )
        )
    if not pending:
        blocks.append(_context("None."))
    blocks.append({"type": "divider"})
    blocks.append(_section("*Waiting for your approval*"))
    for g in waiting:
        blocks.append(
            _section(
                f"{user(g.requester)} asks for {what(g)} for {format_duration(g.duration_s)} "
                f"({approvals_text(g)}) · `{g.id}`\n{reason_text(g)}",
                block_id=f"waiting.{g.id}",
            )
        )
        blocks.append(
            {
                "type": "actions",
                "block_id": f"{ids.DECISION_BLOCK}.{g.id}",
                "elements": [
                    _button("Approve", action_id=ids.APPROVE, value=g.id, style="primary"),
                    _button("Deny", action_id=ids.DENY, value=g.id, style="danger"),
                ],
            }
        )
    if not waiting:
        blocks.append(_context("Nothing is waiting for you."))
    total = len(active) + len(pending) + len(waiting)
    return {
        "type": "home",
        "blocks": _fit(
            blocks,
            limit=VIEW_BLOCKS_MAX,
            more=f"…{total} items in all; more than fits here (Slack allows 100 blocks). "
            "Use `/access list` and `/access pending`.",
        ),
    }
