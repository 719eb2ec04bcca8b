"""The ephemeral lists and texts ``/access`` answers with fit Slack however long."""

from __future__ import annotations

from bot.slack.blocks import lists
from tests.factories import NOW
from tests.unit.blockkit import (
    active_grant,
    all_text,
    message_ok,
    pending_grant,
    policy_rule,
)


def test_lists_and_help_fit_slack() -> None:
    """The ephemeral texts (list, pending, resources, help, ssh-key) are valid however long."""
    rules = [policy_rule(), policy_rule("orders-db", "write"), policy_rule("lab", "play")]
    for message in (
        lists.grants_list([active_grant(), pending_grant()] * 200, now=NOW),
        lists.grants_list([], now=NOW),
        lists.pending_list([], now=NOW),
        lists.resources_list(rules * 100),
        lists.resources_list([]),
        lists.help_message(),
        lists.ssh_key_message(None),
        lists.ssh_key_message("ssh-ed25519 AAAA" + "A" * 5000),
    ):
        message_ok(message)
    text = all_text(lists.resources_list(rules).blocks)
    assert "*orders-db* write" in text and "2 approvals" in text and "may be auto-approved" in text
