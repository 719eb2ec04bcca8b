"""The Slack edge over real HTTP: requests Bolt 1.30 misread, unauthenticated and malformed
bodies (byte for byte as issue 10 lists them), and deliveries from other workspaces.

Each refused request is checked for what it must not do: store anything in Redis, call
Slack, log more than one WARNING line, log a traceback."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import redis.asyncio as aioredis

from bot.devtools.slack_driver import (
    FORM_CONTENT_TYPE,
    JSON_CONTENT_TYPE,
    Delivery,
    DriverResponse,
    SlackDriver,
    plain_text_value,
    static_select_value,
)
from bot.domain.model import Status
from bot.log_throttle import Throttle
from bot.slack import ids
from bot.slack.edge import FOREIGN_WORKSPACE_TEXT, WORKSPACE_UNKNOWN_TEXT
from bot.store.keys import Keys
from tests.integration.slack_harness import (
    ACCESS_CHANNEL,
    ALICE,
    BOB,
    GENERAL,
    SlackHarness,
    running_bot,
)

EDGE_LOGGER = "bot.slack.edge"
OTHER_TEAM = "T0OTHER"
OTHER_ORG = "E0OTHER"


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog


@dataclass
class Quiet:
    """Watches that a refused delivery changed nothing: the bot's Redis keys, the Slack
    calls it made, and the log lines it wrote (one WARNING, no traceback)."""

    slack: SlackHarness
    redis: aioredis.Redis
    prefix: str
    logs: pytest.LogCaptureFixture
    keys: set[bytes] | None = None
    calls: int = 0
    records: int = 0

    async def _keys(self) -> set[bytes]:
        return {k async for k in self.redis.scan_iter(match="{" + self.prefix + "}*")}

    async def start(self) -> None:
        """Take the snapshot; forget earlier refusals, so this one is logged afresh."""
        await self.slack.settle()
        self.slack.bot.edge.refusals = Throttle(logging.getLogger(EDGE_LOGGER))
        self.keys = await self._keys()
        self.calls = len(self.slack.emulator.calls())
        self.records = len(self.logs.records)

    async def assert_nothing_happened(self, case: str, *, warnings: int = 1) -> None:
        await self.slack.settle()
        assert await self._keys() == self.keys, f"{case}: Redis changed"
        assert len(self.slack.emulator.calls()) == self.calls, f"{case}: Slack was called"
        new = self.logs.records[self.records :]
        loud = [r for r in new if r.levelno >= logging.WARNING]
        assert len(loud) == warnings, f"{case}: {[r.getMessage() for r in loud]}"
        for record in loud:
            assert record.name == EDGE_LOGGER and record.levelno == logging.WARNING, case
            assert record.exc_info is None and "Traceback" not in record.getMessage(), case
        assert not any("listener failed" in r.getMessage() for r in new), case


@pytest.fixture
def quiet(
    slack: SlackHarness, redis_client: aioredis.Redis, keys: Keys, logs: pytest.LogCaptureFixture
) -> Quiet:
    return Quiet(slack, redis_client, keys.prefix, logs)


def _slash_body(slack: SlackHarness, text: str = "request sandbox play 20m x") -> bytes:
    return slack.driver.payloads.slash_command(
        user_id=ALICE,
        user_name=None,
        text=text,
        channel_id=GENERAL,
        channel_name="general",
        command=ids.COMMAND,
        trigger_id="1.2.3",
        response_url="https://hooks.slack.com/commands/T0001/1/x",
    )


def _click(slack: SlackHarness, **changes: Any) -> dict[str, Any]:
    """A block_actions payload as Slack sends an Approve click, with ``changes``."""
    payload = slack.driver.payloads.interaction_base("block_actions", BOB, None, "1.2.3")
    payload.update(
        actions=[{"type": "button", "action_id": ids.APPROVE, "value": "g-abcdefgh"}],
        channel={"id": ACCESS_CHANNEL, "name": "access-requests"},
        container={"type": "message", "channel_id": ACCESS_CHANNEL, "message_ts": "1.000001"},
        response_url="https://hooks.slack.com/actions/T0001/1/x",
    )
    payload.update(changes)
    return payload


def _form(payload: Any) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def _event(slack: SlackHarness, event: Any) -> bytes:
    body = json.loads(slack.driver.payloads.event_callback({"type": "app_mention"}))
    body["event"] = event
    return json.dumps(body).encode()


# --- 3. The word "payload" ------------------------------------------------------------------
async def test_a_command_mentioning_payload_is_filed_as_a_command(slack: SlackHarness) -> None:
    """`/access request ... fix the payload parser INC-1` is a slash command (Bolt 1.30 read
    it as an empty interactivity payload and answered 404): the request is filed with its
    reason, and the issue's exact text gets the policy's answer about resource `box`."""
    resp = await slack.command(ALICE, "request sandbox play 30m fix the payload parser INC-1")
    assert resp.status == 200
    grant = await slack.only_grant_of(ALICE)
    assert grant.reason == "fix the payload parser INC-1"
    assert "INC-1" in grant.tickets

    resp = await slack.command(ALICE, "request box 30m fix the payload parser INC-1")
    assert resp.status == 200
    assert "box" in slack.last_ephemeral(ALICE)
    assert len(await slack.grants_of(ALICE)) == 1


async def test_help_payload_is_answered(slack: SlackHarness) -> None:
    """`/access help payload` gets an answer from the command, not a 404 and silence."""
    resp = await slack.command(ALICE, "help payload")
    assert resp.status == 200
    assert slack.ephemerals(ALICE), "no answer at all"


async def test_a_command_from_a_channel_or_user_named_payload_works(slack: SlackHarness) -> None:
    """A command from #payload-team, or by a user called payload, is filed like any other."""
    resp = await slack.driver.slash_command(
        ALICE,
        "request sandbox play 20m from payload-team",
        channel_id=GENERAL,
        channel_name="payload-team",
    )
    await slack.settle()
    assert resp.status == 200
    resp = await slack.driver.slash_command(
        ALICE,
        "request sandbox play 20m as payload",
        channel_id=GENERAL,
        channel_name="general",
        user_name="payload",
    )
    await slack.settle()
    assert resp.status == 200
    reasons = sorted(g.reason for g in await slack.grants_of(ALICE))
    assert reasons == ["as payload", "from payload-team"]


