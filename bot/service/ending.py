"""Ending grants before their time: by their requester or an approver from Slack, by an
operator from the CLI (one grant, a force-close, or every grant of a person leaving). A pending
request is cancelled or denied; a SCHEDULED one (nothing issued yet) is ended by the start
book, which removes its start job; a live grant goes to the revoker, which takes its access
away before the end is stored."""

from __future__ import annotations

import logging

from bot.domain.model import LIVE, Actor, ActorKind, Grant, Status
from bot.errors import GrantbotError, ProviderError
from bot.ports import ManualRevocation, StartBook
from bot.service.context import ServiceContext
from bot.service.decisions import Decisions
from bot.service.issuing import Issuer

log = logging.getLogger(__name__)


class Ending:
    """Ends grants on a person's word."""

    def __init__(
        self,
        context: ServiceContext,
        *,
        decisions: Decisions,
        issuer: Issuer,
        revoker: ManualRevocation | None,
        starts: StartBook | None = None,
    ) -> None:
        self._c = context
        self._decisions = decisions
        self._issuer = issuer
        self._revoker = revoker
        self._starts = starts

    def _require_revoker(self) -> ManualRevocation:
        if self._revoker is None:
            raise ProviderError("revocation is not configured in this process")
        return self._revoker

    async def revoke(self, grant_id: str, *, user: str, reason: str | None) -> Grant:
        """End a grant early from Slack: its requester or one of its approvers may."""
        grant = await self._c.store.get(grant_id)
        if user in grant.askers:
            actor = Actor(kind=ActorKind.REQUESTER, id=user)
        else:
            await self._decisions.require_approver(grant, user)
            actor = Actor(kind=ActorKind.APPROVER, id=user)
        if grant.status is Status.PENDING:
            if actor.kind is ActorKind.REQUESTER:
                return await self._decisions.cancel(grant_id, actor=actor, reason=reason)
            return await self._decisions.deny(grant_id, user=user, reason=reason)
        if grant.status is Status.SCHEDULED:
            return await self._end_scheduled(grant, actor=actor, reason=reason)
        return await self._require_revoker().revoke(grant_id, actor=actor, reason=reason)

    async def revoke_as_operator(
        self, grant_id: str, *, operator: str, reason: str | None
    ) -> Grant:
        """End a grant (or cancel a pending request) as ``operator``, audited as theirs."""
        grant = await self._c.store.get(grant_id)
        actor = Actor(kind=ActorKind.OPERATOR, id=operator)
        if grant.status is Status.PENDING:
            return await self._decisions.cancel(grant_id, actor=actor, reason=reason)
        if grant.status is Status.SCHEDULED:
            return await self._end_scheduled(grant, actor=actor, reason=reason)
        return await self._require_revoker().revoke(grant_id, actor=actor, reason=reason)

    async def _end_scheduled(self, grant: Grant, *, actor: Actor, reason: str | None) -> Grant:
        """End a SCHEDULED grant (nothing issued yet) through the start book, which removes
        the start job serve's lifecycle would run."""
        if self._starts is None:
            raise ProviderError("scheduled starts are not configured in this process")
        return await self._starts.end(grant, actor=actor, reason=reason)

    async def force_close(self, grant_id: str, *, operator: str, reason: str | None) -> Grant:
        """Close a grant whose revocation keeps failing, on ``operator``'s word."""
        return await self._require_revoker().force_close(grant_id, operator=operator, reason=reason)

    async def revoke_all(self, *, user: str, operator: str, reason: str) -> list[Grant]:
        """Offboarding: end every pending request and live grant of ``user`` now, audited.

        One grant that cannot be ended (its target is down: REVOKE_FAILED, retried) never
        stops the others; each is returned as it stands, so the caller sees what is left."""
        ended = []
        for grant in await self._c.store.open_for_user(user):
            try:
                if grant.status is Status.APPROVED:  # approved, its issuing not finished
                    ended.append(
                        await self._issuer.take_back_approved(grant, why=f"revoke-all: {reason}")
                    )
                elif grant.status in (Status.PENDING, Status.SCHEDULED) or grant.status in LIVE:
                    ended.append(
                        await self.revoke_as_operator(grant.id, operator=operator, reason=reason)
                    )
            except GrantbotError as e:
                log.warning("revoke-all: %s could not be ended: %s", grant.id, e)
                ended.append(await self._c.store.get(grant.id))
        return ended
