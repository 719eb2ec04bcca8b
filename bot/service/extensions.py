"""Extensions: more time on an ACTIVE grant, asked as its own record (kind "extension",
parent_id = the grant) and judged by the grant's rule like a new request; once approved the
grant's credential is issued again with the new expiry and only then is EXTEND stored."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from bot.domain.model import Actor, Event, Grant, Origin, Status
from bot.errors import ConcurrencyError, NotAuthorized, NotFound, PolicyDenied, TransitionError
from bot.lifecycle.reminders import free_extension_reason
from bot.ports import Scheduler
from bot.service.auto_approval import AutoApproval, AutoApprover
from bot.service.context import ServiceContext, safe
from bot.service.issuing import Issued, Reissuer
from bot.service.requests import RequestResult, Requests

EXTENSION: Final = Actor.system("extension")


class Extensions:
    """Files extension requests and applies approved ones."""

    def __init__(
        self,
        context: ServiceContext,
        *,
        requests: Requests,
        auto_approver: AutoApprover,
        reissuer: Reissuer,
        scheduler: Scheduler | None,
    ) -> None:
        self._c = context
        self._requests = requests
        self._auto = auto_approver
        self._reissuer = reissuer
        self._scheduler = scheduler

    async def request_extension(
        self,
        grant_id: str,
        *,
        user: str,
        duration_s: int,
        reason: str,
        tickets: Iterable[str] = (),
        origin: Origin | None = None,
    ) -> RequestResult:
        """Ask for ``duration_s`` more on an ACTIVE grant of ``user``'s.

        The extension is its own record (kind "extension", parent_id = the grant) judged by
        the grant's rule as a new request of ``duration_s``: approvers decide it unless an
        auto_approve rule matches. The grant itself runs on unchanged meanwhile; a pending
        extension lapses at the latest when the grant expires. On approval the grant's
        expires_at moves by ``duration_s`` (see :meth:`apply`).
        """
        c = self._c
        parent = await c.store.get(grant_id)
        if parent.kind != "access":
            raise PolicyDenied(f"{grant_id} is an extension request; extend {parent.parent_id}")
        if parent.requester != user:
            raise NotAuthorized(f"only <@{parent.requester}> may extend {grant_id}")
        if parent.status is not Status.ACTIVE or parent.expires_at is None:
            raise TransitionError(
                f"{grant_id} is {parent.status.value.lower()}; only an active grant can be extended"
            )
        now = c.clock()
        tickets = list(tickets)
        decision = await self._requests.judge(
            user=user,
            resource=parent.resource,
            role=parent.role,
            duration_s=duration_s,
            reason=reason,
            tickets=tickets,
            now=now,
        )
        rule = decision.rule
        extension = await self._requests.store_request(
            decision,
            user=user,
            reason=reason,
            tickets=tickets,
            origin=origin,
            now=now,
            parent=parent,
        )
        auto = await self._auto.verdict(extension, rule, now=now)
        free = free_extension_reason(parent, rule, extend_by_s=decision.duration_s)
        if auto.reason is None and free is not None:
            auto = AutoApproval(reason=free)
        if auto.reason is not None:
            approved = await self._auto.approve(
                extension, reason=auto.reason, on_call=auto.on_call, now=now
            )
            await safe(c.notifier.decided(approved))
            closed = await self.apply(approved)
            return RequestResult(grant=closed, rule=rule)
        await safe(c.notifier.request_created(extension))
        return RequestResult(grant=extension, rule=rule, note=auto.note)

    async def apply(self, extension: Grant) -> Grant:
        """Move the parent's expiry by the approved extension and close the extension record
        (APPROVED -> EXTEND -> EXPIRED). A parent that ended meanwhile is left alone; the
        record is closed saying so.

        The credential is issued again with the new expiry first (so a target-side lifetime,
        VALID UNTIL or certificate validity, follows), and only then is EXTEND stored, pinned
        to the version read before issuing. If the parent changed in between (revoked,
        expired), EXTEND is not stored and what was just issued is taken away again, so a
        revoke racing an extension can never leave access behind an ended grant. (The
        revoker pins its end the same way, and restores access if EXTEND won instead.)
        """
        c = self._c
        now = c.clock()
        parent_id = extension.parent_id or ""
        issued: Issued | None = None
        try:
            parent = await c.store.get(parent_id)
            if parent.expires_at is None or parent.status is not Status.ACTIVE:
                raise TransitionError(f"{parent_id} is {parent.status.value.lower()}")
            expires_at = parent.expires_at + extension.duration_s
            issued = await self._reissuer.issue_again(parent, expires_at=expires_at)
            extended = await c.transition(
                parent_id,
                Event.EXTEND,
                actor=EXTENSION,
                now=now,
                reason=f"extension {extension.id} approved",
                expires_at=expires_at,
                details={"extension_id": extension.id},
                expected_version=parent.version,
            )
        except (TransitionError, NotFound, ConcurrencyError) as e:
            if issued is not None:
                await self._reissuer.take_back(parent_id, issued)
            closed = await c.transition(
                extension.id, Event.EXTEND, actor=EXTENSION, now=now, reason=f"not applied: {e}"
            )
            await safe(c.notifier.ended(closed))
            return closed
        if self._scheduler is not None:
            await self._scheduler.schedule(parent_id, extended.expires_at or now)
        closed = await c.transition(
            extension.id, Event.EXTEND, actor=EXTENSION, now=now, reason=f"applied to {parent_id}"
        )
        if issued is not None:
            await safe(c.notifier.credential_issued(extended, issued[2]))
        await safe(c.notifier.extended(extended))
        await safe(c.notifier.ended(closed))
        return closed
