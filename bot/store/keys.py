"""Every Redis key grantbot uses, named once.

All keys share one hash tag (``{prefix}``), so every key lives in one Redis Cluster slot and a
script may touch any of them: a transition writes a grant, its indexes and the audit stream in
one atomic step. The cost is that grantbot's data sits on one shard, which at its size is fine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bot.domain.model import Status

DEFAULT_PREFIX = "grantbot"
#: The consumer group on :attr:`Keys.audit` that every ``grantbot serve`` reads as one of
#: its consumers (bot.announcer), so each entry is handled by one replica. Created at the
#: stream's end ("$") the first time, so a first start does not replay old history.
AUDIT_NEWS_GROUP: Final = "announcers"


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under one configurable prefix (GRANTBOT_REDIS_PREFIX)."""

    prefix: str = DEFAULT_PREFIX

    @property
    def _p(self) -> str:
        return "{" + self.prefix + "}"

    def grant(self, grant_id: str) -> str:
        """Hash: v (version), s (status), d (Grant JSON)."""
        return f"{self._p}:grant:{grant_id}"

    @property
    def audit(self) -> str:
        """Stream: the append-only, hash-chained audit log."""
        return f"{self._p}:audit"

    @property
    def audit_head(self) -> str:
        """String "seq hash" of the newest audit entry (detects a deleted tail)."""
        return f"{self._p}:audit:head"

    @property
    def audit_checkpoints(self) -> str:
        """Stream: signed checkpoints of the audit chain (``payload``, ``sig``), written by
        the scheduler's leader; each names the previous one, so a deleted one is noticed."""
        return f"{self._p}:audit:checkpoints"

    def audit_ship_position(self, sink_id: str) -> str:
        """String ``"seq stream-id"``: the last audit entry a sink (a file or a SIEM) took,
        so shipping resumes after it whichever replica ships next."""
        return f"{self._p}:audit:ship:{sink_id}"

    @property
    def all_grants(self) -> str:
        """Sorted set: every grant id, scored by created_at."""
        return f"{self._p}:grants"

    def by_status(self, status: Status) -> str:
        """Set: ids in one status."""
        return f"{self._p}:status:{status.value}"

    def user_open(self, user: str) -> str:
        """Set: a user's non-terminal request/grant ids."""
        return f"{self._p}:user:{user}:open"

    def user_all(self, user: str) -> str:
        """Sorted set: all of a user's ids, scored by created_at."""
        return f"{self._p}:user:{user}:all"

    @property
    def expiries(self) -> str:
        """Sorted set: ids of live grants (ACTIVE, REVOKE_FAILED) scored by expires_at."""
        return f"{self._p}:expiries"

    @property
    def live_by_resource(self) -> str:
        """Hash: resource -> how many grants on it are live (ACTIVE, REVOKE_FAILED): the
        standing privileges. Moved by the same script that moves a grant in or out of
        :attr:`expiries`, so the two always agree."""
        return f"{self._p}:live:by-resource"

    @property
    def pending_deadlines(self) -> str:
        """Sorted set: PENDING ids scored by request_expires_at."""
        return f"{self._p}:pending"

    def ssh_key(self, user: str) -> str:
        """String: a user's registered SSH public key (public, not a secret)."""
        return f"{self._p}:sshkey:{user}"

    def once(self, token: str) -> str:
        """String with TTL: a delivery already processed (Slack retries, duplicate jobs)."""
        return f"{self._p}:once:{token}"

    def bundle(self, bundle_id: str) -> str:
        """Hash: a bundle request (issue 13): ``name``, ``requester``, ``filing`` ("1" while
        its items are being filed), ``delivered`` (set once its credential DM is out)."""
        return f"{self._p}:bundle:{bundle_id}"

    def bundle_items(self, bundle_id: str) -> str:
        """List: the grant ids of a bundle's items, in the bundle's order."""
        return f"{self._p}:bundle:{bundle_id}:items"

    def slack_messages(self, grant_id: str) -> str:
        """Hash with TTL: every Slack message about a grant, ``"<channel> <ts>"`` -> kind
        (``approver`` copy or the requester's ``credential`` DM), so each can be updated."""
        return f"{self._p}:slackmsg:{grant_id}"

    @property
    def announcers(self) -> str:
        """Sorted set: the end announcers alive now, consumer name -> when its heartbeat
        lapses (ms, Redis's clock); a running ``grantbot serve`` is in it, so the CLI can say
        whether Slack is being updated."""
        return f"{self._p}:announcers"

    @property
    def replication_probe(self) -> str:
        """String: written just before a ``WAIT``, so the WAIT's own connection has a write
        to wait for (WAIT counts only its connection's writes); see bot.store.durability."""
        return f"{self._p}:replication:probe"

    @property
    def scheduler_lease(self) -> str:
        """String with TTL: which replica runs the scheduler now."""
        return f"{self._p}:scheduler:lease"

    @property
    def revocation_jobs(self) -> str:
        """Hash: revocation job id (= grant id) -> JSON job state (the APScheduler jobstore)."""
        return f"{self._p}:jobs:state"

    @property
    def revocation_run_times(self) -> str:
        """Sorted set: revocation job id (= grant id) -> next run time (epoch seconds).

        Its members are grant ids, like :attr:`expiries`, so ``ZDIFF`` of the two finds live
        grants without a job (and jobs without a live grant) in one command.
        """
        return f"{self._p}:jobs:runs"

    @property
    def lifecycle_jobs(self) -> str:
        """Hash: lifecycle job id (``remind:<grant id>``, ``start:<grant id>``) -> JSON job
        state, in the revocation jobs' format (a second APScheduler job store, run by the
        same leader: bot.scheduling.lifecycle_store)."""
        return f"{self._p}:lifecycle:jobs:state"

    @property
    def lifecycle_run_times(self) -> str:
        """Sorted set: lifecycle job id -> next run time (epoch seconds)."""
        return f"{self._p}:lifecycle:jobs:runs"

    def reminders(self, grant_id: str) -> str:
        """Hash with TTL: a grant's reminders, the expiry each was for -> when it was sent
        (``asking:<when>`` while being sent); each claimed once
        (lua/escalation_claim.lua), whichever replica runs its job."""
        return f"{self._p}:reminder:{grant_id}"

    @property
    def revoke_retries(self) -> str:
        """Hash: grant id -> JSON state of a failing revocation (first failure time, the
        event that is to end the grant, who asked and why). Deleted when the grant ends."""
        return f"{self._p}:revoke:retries"

    def escalations(self, grant_id: str) -> str:
        """Hash with TTL: a pending request's escalation tier (1-based) -> when it was asked
        (``asking:<when>`` while being asked); each tier is claimed once
        (lua/escalation_claim.lua), whichever replica sweeps first."""
        return f"{self._p}:escalation:{grant_id}"

    def counter(self, name: str) -> str:
        """String: a counter (e.g. auto-approvals per user per day)."""
        return f"{self._p}:count:{name}"

    def provider_records(self, kind: str) -> str:
        """Hash: grant id -> JSON of what a ``kind`` provider made at its target for that
        grant (names, ids, expiry times; never a secret), for providers whose target cannot
        say which of its things grantbot made (:mod:`bot.store.provider_state`)."""
        return f"{self._p}:provider:{kind}:grants"

    def provider_holders(self, kind: str, thing: str) -> str:
        """Set: the grant ids holding one shared thing at a ``kind`` target (an Identity
        Center account assignment); the thing is removed when the last holder ends."""
        return f"{self._p}:provider:{kind}:holders:{thing}"

    def provider_origins(self, kind: str) -> str:
        """Hash: shared thing -> ``grantbot`` (grantbot created it) or ``other`` (it was
        there before; grantbot never removes it). Set once per thing (HSETNX)."""
        return f"{self._p}:provider:{kind}:origins"

    def provider_cleanup(self, kind: str, resource: str) -> str:
        """Sorted set: grant id -> when the leftover of a ``kind`` provider of ``resource``
        at its target is to be removed (an STS deny policy, once the credentials' own expiry
        has passed). One per resource: each resource's provider sweeps its own."""
        return f"{self._p}:provider:{kind}:cleanup:{resource}"

    def sealed_credential(self, grant_id: str) -> str:
        """String with TTL: a machine client's credential, sealed to the public key its
        request carried (bot.api); never the credential in clear. Gone when the grant is."""
        return f"{self._p}:sealed:{grant_id}"

    def api_calls(self, client: str, window: int) -> str:
        """String with TTL: how many API calls ``client`` made in one rate-limit window
        (``window`` = epoch seconds // the window's length)."""
        return f"{self._p}:api:calls:{client}:{window}"
