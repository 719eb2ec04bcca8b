"""`grantbot report` reads the figures an access review needs out of a real audit log: every
section's numbers, from entries written by the store as the bot writes them, including old
entries without the newer fields and grants whose request predates the log."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.domain.model import Actor, ActorKind, Event
from bot.policy_holder import POLICY_LOADED, POLICY_RELOADED
from bot.report.build import ReportRequest, make_report
from bot.store.grants import GrantStore
from tests.factories import NOW, POLICY_V, make_grant
from tests.integration.support import grantbot

SYS = Actor.system()
APPROVER = Actor(kind=ActorKind.APPROVER, id="U0APPROVER")
REQ = Actor(kind=ActorKind.REQUESTER, id="U0REQUEST")
POLICY_2 = "b" * 64


async def _grant(store: GrantStore, *, resource: str, at: float, requester: str = "U0REQUEST"):
    g = make_grant(resource=resource, requester=requester, created_at=at, updated_at=at)
    return await store.create(g, actor=REQ, policy_version=POLICY_V)


async def _go(store: GrantStore, gid: str, event: Event, actor: Actor, at: float, **kw):
    return await store.transition(gid, event, actor=actor, now=at, policy_version=POLICY_V, **kw)


async def _history(store: GrantStore, redis_client: aioredis.Redis) -> dict[str, str]:
    """One grant of each kind of life, from NOW, written in time order (as the bot does)."""
    t = NOW
    await store.audit.append(POLICY_LOADED, actor="grantbot", at=t - 10, policy_version=POLICY_V)
    ids: dict[str, str] = {}
    # approved after 2 minutes, issued, expired half a second late
    a = await _grant(store, resource="orders-db", at=t)
    await _go(store, a.id, Event.APPROVE, APPROVER, t + 120)
    await _go(store, a.id, Event.ISSUE, SYS, t + 121)
    await _go(store, a.id, Event.EXPIRE, SYS, t + 121 + 1800.5)
    ids["approved"] = a.id
    # auto-approved for being on call (the new details field), revoked early after 10 min
    b = await _grant(store, resource="payments-db", at=t + 3600, requester="U0ONCALL")
    await _go(store, b.id, Event.AUTO_APPROVE, SYS, t + 3600.2, reason="auto-approved: U0ONCALL "
              "on call for payments-primary", details={"on_call": "payments-primary"})  # fmt: skip
    await _go(store, b.id, Event.ISSUE, SYS, t + 3601)
    ids["auto_on_call"] = b.id
    # an entry from before details.on_call: only the reason says it
    f = await _grant(store, resource="payments-db", at=t + 3700)
    await _go(store, f.id, Event.AUTO_APPROVE, SYS, t + 3700.1,
              reason="auto-approved: U0REQUEST on call for sre-primary")  # fmt: skip
    await _go(store, f.id, Event.ISSUE, SYS, t + 3701)
    await _go(store, b.id, Event.REVOKE, Actor(kind=ActorKind.REQUESTER, id="U0ONCALL"), t + 4201)
    await _go(store, f.id, Event.EXPIRE, SYS, t + 3701 + 1800.02)
    ids["old_on_call"] = f.id
    # denied after a minute
    c = await _grant(store, resource="orders-db", at=t + 7200)
    await _go(store, c.id, Event.DENY, APPROVER, t + 7260, reason="not now")
    ids["denied"] = c.id
    # timed out
    d = await _grant(store, resource="orders-db", at=t + 7300)
    await _go(store, d.id, Event.TIME_OUT, SYS, t + 10900)
    # escalated to on call, approved by the on-call person; revocation fails twice first
    e = await _grant(store, resource="cache-prod", at=t + 10800)
    await store.audit.append("ESCALATED", actor="escalation", at=t + 11700, grant_id=e.id,
                             details={"tier": 1, "on_call": ["U0ONC"]})  # fmt: skip
    await _go(store, e.id, Event.APPROVE, Actor(kind=ActorKind.APPROVER, id="U0ONC"), t + 11760)
    await _go(store, e.id, Event.ISSUE, SYS, t + 11761)
    exp = t + 11761 + 1800
    await _go(store, e.id, Event.REVOKE_FAIL, SYS, exp + 0.1, error="down")
    await _go(store, e.id, Event.REVOKE_FAIL, SYS, exp + 5.1, error="down")
    await _go(store, e.id, Event.EXPIRE, SYS, exp + 600.1)
    ids["escalated_failing"] = e.id
    await store.audit.append(POLICY_RELOADED, actor="SIGHUP", at=t + 20000,
                             policy_version=POLICY_2, details={"from": POLICY_V})  # fmt: skip
    # a grant whose REQUEST is not in the log: only its record says what it is
    h = make_grant(resource="bastion-eu", requester="U0OLDTIMER", created_at=t + 20100)
    await redis_client.hset(store.keys.grant(h.id), mapping={"v": 1, "s": "PENDING",
                           "d": h.model_copy(update={"version": 1}).model_dump_json()})  # fmt: skip
    await _go(store, h.id, Event.APPROVE, APPROVER, t + 20200)
    await _go(store, h.id, Event.ISSUE, SYS, t + 20201)
    ids["no_request"] = h.id
    return ids


def _csv(directory: Path, name: str) -> list[dict[str, str]]:
    with (directory / f"{name}.csv").open(newline="") as f:
        return list(csv.DictReader(f))


async def test_every_section_from_a_real_log(
    store: GrantStore, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    """Standing access, per day, decision times, lateness, episodes, on-call grants,
    per-person and per-resource tables, policy versions and the chain, each checked."""
    ids = await _history(store, redis_client)
    until = NOW + 86400
    request = ReportRequest(
        since=NOW - 3600, until=until, now=until, out=tmp_path / "r.html", csv_dir=tmp_path
    )
    done = await make_report(store, request, progress=None)
    assert done.chain.ok and done.entries == done.chain.head_seq

    daily = _csv(tmp_path, "daily")
    totals = {k: sum(int(r[k]) for r in daily) for k in daily[0] if k != "day"}
    assert totals == {"requests": 6, "approvals": 3, "denials": 1, "auto-approvals": 2,
                      "time-outs": 1}  # fmt: skip

    decisions = {r["resource"]: r for r in _csv(tmp_path, "decision_time")}
    assert float(decisions["orders-db"]["max_s"]) == 120.0  # approved after 2 min
    assert decisions["orders-db"]["decisions"] == "2"  # and the denial after 1 min
    assert abs(float(decisions["cache-prod"]["p50_s"]) - 960) <= 9.6  # within 1 %

    (lateness,) = _csv(tmp_path, "lateness")
    assert lateness["ends"] == "3" and float(lateness["max_s"]) == pytest.approx(600.1, abs=0.01)

    (episode,) = _csv(tmp_path, "revoke_failed_episodes")
    assert episode["grant"] == ids["escalated_failing"] and episode["attempts"] == "2"
    assert float(episode["lasted_s"]) == pytest.approx(600.0, abs=0.01)
    assert episode["ended_by_event"] == "EXPIRE"

    review = {r["grant"]: r for r in _csv(tmp_path, "auto_and_oncall_grants")}
    assert set(review) == {ids["auto_on_call"], ids["old_on_call"], ids["escalated_failing"]}
    assert all(r["why"].startswith("on call: ") for r in review.values())
    assert "asked as on call" in review[ids["escalated_failing"]]["why"]

    people = {r["person"]: r for r in _csv(tmp_path, "people")}
    assert float(people["U0ONCALL"]["hours_held"]) == pytest.approx(600 / 3600, abs=0.01)
    assert people["U0OLDTIMER"]["grants"] == "1"  # from the grant record; still live
    assert float(people["U0OLDTIMER"]["hours_held"]) == pytest.approx(
        (until - (NOW + 20201)) / 3600, abs=0.01
    )
    resources = {r["resource"]: r for r in _csv(tmp_path, "resources")}
    assert resources["orders-db"]["approvers"] == "U0APPROVER"
    assert resources["orders-db"]["denied"] == "1"
    assert resources["bastion-eu"]["grants"] == "1"

    peaks = {r["resource"]: r for r in _csv(tmp_path, "standing_peaks")}
    assert peaks["payments-db"]["peak_live_grants"] == "2"  # b and f overlapped

    versions = {r["version"]: r for r in _csv(tmp_path, "policy_versions")}
    assert set(versions) == {POLICY_V[:12], POLICY_2[:12]}
    assert versions[POLICY_V[:12]]["loaded_at"].startswith("2026-11-")
    assert versions[POLICY_2[:12]]["loads_in_period"] == "1"

    (chain,) = _csv(tmp_path, "chain_verification")
    assert chain["result"] == "intact" and chain["entries"] == str(done.entries)
    html = (tmp_path / "r.html").read_text()
    assert ids["auto_on_call"] in html and "Policy versions in force" in html


async def test_a_tampered_log_is_reported_as_such(
    store: GrantStore, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    """An altered body: the report is still made, and says TAMPERED naming the entry."""
    await _history(store, redis_client)
    raw = await redis_client.xrange(store.keys.audit)
    await redis_client.delete(store.keys.audit)
    for i, (stream_id, fields) in enumerate(raw):
        if i == 2:  # the approval: someone else's name put in
            fields = {**fields, "body": fields["body"].replace("U0APPROVER", "U0EVIL")}
        await redis_client.xadd(store.keys.audit, fields, id=stream_id)
    request = ReportRequest(since=NOW - 3600, until=NOW + 86400, now=NOW + 86400,
                            out=tmp_path / "r.html")  # fmt: skip
    done = await make_report(store, request, progress=None)
    assert not done.chain.ok and "altered" in done.chain.detail
    assert "TAMPERED" in (tmp_path / "r.html").read_text()


async def test_cli_report_writes_html_csv_and_progress(
    store: GrantStore, redis_client: aioredis.Redis, redis_url: str, tmp_path: Path
) -> None:
    """`grantbot report --since --until --out --csv --progress`: the page, one CSV per
    table, progress on stderr; a bad --since is one line, exit 1."""
    await _history(store, redis_client)
    env = {"REDIS_URL": redis_url, "GRANTBOT_REDIS_PREFIX": store.keys.prefix}
    out, csvs = tmp_path / "review.html", tmp_path / "csv"
    done = grantbot(
        "report", "--since", str(NOW - 3600), "--until", str(NOW + 86400),
        "--out", str(out), "--csv", str(csvs), "--progress", env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "chain intact" in done.stdout and "report:" in done.stderr
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert len(list(csvs.glob("*.csv"))) == 11
    bad = grantbot("report", "--since", "yesterday-ish", env=env)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "--since" in bad.stderr
    assert json.loads(json.dumps(done.stdout))  # one plain line, no traceback
    assert time.time() > NOW  # the period is in the past: the report does not need "now"
