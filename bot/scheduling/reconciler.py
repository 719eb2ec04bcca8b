"""The reconciler: one sweep over the store's live-grant index, the jobs and the providers,
fixing what jobs missed (see :class:`Reconciler`). Jobs only wake things up; the grant
records decide, so every fix is idempotent and any replica may sweep."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from bot import metrics
from bot.domain.model import LIVE, Status
from bot.errors import GrantbotError
from bot.providers.base import GrantContext, Provider
from bot.scheduling.jobs import Revocations
from bot.store.grants import GrantStore
from bot.store.revocation_jobs import RevocationJobs

log = logging.getLogger(__name__)

DEFAULT_RECONCILE_INTERVAL_S: Final = 30.0
#: A live grant this far past its expiry is revoked by the reconciler even though it still has
#: a job: the job evidently did not run (function unimportable, scheduler wedged).
DEFAULT_OVERDUE_GRACE_S: Final = 60.0
#: Cap on ids listed in one reconciler audit entry (counts are always complete).
MAX_IDS_IN_REPORT: Final = 100
PROVIDER_CALL_TIMEOUT_S: Final = 30.0
RECONCILE_EVENT: Final = "RECONCILE"
RECONCILER_ACTOR: Final = "reconciler"


@dataclass(slots=True)
class ReconcileReport:
    """What one sweep found and fixed. Ids are grant ids."""

    at: float
    revoked_without_job: list[str] = field(default_factory=list)
    revoked_overdue: list[str] = field(default_factory=list)
    jobs_restored: list[str] = field(default_factory=list)
    retries_restored: list[str] = field(default_factory=list)
    stale_jobs_removed: int = 0
    orphans_revoked: list[str] = field(default_factory=list)
    orphan_errors: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)

    @property
    def fixes(self) -> dict[str, int]:
        """Counts by kind (the reconciler-fixes metric's label values)."""
        return {
            "revoked_without_job": len(self.revoked_without_job),
            "revoked_overdue": len(self.revoked_overdue),
            "job_restored": len(self.jobs_restored),
            "retry_restored": len(self.retries_restored),
            "stale_job_removed": self.stale_jobs_removed,
            "orphan_revoked": len(self.orphans_revoked),
        }

    @property
    def fixed(self) -> int:
        return sum(self.fixes.values())

    def details(self) -> dict[str, Any]:
        """The audit entry's details: every count, and up to MAX_IDS_IN_REPORT ids per list."""
        out: dict[str, Any] = {k: v for k, v in self.fixes.items() if v}
        for name in (
            "revoked_without_job",
            "revoked_overdue",
            "jobs_restored",
            "retries_restored",
            "orphans_revoked",
            "orphan_errors",
            "abandoned",
        ):
            ids: list[str] = getattr(self, name)
            if ids:
                out[f"{name}_ids"] = ids[:MAX_IDS_IN_REPORT]
        if self.abandoned:
            out["abandoned"] = len(self.abandoned)
        return out


#: The providers to check for orphans, by resource name (the service's current set).
ProviderInventory = Callable[[], Mapping[str, Provider]]


def inventory_of(
    resources: Callable[[], Iterable[str]], build: Callable[[str], Provider]
) -> ProviderInventory:
    """A :data:`ProviderInventory` over the resources ``resources()`` names, each provider
    made by ``build`` (the service's ``provider_for``). One that cannot be built (a setting
    missing: issuing on it fails too, and says so) is left out of that sweep and noted once
    per cause, so it never stops the others being checked."""
    noted: set[str] = set()

    def inventory() -> dict[str, Provider]:
        found: dict[str, Provider] = {}
        for resource in resources():
            try:
                found[resource] = build(resource)
            except GrantbotError as e:
                if f"{resource}: {e}" not in noted:
                    noted.add(f"{resource}: {e}")
                    log.info("reconciler cannot check %s for orphans: %s", resource, e)
        return found

    return inventory


class Reconciler:
    """One sweep over the store's live-grant index, the job store and the providers.

    Finds and fixes: a due grant with no job (revoked now); a grant overdue by more than
    ``overdue_grace_s`` although it has a job (revoked now); a live grant not yet due with no
    job (job restored); a failing revocation with no retry job (retry restored); a job whose
    grant is no longer live (removed); access live at a target that no live grant accounts for
    (an orphan: revoked at the target). REVOKE_FAILED grants past their retry window are
    reported (log, gauge) on every sweep until an operator force-closes them.
    """

    def __init__(
        self,
        store: GrantStore,
        revoker: Revocations,
        jobs: RevocationJobs,
        *,
        providers: ProviderInventory | None = None,
        clock: Callable[[], float] = time.time,
        overdue_grace_s: float = DEFAULT_OVERDUE_GRACE_S,
        provider_timeout_s: float = PROVIDER_CALL_TIMEOUT_S,
    ) -> None:
        self._store = store
        self._revoker = revoker
        self._jobs = jobs
        self._providers = providers
        self._clock = clock
        self._overdue_grace_s = overdue_grace_s
        self._provider_timeout_s = provider_timeout_s

    async def sweep(self) -> ReconcileReport:
        """Run one sweep; log, audit and count what was fixed. Raises StoreUnavailable."""
        now = self._clock()
        report = ReconcileReport(at=now)
        await self._sweep_index(report, now=now)
        await self._sweep_orphans(report)
        await self._report(report)
        return report

    async def _sweep_index(self, report: ReconcileReport, *, now: float) -> None:
        gaps = await self._jobs.gaps(overdue_before=now - self._overdue_grace_s)
        without_job = gaps.without_job
        grants = await self._store.read_many([*without_job, *gaps.overdue])
        retries = await self._store.retry_states.get_many(
            [g.id for g in grants.values() if g.status is Status.REVOKE_FAILED]
        )
        revoke_now: list[str] = []
        restore: list[tuple[str, float]] = []
        for gid, grant in grants.items():
            if self._revoker.is_handling(gid):
                continue  # its job was taken and is running in this process right now
            if grant.status is Status.ACTIVE and grant.expires_at is not None:
                if grant.expires_at <= now and gid in without_job:
                    report.revoked_without_job.append(gid)
                    revoke_now.append(gid)
                elif grant.expires_at <= now - self._overdue_grace_s:
                    report.revoked_overdue.append(gid)
                    revoke_now.append(gid)
                elif gid in without_job:
                    report.jobs_restored.append(gid)
                    restore.append((gid, grant.expires_at))
            elif grant.status is Status.REVOKE_FAILED and gid in without_job:
                state = retries.get(gid)
                if state is not None and state.abandoned_at is not None:
                    continue  # reported below, from the retry states
                report.retries_restored.append(gid)
                restore.append((gid, now))
        if restore:
            await self._jobs.put_many(restore)
        if revoke_now:
            await self._revoker.expire_grants(revoke_now)
        if gaps.stale:
            report.stale_jobs_removed = await self._jobs.remove_stale(gaps.stale)
        report.abandoned = sorted(await self._store.retry_states.abandoned_ids())

    async def _sweep_orphans(self, report: ReconcileReport) -> None:
        if self._providers is None:
            return
        for resource, provider in self._providers().items():
            try:
                async with asyncio.timeout(self._provider_timeout_s):
                    live = await provider.live_grant_ids()
            except Exception as e:
                report.orphan_errors.append(f"{resource}: listing failed: {describe_error(e)}")
                continue
            if not live:
                continue
            grants = await self._store.read_many(sorted(live))
            for gid in sorted(live):
                grant = grants.get(gid)
                if grant is not None and grant.status in LIVE:
                    continue
                # No grant, or one that has ended: nothing accounts for this access.
                ctx = GrantContext(
                    grant_id=gid,
                    user=grant.requester if grant else "unknown",
                    resource=resource,
                    role=grant.role if grant else "unknown",
                    expires_at=(grant.expires_at or 0.0) if grant else 0.0,
                )
                try:
                    async with asyncio.timeout(self._provider_timeout_s):
                        await provider.revoke(ctx)
                except Exception as e:
                    report.orphan_errors.append(f"{resource}/{gid}: {describe_error(e)}")
                    continue
                report.orphans_revoked.append(f"{resource}/{gid}")

    async def _report(self, report: ReconcileReport) -> None:
        metrics.REVOKE_FAILED_ABANDONED.set(len(report.abandoned))
        for kind, count in report.fixes.items():
            if count:
                metrics.RECONCILER_FIXES.labels(kind=kind).inc(count)
        if report.abandoned:
            log.error(
                "%d grant(s) stay REVOKE_FAILED past the retry window; check the target and "
                "close them with `grantbot grants revoke --force`: %s",
                len(report.abandoned),
                ", ".join(report.abandoned[:MAX_IDS_IN_REPORT]),
            )
        if report.orphan_errors:
            log.warning("reconciler could not check or revoke: %s", "; ".join(report.orphan_errors))
        if report.fixed:
            log.warning("reconciler fixed %s", report.fixes, extra={"details": report.details()})
            await self._store.audit.append(
                RECONCILE_EVENT,
                actor=RECONCILER_ACTOR,
                at=report.at,
                reason="the reconciler found revocation work that jobs had not done",
                details=report.details(),
            )


def describe_error(e: BaseException) -> str:
    """A one-line description of an error for logs and audit (provider errors are written
    for humans and never carry secrets; for anything else, only the type is shown)."""
    if isinstance(e, TimeoutError):
        return "timed out"
    if isinstance(e, GrantbotError):
        return str(e)
    return type(e).__name__
