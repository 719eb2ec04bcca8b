"""Reading a submitted modal's ``view.state.values``, field by field, as untrusted input.

Pure. Every value is treated as untrusted (a signed payload can still carry anything a
client put in it): lengths are checked even though the form sets ``max_length``, and a
private key is refused without being quoted. Errors are keyed by the input's block id, as
Slack's ``response_action: "errors"`` expects, and each is a short message for the field
(Slack shows at most a line or two).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from bot.domain.ssh_keys import contains_private_key
from bot.slack.blocks.kit import truncate
from bot.slack.commands.reasons import normalize_reason

#: Slack shows a field error under the input; keep it short enough to read there.
FIELD_ERROR_MAX: Final = 150
PRIVATE_KEY_ERROR: Final = (
    "That looks like a private key: nothing was sent. Never paste one; make a new key pair."
)

FieldErrors = dict[str, str]


def _element(values: Mapping[str, Any], block_id: str, action_id: str) -> Mapping[str, Any] | None:
    block = values.get(block_id)
    if not isinstance(block, Mapping):
        return None
    element = block.get(action_id)
    return element if isinstance(element, Mapping) else None


def text(values: Mapping[str, Any], block_id: str, action_id: str) -> str:
    """A text input's value; "" when absent or not a string."""
    element = _element(values, block_id, action_id)
    value = element.get("value") if element is not None else None
    return value if isinstance(value, str) else ""


def selected(values: Mapping[str, Any], block_id: str, action_id: str) -> str:
    """A select's chosen option value; "" when none or not a string."""
    element = _element(values, block_id, action_id)
    option = element.get("selected_option") if element is not None else None
    value = option.get("value") if isinstance(option, Mapping) else None
    return value if isinstance(value, str) else ""


def short(message: str) -> str:
    """``message`` cut to what Slack shows under a field."""
    return truncate(message, FIELD_ERROR_MAX)


def read_reason(raw: str, *, limit: int) -> tuple[str, str | None]:
    """A typed reason normalised, and the error on its field (None when it is fine): a
    private key is refused unquoted; a huge value is refused before it is normalised."""
    if contains_private_key(raw):
        return "", PRIVATE_KEY_ERROR
    if len(raw) > 4 * limit:  # before normalising a huge forged value
        return "", f"Keep the reason under {limit} characters."
    reason = normalize_reason(raw, slack_escaped=False)
    if len(reason) > limit:
        return reason, f"The reason is {len(reason)} characters; the limit is {limit}."
    return reason, None
