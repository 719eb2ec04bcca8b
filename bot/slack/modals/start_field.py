"""The request form's optional start field (issue 13): built, read back and checked, in one
place. The time is typed as ``/access request`` takes it (``14:00``, ``in 2h``,
``2026-12-01 09:00``) and read in the requester's Slack time zone."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from bot.domain.duration import parse_duration
from bot.domain.start import StartSpec, check_lead_time, parse_start_text
from bot.errors import PolicyDenied, UsageError
from bot.slack import ids
from bot.slack.blocks.kit import PLACEHOLDER_MAX, Block, plain
from bot.slack.modals.fields import short, text

if TYPE_CHECKING:
    from bot.slack.context import SlackDeps
    from bot.slack.modals.request import RequestInput

START_INPUT_MAX: Final = 32
#: The most time reading the requester's time zone may take before the ack.
ZONE_BUDGET_S: Final = 1.0


def start_block() -> Block:
    """The optional "Start" input."""
    return {
        "type": "input",
        "block_id": ids.FORM_START_BLOCK,
        "optional": True,
        "label": plain("Start", limit=2000),
        "hint": plain(
            "Leave empty to start when approved. Or 14:00, in 2h, 2026-12-01 09:00 (your Slack"
            " time zone); approved before then, it is issued at that time.",
            limit=2000,
        ),
        "element": {
            "type": "plain_text_input",
            "action_id": ids.FORM_START_ACTION,
            "max_length": START_INPUT_MAX,
            "placeholder": plain("14:00", limit=PLACEHOLDER_MAX),
        },
    }


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


async def start_refusal(deps: SlackDeps, user: str, form: RequestInput) -> dict[str, str] | None:
    """An error on the start field when the time is past or does not exist in the
    requester's zone (checked before the ack, within :data:`ZONE_BUDGET_S`)."""
    from bot.slack.asking import scheduled_start

    if form.start is None:
        return None
    try:
        start = await asyncio.wait_for(
            scheduled_start(deps, user, form.start), timeout=ZONE_BUDGET_S
        )
        try:
            rule = deps.service.rule_for(form.resource, form.role)
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
