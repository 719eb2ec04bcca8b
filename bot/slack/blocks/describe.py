"""How every message names a grant: what was asked for, why, from where, where it stands.

Pure. Stored text (reasons, errors) is escaped and bounded here, whatever the grammar let in
when it was stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from bot.domain.duration import format_duration
from bot.domain.model import Grant, Status
from bot.domain.start import show_time
from bot.slack import ids
from bot.slack.blocks.kit import (
    Block,
    button,
    channel,
    context,
    escape,
    fields_section,
    section,
    truncate,
    user,
    when,
)
from bot.slack.commands.reasons import MAX_REASON_CHARS

STATUS_EMOJI: Final[Mapping[Status, str]] = {
    Status.PENDING: ":hourglass_flowing_sand:",
    Status.APPROVED: ":white_check_mark:",
    Status.SCHEDULED: ":calendar:",
    Status.ACTIVE: ":large_green_circle:",
    Status.EXPIRED: ":checkered_flag:",
    Status.REVOKED: ":no_entry:",
    Status.DENIED: ":x:",
    Status.CANCELLED: ":heavy_multiplication_x:",
    Status.TIMED_OUT: ":alarm_clock:",
    Status.FAILED: ":warning:",
    Status.REVOKE_FAILED: ":rotating_light:",
}


def what(grant: Grant) -> str:
    """``*orders-db* read``: how a message names what was asked for."""
    return f"*{grant.resource}* {grant.role}"


def reason_text(grant: Grant) -> str:
    """The stored reason, escaped and bounded (the grammar caps it; stored data may not be)."""
    return escape(truncate(grant.reason, MAX_REASON_CHARS)) or "_none given_"


def tickets_text(tickets: Iterable[str]) -> str:
    """Ticket references, escaped, at most 10."""
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
        "api": "the pipelines API",
    }.get(o.surface, escape(truncate(o.surface, 32)))
    where = f" in {channel(o.channel)}" if o.channel and not o.channel.startswith("D") else ""
    incident = f" (incident {escape(truncate(o.incident, 80))})" if o.incident else ""
    return f"{surface}{where}{incident}"


def start_text(grant: Grant) -> str:
    """``2026-12-01 09:00 CET (Europe/Berlin)``: a scheduled start, in the zone it was
    written in (empty for a grant without one)."""
    if grant.starts_at is None:
        return ""
    return escape(show_time(grant.starts_at, grant.start_tz))


def approvals_text(grant: Grant) -> str:
    """``1 of 2 (<@U1>)``: distinct approvals so far out of those required."""
    done = len(grant.approvals)
    names = ", ".join(user(a.user) for a in grant.approvals[:10])
    return f"{done} of {grant.approvals_required}" + (f" ({names})" if names else "")


def title_of(grant: Grant) -> str:
    """The header of an approver's copy: an access request, or an extension of a grant."""
    if grant.kind == "extension":
        parent = f" of {grant.parent_id}" if grant.parent_id else ""
        return (
            f"Extension{parent}: {grant.resource} {grant.role} +{format_duration(grant.duration_s)}"
        )
    if grant.client is not None:
        return f"A pipeline asks: {grant.resource} {grant.role}"
    return f"Access request: {grant.resource} {grant.role}"


def requester_text(grant: Grant) -> str:
    """Who asked: a person's mention, or ``pipeline client `deploy-orders```."""
    if grant.client is not None:
        return f"pipeline client `{escape(truncate(grant.client, 64))}`"
    return user(grant.requester)


def deployment_text(grant: Grant) -> str | None:
    """The deployment a pipeline's request is for (id as a link, commit), or None."""
    d = grant.deployment
    if d is None:
        return None
    name = escape(truncate(d.id, 128))
    url = d.url or ""
    # A link is written <url|text>: a URL that could break out of that is shown as text.
    if url and not any(c in url for c in "<>| "):
        text = f"<{url}|{name}>"
    else:
        text = name + (f" ({escape(truncate(url, 200))})" if url else "")
    if d.commit:
        text += f" · commit `{escape(truncate(d.commit, 64))}`"
    return text


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
    if s is Status.SCHEDULED:
        return f"{approved}; starts {start_text(grant)}, nothing is issued before"
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
    if s is Status.TIMED_OUT and grant.approved_at is not None:  # a scheduled start missed
        missed = escape(grant.end_reason or "it could not start")
        return f"{approved}, but {missed}; nothing was granted"
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


def grant_line(grant: Grant, *, now: float) -> str:
    """One line for a grant in a list or an ephemeral status: id, what, where it stands."""
    emoji = STATUS_EMOJI.get(grant.status, "")
    return f"{emoji} `{grant.id}` {what(grant)} — {outcome_text(grant, now=now)}"


def summary_fields(grant: Grant, *, now: float) -> Block:
    """The fields an approver decides on: who, what, how long, tickets, from where, approvals."""
    pairs = [
        ("Requester", requester_text(grant)),
        ("Resource", what(grant)),
        ("Duration", format_duration(grant.duration_s)),
        ("Tickets", tickets_text(grant.tickets)),
        ("Asked from", origin_text(grant)),
        ("Approvals", approvals_text(grant)),
    ]
    if grant.starts_at is not None:
        pairs.append(("Starts", start_text(grant)))
    if grant.status is Status.PENDING and grant.request_expires_at is not None:
        pairs.append(("Lapses", when(grant.request_expires_at)))
    if grant.kind == "extension" and grant.parent_id:
        pairs.append(("Extends", f"`{grant.parent_id}`"))
    deployment = deployment_text(grant)
    if deployment is not None:
        pairs.append(("Deployment", deployment))
    if grant.requested_by is not None and grant.requested_by != grant.requester:
        pairs.append(("Asked by", f"{user(grant.requested_by)}, on the requester's behalf"))
    if grant.bundle is not None:
        pairs.append(("Bundle", escape(grant.bundle.split(" ")[0])))
    return fields_section(pairs)


def reason_block(grant: Grant) -> Block:
    """The request's reason as a section."""
    return section(f"*Reason*\n{reason_text(grant)}")


def id_context(grant: Grant) -> Block:
    """The request id, as a context line."""
    return context(f"Request `{grant.id}`")


def decision_actions(grant: Grant, *, block_id: str) -> Block:
    """Approve and Deny for ``grant``: each button's value is the grant id and nothing else."""
    return {
        "type": "actions",
        "block_id": block_id,
        "elements": [
            button("Approve", action_id=ids.APPROVE, value=grant.id, style="primary"),
            button("Deny", action_id=ids.DENY, value=grant.id, style="danger"),
        ],
    }
