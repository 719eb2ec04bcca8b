"""Block Kit builders: what each message says, what its buttons carry, and Slack's limits.

Every rendered message and view is also checked with the emulator's Block Kit validator (the
same limits, worded as Slack words them), including for hostile and over-long data.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from bot.devtools.slack_emulator import BlockKitValidator
from bot.domain.credentials import Credential, CredentialField
from bot.domain.model import Approval, Grant, Origin, Status
from bot.domain.policy.rules import RoleRule
from bot.policy_loader import load_policy
from bot.slack import blocks, ids
from bot.slack.commands.reasons import MAX_REASON_CHARS
from tests.factories import NOW, make_grant

POLICY_FILE = Path(__file__).parent.parent / "fixtures" / "slack_policy.yaml"
VALIDATOR = BlockKitValidator()
HOSTILE_REASON = "<!here> <!channel> <@U0BOB> & <https://evil.example|click> " + "x" * 3000
SECRET = "s3cr3t-Pa55word-value"


def _rule(resource: str = "sandbox", role: str = "play") -> RoleRule:
    return load_policy(POLICY_FILE).policy.rule(resource, role)


def _message_ok(message: blocks.Message) -> None:
    assert message.text
    assert len(message.text) <= blocks.MESSAGE_TEXT_MAX
    assert VALIDATOR.message_blocks(message.blocks) == []


def _view_ok(view: dict[str, Any], kind: str) -> None:
    assert VALIDATOR.view(view, expected_type=kind) == []


def _buttons(message_blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for block in message_blocks:
        if block["type"] == "actions":
            found += block["elements"]
        elif block.get("accessory", {}).get("type") == "button":
            found.append(block["accessory"])
    return found


def _all_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _pending(**overrides: Any) -> Grant:
    return make_grant(**overrides)


def _active(**overrides: Any) -> Grant:
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


def test_approval_request_shows_everything_an_approver_needs() -> None:
    """The pending copy names requester, resource, role, duration, reason, tickets, origin,
    approvals k of N and when it lapses, and offers Approve and Deny."""
    grant = _pending(approvals_required=2, approvals=[Approval(user="U0CAROL", at=NOW)])
    message = blocks.approval_request(grant, now=NOW)
    _message_ok(message)
    text = _all_text(message.blocks)
    for needle in (
        "<@U0REQUEST>",
        "*orders-db* read",
        "30m",
        "debugging INC-42",
        "INC-42",
        "`/access` in <#C0GENERAL>",
        "1 of 2 (<@U0CAROL>)",
        f"<!date^{int(NOW + 3600)}^",
    ):
        assert needle in text, needle
    buttons = _buttons(message.blocks)
    assert [b["action_id"] for b in buttons] == [ids.APPROVE, ids.DENY]


def test_buttons_carry_only_the_grant_id() -> None:
    """Every button's value is exactly the grant id: nothing a click could use as authority."""
    grant = _active()
    rendered = [
        blocks.approval_request(_pending(id=grant.id), now=NOW),
        blocks.approval_outcome(grant, now=NOW),
        blocks.credential_dm(grant, Credential(ref="x", expires_at=NOW + 1800), now=NOW),
    ]
    for message in rendered:
        for button in _buttons(message.blocks):
            assert button["value"] == grant.id
    home = blocks.app_home(mine=[grant], waiting=[_pending()], now=NOW)
    for button in _buttons(home["blocks"]):
        assert button["action_id"] == ids.OPEN_FORM or button["value"].startswith("g-")


