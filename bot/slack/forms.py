"""Reading submitted modals: ``view.state.values`` -> typed input, or errors per field.

Pure. Every value is treated as untrusted (a signed payload can still carry anything a
client put in it): lengths are checked here even though the form sets ``max_length``, names
must be policy-shaped, and a private key is refused without being quoted. Errors are keyed by
the input's block id, as Slack's ``response_action: "errors"`` expects, and each is a short
message for the field (Slack shows at most a line or two).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from bot.domain.duration import parse_duration
from bot.domain.policy.rules import RoleRule
from bot.domain.ssh_keys import contains_private_key
from bot.errors import UsageError
from bot.slack import ids
from bot.slack.blocks import DENY_REASON_MAX, TICKETS_INPUT_MAX
from bot.slack.commands.grammar import NAME_RE, parse_public_key
from bot.slack.commands.reasons import (
    MAX_REASON_CHARS,
    TICKET_RE,
    extract_tickets,
    normalize_reason,
)

#: Slack shows a field error under the input; keep it short enough to read there.
FIELD_ERROR_MAX: Final = 150
_PRIVATE_KEY_ERROR: Final = (
    "That looks like a private key: nothing was sent. Never paste one; make a new key pair."
)

FieldErrors = dict[str, str]


@dataclass(frozen=True, slots=True)
class RequestInput:
    """A well-formed request form: the policy has not been consulted yet."""

    resource: str
    role: str
    duration_s: int
    reason: str
    tickets: tuple[str, ...]
    channel: str | None
    channel_name: str | None
    ssh_public_key: str | None = None  # pasted in the form: to be registered before filing


def _value(values: Mapping[str, Any], block_id: str, action_id: str) -> Any:
    block = values.get(block_id)
    if not isinstance(block, Mapping):
        return None
    element = block.get(action_id)
    return element if isinstance(element, Mapping) else None


def _text(values: Mapping[str, Any], block_id: str, action_id: str) -> str:
    element = _value(values, block_id, action_id)
    value = element.get("value") if element is not None else None
    return value if isinstance(value, str) else ""


def _selected(values: Mapping[str, Any], block_id: str, action_id: str) -> str:
    element = _value(values, block_id, action_id)
    option = element.get("selected_option") if element is not None else None
    value = option.get("value") if isinstance(option, Mapping) else None
    return value if isinstance(value, str) else ""


def _short(message: str) -> str:
    return message if len(message) <= FIELD_ERROR_MAX else message[: FIELD_ERROR_MAX - 1] + "…"


def parse_metadata(private_metadata: str) -> tuple[str | None, str | None]:
    """(channel id, channel name) the form was opened from; (None, None) when absent/bad."""
    try:
        data = json.loads(private_metadata) if private_metadata else {}
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    channel, name = data.get("channel"), data.get("channel_name")
    return (
        channel if isinstance(channel, str) and channel.isalnum() and len(channel) < 32 else None,
        name if isinstance(name, str) and len(name) <= 80 else None,
    )


def parse_request_form(
    values: Mapping[str, Any], *, private_metadata: str
) -> RequestInput | FieldErrors:
    """The request form's input, or an error for each bad field (keyed by block id)."""
    errors: FieldErrors = {}
    target = _selected(values, ids.FORM_TARGET_BLOCK, ids.FORM_TARGET_ACTION)
    resource, sep, role = target.partition(ids.TARGET_SEPARATOR)
    if not sep or not NAME_RE.fullmatch(resource) or not NAME_RE.fullmatch(role):
        errors[ids.FORM_TARGET_BLOCK] = "Choose a resource and role from the list."

    raw_duration = _text(values, ids.FORM_DURATION_BLOCK, ids.FORM_DURATION_ACTION).strip()
    duration_s = 0
    if not raw_duration:
        errors[ids.FORM_DURATION_BLOCK] = "Give a duration, like 30m or 1h30m."
    elif len(raw_duration) > 16 or not raw_duration.isascii() or not raw_duration.isprintable():
        errors[ids.FORM_DURATION_BLOCK] = "Write a duration like 30m, 2h or 1h30m."
    else:
        try:
            duration_s = parse_duration(raw_duration)
        except UsageError as e:
            errors[ids.FORM_DURATION_BLOCK] = _short(str(e))

    raw_reason = _text(values, ids.FORM_REASON_BLOCK, ids.FORM_REASON_ACTION)
    raw_tickets = _text(values, ids.FORM_TICKETS_BLOCK, ids.FORM_TICKETS_ACTION)
    reason = ""
    if contains_private_key(raw_reason):
        errors[ids.FORM_REASON_BLOCK] = _PRIVATE_KEY_ERROR
    elif len(raw_reason) > 4 * MAX_REASON_CHARS:  # before normalising a huge forged value
        errors[ids.FORM_REASON_BLOCK] = f"Keep the reason under {MAX_REASON_CHARS} characters."
    else:
        reason = normalize_reason(raw_reason, slack_escaped=False)
        if len(reason) > MAX_REASON_CHARS:
            errors[ids.FORM_REASON_BLOCK] = (
                f"The reason is {len(reason)} characters; the limit is {MAX_REASON_CHARS}."
            )

    tickets: tuple[str, ...] = ()
    if contains_private_key(raw_tickets):
        errors[ids.FORM_TICKETS_BLOCK] = _PRIVATE_KEY_ERROR
    elif len(raw_tickets) > TICKETS_INPUT_MAX:
        errors[ids.FORM_TICKETS_BLOCK] = f"Keep tickets under {TICKETS_INPUT_MAX} characters."
    else:
        words = [w.strip(" ,;") for w in raw_tickets.replace(",", " ").split()]
        bad = [w for w in words if w and not TICKET_RE.fullmatch(w)]
        if bad:
            errors[ids.FORM_TICKETS_BLOCK] = _short(
                f'"{bad[0][:30]}" is not a ticket reference; write them like INC-42, CHG-7.'
            )
        tickets = tuple(dict.fromkeys([*(w for w in words if w), *extract_tickets(reason)]))

    ssh_public_key = None
    raw_key = _text(values, ids.FORM_SSH_KEY_BLOCK, ids.FORM_SSH_KEY_ACTION).strip()
    if raw_key and contains_private_key(raw_key):
        errors[ids.FORM_SSH_KEY_BLOCK] = _PRIVATE_KEY_ERROR
    elif raw_key:
        try:
            ssh_public_key = parse_public_key(raw_key)
        except UsageError as e:
            errors[ids.FORM_SSH_KEY_BLOCK] = _short(str(e).split(" Usage:", 1)[0])

    if errors:
        return errors
    channel, channel_name = parse_metadata(private_metadata)
    return RequestInput(
        resource=resource,
        role=role,
        duration_s=duration_s,
        reason=reason,
        tickets=tickets,
        channel=channel,
        channel_name=channel_name,
        ssh_public_key=ssh_public_key,
    )


