"""A Redis outage under a running bot is logged as an operator wants it: one error line when
it begins, a reminder at most once a minute while it lasts, one line when it ends; never a
traceback, whichever of the bot's loops (the time-out sweep, the scheduler's lease, the
reconciler and job store, the revoker, the end announcer, readiness, metrics, deliveries)
ran into it. Redis is a real redis-server the test stops and starts again."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import aiohttp
import pytest

from bot.devtools.redis_server import RedisServer
from bot.domain.model import Status
from bot.store.connection import redis_outage
from tests.integration.slack_harness import ALICE, SlackHarness, running_bot
from tests.integration.support import FakeClock, wait_for


async def _probe(slack: SlackHarness) -> tuple[int, int]:
    """GET /readyz and /metrics, as a kubelet and Prometheus would."""
    base = slack.driver.events_url.rsplit("/slack/events", 1)[0]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/readyz") as ready:
            ready_status = ready.status
        async with http.get(f"{base}/metrics") as scrape:
            scrape_status = scrape.status
    return ready_status, scrape_status


@pytest.mark.slow
async def test_a_redis_outage_logs_three_lines_however_many_loops_run_into_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis stops while the bot leads the scheduler, with a grant about to expire: every
    loop keeps failing, yet the log gets exactly "Redis unavailable" (ERROR), one "still
    unavailable" (ERROR) after the minute the test lets pass, and "available again"
    (WARNING) when it is back; no other warning, no traceback. Nothing is lost: the grant
    expires once Redis is back."""
    clock = FakeClock()  # the outage's monotonic clock: a minute passes when the test says
    outage = redis_outage(clock=clock)
    server = RedisServer(data_dir=tmp_path / "redis", appendonly=True).start()
    caplog.set_level(logging.INFO)
    try:
        async with running_bot(
            redis_url=server.url, prefix="outage-logs", clock=time.time, redis_outage=outage
        ) as slack:
            scheduler = slack.bot.scheduler
            await wait_for(
                lambda: getattr(scheduler, "is_leader", False), what="leadership", timeout_s=20
            )
            await slack.command(ALICE, "request lab play 2s expiring during the outage")
            [grant] = await slack.grants_of(ALICE)
            assert grant.status is Status.ACTIVE
            start = len(caplog.records)

            server.stop(keep_data=True)
            await wait_for(lambda: outage.down, what="the outage to be noticed", timeout_s=20)
            assert await _probe(slack) == (503, 200)
            await slack.command(ALICE, "request sandbox play 20m during the outage")
            await wait_for(
                lambda: not getattr(scheduler, "is_leader", True), what="a step-down", timeout_s=20
            )
            await wait_for(lambda: outage.failures >= 8, what="several loops to fail", timeout_s=20)

            clock.now += 61  # a minute of outage
            failures = outage.failures
            await wait_for(
                lambda: outage.failures > failures, what="a failure after the minute", timeout_s=20
            )
            failures = outage.failures
            await wait_for(
                lambda: outage.failures >= failures + 5, what="more failures", timeout_s=20
            )

            server.start()
            await wait_for(lambda: not outage.down, what="the end of the outage", timeout_s=20)
            await wait_for(
                lambda: getattr(scheduler, "is_leader", False),
                what="leadership again",
                timeout_s=20,
            )

            async def expired() -> bool:
                return (await slack.bot.store.get(grant.id)).status is Status.EXPIRED

            await wait_for(expired, what="the grant to expire after the outage", timeout_s=20)
            await slack.settle()
            assert await _probe(slack) == (200, 200)
            during = caplog.records[start:]
    finally:
        server.stop()

    loud = [(r.name, r.levelname, r.getMessage()) for r in during if r.levelno >= logging.WARNING]
    assert [(name, level) for name, level, _ in loud] == [
        ("bot.redis", "ERROR"),
        ("bot.redis", "ERROR"),
        ("bot.redis", "WARNING"),
    ], loud
    began, reminder, ended = (message for _, _, message in loud)
    assert began.startswith("Redis unavailable: ConnectionError")
    assert reminder.startswith("Redis still unavailable: ")
    assert ended == "Redis available again"
    assert [r for r in during if r.exc_info] == []
