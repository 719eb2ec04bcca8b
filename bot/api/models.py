"""The API's JSON bodies: what the handlers validate and answer, and, generated from these
same models, the schemas of ``/api/v1/openapi.json``.

Request bodies are strict (unknown keys and wrong types are errors, so a typo never goes
unnoticed); every error answer is an :class:`ErrorBody` naming exactly what is wrong.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.domain.duration import format_duration
from bot.domain.model import Deployment, Grant, Status

#: Deployment ids, commits and URLs as a CI system writes them; bounded so a body stays small.
DeploymentId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:/#-]+$")]
Commit = Annotated[str, Field(min_length=4, max_length=64, pattern=r"^[0-9a-fA-F]+$")]
Url = Annotated[str, Field(max_length=2048, pattern=r"^https?://\S+$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class DeploymentIn(_Body):
    """The deployment the access is for: shown to approvers, kept on the grant and audited."""

    id: DeploymentId
    url: Url | None = None
    commit: Commit | None = None

    def domain(self) -> Deployment:
        return Deployment(id=self.id, url=self.url, commit=self.commit)


class CreateRequest(_Body):
    """``POST /api/v1/requests``."""

    resource: Annotated[str, Field(min_length=1, max_length=64)]
    role: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="the role; omitted: the resource's default role"
    )
    # Not bounded here: every string that is not a duration ("", "20x", a long one) is a
    # bad_duration, said by the one parser (bot.domain.duration), not a malformed body.
    duration: str | None = Field(
        default=None, description="e.g. 20m, 1h30m; omitted: the rule's default duration"
    )
    reason: Annotated[str, Field(max_length=500)] = ""
    deployment: DeploymentIn | None = None
    public_key: str = Field(
        description="X25519 public key (32 bytes, base64) the credential is sealed to"
    )


class RequestState(BaseModel):
    """A request as it stands: its state and, once decided, who decided and why."""

    id: str
    state: Status
    client: str
    resource: str
    role: str
    duration: str
    duration_s: int
    reason: str
    deployment: Deployment | None = None
    approvals: int
    approvals_required: int
    decided_by: str | None = None
    end_reason: str | None = None
    created_at: float
    expires_at: float | None = None
    decided: bool = Field(description="false while PENDING (or APPROVED, being issued)")
    credential_ready: bool = Field(description="the sealed credential can be fetched now")

    @classmethod
    def of(cls, grant: Grant, *, credential_ready: bool) -> RequestState:
        return cls(
            id=grant.id,
            state=grant.status,
            client=grant.client or grant.requester,
            resource=grant.resource,
            role=grant.role,
            duration=format_duration(grant.duration_s),
            duration_s=grant.duration_s,
            reason=grant.reason,
            deployment=grant.deployment,
            approvals=len(grant.approvals),
            approvals_required=grant.approvals_required,
            decided_by=grant.decided_by,
            end_reason=grant.end_reason or grant.last_error,
            created_at=grant.created_at,
            expires_at=grant.expires_at,
            decided=grant.status not in (Status.PENDING, Status.APPROVED),
            credential_ready=credential_ready,
        )


class SealedCredential(BaseModel):
    """``GET /api/v1/requests/{id}/credential``: the credential, sealed to the request's
    public key; opened it is ``{"ref", "expires_at", "fields": [{"label", "value",
    "secret"}]}``."""

    id: str
    algorithm: Literal["libsodium-sealed-box-x25519"]
    sealed: str = Field(description="the sealed box, base64")
    expires_at: float | None


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: a stable ``error`` code and a ``message`` saying exactly what
    is wrong (``field``: the body key at fault, when there is one)."""

    error: str
    message: str
    field: str | None = None
