"""The request/grant state machine: which events apply in which state, and who may cause them.

``apply`` is pure: it takes a grant, an event, the actor and ``now`` and returns the next
grant (version unchanged; the store bumps it on a successful compare-and-set) together with
the audit details, or raises. It knows nothing of Redis or Slack. Authorisation that needs
the policy ("is this user an approver of this role?") is decided by the caller, which passes
the actor with the kind it has established (``ActorKind.APPROVER`` only after that check).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from bot.domain.duration import format_duration
from bot.domain.model import Actor, ActorKind, Approval, Event, Grant, Status
from bot.errors import NotAuthorized, TransitionError

S = Status
E = Event
K = ActorKind

#: (state, event) -> state after the event. Anything not listed is refused.
#: APPROVE maps to APPROVED, but stays PENDING until the N-th distinct approval. A request
#: with a start still ahead (``starts_at`` > now) is approved into SCHEDULED instead (see
#: :data:`SCHEDULED_ON_APPROVAL`); it waits there until START (then it is issued as any
#: APPROVED grant), or ends: cancelled by its requester, revoked by an approver or an
#: operator, or timed out when its window (start + duration) closed before it could start.
TRANSITIONS: Final[dict[tuple[Status, Event], Status]] = {
    (S.PENDING, E.APPROVE): S.APPROVED,
    (S.PENDING, E.AUTO_APPROVE): S.APPROVED,
    (S.SCHEDULED, E.START): S.APPROVED,
    (S.SCHEDULED, E.CANCEL): S.CANCELLED,
    (S.SCHEDULED, E.REVOKE): S.REVOKED,
    (S.SCHEDULED, E.TIME_OUT): S.TIMED_OUT,
    (S.PENDING, E.DENY): S.DENIED,
    (S.PENDING, E.CANCEL): S.CANCELLED,
    (S.PENDING, E.TIME_OUT): S.TIMED_OUT,
    (S.APPROVED, E.ISSUE): S.ACTIVE,
    (S.APPROVED, E.ISSUE_FAIL): S.FAILED,
    (S.ACTIVE, E.EXTEND): S.ACTIVE,
    (S.ACTIVE, E.REVOKE): S.REVOKED,
    (S.ACTIVE, E.EXPIRE): S.EXPIRED,
    (S.ACTIVE, E.REVOKE_FAIL): S.REVOKE_FAILED,
    (S.REVOKE_FAILED, E.REVOKE_FAIL): S.REVOKE_FAILED,
    (S.REVOKE_FAILED, E.REVOKE): S.REVOKED,
    (S.REVOKE_FAILED, E.EXPIRE): S.EXPIRED,
    (S.REVOKE_FAILED, E.FORCE_CLOSE): S.REVOKED,
}

#: The events whose APPROVED target is SCHEDULED while the request's start is still ahead.
SCHEDULED_ON_APPROVAL: Final = frozenset({E.APPROVE, E.AUTO_APPROVE})

#: The table for an *extension record* (``Grant.kind == "extension"``): asked for and decided
#: like a request, but it never holds a credential. Once approved, its time is applied to the
#: parent grant (the parent's ACTIVE -> EXTEND -> ACTIVE) and the record is closed with
#: EXTEND: APPROVED -> EXPIRED ("used up"). No new status; ISSUE and REVOKE never apply.
EXTENSION_TRANSITIONS: Final[dict[tuple[Status, Event], Status]] = {
    **{(s, e): t for (s, e), t in TRANSITIONS.items() if s is S.PENDING},
    (S.APPROVED, E.EXTEND): S.EXPIRED,
}

#: Who may cause each event. The requester may end their own grant early and cancel their
#: own request; approvers decide and may end a grant; operators act from the CLI.
ALLOWED_ACTORS: Final[dict[Event, frozenset[ActorKind]]] = {
    E.APPROVE: frozenset({K.APPROVER}),
    E.AUTO_APPROVE: frozenset({K.SYSTEM}),
    E.DENY: frozenset({K.APPROVER, K.OPERATOR}),
    E.CANCEL: frozenset({K.REQUESTER, K.OPERATOR}),
    E.TIME_OUT: frozenset({K.SYSTEM}),
    E.ISSUE: frozenset({K.SYSTEM}),
    E.ISSUE_FAIL: frozenset({K.SYSTEM}),
    E.EXTEND: frozenset({K.SYSTEM}),
    E.REVOKE: frozenset({K.REQUESTER, K.APPROVER, K.OPERATOR, K.SYSTEM}),
    E.EXPIRE: frozenset({K.SYSTEM}),
    E.REVOKE_FAIL: frozenset({K.SYSTEM}),
    E.FORCE_CLOSE: frozenset({K.OPERATOR}),
    E.START: frozenset({K.SYSTEM}),
}

_DECIDED_VERB: Final = {
    S.APPROVED: "approved",
    S.SCHEDULED: "approved (waiting for its start)",
    S.ACTIVE: "approved",
    S.DENIED: "denied",
    S.CANCELLED: "cancelled",
    S.TIMED_OUT: "timed out",
    S.FAILED: "approved, but issuing failed",
    S.EXPIRED: "expired",
    S.REVOKED: "revoked",
    S.REVOKE_FAILED: "being revoked",
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of applying an event: the next grant and what the audit entry records."""

    grant: Grant
    event: Event
    from_status: Status
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def changed_status(self) -> bool:
        return self.grant.status is not self.from_status


