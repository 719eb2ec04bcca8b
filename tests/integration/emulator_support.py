"""Block Kit builders for the Slack emulator's and driver's own tests
(test_slack_emulator.py, test_slack_driver.py): small, valid blocks and a modal to post,
open and click."""

from __future__ import annotations

from typing import Any


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button(action_id: str, value: str, label: str = "Approve") -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "value": value,
        "text": {"type": "plain_text", "text": label},
    }


def actions(*elements: dict[str, Any], block_id: str = "decide") -> dict[str, Any]:
    return {"type": "actions", "block_id": block_id, "elements": list(elements)}


def modal(title: str = "Request access", **extra: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "request_modal",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Submit"},
        "blocks": [
            {
                "type": "input",
                "block_id": "reason",
                "label": {"type": "plain_text", "text": "Reason"},
                "element": {"type": "plain_text_input", "action_id": "reason_input"},
            }
        ],
        **extra,
    }
