"""Asking on someone's behalf (issue 13, policy ``may_request_for``).

The grant is the beneficiary's: they must be allowed to request it, the credential goes only
to their DM, and they (not the person who asked) extend it. Self-approval rules hold for both
(:attr:`bot.domain.model.Grant.askers`); the audit names both (the REQUEST entry's actor is
who asked, its ``details.requester`` the beneficiary, ``details.requested_by`` who asked).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Unpack

from bot import metrics
from bot.domain.model import Origin
from bot.domain.policy.asking import (
    may_ask_for_anyone,
    on_behalf_refusal,
    on_behalf_usergroups,
    requestable_bundles,
)
from bot.errors import PolicyDenied
from bot.ports import NO_USERGROUPS
from bot.service.context import ServiceContext, today
from bot.service.queries import Queries
from bot.service.requests import Asked, RequestResult, Requests


class Asking:
    """Requests on someone's behalf, and what the request form offers a person."""

    def __init__(self, context: ServiceContext, *, requests: Requests, queries: Queries) -> None:
        self._c = context
        self._requests = requests
        self._queries = queries

    async def _on_behalf_members(self) -> Mapping[str, frozenset[str]]:
        """The members of every user group ``may_request_for`` names."""
        ids = on_behalf_usergroups(self._c.policy.current.policy)
        return await self._c.usergroups.members(ids) if ids else NO_USERGROUPS

    async def may_ask_for(self, *, user: str, beneficiary: str, now: float) -> None:
        """PolicyDenied saying why, unless ``may_request_for`` lets ``user`` ask for
        ``beneficiary`` (asking for oneself always may)."""
        if beneficiary == user:
            return
        refusal = on_behalf_refusal(
            self._c.policy.current.policy,
            requester=user,
            beneficiary=beneficiary,
            today=today(now),
            usergroups=await self._on_behalf_members(),
        )
        if refusal is not None:
            metrics.record_request("refused")
            raise PolicyDenied(refusal)

    @asynccontextmanager
    async def _on_behalf(self, *, user: str, beneficiary: str, now: float) -> AsyncIterator[None]:
        """PolicyDenied unless ``user`` may ask for ``beneficiary`` (:meth:`may_ask_for`);
        within, a refusal of the beneficiary's request is said as theirs (:func:`_theirs`)."""
        await self.may_ask_for(user=user, beneficiary=beneficiary, now=now)
        try:
            yield
        except PolicyDenied as e:
            if beneficiary == user:
                raise
            raise _theirs(e, beneficiary=beneficiary) from e

    async def check_request_for(
        self, *, user: str, beneficiary: str, **asked: Unpack[Asked]
    ) -> None:
        """What :meth:`request_for` would refuse, changing nothing (the form's pre-check)."""
        now = self._c.clock()
        async with self._on_behalf(user=user, beneficiary=beneficiary, now=now):
            await self._requests.check_request(user=beneficiary, now=now, asked_by=user, **asked)

    async def request_for(
        self,
        *,
        user: str,
        beneficiary: str,
        origin: Origin | None = None,
        **asked: Unpack[Asked],
    ) -> RequestResult:
        """File ``user``'s request on ``beneficiary``'s behalf (see the module docstring).
        PolicyDenied, changing nothing, when ``may_request_for`` does not allow it or the
        beneficiary may not have what is asked."""
        async with self._on_behalf(user=user, beneficiary=beneficiary, now=self._c.clock()):
            result = await self._requests.request_access(
                user=beneficiary,
                origin=origin,
                requested_by=user if beneficiary != user else None,
                **asked,
            )
        return result

    async def asking_options(self, user: str) -> tuple[list[str], bool]:
        """What the request form offers ``user`` beyond resources: the bundles whose every
        item they may request, and whether they may ask for someone else."""
        policy = self._c.policy.current.policy
        have = {(rule.resource, rule.role) for rule in await self._queries.requestable(user)}
        members = await self._on_behalf_members()
        return (
            requestable_bundles(policy, have),
            may_ask_for_anyone(
                policy, requester=user, today=today(self._c.clock()), usergroups=members
            ),
        )


def _theirs(e: PolicyDenied, *, beneficiary: str) -> PolicyDenied:
    """A refusal of the beneficiary's request, said as theirs (someone else asked)."""
    return PolicyDenied(f"for <@{beneficiary}> (the grant would be theirs): {e}")
