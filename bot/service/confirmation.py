"""A credential leaves grantbot only on a record that a Redis failover cannot lose.

After the target issued a credential and the grant is stored ACTIVE with its revocation job,
the issuer asks the store to confirm those writes on a replica
(:meth:`bot.store.grants.GrantStore.confirm_replicated`, ``WAIT``). If that does not happen
in time, or Redis cannot be asked, the credential is never sent: it is taken back at the
target, the grant is ended (REVOKED, with the reason) where Redis still takes writes, its
revocation job goes, and the requester is told to ask again.
"""

from __future__ import annotations

import logging
from typing import Final

from bot.domain.model import Actor, Event, Grant, Status
from bot.errors import GrantbotError, StoreUnavailable
from bot.ports import Scheduler
from bot.providers.base import GrantContext, Provider
from bot.service.context import ServiceContext, safe
from bot.store.connection import unavailable_cause
from bot.store.durability import Confirmation

log = logging.getLogger(__name__)

#: The reason a grant taken back this way ends with (the requester reads it).
NOT_CONFIRMED: Final = (
    "Redis could not confirm this grant on a replica, so its credential was taken back "
    "before it was sent; please ask again shortly"
)
DURABILITY: Final = Actor.system("durability")


async def replicated_or_taken_back(
    c: ServiceContext,
    grant: Grant,
    provider: Provider,
    ctx: GrantContext,
    *,
    scheduler: Scheduler | None,
) -> Grant | None:
    """None when ``grant`` (stored ACTIVE, its job scheduled when there is a ``scheduler``)
    is confirmed on a replica, or the master has none. Otherwise its credential is revoked
    at the target, the grant ended where possible, the requester told to ask again, and the
    grant as now stored (as last known, when Redis took no end) is returned: the caller must
    not send the credential."""
    try:
        found = await c.store.confirm_replicated(grant, with_job=scheduler is not None)
    except StoreUnavailable as e:
        found = Confirmation(False, 0, True, f"Redis could not be asked ({unavailable_cause(e)})")
    if found.confirmed:
        return None
    log.warning("%s was not confirmed on a Redis replica (%s): taking it back", grant.id, found.why)
    try:
        await provider.revoke(ctx)
    except Exception as e:
        # Its job (if the record survived) revokes it at expiry; else the reconciler's
        # orphan sweep finds the access. Logged, not raised: the credential was not sent.
        log.error(
            "%s: taking back an unconfirmed credential failed (%s)", grant.id, type(e).__name__
        )
    ended = await _record_end(c, grant, scheduler=scheduler)
    if ended is not None:
        await safe(c.notifier.ended(ended))  # told like any other end, with the reason
        return ended
    failed = grant.model_copy(update={"status": Status.FAILED, "last_error": NOT_CONFIRMED})
    await safe(c.notifier.issue_failed(failed))
    return grant


async def _record_end(
    c: ServiceContext, grant: Grant, *, scheduler: Scheduler | None
) -> Grant | None:
    """End the grant REVOKED with :data:`NOT_CONFIRMED` and unschedule its revocation job
    (nothing is left to revoke). None when Redis would not take it."""
    try:
        ended = await c.transition(grant.id, Event.REVOKE, actor=DURABILITY, reason=NOT_CONFIRMED)
    except GrantbotError as e:
        log.warning("%s: its end could not be recorded (%s)", grant.id, e)
        return None
    if scheduler is not None:
        try:
            await scheduler.unschedule(grant.id)
        except GrantbotError as e:
            # Its job finds the grant ended and does nothing; logged, the end stands.
            log.warning("%s: its revocation job could not be removed (%s)", grant.id, e)
    return ended
