"""The request form: built with only what the person may request, and its submission read
back with every field checked as untrusted input, errors keyed by field."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from bot.policy_loader import load_policy
from bot.slack import ids
from bot.slack.blocks import kit
from bot.slack.modals.request import (
    RequestInput,
    parse_metadata,
    parse_request_form,
    policy_error_field,
    request_form,
)
from tests.unit.blockkit import all_text, policy_rule, view_ok


def test_request_form_offers_only_the_given_rules() -> None:
    """The modal lists exactly the rules passed in (what the user may request), grouped by
    resource, with duration, reason and ticket inputs."""
    rules = [policy_rule("sandbox", "play"), policy_rule("flags", "editor")]
    view = request_form(rules, private_metadata='{"channel":"C0GENERAL"}')
    view_ok(view, "modal")
    assert view["callback_id"] == ids.REQUEST_FORM
    select = view["blocks"][0]["element"]
    values = [o["value"] for g in select["option_groups"] for o in g["options"]]
    assert values == ["sandbox/play", "flags/editor"]
    block_ids = [b.get("block_id") for b in view["blocks"]]
    assert block_ids == [
        ids.FORM_TARGET_BLOCK,
        ids.FORM_DURATION_BLOCK,
        ids.FORM_REASON_BLOCK,
        ids.FORM_TICKETS_BLOCK,
        ids.FORM_START_BLOCK,
    ]


def test_request_form_asks_for_an_ssh_key_only_when_an_ssh_role_is_offered() -> None:
    """An SSH certificate role among the options adds an optional public-key field; the
    form without one has no such field."""
    ssh = dataclasses.replace(policy_rule("lab", "play"), provider_type="ssh_cert")
    view = request_form([policy_rule("sandbox", "play"), ssh])
    view_ok(view, "modal")
    [field] = [b for b in view["blocks"] if b.get("block_id") == ids.FORM_SSH_KEY_BLOCK]
    assert field["optional"] is True
    assert field["element"]["action_id"] == ids.FORM_SSH_KEY_ACTION
    assert "never the private key" in field["hint"]["text"]
    plain = request_form([policy_rule("sandbox", "play")])
    assert ids.FORM_SSH_KEY_BLOCK not in [b.get("block_id") for b in plain["blocks"]]


def test_request_form_with_nothing_requestable_says_so() -> None:
    """No rules: an explanation and no submit button."""
    view = request_form([])
    view_ok(view, "modal")
    assert "submit" not in view


def test_request_form_caps_options_at_slacks_limit() -> None:
    """More than 100 roles: 100 options and a note pointing at /access request."""
    rules = [policy_rule()] * 150
    view = request_form(rules, private_metadata="x" * 5000)
    view_ok(view, "modal")
    options = [o for g in view["blocks"][0]["element"]["option_groups"] for o in g["options"]]
    assert len(options) == kit.OPTIONS_MAX
    assert "Showing 100 of 150" in all_text(view["blocks"])
    assert view["private_metadata"] == ""


POLICY = load_policy(Path(__file__).parent.parent / "fixtures" / "slack_policy.yaml").policy


def _values(
    target: str | None = "sandbox/play",
    duration: str = "30m",
    reason: str = "looking",
    tickets: str | None = None,
) -> dict[str, Any]:
    values: dict[str, Any] = {
        ids.FORM_DURATION_BLOCK: {ids.FORM_DURATION_ACTION: {"value": duration}},
        ids.FORM_REASON_BLOCK: {ids.FORM_REASON_ACTION: {"value": reason}},
    }
    if target is not None:
        values[ids.FORM_TARGET_BLOCK] = {
            ids.FORM_TARGET_ACTION: {"selected_option": {"value": target}}
        }
    if tickets is not None:
        values[ids.FORM_TICKETS_BLOCK] = {ids.FORM_TICKETS_ACTION: {"value": tickets}}
    return values


def test_a_good_form_parses() -> None:
    """Target, duration, normalised reason, tickets from the field and the reason, origin."""
    parsed = parse_request_form(
        _values(reason="fix  INC-7\u200b now", tickets="CHG-1, INC-7"),
        private_metadata='{"channel":"C0GENERAL","channel_name":"general"}',
    )
    assert parsed == RequestInput(
        resource="sandbox",
        role="play",
        duration_s=1800,
        reason="fix INC-7 now",
        tickets=("CHG-1", "INC-7"),
        channel="C0GENERAL",
        channel_name="general",
    )


def test_each_bad_field_gets_its_own_error() -> None:
    """Missing target, bad duration, bad ticket: one error per field, nothing else."""
    errors = parse_request_form(
        _values(target=None, duration="soon", tickets="nope"), private_metadata=""
    )
    assert isinstance(errors, dict)
    assert set(errors) == {ids.FORM_TARGET_BLOCK, ids.FORM_DURATION_BLOCK, ids.FORM_TICKETS_BLOCK}
    assert all(len(message) <= 150 for message in errors.values())


def test_forged_and_oversized_values_are_refused() -> None:
    """Names that are not policy-shaped, giant or non-ASCII durations and reasons are refused."""
    errors = parse_request_form(
        _values(target="../etc/passwd", duration="٣٠m", reason="x" * 50_000, tickets="T" * 999),
        private_metadata="not json",
    )
    assert isinstance(errors, dict)
    assert set(errors) == {
        ids.FORM_TARGET_BLOCK,
        ids.FORM_DURATION_BLOCK,
        ids.FORM_REASON_BLOCK,
        ids.FORM_TICKETS_BLOCK,
    }


def test_a_private_key_is_refused_without_quoting_it() -> None:
    """A private key in the reason is refused, and the error repeats none of it."""
    key = "-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjE"
    errors = parse_request_form(_values(reason=key), private_metadata="")
    assert isinstance(errors, dict)
    assert "b3Blbn" not in errors[ids.FORM_REASON_BLOCK]


def test_metadata_is_read_defensively() -> None:
    """Bad private_metadata gives no origin rather than an error."""
    assert parse_metadata("") == (None, None)
    assert parse_metadata("[1]") == (None, None)
    assert parse_metadata('{"channel": "C1 <!here>", "channel_name": 5}') == (None, None)
    assert parse_metadata('{"channel": "C0INC42", "channel_name": "inc-42"}') == (
        "C0INC42",
        "inc-42",
    )


def test_policy_refusals_land_on_the_field_they_are_about() -> None:
    """Too long goes on the duration, a missing ticket on the tickets, else the target."""
    form = parse_request_form(_values("orders-db/write", "4h", "fixing"), private_metadata="")
    assert isinstance(form, RequestInput)
    rule = POLICY.rule("orders-db", "write")
    assert policy_error_field(rule, form) == ids.FORM_DURATION_BLOCK
    short = parse_request_form(_values("orders-db/write", "30m", "fixing"), private_metadata="")
    assert isinstance(short, RequestInput)
    assert policy_error_field(rule, short) == ids.FORM_TICKETS_BLOCK
    assert policy_error_field(None, short) == ids.FORM_TARGET_BLOCK


ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJaVFrSN9E/q2jqbzFkoc3JTxhHLgOjMAJo09WklceKv"


def _with_key(key: str) -> dict[str, Any]:
    values = _values()
    values[ids.FORM_SSH_KEY_BLOCK] = {ids.FORM_SSH_KEY_ACTION: {"value": key}}
    return values


def test_a_pasted_public_key_is_checked_like_ssh_key_add() -> None:
    """A good public key (its comment kept) comes through; an empty field means none."""
    parsed = parse_request_form(_with_key(f"  {ED25519} alice@laptop "), private_metadata="")
    assert isinstance(parsed, RequestInput)
    assert parsed.ssh_public_key == f"{ED25519} alice@laptop"
    empty = parse_request_form(_with_key("   "), private_metadata="")
    assert isinstance(empty, RequestInput) and empty.ssh_public_key is None


def test_a_bad_or_private_key_is_refused_on_its_field_without_echoing_it() -> None:
    """Junk, a truncated key and a private key each get an error on the key's field alone,
    and no error repeats what was pasted."""
    private = "-----BEGIN OPENSSH " + "PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE\n"
    for pasted in ("hello there", "ssh-ed25519 AAAAC3NzaC1lZDI1", private):
        errors = parse_request_form(_with_key(pasted), private_metadata="")
        assert isinstance(errors, dict) and set(errors) == {ids.FORM_SSH_KEY_BLOCK}, pasted
        message = errors[ids.FORM_SSH_KEY_BLOCK]
        assert len(message) <= 150 and pasted.split()[-1] not in message
    assert (
        "private key"
        in parse_request_form(_with_key(private), private_metadata="")[ids.FORM_SSH_KEY_BLOCK]
    )
