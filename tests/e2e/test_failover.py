"""A Redis master SIGKILLed in the middle of a stream of requests → approvals → credentials,
with grantbot on Sentinel (1 master, 2 replicas, 3 sentinels; two `grantbot serve`
processes; the Slack emulator; a real Redis ACL target). Nothing is lost that matters:
every credential a requester received is gone from the target by its expiry plus the
failover time plus 10 s; after one reconciler pass no access at the target lacks a live
grant; no grant has two credentials; every request got an answer; the audit chain verifies.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.devtools.failover_scenario import Options, run

pytestmark = pytest.mark.slow


@pytest.mark.timeout(600)
async def test_a_master_killed_mid_stream_loses_nothing(tmp_path: Path) -> None:
    outcome = await run(Options(requests=300, min_s=15, max_s=60), workdir=tmp_path)
    figures = outcome.figures()
    logs = "\n".join(str(p) for p in outcome.serve_logs)
    assert outcome.failover_s > 0, "the master was killed and a replica promoted"
    # Credentials really went out before and after the kill (not a run where nothing did).
    assert figures["credentials_delivered"] >= 200, (figures, logs)
    assert outcome.grants_lost == [], "a DM'd credential whose record a failover lost"
    assert outcome.revocations_missed() == [], (figures, outcome.delivered)
    assert outcome.orphans_after_reconcile == []
    assert outcome.double_credentials == []
    assert outcome.unanswered == [], figures
    assert outcome.audit_verify_rc == 0, outcome.audit_verify_out
