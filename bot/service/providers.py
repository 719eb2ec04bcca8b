"""The providers of the current policy: built once per policy version and resource, with the
context each grant is issued and revoked with. The revoker resolves through this
(:class:`~bot.ports.ProviderResolver`) and the reconciler's orphan sweep lists it
(:meth:`PolicyProviders.inventory`), so issuing, revoking and sweeping see the same provider
objects."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from bot.domain.model import Grant
from bot.domain.policy.rules import RoleRule
from bot.envrefs import resolve as resolve_env_refs
from bot.errors import GrantbotError, ProviderError
from bot.log_throttle import Throttle
from bot.policy_holder import PolicyHolder
from bot.ports import PeopleDirectory
from bot.providers.base import GrantContext, Housekeeper, Provider
from bot.providers.registry import build_provider, provider_type
from bot.store.grants import GrantStore

log = logging.getLogger(__name__)


class PolicyProviders:
    """Each resource's provider under the current policy, and the contexts to call it with."""

    def __init__(
        self,
        *,
        store: GrantStore,
        policy: PolicyHolder,
        people: PeopleDirectory,
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._store = store
        self._policy = policy
        self._people = people
        self._clock = clock
        self._environ = environ if environ is not None else os.environ
        self._providers: dict[tuple[str, str], Provider] = {}
        self._housekeeping_log = Throttle(log, interval_s=60.0)
        self._inventory_log = Throttle(log, interval_s=60.0)

    def provider_for(self, resource: str) -> Provider:
        """The provider of ``resource`` under the current policy (built once per version)."""
        key = (self._policy.version, resource)
        provider = self._providers.get(key)
        if provider is None:
            spec = self._policy.current.policy.resources.get(resource)
            if spec is None:
                raise ProviderError(f"resource {resource} is no longer in the policy")
            settings = {"type": spec.provider.type, **spec.provider.settings}
            state = self._store.provider_state(kind=spec.provider.type, resource=resource)
            provider = build_provider(settings, env=self._environ, state=state)
            self._providers[key] = provider
        return provider

    def role_settings(self, rule: RoleRule) -> Mapping[str, Any]:
        """The provider settings of ``rule``'s role, its ``${VAR}`` references read."""
        settings: Mapping[str, Any] = resolve_env_refs(
            dict(rule.role_provider_settings), env=self._environ, key=f"roles.{rule.role}.provider"
        )
        return settings

    def resolve(
        self, grant: Grant, *, ssh_public_key: str | None = None
    ) -> tuple[Provider, GrantContext]:
        """Provider and context for ``grant`` (the revoker's ProviderResolver)."""
        rule = self._policy.current.policy.rule(grant.resource, grant.role)
        ctx = GrantContext.from_grant(
            grant, role_settings=self.role_settings(rule), ssh_public_key=ssh_public_key
        )
        return self.provider_for(grant.resource), ctx

    async def issue_context(
        self, grant: Grant, *, expires_at: float
    ) -> tuple[Provider, GrantContext]:
        """Provider and context to issue ``grant`` ending at ``expires_at``: with the
        requester's registered SSH key, and their email when the provider needs it."""
        ssh_key = await self._store.ssh_keys.get(grant.requester)
        provider, ctx = self.resolve(
            grant.model_copy(update={"expires_at": expires_at}), ssh_public_key=ssh_key
        )
        if getattr(provider, "needs_email", False):
            ctx = dataclasses.replace(ctx, email=await self._people.email(grant.requester))
        return provider, ctx

    def inventory(self) -> Mapping[str, Provider]:
        """Every resource's provider under the current policy, by resource: what the
        reconciler's orphan sweep lists (:data:`bot.scheduling.reconciler.ProviderInventory`).
        A provider that cannot be built (a secret missing from the environment) is left out
        and logged, a line a minute: its resource cannot issue either."""
        found: dict[str, Provider] = {}
        for resource in self._policy.current.policy.resources:
            try:
                found[resource] = self.provider_for(resource)
            except GrantbotError as e:
                self._inventory_log.log(
                    resource, "cannot look for leftover access at %s: %s", resource, e
                )
        return found

    async def housekeeping(self) -> int:
        """Let every provider of the current policy with leftovers at its target remove
        what is due (:class:`~bot.providers.base.Housekeeper`); how many were removed. A
        provider that fails is logged (a line a minute) and tried again on the next call."""
        removed = 0
        for resource, spec in self._policy.current.policy.resources.items():
            kind = provider_type({"type": spec.provider.type})
            if kind is None or not kind.housekeeps:
                continue
            try:
                provider = self.provider_for(resource)
                if isinstance(provider, Housekeeper):
                    removed += await provider.housekeeping(now=self._clock())
            except GrantbotError as e:
                self._housekeeping_log.log(
                    resource, "housekeeping of %s failed (will retry): %s", resource, e
                )
        return removed

    async def aclose(self) -> None:
        """Close every provider built (each failure logged)."""
        for provider in self._providers.values():
            try:
                await provider.aclose()
            except Exception:
                log.exception("closing a provider failed")
        self._providers.clear()
