"""The request/grant record and its vocabulary.

One record follows an access request from the ask to the end of the grant it becomes: the
id a requester is given (``g-...``) is the id they later revoke or extend. Times are UNIX
epoch seconds (float, UTC); pure code receives ``now`` and never reads a clock.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from bot.domain.clients import client_name


class Status(StrEnum):
    PENDING = "PENDING"
    #: Approved, waiting for its scheduled start (``starts_at``); nothing issued yet.
    SCHEDULED = "SCHEDULED"
    APPROVED = "APPROVED"
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"
    DENIED = "DENIED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"
    FAILED = "FAILED"
    REVOKE_FAILED = "REVOKE_FAILED"


TERMINAL: Final = frozenset(
    {
        Status.EXPIRED,
        Status.REVOKED,
        Status.DENIED,
        Status.CANCELLED,
        Status.TIMED_OUT,
        Status.FAILED,
    }
)
#: States in which a credential may exist at the target and must be taken away.
LIVE: Final = frozenset({Status.APPROVED, Status.ACTIVE, Status.REVOKE_FAILED})


class Event(StrEnum):
    """What can happen to a request. See :mod:`bot.domain.lifecycle` for the table."""

    APPROVE = "APPROVE"  # one approver's vote; the last of N approves the request
    AUTO_APPROVE = "AUTO_APPROVE"  # a policy auto_approve rule matched
    DENY = "DENY"
    CANCEL = "CANCEL"
    TIME_OUT = "TIME_OUT"  # request_timeout passed while PENDING
    ISSUE = "ISSUE"  # the provider issued the credential
    ISSUE_FAIL = "ISSUE_FAIL"
    EXTEND = "EXTEND"  # an approved extension moves expires_at
    REVOKE = "REVOKE"  # ended early by a person (or the offboarding kill switch)
    EXPIRE = "EXPIRE"  # ended at expires_at
    REVOKE_FAIL = "REVOKE_FAIL"  # the provider could not revoke; retrying
    FORCE_CLOSE = "FORCE_CLOSE"  # an operator closes out a grant whose revoke keeps failing
    START = "START"  # a SCHEDULED grant's start time came: it is issued now


class ActorKind(StrEnum):
    REQUESTER = "requester"
    APPROVER = "approver"
    SYSTEM = "system"  # the bot itself: scheduler, reconciler, issuing
    OPERATOR = "operator"  # someone at the CLI


class Actor(BaseModel):
    """Who causes an event. ``id`` is a Slack user id, ``system`` or an operator's name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ActorKind
    id: str

    @classmethod
    def system(cls, component: str = "grantbot") -> Actor:
        return cls(kind=ActorKind.SYSTEM, id=component)


class Approval(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    user: str
    at: float


class Origin(BaseModel):
    """Where a request was asked from, so its outcome can be posted back there."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: str | None = None
    channel_name: str | None = None
    thread_ts: str | None = None
    incident: str | None = None
    surface: str = "cli"  # "command" | "modal" | "mention" | "cli"


class Deployment(BaseModel):
    """The deployment a pipeline's request is for (``id``, e.g. ``D-123``; a link to it; the
    commit it deploys), recorded on the grant and in its audit entries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    url: str | None = None
    commit: str | None = None


class Grant(BaseModel):
    """A request for access and, once approved, the grant it becomes.

    ``version`` increases by one with every stored change; the store uses it for
    compare-and-set. Policy-derived limits (``approvals_required`` ...) are snapshotted at
    request time so that a decision is judged by the rules it was asked under.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    id: str
    kind: str = "access"  # "access" | "extension"
    parent_id: str | None = None  # for an extension: the grant it extends
    requester: str
    resource: str
    role: str
    provider: str = "noop"
    duration_s: int
    reason: str
    tickets: list[str] = Field(default_factory=list)
    origin: Origin = Field(default_factory=Origin)
    #: For a machine client's request (requester ``client:<name>``): the deployment it is
    #: for, and the public key (X25519, base64) its credential is sealed to.
    deployment: Deployment | None = None
    public_key: str | None = None
    # Issue 13. ``requested_by``: who asked, when it was not the requester (a request on
    # their behalf; the requester is the beneficiary: the grant and its credential are
    # theirs). ``bundle``: "<bundle name> <bundle id>" when the request is an item of a
    # bundle, whose items are asked and delivered together.
    requested_by: str | None = None
    bundle: str | None = None

    status: Status = Status.PENDING
    version: int = 0
    policy_version: str

    approvals_required: int = 1
    allow_self_approval: bool = False
    approvals: list[Approval] = Field(default_factory=list)
    auto_approved: str | None = None  # why, when an auto_approve rule matched

    created_at: float
    updated_at: float
    request_expires_at: float | None = None  # when PENDING lapses to TIMED_OUT
    #: A scheduled start (epoch seconds): approved before it, the grant waits SCHEDULED and is
    #: issued then, its duration counted from it. ``start_tz`` is the requester's IANA zone
    #: the start was written in, so every message shows it back in that zone.
    starts_at: float | None = None
    start_tz: str | None = None
    approved_at: float | None = None
    activated_at: float | None = None
    expires_at: float | None = None
    ended_at: float | None = None

    decided_by: str | None = None  # who approved last, or who denied
    ended_by: str | None = None
    end_reason: str | None = None

    credential_ref: str | None = None  # a non-secret handle (login name, cert serial)
    revoke_attempts: int = 0
    last_error: str | None = None

    @property
    def client(self) -> str | None:
        """The machine client that asked (policy ``clients:``), or None for a person."""
        return client_name(self.requester)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def askers(self) -> tuple[str, ...]:
        """Who the request is by: the requester and, on their behalf, who asked. Self-approval
        rules hold for each."""
        by = self.requested_by
        return (self.requester,) if by is None or by == self.requester else (self.requester, by)

    @property
    def approvers(self) -> list[str]:
        return [a.user for a in self.approvals]

    def remaining_s(self, now: float) -> float:
        """Seconds until expiry (0 when past or not yet active)."""
        if self.expires_at is None:
            return 0.0
        return max(0.0, self.expires_at - now)
