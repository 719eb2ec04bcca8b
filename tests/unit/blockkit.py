"""What the Block Kit tests share: the validator, hostile data, grants in two states, and
ways to look inside a rendered message.

Every rendered message and view is checked with the emulator's Block Kit validator (the
same limits, worded as Slack words them), including for hostile and over-long data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.devtools.slack_emulator import BlockKitValidator
from bot.domain.model import Approval, Grant, Status
from bot.domain.policy.rules import RoleRule
from bot.policy_loader import load_policy
from bot.slack.blocks import kit
from tests.factories import NOW, make_grant

POLICY_FILE = Path(__file__).parent.parent / "fixtures" / "slack_policy.yaml"


VALIDATOR = BlockKitValidator()


HOSTILE_REASON = "<!here> <!channel> <@U0BOB> & <https://evil.example|click> " + "x" * 3000


SECRET = "s3cr3t-Pa55word-value"


def policy_rule(resource: str = "sandbox", role: str = "play") -> RoleRule:
    return load_policy(POLICY_FILE).policy.rule(resource, role)


def message_ok(message: kit.Message) -> None:
    assert message.text
    assert len(message.text) <= kit.MESSAGE_TEXT_MAX
    assert VALIDATOR.message_blocks(message.blocks) == []


def view_ok(view: dict[str, Any], kind: str) -> None:
    assert VALIDATOR.view(view, expected_type=kind) == []


def buttons_of(message_blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for block in message_blocks:
        if block["type"] == "actions":
            found += block["elements"]
        elif block.get("accessory", {}).get("type") == "button":
            found.append(block["accessory"])
    return found


def all_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def pending_grant(**overrides: Any) -> Grant:
    return make_grant(**overrides)


def active_grant(**overrides: Any) -> Grant:
    fields: dict[str, Any] = {
        "status": Status.ACTIVE,
        "approvals": [Approval(user="U0BOB", at=NOW)],
        "decided_by": "U0BOB",
        "approved_at": NOW,
        "activated_at": NOW,
        "expires_at": NOW + 1800,
    }
    fields.update(overrides)
    return make_grant(**fields)
