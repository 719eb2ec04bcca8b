"""The one orchestrator: the only module that knows every part.

Slack listeners and the CLI call it; it consults the policy (pure), changes state through the
store (atomic, audited), asks providers for credentials, hands expiry to the scheduler and
tells the notifier. Authority always comes from the policy and the store, never from what a
caller claims: an approval is accepted only when the current policy makes the clicking user
an approver of the request's resource and role.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final, Protocol, TypeVar

from bot import metrics
from bot.domain.credentials import Credential
from bot.domain.duration import format_duration
from bot.domain.ids import new_grant_id
from bot.domain.model import LIVE, Actor, ActorKind, Event, Grant, Origin, Status
from bot.domain.policy.decisions import (
    RequestDecision,
    auto_approve_blocker,
    evaluate_request,
    match_auto_approve,
)
from bot.domain.policy.rules import RoleRule
from bot.domain.policy.schema import EscalationTier
from bot.envrefs import resolve as resolve_env_refs
from bot.errors import (
    ConcurrencyError,
    GrantbotError,
    NotAuthorized,
    NotFound,
    PolicyDenied,
    ProviderError,
    TransitionError,
)
from bot.issue_confirmation import replicated_or_taken_back
from bot.log_throttle import Throttle
from bot.notify import Notifier, NullNotifier
from bot.oncall.base import OnCallResult, OnCallUnavailable
from bot.policy_holder import PolicyHolder
from bot.providers.base import GrantContext, Housekeeper, Provider, RequestChecker, RequestContext
from bot.providers.registry import build_provider, provider_type
from bot.store.grants import GrantStore

log = logging.getLogger(__name__)

#: An APPROVED grant not ACTIVE after this long lost its issuing (a crash, a Redis failure
#: between issuing at the target and storing ACTIVE); issuing itself takes seconds.
STUCK_APPROVED_S: Final = 300.0

Clock = Callable[[], float]
T = TypeVar("T")
NO_USERGROUPS: Final[Mapping[str, frozenset[str]]] = {}


class UsergroupDirectory(Protocol):
    async def members(self, usergroup_ids: Iterable[str]) -> Mapping[str, frozenset[str]]:
        """Members of each Slack user group asked for (absent = unknown = empty)."""
        ...


class PeopleDirectory(Protocol):
    async def email(self, user: str) -> str | None:
        """The email address Slack has for ``user``; None when it has none or cannot say."""
        ...


class NoPeople:
    """No directory: nobody's email is known."""

    async def email(self, user: str) -> str | None:
        return None


class OnCallLookup(Protocol):
    """Who is on call (bot.oncall.PolicyOnCallLookup in the running bot). Fails closed: a
    source that is down or slow makes nobody on call, and says why."""

    async def check(
        self, user: str, *, now: float, schedules: Iterable[str] | None = None
    ) -> OnCallResult:
        """The ``schedules`` (None: all) ``user`` is on call for, and why any could not be
        asked. Never raises for a source's failure."""
        ...

    async def members(self, schedule: str, *, now: float) -> frozenset[str]:
        """Who is on call for ``schedule``; OnCallUnavailable (with the reason) when its
        source cannot say."""
        ...

    async def aclose(self) -> None: ...


class Scheduler(Protocol):
    async def schedule(self, grant_id: str, expires_at: float) -> None: ...
    async def unschedule(self, grant_id: str) -> None: ...


class Revoker(Protocol):
    async def revoke(
        self, grant_id: str, *, actor: Actor, reason: str | None, event: Event = Event.REVOKE
    ) -> Grant: ...
    async def force_close(self, grant_id: str, *, operator: str, reason: str | None) -> Grant: ...


class NoUsergroups:
    async def members(self, usergroup_ids: Iterable[str]) -> Mapping[str, frozenset[str]]:
        return NO_USERGROUPS


class NobodyOnCall:
    """No on-call sources: nobody is on call, and no schedule can be asked."""

    async def check(
        self, user: str, *, now: float, schedules: Iterable[str] | None = None
    ) -> OnCallResult:
        return OnCallResult(
            failures={name: "no on-call sources are configured" for name in schedules or ()}
        )

    async def members(self, schedule: str, *, now: float) -> frozenset[str]:
        raise OnCallUnavailable("no on-call sources are configured")

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class RequestResult:
    """A filed request. ``note`` says why an auto_approve rule that would have applied
    could not (a source down, the day's limit reached), for the requester and the thread."""

    grant: Grant
    rule: RoleRule
    credential: Credential | None = None  # set when auto-approved and issued
    note: str | None = None


@dataclass(frozen=True, slots=True)
class AutoApproval:
    """The auto-approval verdict on a new request: ``reason`` when approved, else maybe a
    ``note`` saying what stood in the way."""

    reason: str | None = None
    note: str | None = None
    #: The on-call schedule that made the requester eligible, if that was the rule (audited
    #: as ``details.on_call``, so an access review can list on-call grants).
    on_call: str | None = None


#: Audit events that record no grant state change.
ESCALATED: Final = "ESCALATED"
AUTO_APPROVE_UNAVAILABLE: Final = "AUTO_APPROVE_UNAVAILABLE"


