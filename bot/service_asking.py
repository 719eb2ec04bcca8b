"""Asking on someone's behalf (issue 13, policy ``may_request_for``), beside the service.

The grant is the beneficiary's: they must be allowed to request it, the credential goes only
to their DM, and they (not the person who asked) extend it. Self-approval rules hold for both
(:attr:`bot.domain.model.Grant.askers`); the audit names both (the REQUEST entry's actor is
who asked, its ``details.requester`` the beneficiary, ``details.requested_by`` who asked).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bot import metrics
from bot.domain.model import Origin
from bot.domain.policy.asking import on_behalf_refusal, on_behalf_usergroups
from bot.errors import PolicyDenied

if TYPE_CHECKING:
    from bot.service import GrantService, RequestResult


async def may_ask_for(service: GrantService, *, user: str, beneficiary: str, now: float) -> None:
    """PolicyDenied saying why, unless ``may_request_for`` lets ``user`` ask for
    ``beneficiary`` (asking for oneself always may)."""
    if beneficiary == user:
        return
    policy = service.policy.current.policy
    ids = on_behalf_usergroups(policy)
    members = await service.usergroups.members(ids) if ids else {}
    refusal = on_behalf_refusal(
        policy,
        requester=user,
        beneficiary=beneficiary,
        today=datetime.fromtimestamp(now, tz=UTC).date(),
        usergroups=members,
    )
    if refusal is not None:
        metrics.record_request("refused")
        raise PolicyDenied(refusal)


async def request_for(
    service: GrantService,
    *,
    user: str,
    beneficiary: str,
    resource: str,
    role: str | None,
    duration_s: int | None,
    reason: str,
    tickets: Iterable[str] = (),
    origin: Origin | None = None,
) -> RequestResult:
    """File ``user``'s request on ``beneficiary``'s behalf (see the module docstring).
    PolicyDenied, changing nothing, when ``may_request_for`` does not allow it or the
    beneficiary may not have what is asked."""
    await may_ask_for(service, user=user, beneficiary=beneficiary, now=service.clock())
    try:
        return await service.request_access(
            user=beneficiary,
            resource=resource,
            role=role,
            duration_s=duration_s,
            reason=reason,
            tickets=tickets,
            origin=origin,
            requested_by=user if beneficiary != user else None,
        )
    except PolicyDenied as e:
        if beneficiary == user:
            raise
        raise PolicyDenied(f"for <@{beneficiary}> (the grant would be theirs): {e}") from e
