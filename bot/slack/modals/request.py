"""The request form: the modal built (only what the person may request) and its submission
read back, in one place, so the two cannot drift apart.

Pure. The submission is read as untrusted input (:mod:`bot.slack.modals.fields`): names must
be policy-shaped, a duration is ASCII and short, a reason is normalised and bounded, tickets
are ticket-shaped, a pasted SSH key is a public key (a private one is refused unquoted).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from bot.domain.duration import format_duration, parse_duration
from bot.domain.policy.rules import RoleRule
from bot.domain.ssh_keys import SSH_CERT_PROVIDER_TYPE, contains_private_key
from bot.domain.start import StartSpec
from bot.errors import UsageError
from bot.slack import ids
from bot.slack.blocks.kit import (
    MODAL_TITLE_MAX,
    OPTION_TEXT_MAX,
    OPTIONS_MAX,
    PLACEHOLDER_MAX,
    PRIVATE_METADATA_MAX,
    Block,
    context,
    option,
    plain,
    section,
    text_input,
)
from bot.slack.commands.grammar import NAME_RE, parse_public_key
from bot.slack.commands.reasons import MAX_REASON_CHARS, TICKET_RE, extract_tickets
from bot.slack.modals.fields import (
    PRIVATE_KEY_ERROR,
    FieldErrors,
    read_reason,
    selected,
    short,
    text,
)
from bot.slack.modals.start_field import read_start, start_block

#: The longest ticket field we accept in the form (several references, comma separated).
TICKETS_INPUT_MAX: Final = 200
#: An OpenSSH public key line: RSA 4096 is ~750 characters; room for a long comment.
SSH_KEY_INPUT_MAX: Final = 3000


# -- building ---------------------------------------------------------------------------------


def target_value(rule: RoleRule) -> str:
    """The form option value naming a rule: ``orders-db/read``."""
    return f"{rule.resource}{ids.TARGET_SEPARATOR}{rule.role}"


def request_form(rules: Sequence[RoleRule], *, private_metadata: str = "") -> dict[str, Any]:
    """The request modal: only the resources and roles in ``rules`` (what this user may
    request), a duration, a reason and ticket references.

    Options are grouped by resource. Slack allows 100 option groups and 100 options in
    total; beyond that the form says so and ``/access request`` still reaches the rest.
    With no rules the modal explains that and has no submit button.
    """
    title = plain("Request access", limit=MODAL_TITLE_MAX)
    metadata = private_metadata if len(private_metadata) <= PRIVATE_METADATA_MAX else ""
    if not rules:
        return {
            "type": "modal",
            "callback_id": ids.REQUEST_FORM,
            "title": title,
            "close": plain("Close", limit=MODAL_TITLE_MAX),
            "private_metadata": metadata,
            "blocks": [
                section("The policy lets you request nothing. Ask an admin to add you."),
            ],
        }
    groups: dict[str, list[Block]] = {}
    for rule in rules[:OPTIONS_MAX]:  # Slack: at most 100 options in one select
        label = f"{rule.role} · up to {format_duration(rule.max_duration_s)}"
        groups.setdefault(rule.resource, []).append(option(label, target_value(rule)))
    element: Block = {
        "type": "static_select",
        "action_id": ids.FORM_TARGET_ACTION,
        "placeholder": plain("Choose a resource and role", limit=PLACEHOLDER_MAX),
        "option_groups": [
            {"label": plain(name, limit=OPTION_TEXT_MAX), "options": options}
            for name, options in list(groups.items())[:OPTIONS_MAX]
        ],
    }
    blocks: list[Block] = [
        {
            "type": "input",
            "block_id": ids.FORM_TARGET_BLOCK,
            "label": plain("Resource and role", limit=2000),
            "element": element,
        },
        text_input(
            ids.FORM_DURATION_BLOCK,
            ids.FORM_DURATION_ACTION,
            label="Duration",
            hint="Like 30m, 2h or 1h30m; each role's limit is shown above.",
            placeholder="30m",
            max_length=16,
        ),
        text_input(
            ids.FORM_REASON_BLOCK,
            ids.FORM_REASON_ACTION,
            label="Reason",
            placeholder="What you will do, e.g. debugging INC-42",
            max_length=MAX_REASON_CHARS,
            multiline=True,
        ),
        text_input(
            ids.FORM_TICKETS_BLOCK,
            ids.FORM_TICKETS_ACTION,
            label="Tickets",
            hint="Ticket references such as INC-42, comma separated.",
            placeholder="INC-42",
            max_length=TICKETS_INPUT_MAX,
            optional=True,
        ),
        start_block(),
    ]
    if any(rule.provider_type == SSH_CERT_PROVIDER_TYPE for rule in rules[:OPTIONS_MAX]):
        blocks.append(
            text_input(
                ids.FORM_SSH_KEY_BLOCK,
                ids.FORM_SSH_KEY_ACTION,
                label="SSH public key",
                hint="For SSH roles: the one line of your .pub file, never the private key. It "
                "is kept as your key, as /access ssh-key add does; leave it empty to use the key "
                "you registered.",
                placeholder="ssh-ed25519 AAAA... you@laptop",
                max_length=SSH_KEY_INPUT_MAX,
                optional=True,
            )
        )
    if len(rules) > OPTIONS_MAX:
        blocks.append(
            context(
                f"Showing {OPTIONS_MAX} of {len(rules)} roles (Slack allows {OPTIONS_MAX} "
                "options); use `/access request` for the rest."
            )
        )
    return {
        "type": "modal",
        "callback_id": ids.REQUEST_FORM,
        "title": title,
        "submit": plain("Request", limit=MODAL_TITLE_MAX),
        "close": plain("Cancel", limit=MODAL_TITLE_MAX),
        "private_metadata": metadata,
        "blocks": blocks,
    }


def form_metadata(*, channel_id: str | None, channel_name: str | None) -> str:
    """The request form's private_metadata: where ``/access`` was typed (JSON)."""
    data = {"channel": channel_id, "channel_name": channel_name}
    return json.dumps({k: v for k, v in data.items() if v}, separators=(",", ":"))


