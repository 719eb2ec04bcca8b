"""The pure state machine, checked state by state and event by event."""

from __future__ import annotations

import itertools

import pytest

from bot.domain import lifecycle
from bot.domain.model import Actor, ActorKind, Event, Grant, Status
from bot.errors import NotAuthorized, TransitionError
from tests.factories import NOW, make_grant

# The specification, written out independently of lifecycle.TRANSITIONS so that a change to
# the table that the spec does not allow makes this test fail.
SPEC: dict[tuple[str, str], str] = {
    ("PENDING", "APPROVE"): "APPROVED",
    ("PENDING", "AUTO_APPROVE"): "APPROVED",
    ("PENDING", "DENY"): "DENIED",
    ("PENDING", "CANCEL"): "CANCELLED",
    ("PENDING", "TIME_OUT"): "TIMED_OUT",
    ("APPROVED", "ISSUE"): "ACTIVE",
    ("APPROVED", "ISSUE_FAIL"): "FAILED",
    ("ACTIVE", "EXTEND"): "ACTIVE",
    ("ACTIVE", "REVOKE"): "REVOKED",
    ("ACTIVE", "EXPIRE"): "EXPIRED",
    ("ACTIVE", "REVOKE_FAIL"): "REVOKE_FAILED",
    ("REVOKE_FAILED", "REVOKE_FAIL"): "REVOKE_FAILED",
    ("REVOKE_FAILED", "REVOKE"): "REVOKED",
    ("REVOKE_FAILED", "EXPIRE"): "EXPIRED",
    ("REVOKE_FAILED", "FORCE_CLOSE"): "REVOKED",
    # A scheduled grant (approved before its start) waits; issue 13.
    ("SCHEDULED", "START"): "APPROVED",
    ("SCHEDULED", "CANCEL"): "CANCELLED",
    ("SCHEDULED", "REVOKE"): "REVOKED",
    ("SCHEDULED", "TIME_OUT"): "TIMED_OUT",
}

ACTOR_FOR = {
    Event.APPROVE: Actor(kind=ActorKind.APPROVER, id="U0APPROVER"),
    Event.AUTO_APPROVE: Actor.system("oncall"),
    Event.DENY: Actor(kind=ActorKind.APPROVER, id="U0APPROVER"),
    Event.CANCEL: Actor(kind=ActorKind.REQUESTER, id="U0REQUEST"),
    Event.TIME_OUT: Actor.system(),
    Event.ISSUE: Actor.system(),
    Event.ISSUE_FAIL: Actor.system(),
    Event.EXTEND: Actor.system(),
    Event.REVOKE: Actor(kind=ActorKind.REQUESTER, id="U0REQUEST"),
    Event.EXPIRE: Actor.system(),
    Event.REVOKE_FAIL: Actor.system(),
    Event.FORCE_CLOSE: Actor(kind=ActorKind.OPERATOR, id="ops"),
    Event.START: Actor.system("scheduler"),
}


def grant_in(status: Status) -> Grant:
    extra: dict[str, object] = {}
    if status in (Status.ACTIVE, Status.REVOKE_FAILED):
        extra = {"activated_at": NOW, "expires_at": NOW + 1800}
    if status is Status.SCHEDULED:
        extra = {"starts_at": NOW - 10, "approved_at": NOW - 60}
    return make_grant(status=status, **extra)


@pytest.mark.parametrize(("status", "event"), list(itertools.product(Status, Event)))
def test_every_state_against_every_event(status: Status, event: Event) -> None:
    """Each (state, event) pair goes exactly where the spec says, or is refused unchanged."""
    grant = grant_in(status)
    expected = SPEC.get((status.value, event.value))
    kwargs: dict[str, object] = {}
    if event is Event.EXTEND:
        kwargs["expires_at"] = NOW + 7200
    if expected is None:
        with pytest.raises(TransitionError):
            lifecycle.apply(grant, event, actor=ACTOR_FOR[event], now=NOW + 1, **kwargs)
        assert grant.status is status  # the input is never mutated
    else:
        before = grant.model_dump()
        outcome = lifecycle.apply(grant, event, actor=ACTOR_FOR[event], now=NOW + 1, **kwargs)
        assert outcome.grant.status.value == expected
        assert outcome.from_status is status
        assert grant.model_dump() == before  # the input is never mutated, nor will it be:
        assert outcome.grant.approvals is not grant.approvals  # no mutable list is shared
        assert outcome.grant.tickets is not grant.tickets


def test_table_has_no_transitions_beyond_spec() -> None:
    """The implementation's table is exactly the specified one."""
    implemented = {(s.value, e.value): t.value for (s, e), t in lifecycle.TRANSITIONS.items()}
    assert implemented == SPEC