def _refuse_decided(grant: Grant, event: Event) -> TransitionError:
    verb = _DECIDED_VERB.get(grant.status, grant.status.value.lower())
    by = f" by <@{grant.decided_by}>" if grant.decided_by and grant.status in _BY_DECIDER else ""
    if grant.status is S.PENDING:
        return TransitionError(f"{grant.id} is still pending; {event.value.lower()} does not apply")
    return TransitionError(f"{grant.id} was already {verb}{by}; nothing changed")


_BY_DECIDER: Final = frozenset({S.APPROVED, S.SCHEDULED, S.ACTIVE, S.DENIED, S.FAILED})


def _approved_state(grant: Grant, *, now: float) -> Status:
    """APPROVED, or SCHEDULED when the request's start is still ahead at ``now``."""
    if grant.kind == "access" and grant.starts_at is not None and grant.starts_at > now:
        return S.SCHEDULED
    return S.APPROVED


def allowed(status: Status, event: Event) -> bool:
    """True when ``event`` applies in ``status`` (regardless of who causes it)."""
    return (status, event) in TRANSITIONS


def apply(
    grant: Grant,
    event: Event,
    *,
    actor: Actor,
    now: float,
    reason: str | None = None,
    expires_at: float | None = None,
    credential_ref: str | None = None,
    error: str | None = None,
) -> Outcome:
    """Apply ``event`` to ``grant`` at time ``now`` on behalf of ``actor``.

    Raises :class:`NotAuthorized` when the actor's kind may not cause the event, when a
    requester tries to approve their own request without ``allow_self_approval``, when the
    same approver votes twice, or when a requester acts on someone else's grant; raises
    :class:`TransitionError` when the grant's state does not allow the event (e.g. a click on
    a decided request). ``expires_at`` is required for EXTEND; ISSUE computes expiry from
    ``duration_s`` unless given. Pure: no I/O, no clock.
    """
    if actor.kind not in ALLOWED_ACTORS[event]:
        raise NotAuthorized(f"a {actor.kind.value} may not {event.value.lower()} a request")
    if actor.kind is K.REQUESTER and actor.id not in grant.askers:
        raise NotAuthorized(f"only <@{grant.requester}> may {event.value.lower()} {grant.id}")
    table = EXTENSION_TRANSITIONS if grant.kind == "extension" else TRANSITIONS
    target = table.get((grant.status, event))
    if target is None:
        raise _refuse_decided(grant, event)

    # A shallow copy with fresh lists: nested models (Origin, Approval, Actor) are frozen, so
    # only the two lists could be shared mutably. A deep copy cost ~30% of a bulk commit.
    g = grant.model_copy(
        update={"approvals": list(grant.approvals), "tickets": list(grant.tickets)}
    )
    g.updated_at = now
    details: dict[str, Any] = {}

    if event is E.APPROVE:
        if actor.id in grant.askers and not grant.allow_self_approval:
            raise NotAuthorized("you cannot approve your own request")
        if actor.id in grant.approvers:
            raise NotAuthorized(
                f"you already approved {grant.id}; it needs "
                f"{grant.approvals_required - len(grant.approvals)} more distinct approver(s)"
            )
        g.approvals = [*g.approvals, Approval(user=actor.id, at=now)]
        details["approvals"] = len(g.approvals)
        details["approvals_required"] = g.approvals_required
        if len(g.approvals) >= g.approvals_required:
            g.status = _approved_state(g, now=now)
            g.approved_at = now
            g.decided_by = actor.id
        # else: still PENDING, one more vote recorded
    elif event is E.AUTO_APPROVE:
        g.status = _approved_state(g, now=now)
        g.approved_at = now
        g.decided_by = actor.id
        g.auto_approved = reason or "auto-approved by policy"
    elif event is E.DENY:
        g.status = S.DENIED
        g.decided_by = actor.id
        g.ended_at = now
        g.end_reason = reason
    elif event in (E.CANCEL, E.TIME_OUT):
        g.status = target
        g.ended_at = now
        g.ended_by = actor.id
        g.end_reason = reason
    elif event is E.START:
        g.status = S.APPROVED
        details["starts_at"] = g.starts_at
    elif event is E.ISSUE:
        g.status = S.ACTIVE
        g.activated_at = now
        g.expires_at = expires_at if expires_at is not None else now + g.duration_s
        g.credential_ref = credential_ref
        details["expires_at"] = g.expires_at
    elif event is E.ISSUE_FAIL:
        g.status = S.FAILED
        g.ended_at = now
        g.last_error = error
        details["error"] = error
    elif event is E.EXTEND and grant.kind == "extension":
        g.status = S.EXPIRED
        g.ended_at = now
        g.ended_by = actor.id
        g.end_reason = reason
        details["applied_to"] = grant.parent_id
    elif event is E.EXTEND:
        if expires_at is None or g.expires_at is None or expires_at <= g.expires_at:
            raise TransitionError("an extension must move the expiry later")
        details["from_expires_at"] = g.expires_at
        details["extended_by"] = format_duration(expires_at - g.expires_at)
        g.expires_at = expires_at
        details["expires_at"] = expires_at
    elif event in (E.REVOKE, E.EXPIRE, E.FORCE_CLOSE):
        g.status = target
        g.ended_at = now
        g.ended_by = actor.id
        g.end_reason = reason
        g.last_error = None
        if event is E.FORCE_CLOSE:
            details["forced"] = True
    elif event is E.REVOKE_FAIL:
        g.status = S.REVOKE_FAILED
        g.revoke_attempts += 1
        g.last_error = error
        details["attempt"] = g.revoke_attempts
        details["error"] = error
    return Outcome(grant=g, event=event, from_status=grant.status, details=details)