async def test_a_slash_command_form_with_a_payload_field_is_not_a_command(
    slack: SlackHarness, quiet: Quiet
) -> None:
    """The form's own keys decide: a body with a `payload` field next to command fields is
    neither a command nor an interaction, and is refused as malformed."""
    await quiet.start()
    body = _slash_body(slack) + b"&payload=%7B%7D"
    resp = await slack.driver.send(body, FORM_CONTENT_TYPE)
    assert resp.status == 400
    await quiet.assert_nothing_happened("command + payload field")


# --- 4. Unauthenticated: 401 before anything is parsed --------------------------------------
UNAUTHENTICATED = {
    "unsigned": Delivery.unsigned(),
    "wrongly signed": Delivery.bad_signature(),
    "stale": Delivery.stale(),
    "timestamp abc, unsigned": Delivery.odd_timestamp("abc", signed=False),
    "timestamp empty, unsigned": Delivery.odd_timestamp("", signed=False),
    "timestamp 1e9, unsigned": Delivery.odd_timestamp("1e9", signed=False),
    "timestamp abc, signed with it": Delivery.odd_timestamp("abc"),
    "timestamp empty, signed with it": Delivery.odd_timestamp(""),
    "timestamp 1e9, signed with it": Delivery.odd_timestamp("1e9"),
    "no timestamp": Delivery.odd_timestamp(None),
}


async def test_unauthenticated_requests_get_401_whatever_their_body(
    slack: SlackHarness, quiet: Quiet
) -> None:
    """Every unsigned, wrongly signed, stale or oddly timestamped request gets 401, whatever
    its body (each malformed body the issue names, and a good command): nothing stored, no
    Slack call, one warning line without a traceback."""
    malformed = _malformed_bodies(slack)
    bodies = {name: malformed[name] for name in ISSUE_BODIES}
    bodies["a slash command"] = (FORM_CONTENT_TYPE, _slash_body(slack))
    for body_name, (content_type, body) in bodies.items():
        for how, delivery in UNAUTHENTICATED.items():
            case = f"{body_name} / {how}"
            await quiet.start()
            resp = await slack.driver.send(body, content_type, delivery=delivery)
            assert resp.status == 401, case
            await quiet.assert_nothing_happened(case)


