"""GrantService: the one door to the service, for Slack listeners and the CLI. It builds the
service's modules in order from a :class:`~bot.service.context.ServiceContext` and the revoker
and scheduler the wiring made from that same context (bot/wiring.py), so nothing is wired
after construction, and hands each call to the one module whose job it is (the table in
``__init__``; each method's contract is its docstring there).

Authority always comes from the policy and the store, never from what a caller claims: an
approval is accepted only when the current policy makes the clicking user an approver of the
request's resource and role.
"""

from __future__ import annotations

from bot.domain.model import Actor, ActorKind, Grant
from bot.ports import ManualRevocation, Scheduler, StartBook
from bot.service.asking import Asking
from bot.service.auto_approval import AutoApprover
from bot.service.bundles import Bundles
from bot.service.context import ServiceContext
from bot.service.decisions import Decisions
from bot.service.ending import Ending
from bot.service.explaining import Explainer
from bot.service.extensions import Extensions
from bot.service.issuing import CredentialAgain, Issuer, Reissuer
from bot.service.queries import Queries
from bot.service.requests import Requests
from bot.service.sweeps import Sweeps


class GrantService:
    """Request, decide, issue, revoke. Every public method is safe to call concurrently.

    Without ``revoker`` nothing live can be ended here (ProviderError says so); without
    ``scheduler`` an issued grant's end is left to the reconciler of a running serve.
    ``starts`` puts a SCHEDULED grant's start job and ends it before its start (without it,
    serve's lifecycle sweep puts the job, and ending one raises ProviderError)."""

    def __init__(
        self,
        context: ServiceContext,
        *,
        scheduler: Scheduler | None = None,
        revoker: ManualRevocation | None = None,
        starts: StartBook | None = None,
    ) -> None:
        self.context = context
        self.scheduler = scheduler
        self.revoker = revoker
        self.store = context.store
        self.policy = context.policy
        self.notifier = context.notifier
        self.oncall = context.oncall
        self.clock = context.clock

        # The parts, each built from those before it.
        self.issuer = Issuer(context, scheduler=scheduler, starts=starts)
        self.reissuer = Reissuer(context)
        auto_approver = AutoApprover(context)
        self.requests = Requests(context, auto_approver=auto_approver, issuer=self.issuer)
        self.extensions = Extensions(
            context,
            requests=self.requests,
            auto_approver=auto_approver,
            reissuer=self.reissuer,
            scheduler=scheduler,
        )
        self.decisions = Decisions(context, issuer=self.issuer, extensions=self.extensions)
        self.ending = Ending(
            context, decisions=self.decisions, issuer=self.issuer, revoker=revoker, starts=starts
        )
        self.sweeps = Sweeps(context, issuer=self.issuer)
        self.queries = Queries(context, decisions=self.decisions)
        self.asking = Asking(context, requests=self.requests, queries=self.queries)
        self.bundles = Bundles(context, requests=self.requests)
        self.explainer = Explainer(context)

        # Who answers each call.
        providers = context.providers
        self.provider_for = providers.provider_for
        self.resolve = providers.resolve
        self.housekeeping = providers.housekeeping
        self.aclose = context.aclose
        # asking
        self.request_access = self.requests.request_access
        self.check_request = self.requests.check_request
        self.request_extension = self.extensions.request_extension
        self.request_for = self.asking.request_for
        self.check_request_for = self.asking.check_request_for
        self.asking_options = self.asking.asking_options
        self.request_bundle = self.bundles.request_bundle
        self.check_bundle = self.bundles.check_bundle
        self.explain = self.explainer.explain
        # deciding
        self.require_approver = self.decisions.require_approver
        self.grant_for_approver = self.decisions.grant_for_approver
        self.approve = self.decisions.approve
        self.deny = self.decisions.deny
        # issuing and ending
        self.activate = self.issuer.activate
        self.credential_again = CredentialAgain(context.providers, clock=context.clock)
        self.revoke = self.ending.revoke
        self.revoke_as_operator = self.ending.revoke_as_operator
        self.force_close = self.ending.force_close
        self.revoke_all = self.ending.revoke_all
        # sweeps
        self.time_out_due = self.sweeps.time_out_due
        self.fail_stuck_approved = self.sweeps.fail_stuck_approved
        self.escalate_due = self.sweeps.escalate_due
        # reading
        self.my_grants = self.queries.my_grants
        self.asked_for_others = self.queries.asked_for_others
        self.waiting_for = self.queries.waiting_for
        self.ssh_key = self.queries.ssh_key
        self.set_ssh_key = self.queries.set_ssh_key
        self.requestable = self.queries.requestable
        self.rule_for = self.queries.rule_for
        self.is_incident_channel = self.queries.is_incident_channel
        self.incident_of = self.queries.incident_of

    async def cancel(self, grant_id: str, *, user: str, reason: str | None = None) -> Grant:
        """Its requester ``user`` withdraws a pending request."""
        actor = Actor(kind=ActorKind.REQUESTER, id=user)
        return await self.decisions.cancel(grant_id, actor=actor, reason=reason)
