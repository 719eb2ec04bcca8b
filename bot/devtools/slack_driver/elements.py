"""What a click clicked: the element carrying an action_id in rendered blocks, the ``actions``
entry Slack sends for it, and ``view.state.values`` entries for a submitted form."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

JSON = dict[str, Any]


def find_element(
    blocks: Sequence[Mapping[str, Any]], action_id: str, *, in_block: str | None = None
) -> tuple[str, JSON]:
    """The (block_id, element) carrying ``action_id`` in rendered blocks (only in the block
    ``in_block``, when given: one of several buttons alike); LookupError if none.

    A block the app sent without a block_id gets one from Slack; here, ``b<index>``.
    """
    for index, block in enumerate(blocks):
        if in_block is not None and block.get("block_id") != in_block:
            continue
        candidates: list[Any] = []
        if block.get("type") == "actions":
            candidates = list(block.get("elements", []))
        elif block.get("type") == "section" and "accessory" in block:
            candidates = [block["accessory"]]
        elif block.get("type") == "input" and "element" in block:
            candidates = [block["element"]]
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return str(block.get("block_id") or f"b{index}"), element
    raise LookupError(f"no element with action_id {action_id!r} in these blocks")


def action_payload(
    element: Mapping[str, Any], block_id: str, value: str | None, action_ts: str
) -> JSON:
    """The ``actions[0]`` entry Slack sends when ``element`` is used (``value`` is chosen)."""
    kind = str(element.get("type", "button"))
    action: JSON = {"type": kind, "action_id": element["action_id"], "block_id": block_id}
    if kind == "button":
        action["text"] = element.get("text", {"type": "plain_text", "text": element["action_id"]})
        chosen = value if value is not None else element.get("value")
        if chosen is not None:
            action["value"] = chosen
        if "style" in element:
            action["style"] = element["style"]
    elif "options" in element:
        options = [o for o in element["options"] if value is None or o.get("value") == value]
        if not options:
            raise LookupError(f"no option with value {value!r} in {element['action_id']!r}")
        action["selected_option"] = options[0]
        if "placeholder" in element:
            action["placeholder"] = element["placeholder"]
    elif value is not None:
        action["value"] = value
    action["action_ts"] = action_ts
    return action


def plain_text_value(text: str) -> JSON:
    """A ``view.state.values`` entry for a plain_text_input."""
    return {"type": "plain_text_input", "value": text}


def static_select_value(value: str, text: str | None = None) -> JSON:
    """A ``view.state.values`` entry for a static_select."""
    option = {"text": {"type": "plain_text", "text": text or value, "emoji": True}, "value": value}
    return {"type": "static_select", "selected_option": option}


def users_select_value(user_id: str) -> JSON:
    """A ``view.state.values`` entry for a users_select."""
    return {"type": "users_select", "selected_user": user_id}