async def test_the_same_cause_is_logged_once_a_minute_with_a_count(
    slack: SlackHarness, quiet: Quiet, logs: pytest.LogCaptureFixture
) -> None:
    """Five unsigned requests in a row give one warning line; the first after a minute says
    how many were suppressed meanwhile."""
    now = [1000.0]
    slack.bot.edge.refusals = Throttle(logging.getLogger(EDGE_LOGGER), clock=lambda: now[0])
    start = len(logs.records)
    for _ in range(5):
        resp = await slack.driver.send(
            b"payload={not json", FORM_CONTENT_TYPE, delivery=Delivery.unsigned()
        )
        assert resp.status == 401
    lines = [r for r in logs.records[start:] if r.name == EDGE_LOGGER]
    assert len(lines) == 1
    now[0] += 61
    await slack.driver.send(b"payload=[1,2]", FORM_CONTENT_TYPE, delivery=Delivery.unsigned())
    lines = [r for r in logs.records[start:] if r.name == EDGE_LOGGER]
    assert len(lines) == 2
    assert lines[1].__dict__["suppressed"] == 4


# --- 4. Signed but malformed: 4xx, nothing done ---------------------------------------------
#: The malformed bodies issue 10 names (built byte for byte in _malformed_bodies).
ISSUE_BODIES = (
    "payload={not json",
    "payload=[1,2]",
    "non-UTF-8 bytes",
    "actions: []",
    "event: 5",
    "a JSON array as payload",
)


def _malformed_bodies(slack: SlackHarness) -> dict[str, tuple[str, bytes]]:
    """Signed bodies that are not what Slack sends, by name: (content type, bytes)."""
    form, js = FORM_CONTENT_TYPE, JSON_CONTENT_TYPE
    return {
        # The issue's, byte for byte.
        "payload={not json": (form, b"payload={not json"),
        "payload=[1,2]": (form, b"payload=[1,2]"),
        "non-UTF-8 bytes": (form, b"\xff\xfe\xfd"),
        "actions: []": (form, _form(_click(slack, actions=[]))),
        "event: 5": (js, _event(slack, 5)),
        "a JSON array as payload": (
            form,
            b"payload=" + quote(json.dumps([_click(slack)])).encode(),
        ),
        # More of the same kind.
        "a JSON array as the body": (js, b"[1,2]"),
        "JSON that is not JSON": (js, b"{not json"),
        "non-UTF-8 in a form value": (form, b"command=%2Faccess&text=caf\xe9"),
        "a percent-escape that is not UTF-8": (form, b"command=%2Faccess&text=caf%E9"),
        "an empty body": (form, b""),
        "a form field given twice": (form, _slash_body(slack) + b"&command=%2Fother"),
        "authorizations as text in a command": (form, _slash_body(slack) + b"&authorizations=x"),
        "a command without user_id": (form, b"command=%2Faccess&text=help&team_id=T0001"),
        "actions: [5]": (form, _form(_click(slack, actions=[5]))),
        "actions: 5": (form, _form(_click(slack, actions=5))),
        "user: []": (form, _form(_click(slack, user=[]))),
        "team: 5": (form, _form(_click(slack, team=5))),
        "channel as text on a click": (form, _form(_click(slack, channel="C0ACCESS"))),
        "response_urls: 5": (form, _form(_click(slack, response_urls=5))),
        "a payload without a type": (form, _form({"user": {"id": BOB}})),
        "an interaction grantbot has none of": (form, _form(_click(slack, type="shortcut"))),
        "view_submission without a view": (form, _form(_click(slack, type="view_submission"))),
        "event without a type": (js, _event(slack, {"user": ALICE})),
        "app_mention without a channel": (
            js,
            _event(slack, {"type": "app_mention", "user": ALICE, "text": "hi", "ts": "1.1"}),
        ),
        "url_verification without a challenge": (js, b'{"type": "url_verification"}'),
        "plain text": ("text/plain", b"command=/access"),
        "nested without end": (
            js,
            b'{"type":"event_callback","event":' + b"[" * 5000 + b"]" * 5000 + b"}",
        ),
    }


async def test_signed_malformed_bodies_get_400_and_change_nothing(
    slack: SlackHarness, quiet: Quiet
) -> None:
    """Each signed but malformed body gets 400 saying what is wrong: nothing stored, no
    Slack call, one warning line, no traceback, no "listener failed" (no listener ran)."""
    for case, (content_type, body) in _malformed_bodies(slack).items():
        await quiet.start()
        resp = await slack.driver.send(body, content_type)
        assert resp.status == 400, f"{case}: {resp.status} {resp.text}"
        assert resp.json["error"].startswith("malformed request"), case
        assert resp.headers.get("X-Slack-No-Retry") == "1", case
        await quiet.assert_nothing_happened(case)


