"""The extension record's own small table: decided like a request, closed once applied."""

from __future__ import annotations

import itertools

import pytest

from bot.domain import lifecycle
from bot.domain.model import Actor, ActorKind, Event, Status
from bot.errors import TransitionError
from tests.factories import NOW, make_grant

SYSTEM = Actor.system("extension")
APPROVER = Actor(kind=ActorKind.APPROVER, id="U0APPROVER")


def test_an_approved_extension_is_closed_by_extend() -> None:
    """EXTEND on an APPROVED extension record closes it as EXPIRED, naming its parent."""
    ext = make_grant(kind="extension", parent_id="g-parent22", status=Status.APPROVED)
    outcome = lifecycle.apply(ext, Event.EXTEND, actor=SYSTEM, now=NOW, reason="applied")
    assert outcome.grant.status is Status.EXPIRED and outcome.grant.terminal
    assert outcome.grant.ended_at == NOW and outcome.grant.end_reason == "applied"
    assert outcome.details == {"applied_to": "g-parent22"}


def test_an_extension_is_decided_like_a_request() -> None:
    """A pending extension is approved by an approver's vote, like any request."""
    ext = make_grant(kind="extension", parent_id="g-parent22")
    outcome = lifecycle.apply(ext, Event.APPROVE, actor=APPROVER, now=NOW)
    assert outcome.grant.status is Status.APPROVED


@pytest.mark.parametrize(
    ("status", "event"),
    [
        (s, e)
        for s, e in itertools.product(Status, Event)
        if (s, e) not in lifecycle.EXTENSION_TRANSITIONS
    ],
)
def test_an_extension_never_holds_a_credential(status: Status, event: Event) -> None:
    """Everything outside the extension table (ISSUE, REVOKE, EXPIRE...) is refused."""
    ext = make_grant(kind="extension", parent_id="g-parent22", status=status)
    actor = {
        Event.APPROVE: APPROVER,
        Event.DENY: APPROVER,
        Event.CANCEL: Actor(kind=ActorKind.REQUESTER, id=ext.requester),
        Event.FORCE_CLOSE: Actor(kind=ActorKind.OPERATOR, id="ops"),
    }.get(event, SYSTEM)
    with pytest.raises(TransitionError):
        lifecycle.apply(ext, event, actor=actor, now=NOW, expires_at=NOW + 60)


def test_an_access_grant_cannot_be_closed_by_extend() -> None:
    """The extension-closing step does not apply to an ordinary approved grant."""
    grant = make_grant(status=Status.APPROVED)
    with pytest.raises(TransitionError):
        lifecycle.apply(grant, Event.EXTEND, actor=SYSTEM, now=NOW, expires_at=NOW + 60)
