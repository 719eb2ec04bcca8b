"""``/access request bundle <name> <duration> <reason>`` (and the form's bundle choice): file
every item, let the approvers see the one message, and confirm to the requester what
happened to each item."""

from __future__ import annotations

from bot.domain.model import Origin, Status
from bot.service import BundleResult
from bot.slack.blocks import kit
from bot.slack.blocks.describe import STATUS_EMOJI, outcome_text, what
from bot.slack.commands.parsed import RequestBundle
from bot.slack.context import SlackDeps


async def file_bundle(
    deps: SlackDeps, *, user: str, command: RequestBundle, origin: Origin
) -> kit.Message:
    """File ``command``'s bundle for ``user``; the confirmation lists each item. Raises what
    the service raises (PolicyDenied naming the item they may not request)."""
    result = await deps.service.request_bundle(
        user=user,
        bundle=command.bundle,
        duration_s=command.duration_s,
        reason=command.reason,
        tickets=command.tickets,
        origin=origin,
    )
    return bundle_confirmation(result, now=deps.clock())


def bundle_confirmation(result: BundleResult, *, now: float) -> kit.Message:
    """The requester's private answer: the bundle and where each item stands."""
    lines = [
        f":package: Bundle *{kit.escape(result.name)}* (`{result.bundle_id}`): "
        f"{len(result.items)} item{'s' if len(result.items) != 1 else ''} filed."
    ]
    for item in result.items:
        grant = item.grant
        emoji = STATUS_EMOJI.get(grant.status, "")
        lines.append(f"• {emoji} {what(grant)} (`{grant.id}`): {outcome_text(grant, now=now)}")
        if item.note:
            lines.append(f"    {kit.escape(kit.truncate(item.note, 300))}")
    for name, why in result.unfiled:
        lines.append(f"• :x: {kit.escape(name)}: not filed: {kit.escape(kit.truncate(why, 300))}")
    waiting = any(r.grant.status is Status.PENDING for r in result.items)
    lines.append(
        "Your credentials come in one DM once every item is decided."
        if waiting
        else "Your credentials are in one DM."
    )
    text = "\n".join(lines)
    return kit.Message(text=kit.fallback_text(text), blocks=kit.chunked_sections(text))