async def test_events_grantbot_does_not_handle_get_200_and_nothing_else(
    slack: SlackHarness, quiet: Quiet
) -> None:
    """An event type grantbot does not listen to, and other Events API bodies
    (app_rate_limited), get 200 so Slack stops sending them again; nothing else happens and
    no warning is logged."""
    bodies = {
        "reaction_added": _event(slack, {"type": "reaction_added", "user": ALICE}),
        "app_rate_limited": json.dumps(
            {"type": "app_rate_limited", "team_id": "T0001", "minute_rate_limited": 1}
        ).encode(),
    }
    for case, body in bodies.items():
        await quiet.start()
        resp = await slack.driver.send(body, JSON_CONTENT_TYPE)
        assert resp.status == 200, case
        await quiet.assert_nothing_happened(case, warnings=0)


async def test_a_well_formed_click_no_listener_takes_is_one_quiet_line(
    slack: SlackHarness, quiet: Quiet
) -> None:
    """A signed click on a button grantbot does not have gets Bolt's 404 and one warning
    line (not Bolt's listener-code suggestion), and changes nothing."""
    await quiet.start()
    unknown = [{"type": "button", "action_id": "not.ours", "value": "x"}]
    resp = await slack.driver.send(_form(_click(slack, actions=unknown)), FORM_CONTENT_TYPE)
    assert resp.status == 404
    new = quiet.logs.records[quiet.records :]
    loud = [r for r in new if r.levelno >= logging.WARNING]
    assert len(loud) == 1 and loud[0].exc_info is None
    assert "\n" not in loud[0].getMessage()


async def test_handshakes_and_retries_keep_working(slack: SlackHarness) -> None:
    """url_verification answers its challenge, ssl_check gets 200, and a retried event
    (X-Slack-Retry-Num) is acknowledged and processed once."""
    resp = await slack.driver.url_verification("challenge-123")
    assert resp.status == 200 and "challenge-123" in resp.text
    resp = await slack.driver.send(b"token=x&ssl_check=1", FORM_CONTENT_TYPE)
    assert resp.status == 200
    first = await slack.driver.app_mention(
        ALICE, "request sandbox play 20m retried", channel=GENERAL, event_id="Ev0EDGE1"
    )
    again = await slack.driver.redeliver(first.request, retry_num=1)
    await slack.settle()
    assert first.status == again.status == 200
    assert [g.reason for g in await slack.grants_of(ALICE)] == ["retried"]


# --- 5. Another workspace -------------------------------------------------------------------
async def _pending(slack: SlackHarness) -> tuple[str, dict[str, Any]]:
    await slack.command(ALICE, "request sandbox play 20m needs approval")
    grant = await slack.only_grant_of(ALICE)
    copy = next(m for m in slack.copies(grant.id) if m.channel == ACCESS_CHANNEL)
    return grant.id, copy.as_slack()


def _assert_foreign(resp: DriverResponse, *, command: bool = False) -> None:
    if command:
        assert resp.status == 200
        assert resp.json == {"response_type": "ephemeral", "text": FOREIGN_WORKSPACE_TEXT}
    else:
        assert resp.status == 403
        assert resp.json["error"] == FOREIGN_WORKSPACE_TEXT


async def test_a_click_from_another_workspace_does_not_approve(
    slack: SlackHarness, quiet: Quiet
) -> None:
    """An approver's user id clicking Approve with another team's id (team.id and
    user.team_id) gets 403 and the request stays pending; so does a guest from another
    workspace (only user.team_id foreign) and a click naming another organisation."""
    grant_id, copy = await _pending(slack)
    senders = {
        "another team": dict(team_id=OTHER_TEAM),
        "a guest from another team": dict(team_id="T0001", actor_team_id=OTHER_TEAM),
        "another organisation": dict(team_id="T0001", enterprise_id=OTHER_ORG),
    }
    for case, sender in senders.items():
        async with slack.driver.from_workspace(**sender) as foreign:
            await quiet.start()
            resp = await foreign.block_action(
                BOB, ids.APPROVE, message=copy, channel_id=ACCESS_CHANNEL
            )
            _assert_foreign(resp)
            await quiet.assert_nothing_happened(case)
    assert (await slack.bot.store.get(grant_id)).status is Status.PENDING
    # The same click from the installed workspace approves: the refusals were the team's.
    await slack.driver.block_action(BOB, ids.APPROVE, message=copy, channel_id=ACCESS_CHANNEL)
    await slack.settle()
    assert (await slack.bot.store.get(grant_id)).status is Status.ACTIVE


