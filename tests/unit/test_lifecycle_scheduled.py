"""SCHEDULED in the pure state machine: a request approved before its start waits, and
every way out of it (start, cancel, revoke, time-out) is the table's."""

from __future__ import annotations

import pytest

from bot.domain import lifecycle
from bot.domain.model import Actor, ActorKind, Event, Status
from bot.errors import NotAuthorized, TransitionError
from tests.factories import NOW, make_grant

APPROVER = Actor(kind=ActorKind.APPROVER, id="U0APPROVER")
REQUESTER = Actor(kind=ActorKind.REQUESTER, id="U0REQUEST")
SYSTEM = Actor.system("scheduler")


def scheduled(starts_in: float = 3600.0) -> object:
    grant = make_grant(status=Status.PENDING, starts_at=NOW + starts_in)
    return lifecycle.apply(grant, Event.APPROVE, actor=APPROVER, now=NOW).grant


def test_approval_before_the_start_waits_scheduled() -> None:
    """The last approval of a request whose start is ahead gives SCHEDULED, not APPROVED."""
    grant = make_grant(status=Status.PENDING, starts_at=NOW + 3600)
    outcome = lifecycle.apply(grant, Event.APPROVE, actor=APPROVER, now=NOW)
    assert outcome.grant.status is Status.SCHEDULED
    assert outcome.grant.approved_at == NOW and outcome.grant.decided_by == APPROVER.id


def test_auto_approval_before_the_start_waits_scheduled() -> None:
    grant = make_grant(status=Status.PENDING, starts_at=NOW + 60)
    outcome = lifecycle.apply(grant, Event.AUTO_APPROVE, actor=Actor.system(), now=NOW)
    assert outcome.grant.status is Status.SCHEDULED


def test_approval_once_the_start_came_is_plain_approved() -> None:
    """Approved after its start (within its window), the grant is issued at once."""
    grant = make_grant(status=Status.PENDING, starts_at=NOW - 1)
    outcome = lifecycle.apply(grant, Event.APPROVE, actor=APPROVER, now=NOW)
    assert outcome.grant.status is Status.APPROVED


def test_an_approval_short_of_n_stays_pending() -> None:
    grant = make_grant(status=Status.PENDING, starts_at=NOW + 60, approvals_required=2)
    outcome = lifecycle.apply(grant, Event.APPROVE, actor=APPROVER, now=NOW)
    assert outcome.grant.status is Status.PENDING


def test_start_makes_it_approved_and_records_the_start() -> None:
    grant = make_grant(status=Status.SCHEDULED, starts_at=NOW)
    outcome = lifecycle.apply(grant, Event.START, actor=SYSTEM, now=NOW + 1)
    assert outcome.grant.status is Status.APPROVED
    assert outcome.details == {"starts_at": NOW}


@pytest.mark.parametrize(
    ("event", "actor", "ends_in"),
    [
        (Event.CANCEL, REQUESTER, Status.CANCELLED),
        (Event.REVOKE, APPROVER, Status.REVOKED),
        (Event.REVOKE, Actor(kind=ActorKind.OPERATOR, id="ops"), Status.REVOKED),
        (Event.TIME_OUT, SYSTEM, Status.TIMED_OUT),
    ],
)
def test_a_scheduled_grant_ends_before_its_start(
    event: Event, actor: Actor, ends_in: Status
) -> None:
    grant = make_grant(status=Status.SCHEDULED, starts_at=NOW + 600)
    outcome = lifecycle.apply(grant, event, actor=actor, now=NOW, reason="why")
    assert outcome.grant.status is ends_in
    assert outcome.grant.ended_at == NOW and outcome.grant.ended_by == actor.id


@pytest.mark.parametrize("event", [Event.ISSUE, Event.EXPIRE, Event.EXTEND, Event.APPROVE])
def test_nothing_is_issued_or_ended_at_a_target_while_scheduled(event: Event) -> None:
    grant = make_grant(status=Status.SCHEDULED, starts_at=NOW + 600)
    actor = APPROVER if event is Event.APPROVE else SYSTEM
    with pytest.raises(TransitionError):
        lifecycle.apply(grant, event, actor=actor, now=NOW, expires_at=NOW + 9000)


def test_only_the_system_starts_and_only_the_requester_cancels() -> None:
    grant = make_grant(status=Status.SCHEDULED, starts_at=NOW)
    with pytest.raises(NotAuthorized):
        lifecycle.apply(grant, Event.START, actor=APPROVER, now=NOW)
    with pytest.raises(NotAuthorized):
        lifecycle.apply(grant, Event.CANCEL, actor=APPROVER, now=NOW)
    other = Actor(kind=ActorKind.REQUESTER, id="U0SOMEONE")
    with pytest.raises(NotAuthorized):
        lifecycle.apply(grant, Event.CANCEL, actor=other, now=NOW)


def test_an_extension_record_is_never_scheduled() -> None:
    """starts_at applies to access requests only; an extension record is decided as ever."""
    grant = make_grant(status=Status.PENDING, kind="extension", starts_at=NOW + 600)
    outcome = lifecycle.apply(grant, Event.APPROVE, actor=APPROVER, now=NOW)
    assert outcome.grant.status is Status.APPROVED