# -- reading the submission ----------------------------------------------------------------


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
    start: StartSpec | None = None  # a scheduled start (bot.slack.modals.start_field)


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
    target = selected(values, ids.FORM_TARGET_BLOCK, ids.FORM_TARGET_ACTION)
    resource, sep, role = target.partition(ids.TARGET_SEPARATOR)
    if not sep or not NAME_RE.fullmatch(resource) or not NAME_RE.fullmatch(role):
        errors[ids.FORM_TARGET_BLOCK] = "Choose a resource and role from the list."

    duration_s, problem = _read_duration(
        text(values, ids.FORM_DURATION_BLOCK, ids.FORM_DURATION_ACTION).strip()
    )
    if problem is not None:
        errors[ids.FORM_DURATION_BLOCK] = problem

    reason, problem = read_reason(
        text(values, ids.FORM_REASON_BLOCK, ids.FORM_REASON_ACTION), limit=MAX_REASON_CHARS
    )
    if problem is not None:
        errors[ids.FORM_REASON_BLOCK] = problem

    tickets, problem = _read_tickets(
        text(values, ids.FORM_TICKETS_BLOCK, ids.FORM_TICKETS_ACTION), reason=reason
    )
    if problem is not None:
        errors[ids.FORM_TICKETS_BLOCK] = problem

    ssh_public_key, problem = _read_ssh_key(
        text(values, ids.FORM_SSH_KEY_BLOCK, ids.FORM_SSH_KEY_ACTION).strip()
    )
    if problem is not None:
        errors[ids.FORM_SSH_KEY_BLOCK] = problem

    start, problem = read_start(values)
    if problem is not None:
        errors[ids.FORM_START_BLOCK] = problem

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
        start=start,
    )


def _read_duration(raw: str) -> tuple[int, str | None]:
    if not raw:
        return 0, "Give a duration, like 30m or 1h30m."
    if len(raw) > 16 or not raw.isascii() or not raw.isprintable():
        return 0, "Write a duration like 30m, 2h or 1h30m."
    try:
        return parse_duration(raw), None
    except UsageError as e:
        return 0, short(str(e))


def _read_tickets(raw: str, *, reason: str) -> tuple[tuple[str, ...], str | None]:
    """The tickets typed in their field, then those the reason names; an error for a word
    that is not a ticket reference."""
    if contains_private_key(raw):
        return (), PRIVATE_KEY_ERROR
    if len(raw) > TICKETS_INPUT_MAX:
        return (), f"Keep tickets under {TICKETS_INPUT_MAX} characters."
    words = [w.strip(" ,;") for w in raw.replace(",", " ").split()]
    bad = [w for w in words if w and not TICKET_RE.fullmatch(w)]
    problem = (
        short(f'"{bad[0][:30]}" is not a ticket reference; write them like INC-42, CHG-7.')
        if bad
        else None
    )
    return tuple(dict.fromkeys([*(w for w in words if w), *extract_tickets(reason)])), problem


def _read_ssh_key(raw: str) -> tuple[str | None, str | None]:
    """A pasted public key, checked as ``/access ssh-key add`` checks it; empty is none."""
    if not raw:
        return None, None
    if contains_private_key(raw):
        return None, PRIVATE_KEY_ERROR
    try:
        return parse_public_key(raw), None
    except UsageError as e:
        return None, short(str(e).split(" Usage:", 1)[0])


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


def refusal_errors(rule: RoleRule | None, form: RequestInput, refusal: str) -> FieldErrors:
    """The policy's ``refusal`` of ``form``, as an error on the field it is about."""
    return {policy_error_field(rule, form): short(refusal)}
