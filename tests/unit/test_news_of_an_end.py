"""Which audit entries are news for Slack, and how a person is told what Slack did not
deliver: both pure."""

from __future__ import annotations

import pytest

from bot.announcer import end_of
from bot.domain.model import Status
from bot.slack.delivery import Undelivered, credential_undelivered, note
from bot.store.audit import AuditEntry, entry_body
from tests.factories import make_grant


def _entry(event: str, **details: object) -> AuditEntry:
    body = entry_body(at=1.0, event=event, actor="cli:ops", grant_id="g-abc", details=details)
    return AuditEntry(id="1-0", seq=1, prev="0" * 64, hash="x", body=body)


@pytest.mark.parametrize(
    ("entry", "news"),
    [
        (_entry("REVOKE", to="REVOKED", **{"from": "ACTIVE"}), ("g-abc", "REVOKED")),
        (_entry("EXPIRE", to="EXPIRED"), ("g-abc", "EXPIRED")),
        (_entry("CANCEL", to="CANCELLED"), ("g-abc", "CANCELLED")),
        (_entry("TIME_OUT", to="TIMED_OUT"), ("g-abc", "TIMED_OUT")),
        (_entry("ISSUE_FAIL", to="FAILED"), ("g-abc", "FAILED")),
        (_entry("REVOKE_FAIL", to="REVOKE_FAILED"), ("g-abc", "REVOKE_FAILED")),
        (_entry("APPROVE", to="APPROVED"), None),
        (_entry("DENY", to="DENIED"), None),  # told where it is made: only Slack can deny
        (_entry("CREATED", status="PENDING"), None),
        (_entry("NOTIFY_FAILED", method="chat.update"), None),
        (AuditEntry(id="1-0", seq=0, prev="", hash="", body="{}"), None),
        (AuditEntry(id="1-0", seq=0, prev="", hash="", body="not json"), None),
    ],
)
def test_only_ends_and_failed_revocations_are_news(
    entry: AuditEntry, news: tuple[str, str] | None
) -> None:
    """An entry is news when it moves a grant to an end (or a failed revocation attempt)."""
    assert end_of(entry) == news


def test_an_undelivered_credential_is_told_to_the_requester_with_what_to_do() -> None:
    """A failed DM to the requester of a live grant is the credential: say so, and how to
    end it; copies that could not be updated are counted once each."""
    grant = make_grant(status=Status.ACTIVE, requester="U0ALICE")
    failures = [
        Undelivered(grant.id, "chat.postMessage", "U0ALICE", "http_503"),
        Undelivered(grant.id, "chat.update", "C0ACCESS", "http_503"),
        Undelivered(grant.id, "chat.update", "C0ACCESS", "http_503"),
        Undelivered("g-other", "chat.update", "D0BOB", "timeout"),
    ]
    assert credential_undelivered(failures, grant)
    told = note(failures, grant, for_requester=True)
    assert told == (
        "Slack did not deliver your credential by DM (http_503): nobody holds it. "
        f"End it with `/access revoke {grant.id}` and ask again. "
        "Slack could not update 1 message(s) about it (http_503); they may show an earlier "
        "state."
    )
    assert note(failures[:1], grant, for_requester=False) == (
        "Slack did not deliver the credential by DM (http_503): nobody holds it. "
        f"End it with `/access revoke {grant.id}` and ask again."
    )


def test_nothing_undelivered_is_no_note() -> None:
    """No failure about the grant (or one about another) adds nothing to the answer."""
    grant = make_grant(status=Status.PENDING)
    assert note([], grant, for_requester=True) is None
    assert (
        note([Undelivered("g-other", "chat.postMessage", "C1", "x")], grant, for_requester=True)
        is None
    )
