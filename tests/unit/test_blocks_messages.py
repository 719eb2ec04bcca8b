"""The messages about one grant: what each says, what its buttons carry, Slack's limits."""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain.credentials import Credential, CredentialField
from bot.domain.model import Approval, Origin, Status
from bot.slack import ids
from bot.slack.blocks import lists, messages
from bot.slack.blocks.home import app_home
from bot.slack.commands.reasons import MAX_REASON_CHARS
from tests.factories import NOW, make_grant
from tests.unit.blockkit import (
    HOSTILE_REASON,
    SECRET,
    active_grant,
    all_text,
    buttons_of,
    message_ok,
    pending_grant,
    policy_rule,
)


def test_approval_request_shows_everything_an_approver_needs() -> None:
    """The pending copy names requester, resource, role, duration, reason, tickets, origin,
    approvals k of N and when it lapses, and offers Approve and Deny."""
    grant = pending_grant(approvals_required=2, approvals=[Approval(user="U0CAROL", at=NOW)])
    message = messages.approval_request(grant, now=NOW)
    message_ok(message)
    text = all_text(message.blocks)
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
    buttons = buttons_of(message.blocks)
    assert [b["action_id"] for b in buttons] == [ids.APPROVE, ids.DENY]


def test_buttons_carry_only_the_grant_id() -> None:
    """Every button's value is exactly the grant id: nothing a click could use as authority."""
    grant = active_grant()
    rendered = [
        messages.approval_request(pending_grant(id=grant.id), now=NOW),
        messages.approval_outcome(grant, now=NOW),
        messages.credential_dm(grant, Credential(ref="x", expires_at=NOW + 1800), now=NOW),
    ]
    for message in rendered:
        for button in buttons_of(message.blocks):
            assert button["value"] == grant.id
    home = app_home(mine=[grant], waiting=[pending_grant()], now=NOW)
    for button in buttons_of(home["blocks"]):
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
    message = messages.approver_copy(grant, now=NOW)
    message_ok(message)
    assert says in all_text(message.blocks)
    assert not {ids.APPROVE, ids.DENY} & {b["action_id"] for b in buttons_of(message.blocks)}


def test_active_copy_offers_revoke_now() -> None:
    """An approver's copy of an ACTIVE grant carries a Revoke now button and the time left."""
    message = messages.approver_copy(active_grant(), now=NOW + 600)
    message_ok(message)
    assert [b["action_id"] for b in buttons_of(message.blocks)] == [ids.REVOKE]
    assert "20m left" in all_text(message.blocks)


def test_hostile_reason_is_escaped_and_bounded() -> None:
    """A reason with mentions, links and 3000+ characters cannot ping anyone or break limits."""
    grant = pending_grant(reason=HOSTILE_REASON)
    for message in (
        messages.approval_request(grant, now=NOW),
        messages.approval_outcome(grant.model_copy(update={"status": Status.DENIED}), now=NOW),
        lists.pending_list([grant] * 60, now=NOW),
        messages.requester_notice(grant, now=NOW),
    ):
        message_ok(message)
        text = all_text(message.blocks) + message.text
        assert "<!here>" not in text and "<!channel>" not in text
        assert "<https://evil" not in text
    reason_blocks = messages.approval_request(grant, now=NOW).blocks
    reason = next(
        b for b in reason_blocks if b.get("text", {}).get("text", "").startswith("*Reason")
    )
    assert len(reason["text"]["text"]) < MAX_REASON_CHARS * 2


def test_unexpected_ids_are_not_turned_into_mentions() -> None:
    """Stored data that is not a Slack id shape is shown escaped, never as markup."""
    grant = pending_grant(requester="<!everyone>", origin=Origin(channel="<#C1>", surface="x<y"))
    message = messages.approval_request(grant, now=NOW)
    message_ok(message)
    text = all_text(message.blocks)
    assert "<!everyone>" not in text and "&lt;!everyone&gt;" in text


def test_credential_dm_is_the_only_builder_that_renders_secrets() -> None:
    """Secret values appear in the credential DM only, never in its notification text."""
    grant = active_grant()
    credential = Credential(
        ref="gb_user",
        expires_at=NOW + 1800,
        fields=(
            CredentialField("user", "gb_user"),
            CredentialField("password", SECRET, secret=True),
            CredentialField("certificate", "line1\nline2`with`ticks", secret=True),
        ),
    )
    dm = messages.credential_dm(grant, credential, now=NOW)
    message_ok(dm)
    assert SECRET in all_text(dm.blocks)
    assert SECRET not in dm.text
    assert f"<!date^{int(NOW + 1800)}^" in all_text(dm.blocks)
    assert [b["action_id"] for b in buttons_of(dm.blocks)] == [ids.REVOKE]
    others = [
        messages.approval_outcome(grant, now=NOW),
        messages.credential_ended(grant.model_copy(update={"status": Status.EXPIRED}), now=NOW),
        messages.requester_notice(grant, now=NOW),
        messages.grant_status(grant, now=NOW),
    ]
    for message in others:
        assert SECRET not in all_text(message.blocks) + message.text


def test_credential_dm_survives_huge_credentials() -> None:
    """Many and very long fields still fit Slack's limits."""
    fields = tuple(CredentialField(f"f{i}", "v" * 5000, secret=True) for i in range(60))
    dm = messages.credential_dm(
        active_grant(), Credential(ref="r", expires_at=NOW, fields=fields), now=NOW
    )
    message_ok(dm)


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
    dm = messages.credential_dm(
        active_grant(), Credential(ref="r", expires_at=NOW, fields=fields), now=NOW
    )
    message_ok(dm)
    texts = [b["text"]["text"] for b in dm.blocks if b["type"] == "section"]
    assert any(f"```{cert}```" in t for t in texts)
    parts = [t.split("```")[1] for t in texts if t.startswith("*blob*")]
    assert len(parts) == 3 and "".join(parts) == huge
    assert "part 1 of 3" in next(t for t in texts if t.startswith("*blob*"))


def test_request_confirmation_names_the_id_and_who_was_asked() -> None:
    """The requester's confirmation gives the request id and the approvers asked."""
    grant = pending_grant()
    message = messages.request_confirmation(grant, policy_rule(), now=NOW)
    message_ok(message)
    assert grant.id in message.text
    assert "group approvers" in message.text and "<#C0ACCESS>" in message.text


def test_extension_request_says_what_it_extends() -> None:
    """An extension's approval message names the grant it extends and the extra time."""
    ext = pending_grant(kind="extension", parent_id="g-abcdefgh", duration_s=900)
    message = messages.approval_request(ext, now=NOW)
    message_ok(message)
    text = all_text(message.blocks)
    assert "Extension of g-abcdefgh" in text and "+15m" in text


def test_error_message_escapes() -> None:
    """Errors are escaped and bounded."""
    message = messages.error_message("<!here> " + "y" * 5000)
    message_ok(message)
    assert "<!here>" not in message.text


def test_error_message_keeps_grantbots_own_mentions() -> None:
    """A refusal naming who decided keeps the mention clickable; other markup is escaped."""
    message = messages.error_message("g-x was already approved by <@U0BOB>; <!here> nothing")
    assert "<@U0BOB>" in message.text and "&lt;!here&gt;" in message.text