def policy_error_field(rule: RoleRule | None, form: RequestInput) -> str:
    """The form field a policy refusal is about, judged from the facts in the same order the
    policy checks them: who may ask (the target), the duration, the reason, the ticket."""
    if rule is None:
        return ids.FORM_TARGET_BLOCK
    if form.duration_s > rule.max_duration_s:
        return ids.FORM_DURATION_BLOCK
    if rule.require_reason and not form.reason:
        return ids.FORM_REASON_BLOCK
    if rule.require_ticket is not None and not any(
        rule.require_ticket.search(t) for t in (*form.tickets, *form.reason.split())
    ):
        return ids.FORM_TICKETS_BLOCK
    return ids.FORM_TARGET_BLOCK


def parse_deny_form(values: Mapping[str, Any]) -> str | FieldErrors:
    """The deny reason (normalised, possibly empty), or an error on its field."""
    raw = _text(values, ids.DENY_REASON_BLOCK, ids.DENY_REASON_ACTION)
    if contains_private_key(raw):
        return {ids.DENY_REASON_BLOCK: _PRIVATE_KEY_ERROR}
    if len(raw) > 4 * DENY_REASON_MAX:
        return {ids.DENY_REASON_BLOCK: f"Keep the reason under {DENY_REASON_MAX} characters."}
    reason = normalize_reason(raw, slack_escaped=False)
    if len(reason) > DENY_REASON_MAX:
        return {
            ids.DENY_REASON_BLOCK: f"The reason is {len(reason)} characters; "
            f"the limit is {DENY_REASON_MAX}."
        }
    return reason
