"""Slack failing in every shape it fails in, during every step after the ack: the request is
still filed (or clearly refused) and the person is told which. Real bot, real Redis; Slack is
the emulator, whose faults answer exactly as Slack (or a proxy in front of it) does."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from bot.devtools.slack_emulator import RESPONSE_URL_METHOD, FaultKind
from bot.domain.model import Status
from bot.metrics import REGISTRY
from bot.slack import ids
from bot.slack.notifier import NOTIFY_FAILED
from tests.integration.slack_harness import (
    ACCESS_CHANNEL,
    ALICE,
    BOB,
    GENERAL,
    INCIDENT,
    SlackHarness,
)

#: Every attempt of a call, retries included, meets the fault.
ALWAYS = 100
#: Each Web API attempt is given this long in the timeout shape (serve gives 10 s).
SHORT_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Shape:
    """One way Slack fails, and the code grantbot reports it with."""

    kind: FaultKind
    code: str
    status: int | None = None
    retry_after_s: int = 1


SHAPES = {
    "non-JSON body": Shape(FaultKind.NON_JSON, "non_json_body"),
    "HTML 503 page": Shape(FaultKind.HTML_ERROR, "http_503", status=503),
    "plain-text 503": Shape(FaultKind.PLAIN_TEXT, "http_503", status=503),
    "timeout": Shape(FaultKind.TIMEOUT, "timeout"),
    "429 with Retry-After": Shape(FaultKind.RATELIMITED, "ratelimited", retry_after_s=1),
    "reset connection": Shape(FaultKind.RESET, "connection_reset"),
}


@pytest.fixture
def bot_options() -> dict[str, Any]:
    """Short Slack timeouts and retry waits, so failing calls fail fast."""
    return {"slack_timeout_s": SHORT_TIMEOUT_S, "slack_retry_backoff_s": 0.01}


def _fail(slack: SlackHarness, method: str, shape: Shape, **match: str) -> None:
    slack.emulator.faults.misbehave(
        method,
        shape.kind,
        times=ALWAYS,
        status=shape.status,
        retry_after_s=shape.retry_after_s,
        match=match or None,
    )


async def _notify_failures(slack: SlackHarness, grant_id: str) -> list[dict[str, Any]]:
    return [
        e.data["details"]
        async for e in slack.bot.store.audit.entries()
        if e.data["event"] == NOTIFY_FAILED and e.data["grant_id"] == grant_id
    ]


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
async def test_every_post_ack_step_survives_the_shape_and_the_person_is_told(
    slack: SlackHarness, shape: Shape
) -> None:
    """Failing conversations.info, approver posts, the credential DM, chat.update and the
    response_url in this shape each leave the request filed (or the grant standing) and the
    person told so, by their ephemeral confirmation (or the channel ephemeral that replaces a
    failed response_url); every failure is reported with the shape's code."""
    # conversations.info, asked for every /access from an incident channel.
    errors = {"method": "conversations.info", "error": shape.code}
    before = REGISTRY.get_sample_value("grantbot_slack_api_errors_total", errors) or 0.0
    _fail(slack, "conversations.info", shape)
    await slack.command(ALICE, "request sandbox play 20m fixing INC-42", channel=INCIDENT)
    incident = await slack.only_grant_of(ALICE)
    assert incident.status is Status.PENDING and incident.origin.incident == "inc-42-orders-db"
    asked = slack.emulator.calls("conversations.info")
    assert asked and not any(c.ok for c in asked)
    after = REGISTRY.get_sample_value("grantbot_slack_api_errors_total", errors) or 0.0
    assert after == before + 1  # mapped to the shape's code, where the call is made
    confirmation = slack.last_ephemeral(ALICE)
    assert f"`{incident.id}`" in confirmation and "sent" in confirmation
    assert len(slack.copies(incident.id)) == 3  # the approvers were asked all the same
    slack.emulator.faults.clear()

    # Posting the request to its approvers (their DMs and the approval channel).
    _fail(slack, "chat.postMessage", shape)
    await slack.command(ALICE, "request sandbox play 25m trying a flag", channel=GENERAL)
    unposted = next(g for g in await slack.grants_of(ALICE) if g.id != incident.id)
    assert unposted.status is Status.PENDING  # filed
    confirmation = slack.last_ephemeral(ALICE)
    assert f"`{unposted.id}`" in confirmation
    assert "Slack did not deliver the request to 3 of the places it asks" in confirmation
    assert f"({shape.code})" in confirmation
    assert slack.copies(unposted.id) == []
    reported = await _notify_failures(slack, unposted.id)
    assert sorted(r["channel"] for r in reported) == sorted([ACCESS_CHANNEL, BOB, "U0CAROL"])
    assert {r["error"] for r in reported} == {shape.code}
    slack.emulator.faults.clear()

    # The credential DM of an auto-approved grant.
    _fail(slack, "chat.postMessage", shape, channel=ALICE)
    await slack.command(ALICE, "request lab play 30m quick look", channel=GENERAL)
    auto = next(g for g in await slack.grants_of(ALICE) if g.resource == "lab")
    assert auto.status is Status.ACTIVE  # the grant stands
    confirmation = slack.last_ephemeral(ALICE)
    assert f"`{auto.id}`" in confirmation
    assert "Slack did not deliver your credential by DM" in confirmation
    assert "Your credential is in your DMs" not in confirmation
    assert f"/access revoke {auto.id}" in confirmation
    assert not [m for m in slack.dms(ALICE) if auto.id in json.dumps(m.blocks)]
    slack.emulator.faults.clear()

    # chat.update of the approvers' copies when Bob approves the incident request.
    bob_copy = next(m for m in slack.copies(incident.id) if m.channel.startswith("D"))
    _fail(slack, "chat.update", shape)
    await slack.click(BOB, bob_copy, ids.APPROVE)
    approved = await slack.bot.store.get(incident.id)
    assert approved.status is Status.ACTIVE
    assert any(incident.id in json.dumps(m.blocks) for m in slack.dms(ALICE))  # credential
    told_bob = slack.last_ephemeral(BOB)
    assert f"`{incident.id}`" in told_bob and "Slack could not update 3 message(s)" in told_bob
    assert "Approved by <@U0BOB>" not in json.dumps(bob_copy.blocks)  # stale, as Bob was told
    slack.emulator.faults.clear()

    # The response_url: the answer goes to the channel as an ephemeral instead. (Slack's
    # response_url answers a plain-text "ok", so a 200 is taken whatever its body: the
    # non-JSON shape comes with a 502 there.)
    at_url = (
        shape
        if shape.status or shape.kind is not FaultKind.NON_JSON
        else Shape(shape.kind, shape.code, status=502)
    )
    _fail(slack, RESPONSE_URL_METHOD, at_url)
    await slack.command(ALICE, "list", channel=GENERAL)
    answer = slack.emulator.ephemerals(user=ALICE)[-1]
    assert answer.via == "chat.postEphemeral" and answer.channel == GENERAL
    assert auto.id in answer.text + json.dumps(answer.blocks)
    assert slack.emulator.calls(RESPONSE_URL_METHOD)  # tried first
    slack.emulator.faults.clear()

    assert slack.bot.tasks.failures == 0  # no post-ack work ended in an exception
