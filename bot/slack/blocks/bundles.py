"""A bundle request's messages (issue 13): the one approval message listing every item and
whose approval each still needs, and the one DM carrying every credential.

Pure. Each item's blocks in the DM carry block ids ``bi-<grant id>-<n>`` so that when one
item ends, only its blocks are replaced (:func:`without_item`): its secret leaves Slack, the
others' stay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from bot.domain.credentials import Credential
from bot.domain.duration import format_duration
from bot.domain.model import Grant, Status
from bot.slack.blocks.describe import (
    STATUS_EMOJI,
    decision_actions,
    origin_text,
    outcome_text,
    reason_text,
    what,
)
from bot.slack.blocks.kit import (
    MESSAGE_BLOCKS_MAX,
    Block,
    Message,
    channel,
    context,
    escape,
    fallback_text,
    fit,
    header,
    section,
    user,
)
from bot.slack.blocks.messages import credential_dm

#: Block ids of one item's blocks in the bundle DM start with this and the grant id.
ITEM_BLOCK_PREFIX: Final = "bi-"


@dataclass(frozen=True, slots=True)
class BundleRow:
    """One item as the approval message shows it: the grant as stored now and, while it is
    pending, who may still approve it (user ids, without those who already did)."""

    grant: Grant
    approvers: tuple[str, ...]
    channel: str | None = None


def bundle_name(grant: Grant) -> tuple[str, str] | None:
    """(bundle name, bundle id) of a bundle's item; None for any other grant."""
    if grant.bundle is None:
        return None
    name, _, bundle_id = grant.bundle.partition(" ")
    return (name, bundle_id) if bundle_id else None


def _needs(row: BundleRow, *, now: float) -> str:
    grant = row.grant
    if grant.status is not Status.PENDING:
        return f"{STATUS_EMOJI.get(grant.status, '')} {outcome_text(grant, now=now)}".strip()
    missing = grant.approvals_required - len(grant.approvals)
    who = ", ".join(user(u) for u in row.approvers[:15]) or "nobody the policy names"
    more = "" if len(row.approvers) <= 15 else f" and {len(row.approvers) - 15} more"
    where = f" (also in {channel(row.channel)})" if row.channel else ""
    return f"needs {missing} more approval{'s' if missing != 1 else ''} from: {who}{more}{where}"


def bundle_approval(name: str, bundle_id: str, rows: Sequence[BundleRow], *, now: float) -> Message:
    """The approvers' one message: the bundle, then each item with where it stands (whose
    approval it still needs) and, while pending, its own Approve/Deny (the grant id)."""
    first = rows[0].grant
    asked_by = (
        f"{user(first.requested_by)} for {user(first.requester)}"
        if first.requested_by
        else user(first.requester)
    )
    blocks: list[Block] = [
        header(f"Bundle request: {name}"),
        section(
            f"{asked_by} asks for bundle *{escape(name)}* ({len(rows)} items) for "
            f"{format_duration(first.duration_s)}, from {origin_text(first)}.\n"
            f"*Reason*: {reason_text(first)}"
        ),
    ]
    for row in rows:
        grant = row.grant
        blocks.append(section(f"{what(grant)} (`{grant.id}`): {_needs(row, now=now)}"))
        if grant.status is Status.PENDING:
            blocks.append(decision_actions(grant, block_id=f"bundle-decide-{grant.id}"))
    blocks.append(context(f"Bundle `{bundle_id}` · each item follows its own rule"))
    text = f"Bundle request {name} ({bundle_id}) for {first.requester}"
    return Message(text=fallback_text(text), blocks=fit(blocks, limit=MESSAGE_BLOCKS_MAX, more="…"))


def _tagged(grant: Grant, blocks: Sequence[Block]) -> list[Block]:
    out = []
    for n, block in enumerate(blocks):
        tagged = dict(block)
        tagged["block_id"] = f"{ITEM_BLOCK_PREFIX}{grant.id}-{n}"
        out.append(tagged)
    return out


def _item_ended(grant: Grant, *, now: float) -> list[Block]:
    emoji = STATUS_EMOJI.get(grant.status, "")
    line = outcome_text(grant, now=now)  # a failure's text includes its error
    return _tagged(grant, [section(f"{emoji} {what(grant)} (`{grant.id}`): {line}.")])


def bundle_credentials(
    name: str,
    bundle_id: str,
    items: Sequence[tuple[Grant, Credential | None]],
    *,
    now: float,
) -> Message:
    """The requester's one DM: every item's credential (the one place these secrets are
    rendered, as in :func:`credential_dm`), and each item that is not live, with why."""
    blocks: list[Block] = [header(f"Your bundle: {name}")]
    for grant, credential in items:
        if grant.status is Status.ACTIVE and credential is not None:
            own = credential_dm(grant, credential, now=now).blocks
            # its own header gives way to one naming the item, so each credential says
            # which resource and role it is for
            blocks += _tagged(grant, [header(f"{grant.resource} {grant.role}"), *own[1:]])
        elif grant.status is Status.ACTIVE:
            blocks += _tagged(
                grant,
                [
                    section(
                        f"{what(grant)} (`{grant.id}`) is active, but its credential could "
                        "not be issued again for this message; revoke it and ask again."
                    )
                ],
            )
        else:
            blocks += _item_ended(grant, now=now)
    blocks.append(context(f"Bundle `{bundle_id}` · each item ends on its own"))
    live = sum(1 for g, c in items if g.status is Status.ACTIVE and c is not None)
    text = f"Your bundle {name} is ready: {live} of {len(items)} credentials ({bundle_id})"
    return Message(text=text, blocks=fit(blocks, limit=MESSAGE_BLOCKS_MAX, more="…"))


def without_item(blocks: Sequence[dict[str, Any]], grant: Grant, *, now: float) -> list[Block]:
    """The bundle DM's ``blocks`` (as Slack holds them) with ``grant``'s replaced by a line
    saying it ended: its secret leaves the message, the other items' blocks stay as they are."""
    prefix = f"{ITEM_BLOCK_PREFIX}{grant.id}-"
    out: list[Block] = []
    replaced = False
    for block in blocks:
        if str(block.get("block_id", "")).startswith(prefix):
            if not replaced:
                out += _item_ended(grant, now=now)
                replaced = True
            continue
        out.append(dict(block))
    return out
