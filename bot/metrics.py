"""Prometheus metrics, defined once (``/metrics`` serves the default registry).

Names follow Prometheus conventions: a unit suffix (``_seconds``), ``_total`` on counters,
and labels only where their values are few (resource names, fix kinds). Every metric lives
in one registry, :data:`REGISTRY` (prometheus-client's default, which also carries the
process and Python collectors); :func:`render_metrics` is what ``/metrics`` serves.

Where a label's values come from outside (an outcome, a Slack error code), a ``record_*`` /
``set_*`` helper below checks or normalises it, so a call site cannot grow the label set
without bound.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from threading import Lock
from typing import Final

from prometheus_client import REGISTRY as _DEFAULT_REGISTRY
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

from bot.errors import SlackError

#: The one registry every grantbot metric is in (prometheus-client's default).
REGISTRY: Final[CollectorRegistry] = _DEFAULT_REGISTRY

#: Revocation lag buckets: the target is p99 <= 50 ms; the tail shows outages and retries.
LAG_BUCKETS_S: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    3600.0,
)

REVOCATION_LAG = Histogram(
    "grantbot_revocation_lag_seconds",
    "Seconds from a grant's expires_at until it was revoked at its target and stored EXPIRED.",
    buckets=LAG_BUCKETS_S,
)
REVOCATIONS = Counter(
    "grantbot_revocations_total",
    "Grants ended after their access was taken away, by event (EXPIRE, REVOKE, FORCE_CLOSE).",
    ["event"],
)
REVOKE_FAILURES = Counter(
    "grantbot_revoke_failures_total",
    "Revocation attempts that failed at the target (each is retried with backoff).",
    ["resource"],
)
REVOKE_ABANDONED = Counter(
    "grantbot_revoke_abandoned_total",
    "Grants whose revocation kept failing for the whole retry window; an operator must act.",
    ["resource"],
)
REVOKE_FAILED_ABANDONED = Gauge(
    "grantbot_revoke_failed_abandoned",
    "REVOKE_FAILED grants past their retry window, as of the last reconciler sweep.",
)
RECONCILER_FIXES = Counter(
    "grantbot_reconciler_fixes_total",
    "Things the reconciler found wrong and fixed, by kind.",
    ["kind"],
)
RECONCILER_SWEEPS = Counter(
    "grantbot_reconciler_sweeps_total",
    "Reconciler sweeps, by outcome (ok, error).",
    ["outcome"],
)
SCHEDULER_LEADER = Gauge(
    "grantbot_scheduler_leader",
    "1 while this replica holds the scheduler lease and runs revocation jobs, else 0.",
)


# -- requests and decisions ------------------------------------------------------------------

#: How a request ends up. ``refused``: the policy said no when it was filed (nothing stored);
#: ``auto_approved``: an auto_approve rule matched; ``approved``: its last required approval
#: came in; ``denied``; ``timed_out``: nobody decided within request_timeout; ``cancelled``:
#: the requester (or an operator) withdrew it while pending.
REQUEST_OUTCOMES: Final = frozenset(
    {"refused", "auto_approved", "approved", "denied", "timed_out", "cancelled"}
)
REQUESTS = Counter(
    "grantbot_requests_total",
    "Access requests (and extension requests) by how they ended up: refused, auto_approved, "
    "approved, denied, timed_out, cancelled.",
    ["outcome"],
    registry=REGISTRY,
)
#: One approver's decision on a request.
DECISIONS: Final = frozenset({"approve", "deny"})
APPROVAL_DECISIONS = Counter(
    "grantbot_approval_decisions_total",
    "Approver clicks the service accepted, by decision (approve, deny). A request needing two "
    "approvals counts two.",
    ["decision"],
    registry=REGISTRY,
)
AUTO_APPROVALS = Counter(
    "grantbot_auto_approvals_total",
    "Requests approved by a policy auto_approve rule, without a person, by resource.",
    ["resource"],
    registry=REGISTRY,
)


def record_request(outcome: str) -> None:
    """Count a request's outcome (one of :data:`REQUEST_OUTCOMES`; ValueError otherwise)."""
    if outcome not in REQUEST_OUTCOMES:
        raise ValueError(f"unknown request outcome {outcome!r}")
    REQUESTS.labels(outcome=outcome).inc()


def record_decision(decision: str) -> None:
    """Count one approver decision (``approve`` or ``deny``; ValueError otherwise)."""
    if decision not in DECISIONS:
        raise ValueError(f"unknown decision {decision!r}")
    APPROVAL_DECISIONS.labels(decision=decision).inc()


def record_auto_approval(resource: str) -> None:
    AUTO_APPROVALS.labels(resource=resource).inc()


# -- standing privileges ---------------------------------------------------------------------

ACTIVE_GRANTS = Gauge(
    "grantbot_active_grants",
    "Grants whose access exists right now (ACTIVE or REVOKE_FAILED), by resource: the "
    "standing privileges. As of the last set_active_grants() call.",
    ["resource"],
    registry=REGISTRY,
)
_active_lock = Lock()
_active_seen: set[str] = set()