@pytest.mark.parametrize(
    ("status", "extra", "says"),
    [
        (Status.DENIED, {"decided_by": "U0BOB", "end_reason": "not today"}, "Denied by <@U0BOB>"),
        (Status.APPROVED, {"decided_by": "U0BOB"}, "Approved by <@U0BOB>"),
        (Status.TIMED_OUT, {}, "nobody decided in time"),
        (Status.CANCELLED, {"ended_by": "U0REQUEST"}, "Cancelled by <@U0REQUEST>"),
        (Status.REVOKED, {"ended_by": "U0CAROL"}, "Revoked by <@U0CAROL>"),
        (Status.EXPIRED, {"ended_at": NOW}, "Expired at"),
        (Status.FAILED, {"decided_by": "U0BOB", "last_error": "boom"}, "issuing the credential"),
        (Status.REVOKE_FAILED, {"revoke_attempts": 3}, "retrying"),
    ],
)
def test_decided_copy_names_the_outcome_and_has_no_decision_buttons(
    status: Status, extra: dict[str, Any], says: str
) -> None:
    """Once decided or ended, an approver's copy says what happened and by whom; Approve and
    Deny are gone."""
    grant = make_grant(status=status, **extra)
    message = blocks.approver_copy(grant, now=NOW)
    _message_ok(message)
    assert says in _all_text(message.blocks)
    assert not {ids.APPROVE, ids.DENY} & {b["action_id"] for b in _buttons(message.blocks)}


def test_active_copy_offers_revoke_now() -> None:
    """An approver's copy of an ACTIVE grant carries a Revoke now button and the time left."""
    message = blocks.approver_copy(_active(), now=NOW + 600)
    _message_ok(message)
    assert [b["action_id"] for b in _buttons(message.blocks)] == [ids.REVOKE]
    assert "20m left" in _all_text(message.blocks)


def test_hostile_reason_is_escaped_and_bounded() -> None:
    """A reason with mentions, links and 3000+ characters cannot ping anyone or break limits."""
    grant = _pending(reason=HOSTILE_REASON)
    for message in (
        blocks.approval_request(grant, now=NOW),
        blocks.approval_outcome(grant.model_copy(update={"status": Status.DENIED}), now=NOW),
        blocks.pending_list([grant] * 60, now=NOW),
        blocks.requester_notice(grant, now=NOW),
    ):
        _message_ok(message)
        text = _all_text(message.blocks) + message.text
        assert "<!here>" not in text and "<!channel>" not in text
        assert "<https://evil" not in text
    reason_blocks = blocks.approval_request(grant, now=NOW).blocks
    reason = next(
        b for b in reason_blocks if b.get("text", {}).get("text", "").startswith("*Reason")
    )
    assert len(reason["text"]["text"]) < MAX_REASON_CHARS * 2


def test_unexpected_ids_are_not_turned_into_mentions() -> None:
    """Stored data that is not a Slack id shape is shown escaped, never as markup."""
    grant = _pending(requester="<!everyone>", origin=Origin(channel="<#C1>", surface="x<y"))
    message = blocks.approval_request(grant, now=NOW)
    _message_ok(message)
    text = _all_text(message.blocks)
    assert "<!everyone>" not in text and "&lt;!everyone&gt;" in text


def test_credential_dm_is_the_only_builder_that_renders_secrets() -> None:
    """Secret values appear in the credential DM only, never in its notification text."""
    grant = _active()
    credential = Credential(
        ref="gb_user",
        expires_at=NOW + 1800,
        fields=(
            CredentialField("user", "gb_user"),
            CredentialField("password", SECRET, secret=True),
            CredentialField("certificate", "line1\nline2`with`ticks", secret=True),
        ),
    )
    dm = blocks.credential_dm(grant, credential, now=NOW)
    _message_ok(dm)
    assert SECRET in _all_text(dm.blocks)
    assert SECRET not in dm.text
    assert f"<!date^{int(NOW + 1800)}^" in _all_text(dm.blocks)
    assert [b["action_id"] for b in _buttons(dm.blocks)] == [ids.REVOKE]
    others = [
        blocks.approval_outcome(grant, now=NOW),
        blocks.credential_ended(grant.model_copy(update={"status": Status.EXPIRED}), now=NOW),
        blocks.requester_notice(grant, now=NOW),
        blocks.grant_status(grant, now=NOW),
    ]
    for message in others:
        assert SECRET not in _all_text(message.blocks) + message.text


