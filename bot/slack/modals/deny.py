"""The deny form: the modal an approver fills in to deny a request, and its submission read
back. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from bot.domain.duration import format_duration
from bot.domain.model import Grant, Status
from bot.errors import TransitionError
from bot.slack import ids
from bot.slack.blocks.describe import outcome_text, reason_text, what
from bot.slack.blocks.kit import MODAL_TITLE_MAX, plain, section, text_input, user
from bot.slack.commands.reasons import MAX_REASON_CHARS
from bot.slack.modals.fields import FieldErrors, read_reason, text

#: The longest deny reason; the same bound as a request's reason.
DENY_REASON_MAX: Final = MAX_REASON_CHARS


def deny_form(grant: Grant) -> dict[str, Any]:
    """The deny modal: an optional reason. ``private_metadata`` is the grant id only."""
    return {
        "type": "modal",
        "callback_id": ids.DENY_FORM,
        "title": plain("Deny request", limit=MODAL_TITLE_MAX),
        "submit": plain("Deny", limit=MODAL_TITLE_MAX),
        "close": plain("Cancel", limit=MODAL_TITLE_MAX),
        "private_metadata": grant.id,
        "blocks": [
            section(
                f"Deny {user(grant.requester)}'s request for {what(grant)} "
                f"({format_duration(grant.duration_s)})?\n*Reason given:* {reason_text(grant)}"
            ),
            text_input(
                ids.DENY_REASON_BLOCK,
                ids.DENY_REASON_ACTION,
                label="Why (the requester sees this)",
                max_length=DENY_REASON_MAX,
                optional=True,
                multiline=True,
            ),
        ],
    }


def parse_deny_form(values: Mapping[str, Any]) -> str | FieldErrors:
    """The deny reason (normalised, possibly empty), or an error on its field."""
    reason, problem = read_reason(
        text(values, ids.DENY_REASON_BLOCK, ids.DENY_REASON_ACTION), limit=DENY_REASON_MAX
    )
    return reason if problem is None else {ids.DENY_REASON_BLOCK: problem}


def require_pending(grant: Grant, *, now: float) -> None:
    """The deny form opens only on a request still pending; else TransitionError saying
    where it stands (nothing changed)."""
    if grant.status is not Status.PENDING:
        raise TransitionError(
            f"{grant.id} is no longer pending ({outcome_text(grant, now=now)}); nothing changed"
        )