def set_active_grants(counts: Mapping[str, int]) -> None:
    """Replace the standing-privilege gauge with ``counts`` (resource -> live grants).

    ``counts`` is the whole picture: a resource seen before and absent now reads 0 (not
    missing), so an alert on the value never sees a gap.
    """
    with _active_lock:
        for resource in _active_seen - counts.keys():
            ACTIVE_GRANTS.labels(resource=resource).set(0)
        for resource, count in counts.items():
            ACTIVE_GRANTS.labels(resource=resource).set(count)
        _active_seen.update(counts.keys())


# -- latency ---------------------------------------------------------------------------------

#: From seconds (auto-approval, issuing) to hours (a person has to click).
TIME_TO_CREDENTIAL_BUCKETS_S: Final = (
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    1800.0,
    3600.0,
    4 * 3600.0,
    12 * 3600.0,
)
TIME_TO_CREDENTIAL = Histogram(
    "grantbot_time_to_credential_seconds",
    "Seconds from a request being filed (created_at) to its credential being issued (ACTIVE), "
    "by path: auto (auto-approved) or approved (a person approved).",
    ["path"],
    buckets=TIME_TO_CREDENTIAL_BUCKETS_S,
    registry=REGISTRY,
)


def observe_time_to_credential(seconds: float, *, auto: bool) -> None:
    TIME_TO_CREDENTIAL.labels(path="auto" if auto else "approved").observe(max(0.0, seconds))


# -- the scheduler lease ---------------------------------------------------------------------

SCHEDULER_LEASE_HOLDER = Gauge(
    "grantbot_scheduler_lease_holder",
    "1 while the replica named by the label (host:pid) holds the scheduler lease, else 0. "
    "Across replicas the sum should be exactly 1.",
    ["replica"],
    registry=REGISTRY,
)


def set_lease_holder(replica: str, held: bool) -> None:
    SCHEDULER_LEASE_HOLDER.labels(replica=replica).set(1 if held else 0)


# -- Slack -----------------------------------------------------------------------------------

SLACK_API_ERRORS = Counter(
    "grantbot_slack_api_errors_total",
    "Slack Web API calls that failed after retries, by method (chat.postMessage, ...) and "
    "error (Slack's error code, e.g. channel_not_found, or the exception type).",
    ["method", "error"],
    registry=REGISTRY,
)
_LABEL_SAFE: Final = re.compile(r"[^A-Za-z0-9_.:-]")
_MAX_LABEL_CHARS: Final = 64


def _label(text: str) -> str:
    return _LABEL_SAFE.sub("_", text)[:_MAX_LABEL_CHARS] or "unknown"


def record_slack_api_error(method: str, error: BaseException | str) -> None:
    """Count a failed Web API call. ``error`` is the exception (a SlackApiError's ``error``
    code is used, else its type name) or an error code."""
    if isinstance(error, str):
        code = error
    elif isinstance(error, SlackError):
        code = error.code
    else:
        response = getattr(error, "response", None)
        data = getattr(response, "data", None)
        slack_code = data.get("error") if isinstance(data, Mapping) else None
        code = str(slack_code) if slack_code else type(error).__name__
    SLACK_API_ERRORS.labels(method=_label(method.strip("/")), error=_label(code)).inc()


SLACK_REFUSED = Counter(
    "grantbot_slack_requests_refused_total",
    "Requests to the Slack endpoint (or Socket Mode envelopes) refused at the edge, by cause: "
    "unsigned, bad_signature, bad_timestamp, stale, malformed, foreign_workspace, "
    "workspace_unknown.",
    ["cause"],
    registry=REGISTRY,
)


def record_slack_refused(cause: str) -> None:
    """Count one refused delivery; ``cause`` is one of the edge's fixed refusal causes."""
    SLACK_REFUSED.labels(cause=_label(cause)).inc()


# -- exposition ------------------------------------------------------------------------------


AUDIT_SHIPPED = Counter(
    "grantbot_audit_shipped_entries_total",
    "Audit entries a sink (GRANTBOT_AUDIT_SHIP_TO) took, by kind of sink (file, http).",
    ["sink"],
)
AUDIT_SHIP_FAILURES = Counter(
    "grantbot_audit_ship_failures_total",
    "Batches of audit entries a sink did not take (each is sent again), by kind of sink.",
    ["sink"],
)
AUDIT_CHECKPOINTS = Counter(
    "grantbot_audit_checkpoints_total",
    "Signed audit checkpoints this replica wrote (as the scheduler's leader).",
)


def render_metrics(accept: str | None = None) -> tuple[bytes, str]:
    """The ``/metrics`` body and its Content-Type. ``accept`` is the request's Accept header:
    OpenMetrics when the scraper asks for it, else Prometheus' text format."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(REGISTRY), content_type