def test_credential_dm_survives_huge_credentials() -> None:
    """Many and very long fields still fit Slack's limits."""
    fields = tuple(CredentialField(f"f{i}", "v" * 5000, secret=True) for i in range(60))
    dm = blocks.credential_dm(
        _active(), Credential(ref="r", expires_at=NOW, fields=fields), now=NOW
    )
    _message_ok(dm)


def test_request_form_offers_only_the_given_rules() -> None:
    """The modal lists exactly the rules passed in (what the user may request), grouped by
    resource, with duration, reason and ticket inputs."""
    rules = [_rule("sandbox", "play"), _rule("flags", "editor")]
    view = blocks.request_form(rules, private_metadata='{"channel":"C0GENERAL"}')
    _view_ok(view, "modal")
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
    ]


def test_request_form_asks_for_an_ssh_key_only_when_an_ssh_role_is_offered() -> None:
    """An SSH certificate role among the options adds an optional public-key field; the
    form without one has no such field."""
    ssh = dataclasses.replace(_rule("lab", "play"), provider_type="ssh_cert")
    view = blocks.request_form([_rule("sandbox", "play"), ssh])
    _view_ok(view, "modal")
    [field] = [b for b in view["blocks"] if b.get("block_id") == ids.FORM_SSH_KEY_BLOCK]
    assert field["optional"] is True
    assert field["element"]["action_id"] == ids.FORM_SSH_KEY_ACTION
    assert "never the private key" in field["hint"]["text"]
    plain = blocks.request_form([_rule("sandbox", "play")])
    assert ids.FORM_SSH_KEY_BLOCK not in [b.get("block_id") for b in plain["blocks"]]


def test_request_form_with_nothing_requestable_says_so() -> None:
    """No rules: an explanation and no submit button."""
    view = blocks.request_form([])
    _view_ok(view, "modal")
    assert "submit" not in view


def test_request_form_caps_options_at_slacks_limit() -> None:
    """More than 100 roles: 100 options and a note pointing at /access request."""
    rules = [_rule()] * 150
    view = blocks.request_form(rules, private_metadata="x" * 5000)
    _view_ok(view, "modal")
    options = [o for g in view["blocks"][0]["element"]["option_groups"] for o in g["options"]]
    assert len(options) == blocks.OPTIONS_MAX
    assert "Showing 100 of 150" in _all_text(view["blocks"])
    assert view["private_metadata"] == ""


def test_deny_form_carries_only_the_grant_id() -> None:
    """The deny modal's private_metadata is the grant id; the reason is optional."""
    grant = _pending(reason=HOSTILE_REASON)
    view = blocks.deny_form(grant)
    _view_ok(view, "modal")
    assert view["private_metadata"] == grant.id
    assert view["callback_id"] == ids.DENY_FORM


def test_app_home_lists_mine_and_waiting_with_actions() -> None:
    """Home shows my active grants with time left and Revoke, my pending with Cancel, and
    requests waiting for me with Approve/Deny."""
    active = _active()
    pending = _pending()
    waiting = _pending(requester="U0ALICE")
    view = blocks.app_home(mine=[active, pending], waiting=[waiting], now=NOW + 60)
    _view_ok(view, "home")
    text = _all_text(view["blocks"])
    assert "29m left" in text
    actions = [(b["action_id"], b.get("value")) for b in _buttons(view["blocks"])]
    assert (ids.REVOKE, active.id) in actions
    assert (ids.CANCEL, pending.id) in actions
    assert (ids.APPROVE, waiting.id) in actions and (ids.DENY, waiting.id) in actions
    block_ids = [b["block_id"] for b in view["blocks"] if "block_id" in b]
    assert len(block_ids) == len(set(block_ids)), "block ids must be unique in a view"


def test_app_home_fits_100_blocks_however_many_grants() -> None:
    """Hundreds of grants still give a valid home tab that says it was cut."""
    many = [_pending() for _ in range(150)]
    view = blocks.app_home(mine=many, waiting=many, now=NOW)
    _view_ok(view, "home")
    assert len(view["blocks"]) == blocks.VIEW_BLOCKS_MAX
    assert "/access list" in _all_text(view["blocks"][-1])


