"""Issuing credentials: an approved grant made ACTIVE (:class:`Issuer`), a live grant's
credential issued again with a new expiry and what was issued taken back when the grant ended
meanwhile (:class:`Reissuer`), and the revoker's reports (:class:`RevocationReports`)."""

from __future__ import annotations

import contextlib
import logging
from typing import Final

from bot import metrics
from bot.domain.credentials import Credential
from bot.domain.model import Actor, Event, Grant, Status
from bot.domain.start import issue_until
from bot.errors import PolicyDenied, ProviderError
from bot.ports import Scheduler, StartBook
from bot.providers.base import GrantContext, Provider
from bot.service.confirmation import replicated_or_taken_back
from bot.service.context import Clock, ServiceContext, safe
from bot.service.providers import PolicyProviders

log = logging.getLogger(__name__)

ISSUER: Final = Actor.system("issuer")

#: What :meth:`Reissuer.issue_again` issued: the provider and context (to take it back) and
#: the credential (for the requester's DM).
Issued = tuple[Provider, GrantContext, Credential]


def _failure_message(e: Exception) -> str:
    """A provider's or the policy's own words; for anything else only the type (it might
    carry a secret)."""
    return str(e) if isinstance(e, ProviderError | PolicyDenied) else type(e).__name__


class Issuer:
    """Issues approved grants and takes back those whose issuing never finished."""

    def __init__(
        self,
        context: ServiceContext,
        *,
        scheduler: Scheduler | None,
        starts: StartBook | None = None,
    ) -> None:
        self._c = context
        self._scheduler = scheduler
        self._starts = starts

    async def activate(self, grant: Grant) -> tuple[Grant, Credential | None]:
        """Issue the credential for an APPROVED grant, make it ACTIVE, schedule its end.

        The credential's own lifetime (VALID UNTIL, certificate validity) is the grant's
        expires_at, fixed here before issuing so target and store agree. The grant is stored
        ACTIVE before its revocation is scheduled. On failure the grant becomes FAILED. A
        SCHEDULED grant (approved before its start) only gets its start job (without a start
        book, from serve's lifecycle sweep): it comes back here, APPROVED, at its start, and
        ends when its window (start + duration) closes.
        """
        if grant.status is Status.SCHEDULED:  # approved before its start: issued then
            return (await self._starts.scheduled(grant) if self._starts else grant), None
        c = self._c
        now = c.clock()
        expires_at = issue_until(starts_at=grant.starts_at, duration_s=grant.duration_s, now=now)
        try:
            if expires_at <= now:  # approved after its start window closed: never issued
                raise PolicyDenied("its start window closed before it could be issued")
            provider, ctx = await c.providers.issue_context(grant, expires_at=expires_at)
            credential = await provider.issue(ctx, now=now)
        except Exception as e:
            message = _failure_message(e)
            log.warning("issuing failed for %s: %s", grant.id, message)
            failed = await c.transition(grant.id, Event.ISSUE_FAIL, actor=ISSUER, error=message)
            await safe(c.notifier.issue_failed(failed))
            return failed, None
        try:
            active = await c.transition(
                grant.id,
                Event.ISSUE,
                actor=ISSUER,
                expires_at=expires_at,
                credential_ref=credential.ref,
            )
        except BaseException:
            # Not stored ACTIVE, so nothing would ever revoke it: take it back now (the
            # stuck-approved sweep finishes the job if the target refuses too).
            with contextlib.suppress(Exception):
                await provider.revoke(ctx)
            raise
        if self._scheduler is not None:
            await self._scheduler.schedule(grant.id, expires_at)
        taken_back = await replicated_or_taken_back(
            c, active, provider, ctx, scheduler=self._scheduler
        )
        if taken_back is not None:  # not on a replica: taken back, the requester told
            return taken_back, None
        metrics.observe_time_to_credential(  # a scheduled grant: from its start
            (active.activated_at or now) - max(grant.created_at, grant.starts_at or 0),
            auto=grant.auto_approved is not None,
        )
        await safe(c.notifier.credential_issued(active, credential))
        return active, credential

    async def take_back_approved(self, grant: Grant, *, why: str) -> Grant:
        """Revoke at the target whatever an unfinished issue may have created (idempotent:
        nothing there is fine), then APPROVED -> FAILED, audited. Raises if the target
        refuses (the grant stays APPROVED, to be tried again)."""
        c = self._c
        # An APPROVED grant has no expiry yet; revoking needs only its id at the target.
        provider, ctx = c.providers.resolve(
            grant if grant.expires_at else grant.model_copy(update={"expires_at": c.clock()})
        )
        await provider.revoke(ctx)
        failed = await c.transition(
            grant.id,
            Event.ISSUE_FAIL,
            actor=Actor.system("cleanup"),
            error=f"{why}; any access it created was taken back",
        )
        await safe(c.notifier.issue_failed(failed))
        return failed


