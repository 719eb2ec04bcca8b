"""Reminders before a grant ends (issue 13, item 1): scheduled, sent once, and what their
buttons do.

``remind_before`` (policy) before a grant's end its reminder job fires
(:mod:`bot.lifecycle.jobs`, on the scheduler's leader). The job only wakes this up; the grant
as stored decides: nothing is sent for a grant that is no longer ACTIVE, and each reminder is
for one expiry, claimed once in Redis (:class:`~bot.store.reminders.ReminderLedger`), so a job
that fires twice (a replica killed after sending, before the job was removed) sends once, and
an extended grant is reminded again of its new end. Extending moves the job: every
(re)scheduling of a grant's revocation passes through :meth:`Reminders.arm`
(:class:`bot.lifecycle.runner.WithLifecycle`).

The reminder's ``Extend +<d>`` asks for an extension exactly as ``/access extend`` does
(:meth:`bot.service.GrantService.request_extension`, where ``extend_without_approval`` lets it
through without approvers); ``I'm done`` ends the grant now as its requester. Either way the
reminder is updated with the outcome.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final, Protocol

from bot.domain.duration import format_duration
from bot.domain.model import Grant, Status
from bot.domain.policy.rules import RoleRule
from bot.domain.reminders import extension_offer, needs_no_approval, remind_at
from bot.errors import NotFound, PolicyDenied, TransitionError
from bot.policy_holder import PolicyHolder
from bot.store.grants import GrantStore
from bot.store.lifecycle_jobs import LifecycleJobs

log = logging.getLogger(__name__)

#: A job this early (replicas' clocks differ a little) still sends; earlier, the sweep re-arms.
EARLY_S: Final = 5.0
#: The reason an extension from a reminder is asked with.
EXTEND_REASON: Final = "extended from the reminder"
DONE_REASON: Final = "done (from the reminder)"


class ReminderNotices(Protocol):
    """Where reminders are shown (:class:`bot.slack.reminders.SlackLifecycleNotices`)."""

    async def remind(self, grant: Grant, *, offer_s: int | None) -> None:
        """Post ``grant``'s reminder to its requester (and the thread it was asked from),
        with ``Extend +<offer>`` (none when None) and ``I'm done``. Never raises."""
        ...

    async def reminder_outcome(self, grant_id: str, text: str) -> None:
        """Replace every reminder of ``grant_id`` with ``text`` (mrkdwn), buttons gone."""
        ...


def free_extension_reason(parent: Grant, rule: RoleRule, *, extend_by_s: int) -> str | None:
    """The auto-approval reason when ``extend_without_approval`` lets an extension of
    ``parent`` by ``extend_by_s`` through without approvers, else None."""
    if parent.expires_at is None or not needs_no_approval(
        activated_at=parent.activated_at,
        expires_at=parent.expires_at,
        extend_by_s=extend_by_s,
        extend_without_approval_s=rule.extend_without_approval_s,
    ):
        return None
    limit = format_duration(rule.extend_without_approval_s or 0)
    return f"extended without approval: the grant stays within {limit} (extend_without_approval)"