def test_empty_home_is_valid() -> None:
    """A user with nothing still gets a valid home tab with the Request access button."""
    view = blocks.app_home(mine=[], waiting=[], now=NOW)
    _view_ok(view, "home")
    assert [b["action_id"] for b in _buttons(view["blocks"])] == [ids.OPEN_FORM]


def test_lists_and_help_fit_slack() -> None:
    """The ephemeral texts (list, pending, resources, help, ssh-key) are valid however long."""
    rules = [_rule(), _rule("orders-db", "write"), _rule("lab", "play")]
    for message in (
        blocks.grants_list([_active(), _pending()] * 200, now=NOW),
        blocks.grants_list([], now=NOW),
        blocks.pending_list([], now=NOW),
        blocks.resources_list(rules * 100),
        blocks.resources_list([]),
        blocks.help_message(),
        blocks.ssh_key_message(None),
        blocks.ssh_key_message("ssh-ed25519 AAAA" + "A" * 5000),
    ):
        _message_ok(message)
    text = _all_text(blocks.resources_list(rules).blocks)
    assert "*orders-db* write" in text and "2 approvals" in text and "may be auto-approved" in text


def test_request_confirmation_names_the_id_and_who_was_asked() -> None:
    """The requester's confirmation gives the request id and the approvers asked."""
    grant = _pending()
    message = blocks.request_confirmation(grant, _rule(), now=NOW)
    _message_ok(message)
    assert grant.id in message.text
    assert "group approvers" in message.text and "<#C0ACCESS>" in message.text


def test_error_message_escapes() -> None:
    """Errors are escaped and bounded."""
    message = blocks.error_message("<!here> " + "y" * 5000)
    _message_ok(message)
    assert "<!here>" not in message.text


def test_extension_request_says_what_it_extends() -> None:
    """An extension's approval message names the grant it extends and the extra time."""
    ext = _pending(kind="extension", parent_id="g-abcdefgh", duration_s=900)
    message = blocks.approval_request(ext, now=NOW)
    _message_ok(message)
    text = _all_text(message.blocks)
    assert "Extension of g-abcdefgh" in text and "+15m" in text


def test_truncate_names_the_cut() -> None:
    """truncate keeps short text and ends cut text with an ellipsis within the limit."""
    assert blocks.truncate("abc", 5) == "abc"
    assert blocks.truncate("abcdef", 5) == "abcd…"
    assert blocks.truncate("abc", 0) == ""


def test_error_message_keeps_grantbots_own_mentions() -> None:
    """A refusal naming who decided keeps the mention clickable; other markup is escaped."""
    message = blocks.error_message("g-x was already approved by <@U0BOB>; <!here> nothing")
    assert "<@U0BOB>" in message.text and "&lt;!here&gt;" in message.text


def test_a_long_certificate_reaches_the_dm_whole() -> None:
    """A one-line SSH certificate of 2,000+ characters (an RSA CA's) is shown whole in a
    code block, and a value too long for one section comes in numbered parts that join back
    to it exactly: a credential is never cut short."""
    cert = "ssh-rsa-cert-v01@openssh.com " + "A" * 2000 + " alice"
    huge = "".join(chr(ord("a") + i % 26) for i in range(7000))
    fields = (
        CredentialField("user", "gb_g_abc", secret=False),
        CredentialField("certificate", cert, secret=True),
        CredentialField("blob", huge, secret=True),
    )
    dm = blocks.credential_dm(
        _active(), Credential(ref="r", expires_at=NOW, fields=fields), now=NOW
    )
    _message_ok(dm)
    texts = [b["text"]["text"] for b in dm.blocks if b["type"] == "section"]
    assert any(f"```{cert}```" in t for t in texts)
    parts = [t.split("```")[1] for t in texts if t.startswith("*blob*")]
    assert len(parts) == 3 and "".join(parts) == huge
    assert "part 1 of 3" in next(t for t in texts if t.startswith("*blob*"))
