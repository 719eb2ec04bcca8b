"""The provider contract: turn an approved grant into a real credential and take it away.

A provider is built once per resource from that resource's settings (see
:mod:`bot.providers.registry`) and is then asked, per grant, to ``issue``, ``revoke`` and
``check`` access. Every name a provider creates at its target is derived from the grant id
(:mod:`bot.providers.naming`), so revoking or checking needs nothing but the grant id and the
resource's settings: no secret is stored anywhere to take access away again.

Contracts every provider keeps:

- ``issue`` is idempotent per grant: issuing twice gives one login (a re-issue may reset the
  password and returns the new credential). Where the target has its own expiry (VALID UNTIL,
  certificate validity) it is set to ``ctx.expires_at``, so access ends even if the bot is dead.
- ``revoke`` is idempotent: what is already gone is success. It ends open sessions where the
  target has a way to.
- Each grant gets its own login or certificate, so overlapping grants of one user never cut
  each other short.
- Secrets exist only inside the returned :class:`~bot.domain.credentials.Credential`;
  they are never logged.
- Errors are :class:`~bot.errors.ProviderError`; "target unreachable, retry later" is
  :class:`~bot.errors.TargetUnavailable`. Library errors are translated at the call site.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from bot.domain.credentials import REDACTED, Credential
from bot.envrefs import has_reference
from bot.errors import ProviderError, TargetUnavailable

if TYPE_CHECKING:
    from bot.domain.model import Grant


@dataclass(frozen=True, kw_only=True, slots=True)
class GrantContext:
    """Everything a provider needs about one grant; built by the service from a Grant + policy.

    ``role_settings`` are the role-level provider settings from policies.yaml (``${VAR}``
    references already resolved); ``expires_at`` is epoch seconds UTC. ``ssh_public_key`` is
    only used by the ssh_cert provider; ``email`` (the requester's, as Slack has it) is filled
    when issuing for a provider whose ``needs_email`` is true (see :class:`RequestChecker`).
    """

    grant_id: str
    user: str
    resource: str
    role: str
    role_settings: Mapping[str, Any] = field(default_factory=dict)
    expires_at: float
    ssh_public_key: str | None = None
    email: str | None = None

    @classmethod
    def from_grant(
        cls,
        grant: Grant,
        *,
        role_settings: Mapping[str, Any],
        ssh_public_key: str | None = None,
        email: str | None = None,
    ) -> GrantContext:
        """The context of an approved grant. Raises ProviderError if it has no expiry yet."""
        if grant.expires_at is None:
            raise ProviderError(f"grant {grant.id} has no expiry; it must be approved first")
        return cls(
            grant_id=grant.id,
            user=grant.requester,
            resource=grant.resource,
            role=grant.role,
            role_settings=role_settings,
            expires_at=grant.expires_at,
            ssh_public_key=ssh_public_key,
            email=email,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class RequestContext:
    """A request as it is about to be filed, before anyone is asked to approve it.

    ``duration_s`` is what the policy accepted (the rule's default when none was asked);
    ``email`` is the requester's as Slack has it, filled when the provider ``needs_email``
    (None when Slack has none or could not say).
    """

    user: str
    resource: str
    role: str
    role_settings: Mapping[str, Any] = field(default_factory=dict)
    duration_s: int
    email: str | None = None


@dataclass(frozen=True, slots=True)
class RoleLimits:
    """What the policy allows a role after inheritance, for providers' own policy checks."""

    max_duration_s: int
    default_duration_s: int


@dataclass(frozen=True, slots=True)
class SettingsFinding:
    """One problem a provider finds with a role's limits: ``key`` is relative to the role
    (``max_duration``, ``provider.session_duration``)."""

    key: str
    message: str
    severity: str = "error"  # "error" | "warning"


@runtime_checkable
class Provider(Protocol):
    """One credential target (a database, a Redis, an SSH CA, a webhook...)."""

    type: ClassVar[str]

    async def issue(self, ctx: GrantContext, *, now: float) -> Credential:
        """Create (or re-create) the grant's access; its own expiry is ``ctx.expires_at``."""
        ...

    async def revoke(self, ctx: GrantContext) -> None:
        """Take the grant's access away and end its sessions; already gone is success."""
        ...

    async def check(self, ctx: GrantContext) -> bool:
        """True while the grant's access is still usable at the target."""
        ...

    async def live_grant_ids(self) -> set[str]:
        """Grant ids for which revoke would still have something to take away.

        The reconciler compares this with the store to find orphans. Targets that cannot be
        enumerated (a webhook) return what this process knows, possibly nothing.
        """
        ...

    async def health(self) -> None:
        """Return if the target answers; raise TargetUnavailable if it does not."""
        ...

    async def aclose(self) -> None:
        """Release connections and sessions held by this provider."""
        ...


@runtime_checkable
class RequestChecker(Protocol):
    """Optional: a provider that can tell, before anyone is asked to approve, that a request
    cannot be met at its target (a duration the target refuses; a requester the target does
    not know). Providers without it accept every request the policy accepts.

    ``needs_email``: the service looks the requester's email up (Slack) for the request's
    context and for :class:`GrantContext` when issuing.
    """

    needs_email: ClassVar[bool]

    async def precheck(self, request: RequestContext, *, now: float) -> None:
        """Return when the request can be met; raise :class:`~bot.errors.PolicyDenied`
        saying why it cannot (the requester reads it), TargetUnavailable when the target
        cannot say now. Changes nothing at the target."""
        ...


@runtime_checkable
class Housekeeper(Protocol):
    """Optional: a provider with leftovers at its target to remove on a schedule (an STS
    deny policy once the credentials it blocks have expired). The serve loop calls it every
    few seconds on every replica, so it must be idempotent and cheap when nothing is due."""

    async def housekeeping(self, *, now: float) -> int:
        """Remove what is due by ``now``; how many were removed."""
        ...


@runtime_checkable
class BulkRevoker(Protocol):
    """Optional: a provider that can take many grants' access away in one go.

    The revoker uses ``revoke_many`` when a provider has it (a burst of expiries then costs
    a few round trips instead of several per grant); without it, it calls ``revoke`` once per
    grant, a bounded number at a time per target. ``revoke_many`` keeps every contract of
    ``revoke``: idempotent (already gone is success), open sessions ended, and it takes away
    only the access of the grants it is given (overlapping grants of one user stay).

    It returns the grants that failed, by grant id, each with its error
    (:class:`~bot.errors.ProviderError`, :class:`~bot.errors.TargetUnavailable`); a grant
    not in the result was revoked. When nothing could be done (the target is unreachable)
    it may instead raise, and every grant it was given counts as failed with that error.
    """

    async def revoke_many(self, contexts: Sequence[GrantContext]) -> Mapping[str, Exception]:
        """Revoke every grant in ``contexts``; the failures by grant id (see the class)."""
        ...


class ProviderSettings(BaseModel):
    """Base of every provider's resource-level and role-level settings models."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(ProviderSettings):
    """Resource-level settings shared by the SQL providers: the admin ``dsn`` (a URL of one
    of ``DSN_SCHEMES``, usually a ``${VAR}`` reference, checked once resolved) and where the
    requester is told to connect (default: taken from ``dsn``)."""

    DSN_SCHEMES: ClassVar[frozenset[str]]
    #: The URL form named when ``dsn`` is not one.
    DSN_FORM: ClassVar[str]

    dsn: SecretStr
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    dbname: str | None = None
    connect_timeout_s: float = Field(default=5.0, gt=0)

    @field_validator("dsn")
    @classmethod
    def _url_dsn(cls, v: SecretStr) -> SecretStr:
        raw = v.get_secret_value()
        if not has_reference(raw) and urlsplit(raw).scheme not in cls.DSN_SCHEMES:
            raise ValueError(f"must be a {cls.DSN_FORM} URL")
        return v


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every secret value replaced by :data:`REDACTED` (for error messages)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def ensure_not_expired(ctx: GrantContext, *, now: float) -> None:
    """Refuse to issue access whose expiry has already passed (it would be born dead)."""
    if ctx.expires_at <= now:
        raise ProviderError(f"grant {ctx.grant_id} has already expired; nothing was issued")


@asynccontextmanager
async def target_errors(
    provider: str,
    action: str,
    *,
    unreachable: tuple[type[Exception], ...],
    refused: tuple[type[Exception], ...],
) -> AsyncIterator[None]:
    """A target library's errors inside, translated: ``unreachable`` ones become
    TargetUnavailable (retry later), ``refused`` ones ProviderError, each naming ``provider``
    and ``action``; a ProviderError raised inside passes as it is."""
    try:
        yield
    except ProviderError:
        raise
    except unreachable as e:
        raise TargetUnavailable(f"{provider}: {action} failed, server unreachable: {e}") from e
    except refused as e:
        raise ProviderError(f"{provider}: {action} failed: {type(e).__name__}: {e}") from e
