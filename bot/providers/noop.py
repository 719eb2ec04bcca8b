"""noop: issues nothing real. For tests of the whole flow and for the demo.

It remembers, in this process, which grants it "issued", so ``check`` and
``live_grant_ids`` behave like a real provider's and flow tests can see revocations happen.
"""

from __future__ import annotations

import logging
from typing import ClassVar, Literal

from bot.domain.credentials import Credential, CredentialField
from bot.providers.base import GrantContext, ProviderSettings, ensure_not_expired

log = logging.getLogger(__name__)

DEFAULT_NOTE = "No credential is needed: this resource is granted by policy record only."


class NoopSettings(ProviderSettings):
    type: Literal["noop"] = "noop"
    #: Shown to the requester instead of a credential.
    note: str = DEFAULT_NOTE


class NoopRoleSettings(ProviderSettings):
    """noop takes no role-level settings."""


class NoopProvider:
    """A provider with no target: a credential holding only a note."""

    type: ClassVar[str] = "noop"

    def __init__(self, settings: NoopSettings | None = None) -> None:
        self.settings = settings or NoopSettings()
        self._live: set[str] = set()

    async def issue(self, ctx: GrantContext, *, now: float) -> Credential:
        ensure_not_expired(ctx, now=now)
        self._live.add(ctx.grant_id)
        log.info("noop: issued grant %s", ctx.grant_id)
        return Credential(
            ref=ctx.grant_id,
            expires_at=ctx.expires_at,
            fields=(CredentialField("note", self.settings.note),),
        )

    async def revoke(self, ctx: GrantContext) -> None:
        self._live.discard(ctx.grant_id)
        log.info("noop: revoked grant %s", ctx.grant_id)

    async def check(self, ctx: GrantContext) -> bool:
        return ctx.grant_id in self._live

    async def live_grant_ids(self) -> set[str]:
        return set(self._live)

    async def health(self) -> None:
        """Always healthy: there is no target."""

    async def aclose(self) -> None:
        """Nothing to release."""