@pytest.mark.parametrize(("event", "kind"), list(itertools.product(Event, ActorKind)))
def test_only_allowed_actor_kinds_cause_each_event(event: Event, kind: ActorKind) -> None:
    """An actor of the wrong kind is refused with NotAuthorized before any state check."""
    source = next(Status(s) for (s, e) in SPEC if e == event.value)
    grant = grant_in(source)
    actor = Actor(kind=kind, id="U0REQUEST" if kind is ActorKind.REQUESTER else "U0OTHER")
    kwargs: dict[str, object] = {"expires_at": NOW + 7200} if event is Event.EXTEND else {}
    if kind in lifecycle.ALLOWED_ACTORS[event]:
        outcome = lifecycle.apply(grant, event, actor=actor, now=NOW + 1, **kwargs)
        assert outcome.grant.version == grant.version
    else:
        with pytest.raises(NotAuthorized):
            lifecycle.apply(grant, event, actor=actor, now=NOW + 1, **kwargs)


def test_self_approval_refused_unless_policy_allows() -> None:
    """A requester approving their own request is refused unless allow_self_approval."""
    me = Actor(kind=ActorKind.APPROVER, id="U0REQUEST")
    with pytest.raises(NotAuthorized, match="your own request"):
        lifecycle.apply(make_grant(), Event.APPROVE, actor=me, now=NOW)
    allowed = make_grant(allow_self_approval=True)
    assert (
        lifecycle.apply(allowed, Event.APPROVE, actor=me, now=NOW).grant.status is Status.APPROVED
    )


def test_n_of_m_needs_n_distinct_approvers() -> None:
    """With approvals_required=2 the first vote keeps PENDING, a repeat vote is refused, a
    second distinct approver approves."""
    a = Actor(kind=ActorKind.APPROVER, id="U0A")
    b = Actor(kind=ActorKind.APPROVER, id="U0B")
    g = make_grant(approvals_required=2)
    first = lifecycle.apply(g, Event.APPROVE, actor=a, now=NOW).grant
    assert first.status is Status.PENDING and first.approvers == ["U0A"]
    with pytest.raises(NotAuthorized, match="already approved"):
        lifecycle.apply(first, Event.APPROVE, actor=a, now=NOW)
    second = lifecycle.apply(first, Event.APPROVE, actor=b, now=NOW + 5).grant
    assert second.status is Status.APPROVED
    assert second.decided_by == "U0B" and second.approved_at == NOW + 5


def test_click_on_decided_request_names_who_decided() -> None:
    """Approving a denied request says it was already denied, and by whom."""
    denier = Actor(kind=ActorKind.APPROVER, id="U0DENY")
    denied = lifecycle.apply(make_grant(), Event.DENY, actor=denier, now=NOW, reason="no").grant
    with pytest.raises(TransitionError, match=r"already denied by <@U0DENY>"):
        lifecycle.apply(
            denied, Event.APPROVE, actor=Actor(kind=ActorKind.APPROVER, id="U0X"), now=NOW
        )


def test_requester_cannot_act_on_someone_elses_grant() -> None:
    """A requester may cancel or revoke only their own request."""
    other = Actor(kind=ActorKind.REQUESTER, id="U0SOMEONE")
    with pytest.raises(NotAuthorized, match="only <@U0REQUEST>"):
        lifecycle.apply(make_grant(), Event.CANCEL, actor=other, now=NOW)


def test_issue_sets_expiry_from_duration() -> None:
    """Issuing makes the grant ACTIVE until now + duration, with the credential handle."""
    approved = make_grant(status=Status.APPROVED)
    g = lifecycle.apply(
        approved, Event.ISSUE, actor=Actor.system(), now=NOW, credential_ref="gb_x"
    ).grant
    assert g.status is Status.ACTIVE
    assert g.expires_at == NOW + approved.duration_s
    assert g.credential_ref == "gb_x"


def test_extend_only_moves_expiry_later() -> None:
    """An extension must move expires_at later; the same or earlier is refused."""
    active = grant_in(Status.ACTIVE)
    assert active.expires_at is not None
    with pytest.raises(TransitionError, match="later"):
        lifecycle.apply(
            active, Event.EXTEND, actor=Actor.system(), now=NOW, expires_at=active.expires_at
        )
    out = lifecycle.apply(
        active, Event.EXTEND, actor=Actor.system(), now=NOW, expires_at=active.expires_at + 600
    )
    assert out.grant.expires_at == active.expires_at + 600
    assert out.details["extended_by"] == "10m"


def test_revoke_fail_counts_attempts_and_keeps_error() -> None:
    """Each failed revoke increments the attempt count and records the error."""
    g = grant_in(Status.ACTIVE)
    g = lifecycle.apply(g, Event.REVOKE_FAIL, actor=Actor.system(), now=NOW, error="down").grant
    g = lifecycle.apply(
        g, Event.REVOKE_FAIL, actor=Actor.system(), now=NOW, error="still down"
    ).grant
    assert g.status is Status.REVOKE_FAILED
    assert g.revoke_attempts == 2 and g.last_error == "still down"
