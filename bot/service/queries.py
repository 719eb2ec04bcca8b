"""What people and Slack read through the service: their grants, what waits for their
decision, their SSH key, what they may request, and the current policy's answers the Slack
side needs (a rule, whether a channel is an incident's). Nothing here changes a grant."""

from __future__ import annotations

from bot.domain.model import TERMINAL, Grant, Status
from bot.domain.policy.rules import RoleRule
from bot.errors import NotAuthorized
from bot.ports import NO_USERGROUPS
from bot.service.context import ServiceContext, today, usergroups_of
from bot.service.decisions import Decisions


class Queries:
    """Reads for people and for the Slack side."""

    def __init__(self, context: ServiceContext, *, decisions: Decisions) -> None:
        self._c = context
        self._decisions = decisions

    async def my_grants(self, user: str) -> list[Grant]:
        """``user``'s pending requests and live grants."""
        return await self._c.store.open_for_user(user)

    async def asked_for_others(self, user: str) -> list[Grant]:
        """Open requests and grants ``user`` asked for on someone else's behalf (they may
        cancel them), oldest first. Read from the open statuses' indexes: nothing indexes a
        grant by who asked for it."""
        found = []
        for status in Status:
            if status in TERMINAL:
                continue
            found += [
                g
                for g in await self._c.store.in_status(status)
                if g.requested_by == user and g.requester != user
            ]
        return sorted(found, key=lambda g: g.created_at)

    async def waiting_for(self, user: str) -> list[Grant]:
        """PENDING requests ``user`` may decide on (not their own unless self-approval)."""
        waiting = []
        for grant in await self._c.store.in_status(Status.PENDING):
            if user in grant.askers and not grant.allow_self_approval:
                continue
            if user in grant.approvers:
                continue
            try:
                await self._decisions.require_approver(grant, user)
            except NotAuthorized:
                continue
            waiting.append(grant)
        return sorted(waiting, key=lambda g: g.created_at)

    async def ssh_key(self, user: str) -> str | None:
        """The SSH public key ``user`` registered, if any (public; not a secret)."""
        return await self._c.store.ssh_keys.get(user)

    async def set_ssh_key(self, user: str, public_key: str) -> None:
        """Register ``user``'s SSH public key (checked by the grammar), audited in the same
        atomic step."""
        await self._c.store.ssh_keys.set(user, public_key, at=self._c.clock())

    async def requestable(self, user: str) -> list[RoleRule]:
        """The rules ``user`` may request under now (dated memberships, user groups)."""
        c = self._c
        policy = c.policy.current.policy
        ids: set[str] = set()
        for name, spec in policy.resources.items():
            for role in spec.roles:
                ids |= usergroups_of(policy.rule(name, role))
        members = await c.usergroups.members(ids) if ids else NO_USERGROUPS
        return [
            r for _, _, r in policy.requestable(user, today=today(c.clock()), usergroups=members)
        ]

    def rule_for(self, resource: str, role: str) -> RoleRule:
        """The current policy's rule for ``resource``/``role``; PolicyDenied when none."""
        return self._c.policy.current.policy.rule(resource, role)

    def is_incident_channel(self, channel_name: str) -> bool:
        """Whether the current policy's ``incident_channels`` matches ``channel_name``."""
        return self._c.policy.current.policy.is_incident_channel(channel_name)

    def incident_of(self, channel_name: str, *, topic: str = "") -> str | None:
        """The incident id the current policy reads from a channel's topic and name; None
        when it is not an incident channel."""
        return self._c.policy.current.policy.incident_of(channel_name, topic=topic)
