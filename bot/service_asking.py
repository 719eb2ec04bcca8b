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
from bot.domain.policy.asking import (
    may_ask_for_anyone,
    on_behalf_refusal,
    on_behalf_usergroups,
    requestable_bundles,
)
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


async def check_request_for(
    service: GrantService,
    *,
    user: str,
    beneficiary: str,
    resource: str,
    role: str | None,
    duration_s: int | None,
    reason: str,
    tickets: Iterable[str] = (),
) -> None:
    """What :func:`request_for` would refuse, changing nothing (the form's pre-check)."""
    now = service.clock()
    await may_ask_for(service, user=user, beneficiary=beneficiary, now=now)
    try:
        await service.check_request(
            user=beneficiary,
            resource=resource,
            role=role,
            duration_s=duration_s,
            reason=reason,
            tickets=tickets,
            now=now,
        )
    except PolicyDenied as e:
        if beneficiary == user:
            raise
        raise PolicyDenied(f"for <@{beneficiary}> (the grant would be theirs): {e}") from e


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


async def asking_options(service: GrantService, user: str) -> tuple[list[str], bool]:
    """What the request form offers ``user`` beyond resources: the bundles whose every item
    they may request, and whether they may ask for someone else."""
    policy = service.policy.current.policy
    have = {(rule.resource, rule.role) for rule in await service.requestable(user)}
    ids = on_behalf_usergroups(policy)
    members = await service.usergroups.members(ids) if ids else {}
    today = datetime.fromtimestamp(service.clock(), tz=UTC).date()
    return (
        requestable_bundles(policy, have),
        may_ask_for_anyone(policy, requester=user, today=today, usergroups=members),
    )
