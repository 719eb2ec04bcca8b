"""Filing a request: judged by the current policy (pure) and by its target's own refusal,
stored PENDING with the policy version (one audited transition), then auto-approved and issued
or sent to the approvers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import NotRequired, TypedDict, Unpack

from bot import metrics
from bot.domain.credentials import Credential
from bot.domain.ids import new_grant_id
from bot.domain.model import Actor, ActorKind, Grant, Origin
from bot.domain.pipeline import PipelineAsk
from bot.domain.policy.decisions import RequestDecision, approvers_available, evaluate_request
from bot.domain.policy.rules import RoleRule
from bot.domain.start import check_lead_time, window_end
from bot.errors import PolicyDenied
from bot.providers.base import RequestChecker, RequestContext
from bot.providers.registry import provider_type
from bot.service.auto_approval import AutoApprover
from bot.service.context import ServiceContext, safe, today
from bot.service.issuing import Issuer


@dataclass(frozen=True, slots=True)
class RequestResult:
    """A filed request. ``note`` says why an auto_approve rule that would have applied
    could not (a source down, the day's limit reached), for the requester and the thread."""

    grant: Grant
    rule: RoleRule
    credential: Credential | None = None  # set when auto-approved and issued
    note: str | None = None


class Asked(TypedDict):
    """What a request asks for, as keyword arguments: the one list of them that
    :meth:`Requests.request_access`, :meth:`Requests.check_request` and the calls built on
    them (on behalf, bundles, extensions) take."""

    resource: str
    role: str | None
    duration_s: int | None
    reason: str
    tickets: NotRequired[Iterable[str]]


class Requests:
    """Judges, stores and routes requests (access, and the records extensions file)."""

    def __init__(
        self, context: ServiceContext, *, auto_approver: AutoApprover, issuer: Issuer
    ) -> None:
        self._c = context
        self._auto = auto_approver
        self._issuer = issuer

    async def request_access(
        self,
        *,
        user: str,
        origin: Origin | None = None,
        pipeline: PipelineAsk | None = None,
        starts_at: float | None = None,
        start_tz: str | None = None,
        requested_by: str | None = None,
        bundle: str | None = None,
        **asked: Unpack[Asked],
    ) -> RequestResult:
        """File a request of what is ``asked`` (:class:`Asked`: resource, role, duration_s,
        reason, tickets). Raises PolicyDenied (naming the rule and what is allowed) and
        changes nothing when the policy refuses it. Auto-approves when a rule matches.

        ``pipeline``: a machine client's deployment and public key, kept on the grant.
        ``starts_at`` (written in ``start_tz``) schedules its start: approved before it, the
        grant waits SCHEDULED (bot.lifecycle.starts); at most ``max_lead_time`` ahead.
        ``requested_by``: who asked on ``user``'s behalf (checked by bot/service/asking.py;
        the grant is ``user``'s); ``bundle``: the bundle the request is an item of."""
        c = self._c
        now = c.clock()
        tickets = asked["tickets"] = list(asked.get("tickets", ()))  # judged, then stored
        decision = await self.judge(user=user, now=now, asked_by=requested_by, **asked)
        rule = decision.rule
        if starts_at is not None:
            check_lead_time(
                starts_at, now=now, max_lead_time_s=rule.max_lead_time_s, rule=rule.name
            )
        grant = await self.store_request(
            decision,
            user=user,
            reason=asked["reason"],
            tickets=tickets,
            origin=origin,
            now=now,
            pipeline=pipeline,
            start=None if starts_at is None else (starts_at, start_tz),
            asked=(requested_by, bundle),
        )
        auto = await self._auto.verdict(grant, rule, now=now)
        if auto.reason is not None:
            approved = await self._auto.approve(
                grant, reason=auto.reason, on_call=auto.on_call, now=now
            )
            active, credential = await self._issuer.activate(approved)
            # The approvers review it once the requester holds it (their copy shows the
            # outcome): the credential DM never waits for their messages.
            await safe(c.notifier.decided(active))
            return RequestResult(grant=active, rule=rule, credential=credential)
        await safe(c.notifier.request_created(grant))
        notes = [n for n in (auto.note, decision.approver_note) if n]
        return RequestResult(grant=grant, rule=rule, note="\n".join(notes) or None)

    async def store_request(
        self,
        decision: RequestDecision,
        *,
        user: str,
        reason: str,
        tickets: list[str],
        origin: Origin | None,
        now: float,
        parent: Grant | None = None,
        pipeline: PipelineAsk | None = None,
        start: tuple[float, str | None] | None = None,
        asked: tuple[str | None, str | None] = (None, None),
    ) -> Grant:
        """Store the PENDING request ``decision`` accepted, audited as ``user``'s: an access
        request, or with ``parent`` an extension of it (lapsing at the latest when it does);
        ``start`` (starts_at, zone) a scheduled one (lapsing at the latest when its window
        closes)."""
        rule = decision.rule
        lapses_at = now + decision.request_timeout_s
        if parent is not None and parent.expires_at is not None:
            lapses_at = min(lapses_at, parent.expires_at)
        if start is not None:
            lapses_at = min(lapses_at, window_end(start[0], decision.duration_s))
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
            **(pipeline.grant_fields() if pipeline is not None else {}),
            starts_at=None if start is None else start[0],
            start_tz=None if start is None else start[1],
            requested_by=asked[0],
            bundle=asked[1],
        )
        return await self._c.store.create(
            grant,
            actor=Actor(kind=ActorKind.REQUESTER, id=asked[0] or user),
            policy_version=decision.policy_version,
        )

    async def judge(
        self,
        *,
        user: str,
        now: float | None = None,
        asked_by: str | None = None,
        **asked: Unpack[Asked],
    ) -> RequestDecision:
        """:meth:`check_request`, counting a refusal in the requests metric."""
        try:
            return await self.check_request(user=user, now=now, asked_by=asked_by, **asked)
        except PolicyDenied:
            metrics.record_request("refused")
            raise

    async def check_request(
        self,
        *,
        user: str,
        now: float | None = None,
        asked_by: str | None = None,
        **asked: Unpack[Asked],
    ) -> RequestDecision:
        """What the policy says to the request of what is ``asked`` (:class:`Asked`),
        changing nothing: the decision, or PolicyDenied naming the rule and what is allowed
        (the request form checks with this before it closes, so a refusal shows on the
        field). Refused too when nobody but its askers (``user``, ``asked_by``) could approve
        it (:func:`approvers_available`)."""
        c = self._c
        at = c.clock() if now is None else now
        loaded = c.policy.current
        rule = loaded.policy.rule(asked["resource"], asked["role"])
        members = await c.usergroups_for(rule)
        decision = evaluate_request(
            loaded,
            user=user,
            resource=asked["resource"],
            role=rule.role,
            duration_s=asked["duration_s"],
            reason=asked["reason"],
            tickets=list(asked.get("tickets", ())),
            today=today(at),
            usergroups=members,
        )
        askers = [user] if asked_by in (None, user) else [user, str(asked_by)]
        count = approvers_available(rule, askers=askers, today=today(at), usergroups=members)
        if count.refusal is not None:
            raise PolicyDenied(count.refusal)
        decision = replace(decision, approver_note=count.note)
        await self._precheck(decision, user=user, now=at)
        return decision

    async def _precheck(self, decision: RequestDecision, *, user: str, now: float) -> None:
        """The target's own refusal of an accepted request, before anyone is asked
        (:class:`~bot.providers.base.RequestChecker`): PolicyDenied saying why."""
        c = self._c
        rule = decision.rule
        spec = c.policy.current.policy.resources[rule.resource]
        kind = provider_type({"type": spec.provider.type})
        if kind is None or not kind.prechecks:
            return
        provider = c.providers.provider_for(rule.resource)
        if not isinstance(provider, RequestChecker):
            return
        email = await c.people.email(user) if provider.needs_email else None
        request = RequestContext(
            user=user,
            resource=rule.resource,
            role=rule.role,
            role_settings=c.providers.role_settings(rule),
            duration_s=decision.duration_s,
            email=email,
        )
        await provider.precheck(request, now=now)