class Reminders:
    """Arms, fires and sweeps reminder jobs. ``notices`` None: reminders are only logged
    (a process without Slack)."""

    def __init__(
        self,
        *,
        store: GrantStore,
        jobs: LifecycleJobs,
        policy: PolicyHolder,
        notices: ReminderNotices | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.policy = policy
        self.notices = notices
        self.clock = clock
        self.ledger = store.reminders

    def rule_of(self, grant: Grant) -> RoleRule | None:
        try:
            return self.policy.current.policy.rule(grant.resource, grant.role)
        except PolicyDenied:
            return None

    def due_at(self, grant: Grant) -> float | None:
        """When ``grant``'s reminder is due under the current policy (None: none). A machine
        client's grant has none: a reminder is for people (its pipeline calls done)."""
        if grant.client is not None:
            return None
        rule = self.rule_of(grant)
        if rule is None or grant.expires_at is None or grant.status is not Status.ACTIVE:
            return None
        return remind_at(
            expires_at=grant.expires_at,
            activated_at=grant.activated_at,
            remind_before_s=rule.remind_before_s,
        )

    def offer(self, grant: Grant) -> int | None:
        """The ``d`` of ``Extend +<d>`` for ``grant`` now (None: no button)."""
        rule = self.rule_of(grant)
        if rule is None or grant.expires_at is None:
            return None
        return extension_offer(
            activated_at=grant.activated_at,
            expires_at=grant.expires_at,
            default_duration_s=rule.default_duration_s,
            max_duration_s=rule.max_duration_s,
        )

    async def arm(self, grant_id: str) -> None:
        """(Re)schedule ``grant_id``'s reminder for its end as stored now: after it is issued
        or extended. No reminder due (off, too short, not active): its job is removed."""
        grant = await self.store.get(grant_id)
        at = self.due_at(grant)
        if at is None:
            await self.jobs.remove("remind", grant_id)
            return
        await self.jobs.put("remind", grant_id, at)

    async def fire(self, grant_id: str) -> bool:
        """The reminder job of ``grant_id`` fired: send its reminder if the grant is still
        ACTIVE, the reminder is due and nobody sent it. True when this call sent it."""
        try:
            grant = await self.store.get(grant_id)
        except NotFound:
            return False
        at = self.due_at(grant)
        now = self.clock()
        if at is None or grant.expires_at is None:
            return False  # ended (or no longer reminded): skipped
        if now < at - EARLY_S:
            return False  # woken early (a clock apart): the sweep arms it again
        if not await self.ledger.claim(grant_id, expires_at=grant.expires_at, now=now):
            return False
        offer = self.offer(grant)
        if self.notices is not None:
            await self.notices.remind(grant, offer_s=offer)
        else:
            log.info("%s ends soon (no Slack in this process to remind)", grant_id)
        await self.ledger.done(grant_id, expires_at=grant.expires_at, now=self.clock())
        return True

    async def sweep(self) -> int:
        """Arm the reminders that have no job though still due and unsent (a job lost, a
        sender that died mid-way, one woken early); how many. Only grants ending within the
        longest ``remind_before`` of the policy are read."""
        now = self.clock()
        horizon = self._longest_remind_before()
        if horizon <= 0:
            return 0
        ids = await self.jobs.expiring_between(now, now + horizon)
        ids = await self.jobs.without_job("remind", ids)
        armed = 0
        for grant in (await self.store.read_many(ids)).values():
            at = self.due_at(grant)
            if at is None or grant.expires_at is None:
                continue
            if await self.ledger.sent(grant.id, expires_at=grant.expires_at):
                continue
            await self.jobs.put("remind", grant.id, at)
            armed += 1
        return armed

    def _longest_remind_before(self) -> int:
        policy = self.policy.current.policy
        longest = 0
        for name, spec in policy.resources.items():
            for role in spec.roles:
                longest = max(longest, policy.rule(name, role).remind_before_s or 0)
        return longest

    async def grant(self, grant_id: str) -> Grant:
        """``grant_id`` as stored now (NotFound when unknown)."""
        return await self.store.get(grant_id)

    async def check_extendable(self, grant_id: str, *, user: str) -> int:
        """The ``d`` the reminder offers ``user`` on ``grant_id`` now; PolicyDenied or
        TransitionError saying why there is none."""
        grant = await self.store.get(grant_id)
        if grant.requester != user:
            raise PolicyDenied(f"only <@{grant.requester}> may extend {grant_id}")
        if grant.status is not Status.ACTIVE:
            raise TransitionError(f"{grant_id} is {grant.status.value.lower()}; nothing to extend")
        offer = self.offer(grant)
        if offer is None:
            raise PolicyDenied(f"{grant_id} already has all the time max_duration allows")
        return offer