async def test_a_command_from_another_workspace_is_told_so(
    slack: SlackHarness, quiet: Quiet
) -> None:
    """`/access request ...` from another workspace gets an ephemeral "not the workspace
    grantbot is installed in" and files nothing."""
    async with slack.driver.from_workspace(team_id=OTHER_TEAM) as foreign:
        await quiet.start()
        resp = await foreign.slash_command(
            ALICE, "request sandbox play 20m x", channel_id=GENERAL, channel_name="general"
        )
        _assert_foreign(resp, command=True)
        await quiet.assert_nothing_happened("command")
    assert await slack.grants_of(ALICE) == []


async def test_modal_submissions_from_another_workspace_are_refused(
    slack: SlackHarness, quiet: Quiet
) -> None:
    """The request form and the deny form submitted from another workspace get 403: no
    request is filed and the pending one is not denied."""
    grant_id, _ = await _pending(slack)
    request_form = {"type": "modal", "callback_id": ids.REQUEST_FORM, "private_metadata": "{}"}
    request_values = {
        ids.FORM_TARGET_BLOCK: {ids.FORM_TARGET_ACTION: static_select_value("sandbox/play")},
        ids.FORM_DURATION_BLOCK: {ids.FORM_DURATION_ACTION: plain_text_value("10m")},
        ids.FORM_REASON_BLOCK: {ids.FORM_REASON_ACTION: plain_text_value("from afar")},
    }
    deny_form = {"type": "modal", "callback_id": ids.DENY_FORM, "private_metadata": grant_id}
    deny_values = {ids.DENY_REASON_BLOCK: {ids.DENY_REASON_ACTION: plain_text_value("no")}}
    async with slack.driver.from_workspace(team_id=OTHER_TEAM) as foreign:
        for case, user, view, values in (
            ("request form", ALICE, request_form, request_values),
            ("deny form", BOB, deny_form, deny_values),
        ):
            await quiet.start()
            resp = await foreign.view_submission(user, view, values=values)
            _assert_foreign(resp)
            await quiet.assert_nothing_happened(case)
    assert [g.id for g in await slack.grants_of(ALICE)] == [grant_id]
    assert (await slack.bot.store.get(grant_id)).status is Status.PENDING


async def test_events_from_another_workspace_are_refused(slack: SlackHarness, quiet: Quiet) -> None:
    """A mention and an App Home opening from another workspace get 403 (with
    X-Slack-No-Retry): no request, no reply, no Home published."""
    async with slack.driver.from_workspace(team_id=OTHER_TEAM) as foreign:
        await quiet.start()
        resp = await foreign.app_mention(ALICE, "request sandbox play 20m x", channel=GENERAL)
        _assert_foreign(resp)
        assert resp.headers.get("X-Slack-No-Retry") == "1"
        await quiet.assert_nothing_happened("app_mention")
        await quiet.start()
        resp = await foreign.app_home_opened(ALICE)
        _assert_foreign(resp)
        await quiet.assert_nothing_happened("app_home_opened")
    assert await slack.grants_of(ALICE) == []


async def test_on_enterprise_grid_the_organisation_is_checked(
    redis_url: str, keys: Keys, redis_client: aioredis.Redis, logs: pytest.LogCaptureFixture
) -> None:
    """A workspace on Enterprise Grid (auth.test names its organisation): a request from it
    is filed, a member of another workspace of the same organisation may act, and the same
    team id claimed inside another organisation is refused."""
    async with running_bot(redis_url=redis_url, prefix=keys.prefix, enterprise_id="E0ORG") as slack:
        assert str(slack.bot.workspace.known) == "T0001 (organisation E0ORG)"
        await slack.command(ALICE, "request sandbox play 20m from our org")
        grant = await slack.only_grant_of(ALICE)
        copy = next(m for m in slack.copies(grant.id) if m.channel == ACCESS_CHANNEL).as_slack()
        async with slack.driver.from_workspace(
            team_id="T0001", enterprise_id=OTHER_ORG
        ) as other_org:
            resp = await other_org.block_action(
                BOB, ids.APPROVE, message=copy, channel_id=ACCESS_CHANNEL
            )
            _assert_foreign(resp)
        assert (await slack.bot.store.get(grant.id)).status is Status.PENDING
        async with slack.driver.from_workspace(
            team_id="T0001", enterprise_id="E0ORG", actor_team_id="T0SISTER"
        ) as sister:
            resp = await sister.block_action(
                BOB, ids.APPROVE, message=copy, channel_id=ACCESS_CHANNEL
            )
            assert resp.status == 200
        await slack.settle()
        assert (await slack.bot.store.get(grant.id)).status is Status.ACTIVE


