"""The deny form: it carries only the grant id, and its reason is read back optional,
normalised and bounded."""

from __future__ import annotations

from bot.slack import ids
from bot.slack.modals.deny import deny_form, parse_deny_form
from tests.unit.blockkit import HOSTILE_REASON, pending_grant, view_ok


def test_deny_form_carries_only_the_grant_id() -> None:
    """The deny modal's private_metadata is the grant id; the reason is optional."""
    grant = pending_grant(reason=HOSTILE_REASON)
    view = deny_form(grant)
    view_ok(view, "modal")
    assert view["private_metadata"] == grant.id
    assert view["callback_id"] == ids.DENY_FORM


def test_deny_reason() -> None:
    """The deny reason is optional, normalised and bounded."""
    assert parse_deny_form({}) == ""
    values = {ids.DENY_REASON_BLOCK: {ids.DENY_REASON_ACTION: {"value": " not\nnow "}}}
    assert parse_deny_form(values) == "not now"
    big = {ids.DENY_REASON_BLOCK: {ids.DENY_REASON_ACTION: {"value": "n" * 600}}}
    assert isinstance(parse_deny_form(big), dict)
