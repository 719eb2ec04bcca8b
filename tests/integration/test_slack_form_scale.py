"""Issue 13, item 6 end to end: the global shortcut "Request access", and a form whose
targets are searched as the person types (external_select, Bolt's ``app.options``) once they
may ask for more than Slack's 100 options.

The real bot, signed requests, the emulator checking the views it is asked to open."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.devtools.slack_driver import plain_text_value
from bot.domain.model import Status
from bot.slack import ids
from tests.integration.slack_harness import ALICE, SlackHarness

#: 30 resources x 4 roles = 120 pairs Alice may request, and one bundle.
RESOURCES = [f"svc{n:02d}" for n in range(30)]
ROLES = ("read", "write", "admin", "ops")


def _policy() -> str:
    lines = [
        "groups:",
        "  engineers: {members: [U0ALICE, U0BOB]}",
        "defaults:",
        "  requesters: {groups: [engineers]}",
        "  approvers: {users: [U0BOB]}",
        "  max_duration: 1h",
        "resources:",
    ]
    for name in RESOURCES:
        lines += [f"  {name}:", "    provider: {type: noop}", "    roles:"]
        lines += [f"      {role}: {{}}" for role in ROLES]
    lines += ["bundles:", "  svc-readers: [svc01/read, svc02/read]"]
    return "\n".join(lines) + "\n"


@pytest.fixture
def bot_options(tmp_path: Path) -> dict[str, Any]:
    policy = tmp_path / "policies.yaml"
    policy.write_text(_policy())
    return {"policy": policy}


def _target(view: dict[str, Any]) -> dict[str, Any]:
    block = next(b for b in view["blocks"] if b.get("block_id") == ids.FORM_TARGET_BLOCK)
    element: dict[str, Any] = block["element"]
    return element


async def test_the_shortcut_opens_a_searching_form_that_files_a_request(
    slack: SlackHarness,
) -> None:
    """The shortcut opens the form (views.open, checked by the emulator); with 120 pairs its
    target is an external_select; typing "svc07 wr" offers exactly svc07 write, "readers"
    the bundle; choosing svc07 write files it."""
    resp = await slack.driver.global_shortcut(ALICE, ids.REQUEST_SHORTCUT)
    assert resp.status == 200
    await slack.settle()
    [form] = slack.emulator.views(ALICE)
    element = _target(form.view)
    assert element["type"] == "external_select"
    assert "Showing 100 of" not in json.dumps(form.view["blocks"])

    found = await slack.driver.block_suggestion(
        ALICE, form.as_slack(), ids.FORM_TARGET_ACTION, "svc07 wr"
    )
    assert found.status == 200
    groups = found.json["option_groups"]
    assert [o["value"] for g in groups for o in g["options"]] == ["svc07/write"]
    bundle = await slack.driver.block_suggestion(
        ALICE, form.as_slack(), ids.FORM_TARGET_ACTION, "readers"
    )
    assert [o["value"] for g in bundle.json["option_groups"] for o in g["options"]] == [
        "bundle:svc-readers"
    ]
    everything = await slack.driver.block_suggestion(
        ALICE, form.as_slack(), ids.FORM_TARGET_ACTION, ""
    )
    assert sum(len(g["options"]) for g in everything.json["option_groups"]) == 100

    chosen = {
        "type": "external_select",
        "selected_option": {
            "text": {"type": "plain_text", "text": "write"},
            "value": "svc07/write",
        },
    }
    done = await slack.driver.view_submission(
        ALICE,
        form.as_slack(),
        values={
            ids.FORM_TARGET_BLOCK: {ids.FORM_TARGET_ACTION: chosen},
            ids.FORM_DURATION_BLOCK: {ids.FORM_DURATION_ACTION: plain_text_value("15m")},
            ids.FORM_REASON_BLOCK: {ids.FORM_REASON_ACTION: plain_text_value("INC-3 check")},
        },
    )
    assert done.status == 200
    await slack.settle()
    grant = await slack.only_grant_of(ALICE)
    assert (grant.resource, grant.role, grant.status) == ("svc07", "write", Status.PENDING)


async def test_someone_who_may_request_nothing_is_told_and_finds_nothing(
    slack: SlackHarness,
) -> None:
    """Dave may request nothing: the shortcut's form says so (no select), and his search in
    someone else's form answers no options rather than an error. (Under 100 targets the
    form keeps its static list: test_slack_flow.py.)"""
    await slack.driver.global_shortcut("U0DAVE", ids.REQUEST_SHORTCUT)
    await slack.settle()
    [form] = slack.emulator.views("U0DAVE")
    assert "request nothing" in json.dumps(form.view["blocks"])
    await slack.driver.global_shortcut(ALICE, ids.REQUEST_SHORTCUT)
    await slack.settle()
    [alice_form] = slack.emulator.views(ALICE)
    nothing = await slack.driver.block_suggestion(
        "U0DAVE", alice_form.as_slack(), ids.FORM_TARGET_ACTION, "svc"
    )
    assert nothing.status == 200 and nothing.json.get("option_groups") == []
