"""Reading Slack's bodies by their real form keys, checking their shapes, and judging the
workspace they claim; the signature check on raw bytes. All pure."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.errors import MalformedRequest
from bot.slack.edge import Cause, signature_problem
from bot.slack.inbound import (
    FORM_CONTENT_TYPE,
    JSON_CONTENT_TYPE,
    Claim,
    Kind,
    read_envelope,
    read_http,
)
from bot.slack.workspace import InstalledWorkspace, Verdict

SECRET = b"unit-secret"
NOW = 1_700_000_000.0


def _command(**fields: str) -> bytes:
    base = {
        "token": "t",
        "team_id": "T0001",
        "channel_id": "C1",
        "channel_name": "general",
        "user_id": "U1",
        "user_name": "alice",
        "command": "/access",
        "text": "help",
        "response_url": "https://hooks.slack.com/commands/1",
        "trigger_id": "1.2.3",
    }
    return urlencode({**base, **fields}).encode()


@pytest.mark.parametrize(
    "fields",
    [
        {"text": "request box 30m fix the payload parser INC-1"},
        {"text": "help payload"},
        {"channel_name": "payload-team"},
        {"user_name": "payload"},
        {"text": "payload={not json"},
        {"text": 'payload={"type":"block_actions"}'},
    ],
    ids=str,
)
def test_a_slash_command_stays_a_command_whatever_it_says(fields: dict[str, str]) -> None:
    """Text, channel or user name containing "payload" (even "payload=...") leave a slash
    command a slash command, every field intact."""
    body, inbound = read_http(_command(**fields), content_type=FORM_CONTENT_TYPE)
    assert inbound.kind is Kind.COMMAND and inbound.claim == Claim(teams=frozenset({"T0001"}))
    for key, value in fields.items():
        assert body[key] == value
    assert body["command"] == "/access" and body["user_id"] == "U1"


def test_an_interactivity_form_is_its_payload_field() -> None:
    """A form whose only field is ``payload`` is that JSON: a click's team and user ids are
    its claim."""
    payload = {
        "type": "block_actions",
        "user": {"id": "U1", "team_id": "T9"},
        "team": {"id": "T0001", "enterprise_id": "E1"},
        "enterprise": {"id": "E1"},
        "actions": [{"action_id": "grant.approve", "value": "payload"}],
    }
    body, inbound = read_http(
        urlencode({"payload": json.dumps(payload)}).encode(), content_type=FORM_CONTENT_TYPE
    )
    assert body == payload and inbound.kind is Kind.BLOCK_ACTIONS
    assert inbound.claim == Claim(
        teams=frozenset({"T0001"}), actor_teams=frozenset({"T9"}), enterprises=frozenset({"E1"})
    )


@pytest.mark.parametrize(
    ("content_type", "raw", "says"),
    [
        (FORM_CONTENT_TYPE, b"payload={not json", "not JSON"),
        (FORM_CONTENT_TYPE, b"payload=[1,2]", "not a JSON object"),
        (FORM_CONTENT_TYPE, b"\xff\xfe\xfd", "not UTF-8"),
        (FORM_CONTENT_TYPE, b"a=1&a=2", "given twice"),
        (FORM_CONTENT_TYPE, b"payload=%7B%7D&command=%2Faccess", "only its payload"),
        (FORM_CONTENT_TYPE, b"text=%E9", "not well formed"),
        (FORM_CONTENT_TYPE, b"&".join(b"f%d=1" % i for i in range(100)), "not well formed"),
        (JSON_CONTENT_TYPE, b"[1,2]", "not a JSON object"),
        (JSON_CONTENT_TYPE, b"[" * 100_000, "not JSON"),
        (JSON_CONTENT_TYPE, b'{"type":"event_callback","event":5}', "event"),
        ("text/plain", b"x", "content type"),
    ],
)
def test_bodies_slack_does_not_send_are_malformed(content_type: str, raw: bytes, says: str) -> None:
    """Each is refused with a message naming the problem, never the content."""
    with pytest.raises(MalformedRequest, match=says):
        read_http(raw, content_type=content_type)


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        ({"type": "block_actions", "user": {"id": "U1"}, "actions": []}, "actions"),
        ({"type": "block_actions", "user": {"id": "U1"}, "actions": [{"value": "x"}]}, "action_id"),
        ({"type": "block_actions", "actions": [{"action_id": "a"}]}, "user"),
        ({"type": "block_actions", "user": "U1", "actions": [{"action_id": "a"}]}, "user"),
        ({"type": "view_submission", "user": {"id": "U1"}, "view": {"id": "V"}}, "callback_id"),
        ({"type": "view_submission", "user": {"id": "U1"}, "view": []}, "view"),
        ({"type": "message_action", "user": {"id": "U1"}}, "no 'message_action'"),
        ({"user": {"id": "U1"}}, "no type"),
    ],
)
def test_interactions_of_the_wrong_shape_are_malformed(payload: dict[str, Any], says: str) -> None:
    """What the click and modal listeners (and Bolt's matchers) read must be there."""
    with pytest.raises(MalformedRequest, match=says):
        read_envelope("interactive", payload)


def test_the_fields_bolt_reads_are_typed_at_every_level() -> None:
    """A wrong type where Bolt's context builder descends (an event's message's team, an
    authorization's user) is malformed, not a crash inside Bolt."""
    event = {"type": "app_mention", "user": "U1", "channel": "C1", "text": "x", "ts": "1.2"}
    envelope = {"type": "event_callback", "event_id": "Ev1", "team_id": "T0001", "event": event}
    assert read_envelope("events_api", envelope).kind is Kind.EVENT
    bad_nested = {**envelope, "event": {**event, "message": {"team": 5}}}
    with pytest.raises(MalformedRequest, match=r"event\.message\.team"):
        read_envelope("events_api", bad_nested)
    with pytest.raises(MalformedRequest, match="authorizations"):
        read_envelope("events_api", {**envelope, "authorizations": [{"user": [1]}]})


def test_events_grantbot_does_not_handle_are_ignored_and_unknown_envelopes_malformed() -> None:
    """Another event type, or another Events API body, is IGNORED (answered 200); an envelope
    type Socket Mode never sends is malformed."""
    other = {"type": "event_callback", "event": {"type": "reaction_added"}}
    assert read_envelope("events_api", other).kind is Kind.IGNORED
    assert read_envelope("events_api", {"type": "app_rate_limited"}).kind is Kind.IGNORED
    with pytest.raises(MalformedRequest):
        read_envelope("hello", {})


def test_an_event_claims_every_team_it_names() -> None:
    """Envelope team, authorizations and the actor's team all go into the claim."""
    envelope = {
        "type": "event_callback",
        "event_id": "Ev1",
        "team_id": "T0001",
        "enterprise_id": "E1",
        "authorizations": [{"team_id": "T0001", "enterprise_id": "E1"}],
        "event": {
            "type": "app_home_opened",
            "user": "U1",
            "user_team": "T0GUEST",
        },
    }
    inbound = read_envelope("events_api", envelope)
    assert inbound.claim == Claim(
        teams=frozenset({"T0001"}),
        actor_teams=frozenset({"T0GUEST"}),
        enterprises=frozenset({"E1"}),
    )


# --- the workspace ---
def _claim(teams: set[str], actors: set[str] | None = None, orgs: set[str] | None = None) -> Claim:
    return Claim(frozenset(teams), frozenset(actors or ()), frozenset(orgs or ()))


def test_the_workspace_judges_teams_and_organisations() -> None:
    """Ours is admitted; another team, a team-less delivery, another organisation, or a
    guest from elsewhere are foreign; inside our Grid organisation a sister workspace's
    member may act; an org-wide installation checks only the organisation."""
    plain = InstalledWorkspace()
    assert plain.judge(_claim({"T1"})) is Verdict.UNKNOWN
    assert plain.learn(team_id="T1", enterprise_id=None) is None
    assert plain.judge(_claim({"T1"})) is Verdict.ADMIT
    assert plain.judge(_claim({"T2"})) is Verdict.FOREIGN
    assert plain.judge(_claim({"T1", "T2"})) is Verdict.FOREIGN
    assert plain.judge(_claim(set())) is Verdict.FOREIGN
    assert plain.judge(_claim({"T1"}, orgs={"E9"})) is Verdict.FOREIGN
    assert plain.judge(_claim({"T1"}, actors={"T2"})) is Verdict.FOREIGN

    grid = InstalledWorkspace()
    grid.learn(team_id="T1", enterprise_id="E1")
    assert grid.judge(_claim({"T1"}, actors={"T2"}, orgs={"E1"})) is Verdict.ADMIT
    assert grid.judge(_claim({"T1"}, actors={"T2"})) is Verdict.FOREIGN
    assert grid.judge(_claim({"T1"}, orgs={"E2"})) is Verdict.FOREIGN
    assert grid.judge(_claim({"T2"}, orgs={"E1"})) is Verdict.FOREIGN

    org_wide = InstalledWorkspace()
    org_wide.learn(team_id="T1", enterprise_id="E1", org_wide=True)
    assert org_wide.judge(_claim({"T7"}, orgs={"E1"})) is Verdict.ADMIT
    assert org_wide.judge(_claim({"T7"})) is Verdict.FOREIGN
    assert org_wide.judge(_claim({"T7"}, orgs={"E2"})) is Verdict.FOREIGN


def test_the_setting_wins_and_a_disagreeing_auth_test_closes_the_door() -> None:
    """SLACK_TEAM_ID admits at once; auth.test agreeing keeps it (and supplies the Grid
    organisation the setting left out); disagreeing refuses all and says why; an auth.test
    naming nothing is a conflict too."""
    configured = InstalledWorkspace(team_id="T1")
    assert configured.judge(_claim({"T1"})) is Verdict.ADMIT
    assert configured.judge(_claim({"T1"}, orgs={"E1"})) is Verdict.FOREIGN  # not yet known
    assert configured.learn(team_id="T1", enterprise_id="E1") is None
    assert configured.judge(_claim({"T1"}, orgs={"E1"})) is Verdict.ADMIT
    assert configured.judge(_claim({"T1"}, orgs={"E2"})) is Verdict.FOREIGN
    pinned = InstalledWorkspace(team_id="T1", enterprise_id="E1")
    assert pinned.learn(team_id="T1", enterprise_id="E2") is not None
    why = configured.learn(team_id="T2", enterprise_id=None)
    assert why is not None and "T2" in why and "T1" in why
    assert configured.judge(_claim({"T1"})) is Verdict.UNKNOWN
    assert configured.conflict == why
    assert InstalledWorkspace().learn(team_id=None, enterprise_id=None) is not None


# --- the signature ---
def _sign(raw: bytes, timestamp: str, secret: bytes = SECRET) -> str:
    base = b"v0:" + timestamp.encode() + b":" + raw
    return "v0=" + hmac.new(secret, base, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("timestamp", "signature", "cause"),
    [
        (str(int(NOW)), None, Cause.UNSIGNED),
        (None, "v0=" + "0" * 64, Cause.BAD_TIMESTAMP),
        ("abc", "sign", Cause.BAD_TIMESTAMP),
        ("", "sign", Cause.BAD_TIMESTAMP),
        ("1e9", "sign", Cause.BAD_TIMESTAMP),
        (" 1700000000", "sign", Cause.BAD_TIMESTAMP),
        ("1_700_000_000", "sign", Cause.BAD_TIMESTAMP),
        (
            "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660",
            "sign",
            Cause.BAD_TIMESTAMP,
        ),
        (str(int(NOW) - 301), "sign", Cause.STALE),
        (str(int(NOW) + 301), "sign", Cause.STALE),
        (str(int(NOW)), "v0=é" + "0" * 63, Cause.BAD_SIGNATURE),
        (str(int(NOW)), "v1=" + "0" * 64, Cause.BAD_SIGNATURE),
        (str(int(NOW)), "v0=" + "0" * 64, Cause.BAD_SIGNATURE),
    ],
)
def test_signature_problems_are_named_without_raising(
    timestamp: str | None, signature: str | None, cause: Cause
) -> None:
    """Odd timestamps (non-numeric, empty, exponent, padded, non-ASCII digits), stale ones,
    malformed or wrong signatures: each a cause, never an exception."""
    raw = b"\xff\xfe not utf-8"
    sig = _sign(raw, timestamp or "") if signature == "sign" else signature
    problem = signature_problem(raw, timestamp=timestamp, signature=sig, secret=SECRET, now=NOW)
    assert problem is not None and problem[0] is cause


def test_a_valid_signature_over_any_bytes_passes() -> None:
    """Slack signs bytes: a correct signature passes even when the body is not UTF-8 (it is
    then refused as malformed, after authentication)."""
    raw = b"\xff\xfe not utf-8"
    ts = str(int(NOW) - 299)
    assert (
        signature_problem(raw, timestamp=ts, signature=_sign(raw, ts), secret=SECRET, now=NOW)
        is None
    )
