"""The request form's optional start field (issue 13): built, read back and checked, in one
place. The time is typed as ``/access request`` takes it (``14:00``, ``in 2h``,
``2026-12-01 09:00``) and read in the requester's Slack time zone."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, TypedDict

from bot.domain.duration import parse_duration
from bot.domain.start import (
    FALLBACK_TZ,
    StartSpec,
    check_lead_time,
    parse_start_text,
    resolve_start,
    zone,
)
from bot.errors import PolicyDenied, UsageError
from bot.slack import ids
from bot.slack.blocks.kit import Block, text_input
from bot.slack.modals.fields import short, text

if TYPE_CHECKING:
    from bot.slack.context import SlackDeps

START_INPUT_MAX: Final = 32
#: The most time reading the requester's time zone may take before the ack.
ZONE_BUDGET_S: Final = 1.0


def start_block() -> Block:
    """The optional "Start" input."""
    return text_input(
        ids.FORM_START_BLOCK,
        ids.FORM_START_ACTION,
        label="Start",
        hint="Leave empty to start when approved. Or 14:00, in 2h, 2026-12-01 09:00 (your Slack"
        " time zone); approved before then, it is issued at that time.",
        placeholder="14:00",
        max_length=START_INPUT_MAX,
        optional=True,
    )


def read_start(values: Mapping[str, Any]) -> tuple[StartSpec | None, str | None]:
    """The start typed in the form (None: none) and an error for the field, if any."""
    raw = text(values, ids.FORM_START_BLOCK, ids.FORM_START_ACTION).strip()
    if not raw:
        return None, None
    if len(raw) > START_INPUT_MAX or not raw.isascii() or not raw.isprintable():
        return None, "Write the start like 14:00, in 2h or 2026-12-01 09:00."
    try:
        return parse_start_text(raw, parse_delay=parse_duration), None
    except UsageError as e:
        return None, short(str(e))


class ScheduledStart(TypedDict, total=False):
    """A scheduled start as the service's ``request_access`` takes it (empty: now)."""

    starts_at: float
    start_tz: str


async def scheduled_start(deps: SlackDeps, user: str, spec: StartSpec | None) -> ScheduledStart:
    """``spec`` (``at 14:00``, ``in 2h``, ``on 2026-12-01 09:00``) as a time, read in the time
    zone Slack has for ``user`` (users.info ``tz``; UTC when Slack cannot say). UsageError
    for a time that is past or does not exist there."""
    if spec is None:
        return {}
    info = await deps.directory.user_info(user)
    tz = str(info.get("tz") or FALLBACK_TZ) if info is not None else FALLBACK_TZ
    tz = zone(tz).key  # a zone this machine does not know is read as UTC, and said so
    return {"starts_at": resolve_start(spec, tz=tz, now=deps.clock()), "start_tz": tz}


async def start_refusal(
    deps: SlackDeps, user: str, spec: StartSpec | None, *, resource: str, role: str
) -> dict[str, str] | None:
    """An error on the start field when the time ``spec`` of ``user``'s request for
    ``resource``/``role`` is past, does not exist in their zone or is further ahead than
    the rule's ``max_lead_time`` (checked before the ack, within :data:`ZONE_BUDGET_S`)."""
    if spec is None:
        return None
    try:
        start = await asyncio.wait_for(scheduled_start(deps, user, spec), timeout=ZONE_BUDGET_S)
        try:
            rule = deps.service.rule_for(resource, role)
        except PolicyDenied:
            return None  # the policy check puts this on the field it is about
        check_lead_time(
            start["starts_at"],
            now=deps.clock(),
            max_lead_time_s=rule.max_lead_time_s,
            rule=rule.name,
        )
    except (UsageError, PolicyDenied) as e:
        return {ids.FORM_START_BLOCK: short(str(e))}
    except TimeoutError:
        return None  # filing checks it again and answers by message
    return None