def usergroups_of(rule: RoleRule) -> set[str]:
    """Every Slack user-group id the rule's requesters, approvers and groups mention."""
    ids: set[str] = set()
    for block in (rule.requesters, rule.approvers, *(t.approvers for t in rule.escalation)):
        if block is not None:
            ids.update(block.usergroups)
            for name in block.groups:
                group = rule.groups.get(name)
                if group is not None:
                    ids.update(m.id for m in group.members if m.id.startswith("S"))
    return ids


def _today(now: float) -> date:
    return datetime.fromtimestamp(now, tz=UTC).date()


def _incident_details(grant: Grant) -> dict[str, Any]:
    """The incident a request belongs to, for its audit entries (empty outside one)."""
    origin = grant.origin
    if origin.incident is None:
        return {}
    found = {"incident": origin.incident, "channel": origin.channel}
    found["channel_name"] = origin.channel_name
    return {k: v for k, v in found.items() if v is not None}


class GrantService:
    """Request, decide, issue, revoke. Every public method is safe to call concurrently."""

    def __init__(
        self,
        *,
        store: GrantStore,
        policy: PolicyHolder,
        notifier: Notifier | None = None,
        usergroups: UsergroupDirectory | None = None,
        oncall: OnCallLookup | None = None,
        scheduler: Scheduler | None = None,
        revoker: Revoker | None = None,
        people: PeopleDirectory | None = None,
        clock: Clock = time.time,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.store = store
        self.policy = policy
        self.notifier: Notifier = notifier or NullNotifier()
        self.usergroups: UsergroupDirectory = usergroups or NoUsergroups()
        self.oncall: OnCallLookup = oncall or NobodyOnCall()
        self.scheduler = scheduler
        self.revoker = revoker
        self.people: PeopleDirectory = people or NoPeople()
        self.clock = clock
        self._environ = environ if environ is not None else os.environ
        self._providers: dict[tuple[str, str], Provider] = {}
        self.quota = store.quota
        self.escalations = store.escalations
        self._housekeeping_log = Throttle(log, interval_s=60.0)

    # -- providers (also the scheduler's ProviderResolver) -------------------------------

    def provider_for(self, resource: str) -> Provider:
        """The provider of ``resource`` under the current policy (built once per version)."""
        key = (self.policy.version, resource)
        provider = self._providers.get(key)
        if provider is None:
            spec = self.policy.current.policy.resources.get(resource)
            if spec is None:
                raise ProviderError(f"resource {resource} is no longer in the policy")
            settings = {"type": spec.provider.type, **spec.provider.settings}
            state = self.store.provider_state(kind=spec.provider.type, resource=resource)
            provider = build_provider(settings, env=self._environ, state=state)
            self._providers[key] = provider
        return provider

    async def _issue_context(
        self, grant: Grant, *, expires_at: float
    ) -> tuple[Provider, GrantContext]:
        """Provider and context to issue ``grant`` ending at ``expires_at``: with the
        requester's registered SSH key, and their email when the provider needs it."""
        ssh_key = await self.store.ssh_keys.get(grant.requester)
        provider, ctx = self.resolve(
            grant.model_copy(update={"expires_at": expires_at}), ssh_public_key=ssh_key
        )
        if getattr(provider, "needs_email", False):
            ctx = dataclasses.replace(ctx, email=await self.people.email(grant.requester))
        return provider, ctx

    async def housekeeping(self) -> int:
        """Let every provider of the current policy with leftovers at its target remove
        what is due (:class:`~bot.providers.base.Housekeeper`); how many were removed. A
        provider that fails is logged (a line a minute) and tried again on the next call."""
        removed = 0
        for resource, spec in self.policy.current.policy.resources.items():
            kind = provider_type({"type": spec.provider.type})
            if kind is None or not kind.housekeeps:
                continue
            try:
                provider = self.provider_for(resource)
                if isinstance(provider, Housekeeper):
                    removed += await provider.housekeeping(now=self.clock())
            except GrantbotError as e:
                self._housekeeping_log.log(
                    resource, "housekeeping of %s failed (will retry): %s", resource, e
                )
        return removed

    def resolve(
        self, grant: Grant, *, ssh_public_key: str | None = None
    ) -> tuple[Provider, GrantContext]:
        """Provider and context for ``grant`` (ProviderResolver for the revoker)."""
        rule = self.policy.current.policy.rule(grant.resource, grant.role)
        role_settings: Mapping[str, Any] = resolve_env_refs(
            dict(rule.role_provider_settings), env=self._environ, key=f"roles.{grant.role}.provider"
        )
        ctx = GrantContext.from_grant(
            grant, role_settings=role_settings, ssh_public_key=ssh_public_key
        )
        return self.provider_for(grant.resource), ctx

    async def aclose(self) -> None:
        """Close providers and the on-call lookup (its HTTP session, fetches in flight)."""
        try:
            await self.oncall.aclose()
        except Exception:
            log.exception("closing the on-call lookup failed")
        for provider in self._providers.values():
            try:
                await provider.aclose()
            except Exception:
                log.exception("closing a provider failed")
        self._providers.clear()

    # -- asking --------------------------------------------------------------------------

    async def _usergroups_for(self, rule: RoleRule) -> Mapping[str, frozenset[str]]:
        ids = usergroups_of(rule)
        return await self.usergroups.members(ids) if ids else NO_USERGROUPS

    async def request_access(
        self,
        *,
        user: str,
        resource: str,
        role: str | None,
        duration_s: int | None,
        reason: str,
        tickets: Iterable[str] = (),
        origin: Origin | None = None,
    ) -> RequestResult:
        """File a request. Raises PolicyDenied (naming the rule and what is allowed) and
        changes nothing when the policy refuses it. Auto-approves when a rule matches."""
        now = self.clock()
        tickets = list(tickets)
        decision = await self._judge(
            user=user,
            resource=resource,
            role=role,
            duration_s=duration_s,
            reason=reason,
            tickets=tickets,
            now=now,
        )
        rule = decision.rule
        grant = await self._store_request(
            decision, user=user, reason=reason, tickets=tickets, origin=origin, now=now
        )
        auto = await self._auto_approval(grant, rule, now=now)
        if auto.reason is not None:
            approved = await self._auto_approve(
                grant, reason=auto.reason, on_call=auto.on_call, now=now
            )
            active, credential = await self.activate(approved)
            # The approvers review it once the requester holds it (their copy shows the
            # outcome): the credential DM never waits for their messages.
            await self._safe(self.notifier.decided(active))
            return RequestResult(grant=active, rule=rule, credential=credential)
        await self._safe(self.notifier.request_created(grant))
        return RequestResult(grant=grant, rule=rule, note=auto.note)

    async def _store_request(
        self,
        decision: RequestDecision,
        *,
        user: str,
        reason: str,
        tickets: list[str],
        origin: Origin | None,
        now: float,
        parent: Grant | None = None,
    ) -> Grant:
        """Store the PENDING request ``decision`` accepted, audited as ``user``'s: an access
        request, or with ``parent`` an extension of it (lapsing at the latest when it does)."""
        rule = decision.rule
        lapses_at = now + decision.request_timeout_s
        if parent is not None and parent.expires_at is not None:
            lapses_at = min(lapses_at, parent.expires_at)
        grant = Grant(
            id=new_grant_id(),
            kind="access" if parent is None else "extension",
            parent_id=None if parent is None else parent.id,
            requester=user,
            resource=rule.resource,
            role=rule.role,
            provider=rule.provider_type,
            duration_s=decision.duration_s,
            reason=reason,
            tickets=tickets,
            origin=origin or Origin(),
            policy_version=decision.policy_version,
            approvals_required=decision.approvals_required,
            allow_self_approval=decision.allow_self_approval,
            created_at=now,
            updated_at=now,
            request_expires_at=lapses_at,
        )
        return await self.store.create(
            grant,
            actor=Actor(kind=ActorKind.REQUESTER, id=user),
            policy_version=decision.policy_version,
        )

    async def _judge(self, **request: Any) -> RequestDecision:
        """:meth:`check_request`, counting a refusal in the requests metric."""
        try:
            return await self.check_request(**request)
        except PolicyDenied:
            metrics.record_request("refused")
            raise

    async def check_request(
        self,
        *,
        user: str,
        resource: str,
        role: str | None,
        duration_s: int | None,
        reason: str,
        tickets: Iterable[str] = (),
        now: float | None = None,
    ) -> RequestDecision:
        """What the policy says to this request, changing nothing: the decision, or
        PolicyDenied naming the rule and what is allowed (the request form checks with this
        before it closes, so a refusal shows on the field)."""
        at = self.clock() if now is None else now
        loaded = self.policy.current
        rule = loaded.policy.rule(resource, role)
        members = await self._usergroups_for(rule)
        decision = evaluate_request(
            loaded,
            user=user,
            resource=resource,
            role=rule.role,
            duration_s=duration_s,
            reason=reason,
            tickets=list(tickets),
            today=_today(at),
            usergroups=members,
        )
        await self._precheck(decision, user=user, now=at)
        return decision

    async def _precheck(self, decision: RequestDecision, *, user: str, now: float) -> None:
        """The target's own refusal of an accepted request, before anyone is asked
        (:class:`~bot.providers.base.RequestChecker`): PolicyDenied saying why."""
        rule = decision.rule
        spec = self.policy.current.policy.resources[rule.resource]
        kind = provider_type({"type": spec.provider.type})
        if kind is None or not kind.prechecks:
            return
        provider = self.provider_for(rule.resource)
        if not isinstance(provider, RequestChecker):
            return
        role_settings: Mapping[str, Any] = resolve_env_refs(
            dict(rule.role_provider_settings), env=self._environ, key=f"roles.{rule.role}.provider"
        )
        email = await self.people.email(user) if provider.needs_email else None
        request = RequestContext(
            user=user,
            resource=rule.resource,
            role=rule.role,
            role_settings=role_settings,
            duration_s=decision.duration_s,
            email=email,
        )
        await provider.precheck(request, now=now)

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
        expires_at moves by ``duration_s`` (see :meth:`_apply_extension`).
        """
        parent = await self.store.get(grant_id)
        if parent.kind != "access":
            raise PolicyDenied(f"{grant_id} is an extension request; extend {parent.parent_id}")
        if parent.requester != user:
            raise NotAuthorized(f"only <@{parent.requester}> may extend {grant_id}")
        if parent.status is not Status.ACTIVE or parent.expires_at is None:
            raise TransitionError(
                f"{grant_id} is {parent.status.value.lower()}; only an active grant can be extended"
            )
        now = self.clock()
        tickets = list(tickets)
        decision = await self._judge(
            user=user,
            resource=parent.resource,
            role=parent.role,
            duration_s=duration_s,
            reason=reason,
            tickets=tickets,
            now=now,
        )
        rule = decision.rule
        extension = await self._store_request(
            decision,
            user=user,
            reason=reason,
            tickets=tickets,
            origin=origin,
            now=now,
            parent=parent,
        )
        auto = await self._auto_approval(extension, rule, now=now)
        if auto.reason is not None:
            approved = await self._auto_approve(
                extension, reason=auto.reason, on_call=auto.on_call, now=now
            )
            await self._safe(self.notifier.decided(approved))
            closed = await self._apply_extension(approved)
            return RequestResult(grant=closed, rule=rule)
        await self._safe(self.notifier.request_created(extension))
        return RequestResult(grant=extension, rule=rule, note=auto.note)

    async def _apply_extension(self, extension: Grant) -> Grant:
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
        now = self.clock()
        actor = Actor.system("extension")
        parent_id = extension.parent_id or ""
        issued: tuple[Provider, GrantContext, Credential] | None = None
        try:
            parent = await self.store.get(parent_id)
            if parent.expires_at is None or parent.status is not Status.ACTIVE:
                raise TransitionError(f"{parent_id} is {parent.status.value.lower()}")
            expires_at = parent.expires_at + extension.duration_s
            issued = await self._issue_again(parent, expires_at=expires_at)
            outcome = await self.store.transition(
                parent_id,
                Event.EXTEND,
                actor=actor,
                now=now,
                policy_version=self.policy.version,
                reason=f"extension {extension.id} approved",
                expires_at=expires_at,
                details={"extension_id": extension.id},
                expected_version=parent.version,
            )
        except (TransitionError, NotFound, ConcurrencyError) as e:
            if issued is not None:
                await self._take_back(parent_id, issued)
            closed = await self.store.transition(
                extension.id,
                Event.EXTEND,
                actor=actor,
                now=now,
                policy_version=self.policy.version,
                reason=f"not applied: {e}",
            )
            await self._safe(self.notifier.ended(closed.grant))
            return closed.grant
        extended = outcome.grant
        if self.scheduler is not None:
            await self.scheduler.schedule(parent_id, extended.expires_at or now)
        closed = await self.store.transition(
            extension.id,
            Event.EXTEND,
            actor=actor,
            now=now,
            policy_version=self.policy.version,
            reason=f"applied to {parent_id}",
        )
        if issued is not None:
            await self._safe(self.notifier.credential_issued(extended, issued[2]))
        await self._safe(self.notifier.extended(extended))
        await self._safe(self.notifier.ended(closed.grant))
        return closed.grant

    async def _issue_again(
        self, grant: Grant, *, expires_at: float
    ) -> tuple[Provider, GrantContext, Credential] | None:
        """Issue ``grant``'s credential again ending at ``expires_at`` (providers' issue is
        idempotent per grant). None when that fails: access then ends at the old target-side
        expiry, which is logged, never raised."""
        try:
            provider, ctx = await self._issue_context(grant, expires_at=expires_at)
            credential = await provider.issue(ctx, now=self.clock())
        except Exception as e:
            message = str(e) if isinstance(e, ProviderError | PolicyDenied) else type(e).__name__
            log.warning("issuing %s again failed: %s", grant.id, message)
            return None
        return provider, ctx, credential

    async def _take_back(
        self, grant_id: str, issued: tuple[Provider, GrantContext, Credential]
    ) -> None:
        """Revoke what :meth:`_issue_again` issued for a grant that ended meanwhile. If the
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

    async def _reissue(self, grant: Grant) -> None:
        """Restore the access of a live grant that the revoker took away while it was being
        extended; the requester gets the (new) credential. If the grant ends meanwhile, what
        was issued is taken back."""
        if grant.expires_at is None:
            return
        issued = await self._issue_again(grant, expires_at=grant.expires_at)
        if issued is None:
            return
        current = await self.store.get(grant.id)
        if current.status is not Status.ACTIVE:
            await self._take_back(grant.id, issued)
            return
        await self._safe(self.notifier.credential_issued(current, issued[2]))

    async def _auto_approval(self, grant: Grant, rule: RoleRule, *, now: float) -> AutoApproval:
        """Whether an auto_approve rule approves ``grant`` now, and if not whether something
        outside the requester's control stood in the way (then audited, and returned as the
        note to tell them). Never open: an on-call source that cannot answer makes nobody on
        call. A per-day slot is taken atomically only when a rule matches."""
        if not rule.auto_approve:
            return AutoApproval()
        schedules = [a.on_call for a in rule.auto_approve if a.on_call is not None]
        oncall = (
            await self.oncall.check(grant.requester, now=now, schedules=schedules)
            if schedules
            else OnCallResult()
        )
        who = {"user": grant.requester, "resource": grant.resource, "role": grant.role}
        used = await self.quota.used(**who, now=now)
        in_incident = grant.origin.incident is not None
        match = match_auto_approve(
            rule,
            duration_s=grant.duration_s,
            on_call_schedules=oncall.schedules,
            in_incident=in_incident,
            grants_today=used,
        )
        limit = match.rule.per_user_per_day if match is not None else None
        if limit is not None and not await self.quota.take(**who, now=now, limit=limit):
            match, used = None, max(used, limit)  # the last slot went to a concurrent request
        if match is not None:
            parts = [f"on call for {match.rule.on_call}"] if match.rule.on_call else []
            if in_incident:
                parts.append(f"in #{grant.origin.channel_name or grant.origin.incident}")
            elif not parts:
                parts.append(match.reason)
            return AutoApproval(
                reason=f"auto-approved: {grant.requester} {', '.join(parts)}",
                on_call=match.rule.on_call,
            )
        blocker = auto_approve_blocker(
            rule,
            duration_s=grant.duration_s,
            on_call_schedules=oncall.schedules,
            unavailable=oncall.failures,
            in_incident=in_incident,
            grants_today=used,
        )
        if blocker is None:
            return AutoApproval()
        note = f"auto-approval not possible: {blocker}; asked the approvers"
        await self._audit_note(
            AUTO_APPROVE_UNAVAILABLE,
            actor="auto-approve",
            at=now,
            grant_id=grant.id,
            reason=note,
            details=_incident_details(grant),
        )
        return AutoApproval(note=note)

    async def _auto_approve(
        self, grant: Grant, *, reason: str, on_call: str | None, now: float
    ) -> Grant:
        """PENDING -> APPROVED by the policy, audited with ``reason``, the on-call schedule
        that qualified the requester (if any) and the incident. The caller tells the notifier
        (``decided``) when the approvers should hear of it."""
        details = _incident_details(grant)
        if on_call is not None:
            details["on_call"] = on_call
        outcome = await self.store.transition(
            grant.id,
            Event.AUTO_APPROVE,
            actor=Actor.system("auto-approve"),
            now=now,
            policy_version=self.policy.version,
            reason=reason,
            details=details,
        )
        metrics.record_request("auto_approved")
        metrics.record_auto_approval(grant.resource)
        return outcome.grant

    # -- what Slack asks of the policy and the store -------------------------------------

    def rule_for(self, resource: str, role: str) -> RoleRule:
        """The current policy's rule for ``resource``/``role``; PolicyDenied when none."""
        return self.policy.current.policy.rule(resource, role)

    def is_incident_channel(self, channel_name: str) -> bool:
        """Whether the current policy's ``incident_channels`` matches ``channel_name``."""
        return self.policy.current.policy.is_incident_channel(channel_name)

    def incident_of(self, channel_name: str, *, topic: str = "") -> str | None:
        """The incident id the current policy reads from a channel's topic and name; None
        when it is not an incident channel."""
        return self.policy.current.policy.incident_of(channel_name, topic=topic)

    async def grant_for_approver(self, grant_id: str, *, user: str) -> Grant:
        """The grant ``grant_id`` as stored now, when ``user`` is one of its approvers now
        (see :meth:`require_approver`); NotFound or NotAuthorized otherwise."""
        grant = await self.store.get(grant_id)
        await self.require_approver(grant, user)
        return grant

    # -- deciding ------------------------------------------------------------------------

    async def require_approver(self, grant: Grant, user: str) -> RoleRule:
        """The rule, when the current policy makes ``user`` an approver of ``grant`` now;
        else NotAuthorized.

        Approvers are the rule's own, plus those of every escalation tier the request has
        reached (``escalate_after`` passed since it was filed): the tier's approvers and
        whoever is on call for its ``oncall`` schedule (an on-call source that cannot answer
        makes nobody on call).
        """
        try:
            rule = self.policy.current.policy.rule(grant.resource, grant.role)
        except PolicyDenied as e:
            raise NotAuthorized(f"{grant.resource} {grant.role} is no longer in the policy") from e
        now = self.clock()
        members = await self._usergroups_for(rule)
        reached = rule.tiers_reached(asked_at=grant.created_at, now=now)
        check: dict[str, Any] = {"today": _today(now), "usergroups": members}
        if rule.is_approver(user, **check, tiers_reached=reached):
            return rule
        schedules = [t.oncall for t in rule.escalation[:reached] if t.oncall is not None]
        if schedules:
            on_call = await self.oncall.check(user, now=now, schedules=schedules)
            if rule.is_approver(
                user, **check, tiers_reached=reached, on_call_schedules=on_call.schedules
            ):
                return rule
        raise NotAuthorized(f"you are not an approver for {rule.name}")

    async def approve(self, grant_id: str, *, user: str) -> Grant:
        """Record ``user``'s approval; the N-th distinct approval approves and issues."""
        grant = await self.store.get(grant_id)
        await self.require_approver(grant, user)
        outcome = await self.store.transition(
            grant_id,
            Event.APPROVE,
            actor=Actor(kind=ActorKind.APPROVER, id=user),
            now=self.clock(),
            policy_version=self.policy.version,
        )
        metrics.record_decision("approve")
        if outcome.grant.status is not Status.APPROVED:
            await self._safe(self.notifier.approval_recorded(outcome.grant))
            return outcome.grant
        metrics.record_request("approved")
        if outcome.grant.kind == "extension":
            await self._safe(self.notifier.decided(outcome.grant))
            return await self._apply_extension(outcome.grant)
        # The approvers' copies are brought up to date while the credential is issued and
        # sent: the requester's DM does not wait for them (the notifier serialises updates
        # of one grant's copies, so they end showing the latest state either way).
        active, _ = await self._meanwhile(
            self.notifier.decided(outcome.grant), self.activate(outcome.grant)
        )
        return active

    async def deny(self, grant_id: str, *, user: str, reason: str | None) -> Grant:
        grant = await self.store.get(grant_id)
        await self.require_approver(grant, user)
        outcome = await self.store.transition(
            grant_id,
            Event.DENY,
            actor=Actor(kind=ActorKind.APPROVER, id=user),
            now=self.clock(),
            policy_version=self.policy.version,
            reason=reason,
        )
        metrics.record_decision("deny")
        metrics.record_request("denied")
        await self._safe(self.notifier.decided(outcome.grant))
        return outcome.grant

    async def cancel(self, grant_id: str, *, user: str, reason: str | None = None) -> Grant:
        outcome = await self.store.transition(
            grant_id,
            Event.CANCEL,
            actor=Actor(kind=ActorKind.REQUESTER, id=user),
            now=self.clock(),
            policy_version=self.policy.version,
            reason=reason,
        )
        metrics.record_request("cancelled")
        await self._safe(self.notifier.ended(outcome.grant))
        return outcome.grant

    # -- issuing -------------------------------------------------------------------------

    async def activate(self, grant: Grant) -> tuple[Grant, Credential | None]:
        """Issue the credential for an APPROVED grant, make it ACTIVE, schedule its end.

        The credential's own lifetime (VALID UNTIL, certificate validity) is the grant's
        expires_at, fixed here before issuing so target and store agree. The grant is stored
        ACTIVE before its revocation is scheduled. On failure the grant becomes FAILED.
        """
        now = self.clock()
        expires_at = now + grant.duration_s
        try:
            provider, ctx = await self._issue_context(grant, expires_at=expires_at)
            credential = await provider.issue(ctx, now=now)
        except Exception as e:
            message = str(e) if isinstance(e, ProviderError | PolicyDenied) else type(e).__name__
            log.warning("issuing failed for %s: %s", grant.id, message)
            outcome = await self.store.transition(
                grant.id,
                Event.ISSUE_FAIL,
                actor=Actor.system("issuer"),
                now=self.clock(),
                policy_version=self.policy.version,
                error=message,
            )
            await self._safe(self.notifier.issue_failed(outcome.grant))
            return outcome.grant, None
        try:
            outcome = await self.store.transition(
                grant.id,
                Event.ISSUE,
                actor=Actor.system("issuer"),
                now=self.clock(),
                policy_version=self.policy.version,
                expires_at=expires_at,
                credential_ref=credential.ref,
            )
        except BaseException:
            # Not stored ACTIVE, so nothing would ever revoke it: take it back now (the
            # stuck-approved sweep finishes the job if the target refuses too).
            with contextlib.suppress(Exception):
                await provider.revoke(ctx)
            raise
        if self.scheduler is not None:
            await self.scheduler.schedule(grant.id, expires_at)
        if not await replicated_or_taken_back(self, outcome.grant, provider, ctx):
            return outcome.grant, None  # not on a replica: taken back, the requester told
        metrics.observe_time_to_credential(
            (outcome.grant.activated_at or now) - grant.created_at,
            auto=grant.auto_approved is not None,
        )
        await self._safe(self.notifier.credential_issued(outcome.grant, credential))
        return outcome.grant, credential

    # -- ending --------------------------------------------------------------------------

    def _require_revoker(self) -> Revoker:
        if self.revoker is None:
            raise ProviderError("revocation is not configured in this process")
        return self.revoker

    async def revoke(self, grant_id: str, *, user: str, reason: str | None) -> Grant:
        """End a grant early from Slack: its requester or one of its approvers may."""
        grant = await self.store.get(grant_id)
        if user == grant.requester:
            actor = Actor(kind=ActorKind.REQUESTER, id=user)
        else:
            await self.require_approver(grant, user)
            actor = Actor(kind=ActorKind.APPROVER, id=user)
        if grant.status is Status.PENDING:
            if actor.kind is ActorKind.REQUESTER:
                return await self.cancel(grant_id, user=user, reason=reason)
            return await self.deny(grant_id, user=user, reason=reason)
        return await self._require_revoker().revoke(grant_id, actor=actor, reason=reason)

    async def revoke_as_operator(
        self, grant_id: str, *, operator: str, reason: str | None
    ) -> Grant:
        grant = await self.store.get(grant_id)
        actor = Actor(kind=ActorKind.OPERATOR, id=operator)
        if grant.status is Status.PENDING:
            outcome = await self.store.transition(
                grant_id,
                Event.CANCEL,
                actor=actor,
                now=self.clock(),
                policy_version=self.policy.version,
                reason=reason,
            )
            metrics.record_request("cancelled")
            await self._safe(self.notifier.ended(outcome.grant))
            return outcome.grant
        return await self._require_revoker().revoke(grant_id, actor=actor, reason=reason)

    async def force_close(self, grant_id: str, *, operator: str, reason: str | None) -> Grant:
        return await self._require_revoker().force_close(grant_id, operator=operator, reason=reason)

    async def revoke_all(self, *, user: str, operator: str, reason: str) -> list[Grant]:
        """Offboarding: end every pending request and live grant of ``user`` now, audited.

        One grant that cannot be ended (its target is down: REVOKE_FAILED, retried) never
        stops the others; each is returned as it stands, so the caller sees what is left."""
        ended = []
        for grant in await self.store.open_for_user(user):
            try:
                if grant.status is Status.APPROVED:  # approved, its issuing not finished
                    ended.append(await self._take_back_approved(grant, why=f"revoke-all: {reason}"))
                elif grant.status is Status.PENDING or grant.status in LIVE:
                    ended.append(
                        await self.revoke_as_operator(grant.id, operator=operator, reason=reason)
                    )
            except GrantbotError as e:
                log.warning("revoke-all: %s could not be ended: %s", grant.id, e)
                ended.append(await self.store.get(grant.id))
        return ended

    async def fail_stuck_approved(self) -> list[Grant]:
        """APPROVED grants whose issuing never finished (the process died, or Redis failed
        between issuing at the target and storing ACTIVE) for :data:`STUCK_APPROVED_S`: take
        back whatever the target may hold and mark them FAILED. Safe on every replica."""
        cutoff = self.clock() - STUCK_APPROVED_S
        failed = []
        for grant in await self.store.in_status(Status.APPROVED):
            if grant.kind != "access" or (grant.approved_at or grant.updated_at) > cutoff:
                continue
            try:
                failed.append(await self._take_back_approved(grant, why="issuing did not complete"))
            except GrantbotError as e:
                log.warning("could not close stuck approved grant %s: %s", grant.id, e)
        return failed

    async def _take_back_approved(self, grant: Grant, *, why: str) -> Grant:
        """Revoke at the target whatever an unfinished issue may have created (idempotent:
        nothing there is fine), then APPROVED -> FAILED, audited. Raises if the target
        refuses (the grant stays APPROVED, to be tried again)."""
        # An APPROVED grant has no expiry yet; revoking needs only its id at the target.
        provider, ctx = self.resolve(
            grant if grant.expires_at else grant.model_copy(update={"expires_at": self.clock()})
        )
        await provider.revoke(ctx)
        outcome = await self.store.transition(
            grant.id,
            Event.ISSUE_FAIL,
            actor=Actor.system("cleanup"),
            now=self.clock(),
            policy_version=self.policy.version,
            error=f"{why}; any access it created was taken back",
        )
        await self._safe(self.notifier.issue_failed(outcome.grant))
        return outcome.grant

    async def time_out_due(self) -> list[Grant]:
        """Lapse every PENDING request past its request_timeout (safe on every replica)."""
        now = self.clock()
        lapsed = []
        for grant_id in await self.store.due_pending(now):
            try:
                outcome = await self.store.transition(
                    grant_id,
                    Event.TIME_OUT,
                    actor=Actor.system("timeout"),
                    now=now,
                    policy_version=self.policy.version,
                    reason="no decision in time",
                )
            except Exception as e:  # decided meanwhile, or gone: nothing to lapse
                log.debug("not timing out %s: %s", grant_id, e)
                continue
            lapsed.append(outcome.grant)
            metrics.record_request("timed_out")
            await self._safe(self.notifier.ended(outcome.grant))
        return lapsed

    async def escalate_due(self) -> list[tuple[Grant, int]]:
        """Ask the next escalation tier of every PENDING request that reached one: (grant,
        tier) for each tier asked now (1-based). Safe on every replica: each tier of each
        request is claimed once in Redis (the first replica to claim it asks)."""
        now = self.clock()
        asked: list[tuple[Grant, int]] = []
        policy = self.policy.current.policy
        for grant in await self.store.in_status(Status.PENDING):
            try:
                rule = policy.rule(grant.resource, grant.role)
            except PolicyDenied:
                continue  # no longer in the policy: it will lapse; nobody new to ask
            reached = rule.tiers_reached(asked_at=grant.created_at, now=now)
            for index in range(reached):
                if not await self.escalations.claim(grant.id, tier=index + 1, now=now):
                    continue
                await self._escalate(grant, rule, rule.escalation[index], tier=index + 1, now=now)
                await self.escalations.done(grant.id, tier=index + 1, now=now)
                asked.append((grant, index + 1))
        return asked

    async def _escalate(
        self, grant: Grant, rule: RoleRule, spec: EscalationTier, *, tier: int, now: float
    ) -> None:
        """Audit that ``grant`` reached tier ``tier`` and ask its approvers and whoever is on
        call for its schedule (a source that cannot say is audited with its reason)."""
        members = await self._usergroups_for(rule)
        users = rule.members_of(spec.approvers, today=_today(now), usergroups=members)
        details: dict[str, Any] = {"tier": tier, "escalate_after_s": spec.escalate_after}
        if spec.oncall is not None:
            details["oncall"] = spec.oncall
            try:
                on_call = await self.oncall.members(spec.oncall, now=now)
            except OnCallUnavailable as e:
                details["oncall_error"] = str(e)
            else:
                details["on_call"] = sorted(on_call)
                users |= on_call
        if not grant.allow_self_approval:
            users.discard(grant.requester)
        channel = spec.approvers.channel if spec.approvers is not None else None
        details["asked"] = sorted(users)
        if channel is not None:
            details["channel"] = channel
        await self._audit_note(
            ESCALATED,
            actor="escalation",
            at=now,
            grant_id=grant.id,
            reason=f"no decision within {format_duration(spec.escalate_after)}",
            details={**details, **_incident_details(grant)},
        )
        log.info("%s escalated to tier %d", grant.id, tier, extra={"grant_id": grant.id})
        await self._safe(
            self.notifier.escalated(grant, tier=tier, users=sorted(users), channel=channel)
        )

    # -- RevocationListener: the revoker reports here ------------------------------------

    async def on_ended(self, grant: Grant) -> None:
        await self._safe(self.notifier.ended(grant))

    async def on_access_removed(self, grant: Grant) -> None:
        await self._reissue(grant)

    async def on_revoke_failed(self, grant: Grant) -> None:
        await self._safe(self.notifier.revoke_failed(grant))

    # -- reading -------------------------------------------------------------------------

    async def my_grants(self, user: str) -> list[Grant]:
        return await self.store.open_for_user(user)

    async def waiting_for(self, user: str) -> list[Grant]:
        """PENDING requests ``user`` may decide on (not their own unless self-approval)."""
        waiting = []
        for grant in await self.store.in_status(Status.PENDING):
            if grant.requester == user and not grant.allow_self_approval:
                continue
            if user in grant.approvers:
                continue
            try:
                await self.require_approver(grant, user)
            except NotAuthorized:
                continue
            waiting.append(grant)
        return sorted(waiting, key=lambda g: g.created_at)

    async def ssh_key(self, user: str) -> str | None:
        """The SSH public key ``user`` registered, if any (public; not a secret)."""
        return await self.store.ssh_keys.get(user)

    async def set_ssh_key(self, user: str, public_key: str) -> None:
        """Register ``user``'s SSH public key (checked by the grammar), audited in the same
        atomic step."""
        await self.store.ssh_keys.set(user, public_key, at=self.clock())

    async def requestable(self, user: str) -> list[RoleRule]:
        policy = self.policy.current.policy
        ids: set[str] = set()
        for name, spec in policy.resources.items():
            for role in spec.roles:
                ids |= usergroups_of(policy.rule(name, role))
        members = await self.usergroups.members(ids) if ids else NO_USERGROUPS
        return [
            r
            for _, _, r in policy.requestable(user, today=_today(self.clock()), usergroups=members)
        ]

    # -- helpers -------------------------------------------------------------------------

    async def _audit_note(
        self,
        event: str,
        *,
        actor: str,
        at: float,
        grant_id: str,
        reason: str,
        details: Mapping[str, Any],
    ) -> None:
        """Audit something that changes no grant state. A failure is logged, not raised:
        the request (already stored) must still reach its approvers."""
        try:
            await self.store.audit.append(
                event,
                actor=actor,
                at=at,
                grant_id=grant_id,
                reason=reason,
                policy_version=self.policy.version,
                details=details,
            )
        except GrantbotError as e:
            log.warning("could not audit %s for %s: %s", event, grant_id, e)

    async def _meanwhile(self, notification: Awaitable[None], work: Awaitable[T]) -> T:
        """``work``'s result, with ``notification`` sent concurrently (its failure logged,
        never raised). Both have finished when this returns or raises."""
        told = asyncio.ensure_future(self._safe(notification))
        try:
            return await work
        finally:
            await asyncio.wait([told])

    @staticmethod
    async def _safe(call: Any) -> None:
        """Await a notification; a failure is logged, never raised into the decision."""
        try:
            await call
        except Exception:
            log.exception("notification failed")
