"""Taking access away at the targets: bounded concurrency per target, bulk where a provider
can (``revoke_many``), a time limit per call, and one line of reason per failure."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from functools import cache
from typing import Final, cast

from bot.domain.model import Grant
from bot.errors import GrantbotError
from bot.pacing import PACE_EVERY, Pacer
from bot.ports import ProviderResolver
from bot.providers.base import BulkRevoker, GrantContext, Provider

log = logging.getLogger(__name__)

DEFAULT_MAX_CONCURRENCY_PER_TARGET: Final = 16
DEFAULT_REVOKE_TIMEOUT_S: Final = 30.0


class Targets:
    """Revokes grants at their targets. A target's slots (``max_concurrency_per_target``) are
    shared by every batch in flight."""

    def __init__(
        self,
        resolver: ProviderResolver,
        *,
        pacer: Pacer,
        max_concurrency_per_target: int = DEFAULT_MAX_CONCURRENCY_PER_TARGET,
        revoke_timeout_s: float = DEFAULT_REVOKE_TIMEOUT_S,
    ) -> None:
        self._resolver = resolver
        self._pacer = pacer
        self._max_per_target = max_concurrency_per_target
        self._revoke_timeout_s = revoke_timeout_s
        self._targets: dict[str, asyncio.Semaphore] = {}

    def slot(self, resource: str) -> asyncio.Semaphore:
        sem = self._targets.get(resource)
        if sem is None:
            sem = self._targets[resource] = asyncio.Semaphore(self._max_per_target)
        return sem

    async def revoke_all(self, grants: list[Grant]) -> dict[str, str | None]:
        """Revoke each grant at its target. A provider with ``revoke_many`` (BulkRevoker)
        gets all of a target's grants in one call; for the others, per target, up to
        ``max_concurrency_per_target`` workers (a few tasks per batch, not one per grant).
        Either way a target's slots are shared by every batch in flight."""
        errors: dict[str, str | None] = {}
        if len(grants) == 1:
            async with self.slot(grants[0].resource):
                errors[grants[0].id] = await self.revoke_at_target(grants[0])
            return errors
        by_target: dict[str, deque[tuple[Grant, Provider, GrantContext]]] = {}
        bulk: dict[tuple[str, int], tuple[BulkRevoker, list[tuple[Grant, GrantContext]]]] = {}
        async for grant in self._pacer.paced(grants):
            try:
                provider, ctx = self._resolver.resolve(grant)
            except Exception as e:
                errors[grant.id] = self._failure(grant.resource, grant.id, e)
                continue
            if bulk_capable(type(provider)):
                bulk_provider = cast(BulkRevoker, provider)
                key = (grant.resource, id(provider))
                _, group = bulk.setdefault(key, (bulk_provider, []))
                group.append((grant, ctx))
            else:
                by_target.setdefault(grant.resource, deque()).append((grant, provider, ctx))

        async def worker(resource: str, queue: deque[tuple[Grant, Provider, GrantContext]]) -> None:
            async with self.slot(resource):  # one slot per worker, not per grant
                done = 0
                while queue:
                    grant, provider, ctx = queue.popleft()
                    errors[grant.id] = await self._revoke_one(grant, provider, ctx)
                    done += 1
                    if done % PACE_EVERY == 0:  # a target answering at once: one turn (I/O
                        await asyncio.sleep(0)  # bound otherwise, so no rest is earned here)

        workers = [
            worker(resource, queue)
            for resource, queue in by_target.items()
            for _ in range(min(self._max_per_target, len(queue)))
        ]
        bulk_calls = [
            self._revoke_many_at_target(resource, provider, group, errors)
            for (resource, _), (provider, group) in bulk.items()
        ]
        await asyncio.gather(*workers, *bulk_calls)
        return errors

    async def _revoke_many_at_target(
        self,
        resource: str,
        provider: BulkRevoker,
        group: list[tuple[Grant, GrantContext]],
        errors: dict[str, str | None],
    ) -> None:
        """One ``revoke_many`` call for ``group`` (all at ``resource``), in one slot of the
        target's limit; records each grant's outcome in ``errors``."""
        try:
            async with self.slot(resource):
                async with asyncio.timeout(self._revoke_timeout_s):
                    failures = await provider.revoke_many([ctx for _, ctx in group])
        except Exception as e:
            message = self._failure(resource, f"{len(group)} grant(s)", e)
            for grant, _ in group:
                errors[grant.id] = message
            return
        for grant, _ in group:
            error = failures.get(grant.id)
            errors[grant.id] = None if error is None else self._failure(resource, grant.id, error)

    async def revoke_at_target(self, grant: Grant) -> str | None:
        """Take ``grant``'s access away; None on success, else a one-line reason. The caller
        holds a slot of the target's concurrency limit."""
        try:
            provider, ctx = self._resolver.resolve(grant)
        except Exception as e:
            return self._failure(grant.resource, grant.id, e)
        return await self._revoke_one(grant, provider, ctx)

    async def _revoke_one(self, grant: Grant, provider: Provider, ctx: GrantContext) -> str | None:
        """``provider.revoke(ctx)`` within the revoke timeout; None or the reason it failed."""
        try:
            async with asyncio.timeout(self._revoke_timeout_s):
                await provider.revoke(ctx)
        except Exception as e:
            return self._failure(grant.resource, grant.id, e)
        return None

    def _failure(self, resource: str, what: str, e: BaseException) -> str:
        """The one-line reason stored on a grant whose revocation at ``resource`` raised
        ``e`` (``what``: the grant or grants, for the log)."""
        if isinstance(e, TimeoutError):
            return f"revoking at {resource} timed out after {self._revoke_timeout_s:g}s"
        if isinstance(e, GrantbotError):
            return str(e) or type(e).__name__
        # Not one of ours: its text may quote anything (a URL with a password), so only the
        # type goes into the grant and the audit log; the log has the traceback.
        log.error("revoking %s at %s raised", what, resource, exc_info=e)
        return f"unexpected {type(e).__name__} from the {resource} provider"

    async def check_live(self, grant: Grant) -> bool | None:
        """Whether access still looks live at the target; None when that cannot be told."""
        try:
            provider, ctx = self._resolver.resolve(grant)
            async with asyncio.timeout(self._revoke_timeout_s):
                return await provider.check(ctx)
        except Exception as e:
            log.warning("checking %s at %s failed: %s", grant.id, grant.resource, e)
            return None


@cache
def bulk_capable(provider_type: type) -> bool:
    """Whether providers of this class have ``revoke_many`` (:class:`BulkRevoker`). Asked of
    the class, once: a runtime Protocol check per grant would cost more than the grant."""
    return callable(getattr(provider_type, "revoke_many", None))