async def test_before_auth_test_answers_nothing_is_admitted(
    redis_url: str, keys: Keys, redis_client: aioredis.Redis, logs: pytest.LogCaptureFixture
) -> None:
    """With SLACK_TEAM_ID unset and auth.test not yet answered, the bot fails closed: a
    command is told to try again (ephemeral), a click gets 503 so Slack may retry; once
    auth.test answers, the same command is filed."""
    async with running_bot(redis_url=redis_url, prefix=keys.prefix, auth_test=False) as slack:
        resp = await slack.driver.slash_command(
            ALICE, "request sandbox play 20m early", channel_id=GENERAL, channel_name="general"
        )
        assert resp.status == 200
        assert resp.json == {"response_type": "ephemeral", "text": WORKSPACE_UNKNOWN_TEXT}
        resp = await slack.driver.send(_form(_click(slack)), FORM_CONTENT_TYPE)
        assert resp.status == 503 and "X-Slack-No-Retry" not in resp.headers
        await slack.settle()
        assert await slack.grants_of(ALICE) == []
        assert slack.emulator.calls() == []

        from bot.server import check_slack

        await check_slack(slack.bot)
        await slack.command(ALICE, "request sandbox play 20m later")
        assert [g.reason for g in await slack.grants_of(ALICE)] == ["later"]


async def test_slack_team_id_admits_before_auth_test_and_a_mismatch_refuses_all(
    redis_url: str, keys: Keys, redis_client: aioredis.Redis, logs: pytest.LogCaptureFixture
) -> None:
    """SLACK_TEAM_ID admits its workspace at once (and refuses others) before auth.test; when
    auth.test says the token belongs elsewhere, readiness names the conflict and nothing is
    admitted."""
    async with running_bot(
        redis_url=redis_url,
        prefix=keys.prefix,
        auth_test=False,
        extra_settings={"SLACK_TEAM_ID": "T0001"},
    ) as slack:
        await slack.command(ALICE, "request sandbox play 20m configured")
        assert len(await slack.grants_of(ALICE)) == 1
        async with slack.driver.from_workspace(team_id=OTHER_TEAM) as foreign:
            resp = await foreign.slash_command(
                ALICE, "request sandbox play 20m x", channel_id=GENERAL, channel_name="general"
            )
            _assert_foreign(resp, command=True)

    async with running_bot(
        redis_url=redis_url,
        prefix=keys.prefix,
        extra_settings={"SLACK_TEAM_ID": "T0WRONG"},
    ) as slack:
        checks = await slack.bot.readiness.checks()
        assert "T0001" in checks["slack"] and "T0WRONG" in checks["slack"]
        resp = await slack.driver.slash_command(
            ALICE, "request sandbox play 20m x", channel_id=GENERAL, channel_name="general"
        )
        assert resp.json["text"] == WORKSPACE_UNKNOWN_TEXT
        await slack.settle()
        assert len(await slack.grants_of(ALICE)) == 1  # only the one from before


async def test_driver_payloads_name_the_workspace_they_come_from(slack: SlackHarness) -> None:
    """The driver's foreign payloads carry the foreign ids where Slack puts them (so the
    refusals above are about the ids, not about a broken payload)."""
    async with slack.driver.from_workspace(
        team_id=OTHER_TEAM, enterprise_id=OTHER_ORG, actor_team_id="T0GUEST"
    ) as foreign:
        p = foreign.payloads
        base = p.interaction_base("block_actions", BOB, None, "t")
        assert base["team"] == {"id": OTHER_TEAM, "domain": "elsewhere", "enterprise_id": OTHER_ORG}
        assert base["user"]["team_id"] == "T0GUEST"
        assert base["enterprise"]["id"] == OTHER_ORG
        envelope = json.loads(p.event_callback({"type": "app_mention"}))
        assert envelope["team_id"] == OTHER_TEAM and envelope["enterprise_id"] == OTHER_ORG
        assert envelope["authorizations"][0]["enterprise_id"] == OTHER_ORG
        assert isinstance(foreign, SlackDriver)
