"""A credential leaves grantbot only on a record that a Redis failover cannot lose.

After the target issued a credential and the grant is stored ACTIVE with its revocation job,
the service asks the store to confirm those writes on a replica
(:meth:`bot.store.grants.GrantStore.confirm_replicated`, ``WAIT``). If that does not happen
in time, or Redis cannot be asked, the credential is never sent: it is taken back at the
target, the grant is ended (REVOKED, with the reason) where Redis still takes writes, and
the requester is told to ask again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final, Protocol

from bot.domain.model import Actor, Event, Grant, Status
from bot.errors import GrantbotError, StoreUnavailable
from bot.notify import Notifier
from bot.providers.base import GrantContext, Provider
from bot.store.connection import unavailable_cause
from bot.store.durability import Confirmation
from bot.store.grants import GrantStore

log = logging.getLogger(__name__)

#: The reason a grant taken back this way ends with (the requester reads it).
NOT_CONFIRMED: Final = (
    "Redis could not confirm this grant on a replica, so its credential was taken back "
    "before it was sent; please ask again shortly"
)


class _Revoking(Protocol):
    async def revoke(
        self, grant_id: str, *, actor: Actor, reason: str | None, event: Event = Event.REVOKE
    ) -> Grant: ...


class _Versioned(Protocol):
    @property
    def version(self) -> str: ...


class IssuingParts(Protocol):
    """What of the service the check needs (GrantService has all of it)."""

    @property
    def store(self) -> GrantStore: ...
    @property
    def revoker(self) -> _Revoking | None: ...
    @property
    def notifier(self) -> Notifier: ...
    @property
    def scheduler(self) -> object | None: ...
    @property
    def policy(self) -> _Versioned: ...
    @property
    def clock(self) -> Callable[[], float]: ...


async def replicated_or_taken_back(
    parts: IssuingParts, grant: Grant, provider: Provider, ctx: GrantContext
) -> bool:
    """True when ``grant`` (stored ACTIVE, its job scheduled when the service has a
    scheduler) is confirmed on a replica, or the master has none. Otherwise its credential
    is revoked at the target, the grant ended where possible, the requester told to ask
    again, and False: the caller must not send the credential."""
    try:
        found = await parts.store.confirm_replicated(grant, with_job=parts.scheduler is not None)
    except StoreUnavailable as e:
        found = Confirmation(False, 0, True, f"Redis could not be asked ({unavailable_cause(e)})")
    if found.confirmed:
        return True
    log.warning("%s was not confirmed on a Redis replica (%s): taking it back", grant.id, found.why)
    try:
        await provider.revoke(ctx)
    except Exception as e:
        # Its job (if the record survived) revokes it at expiry; else the reconciler's
        # orphan sweep finds the access. Logged, not raised: the credential was not sent.
        log.error(
            "%s: taking back an unconfirmed credential failed (%s)", grant.id, type(e).__name__
        )
    if not await _record_end(parts, grant):
        failed = grant.model_copy(update={"status": Status.FAILED, "last_error": NOT_CONFIRMED})
        try:
            await parts.notifier.issue_failed(failed)
        except Exception as e:
            log.warning("%s: the requester could not be told (%s)", grant.id, type(e).__name__)
    return False


async def _record_end(parts: IssuingParts, grant: Grant) -> bool:
    """End the grant REVOKED with :data:`NOT_CONFIRMED` (its end is announced to the
    requester like any other). False when Redis would not take it."""
    actor = Actor.system("durability")
    try:
        if parts.revoker is not None:
            await parts.revoker.revoke(grant.id, actor=actor, reason=NOT_CONFIRMED)
        else:
            await parts.store.transition(
                grant.id,
                Event.REVOKE,
                actor=actor,
                now=parts.clock(),
                policy_version=parts.policy.version,
                reason=NOT_CONFIRMED,
            )
    except GrantbotError as e:
        log.warning("%s: its end could not be recorded (%s)", grant.id, e)
        return False
    return True
