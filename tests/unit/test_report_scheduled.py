"""The access review counts the approval of a scheduled request (issue 13) as a decision,
like any approval: its APPROVE entry goes to SCHEDULED, not APPROVED."""

from __future__ import annotations

from bot.report.aggregate import Aggregator

T = 1_800_000_000.0


def test_an_approval_into_scheduled_is_a_decision() -> None:
    agg = Aggregator(since=T - 86_400, until=T + 86_400, now=T + 86_400)
    try:
        request = {"resource": "db", "role": "read", "requester": "U0A", "duration_s": 3600}
        agg.add(
            {"event": "REQUEST", "at": T, "grant_id": "g-1", "actor": "U0A", "details": request}
        )
        agg.add(
            {"event": "APPROVE", "at": T + 60, "grant_id": "g-1", "actor": "U0B",
             "details": {"to": "SCHEDULED"}}
        )  # fmt: skip
        assert agg.decision_all.count == 1
        assert sum(day[1] for day in agg.daily) == 1  # the approvals series
    finally:
        agg.close()