class CredentialAgain:
    """Issues a live grant's credential again. Called with a grant, the credential to its
    expiry for a bundle's one DM (the Slack notifier's ``reissue``, issue 13). It needs only
    the policy's providers, so the wiring builds it, and the notifier that calls it, before
    the service that tells that notifier (bot/wiring.py)."""

    def __init__(self, providers: PolicyProviders, *, clock: Clock) -> None:
        self._providers = providers
        self._clock = clock

    async def issue_again(self, grant: Grant, *, expires_at: float) -> Issued | None:
        """Issue ``grant``'s credential again ending at ``expires_at`` (providers' issue is
        idempotent per grant). None when that fails: access then ends at the old target-side
        expiry, which is logged, never raised."""
        try:
            provider, ctx = await self._providers.issue_context(grant, expires_at=expires_at)
            credential = await provider.issue(ctx, now=self._clock())
        except Exception as e:
            log.warning("issuing %s again failed: %s", grant.id, _failure_message(e))
            return None
        return provider, ctx, credential

    async def __call__(self, grant: Grant) -> Credential | None:
        """``grant``'s credential issued again to its expiry; None when that fails (logged)."""
        issued = await self.issue_again(grant, expires_at=grant.expires_at or self._clock())
        return None if issued is None else issued[2]


class Reissuer:
    """Issues a live grant's credential again (an extension, access the revoker took away
    while the grant was being extended), and takes it back if the grant ended meanwhile."""

    def __init__(self, context: ServiceContext) -> None:
        self._c = context
        self.issue_again = CredentialAgain(context.providers, clock=context.clock).issue_again

    async def take_back(self, grant_id: str, issued: Issued) -> None:
        """Revoke what :meth:`issue_again` issued for a grant that ended meanwhile. If the
        target refuses, the reconciler's orphan sweep finds the access later (logged)."""
        provider, ctx, _ = issued
        try:
            await provider.revoke(ctx)
        except Exception as e:
            log.error(
                "%s ended while being extended and its re-issued access could not be taken "
                "back (%s); the reconciler will retry",
                grant_id,
                type(e).__name__,
            )

    async def reissue(self, grant: Grant) -> None:
        """Restore the access of a live grant that the revoker took away while it was being
        extended; the requester gets the (new) credential. If the grant ends meanwhile, what
        was issued is taken back."""
        if grant.expires_at is None:
            return
        issued = await self.issue_again(grant, expires_at=grant.expires_at)
        if issued is None:
            return
        current = await self._c.store.get(grant.id)
        if current.status is not Status.ACTIVE:
            await self.take_back(grant.id, issued)
            return
        await safe(self._c.notifier.credential_issued(current, issued[2]))


class RevocationReports:
    """What the revoker reports (:class:`~bot.ports.RevocationListener`): ends and failed
    attempts go to the notifier; access removed from a grant that is still live is issued
    again. Built from the context alone, so the revoker can be built before the service."""

    def __init__(self, context: ServiceContext) -> None:
        self._c = context
        self._reissuer = Reissuer(context)

    async def on_ended(self, grant: Grant) -> None:
        await safe(self._c.notifier.ended(grant))

    async def on_access_removed(self, grant: Grant) -> None:
        await self._reissuer.reissue(grant)

    async def on_revoke_failed(self, grant: Grant) -> None:
        await safe(self._c.notifier.revoke_failed(grant))
