"""How fast `grantbot serve` acknowledges `/access request`, against a bare Bolt app.

One command: ``.venv/bin/python bench/slack_ack.py`` (options: --concurrency, --requests,
--warmup). It starts the Slack emulator and `grantbot serve` as real processes on a real
Redis (REDIS_URL, else localhost:6379, else a private redis-server), then keeps
``--concurrency`` signed ``/access request`` commands in flight until ``--requests`` have
been answered, timing each HTTP answer (the ack) at the client. The same load then goes to a
bare Bolt app (same Bolt version, same signature checking, a listener that only acks), run
the same way, in the same run. The ack is what Slack times against its 3-second limit;
grantbot's work after the ack (storing the request, posting to approvers, the confirmation)
runs meanwhile on the same machine and is part of the load the ack competes with.

Writes bench/results/slack_ack.json: date, machine, params, per-server results, the ratios
and whether the targets (p99 <= 1.5x bare and <= 100 ms at 50 concurrent) were met.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import redis

if __package__ in (None, ""):  # run as a script: bench/ is not a package on sys.path yet
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.slack_common import (
    RESULTS_DIR,
    bare_bolt,
    emulator,
    grantbot_env,
    new_secret,
    process,
    redis_version,
    shared_redis,
    slack_env,
    wait_http,
)
from bot.devtools.redis_server import free_port
from bot.devtools.slack_driver import (
    FORM_CONTENT_TYPE,
    Payloads,
    RequestSigner,
    SignatureMode,
)
from bot.devtools.slack_emulator import EmulatorControl
from bot.store.keys import Keys

RESULTS = RESULTS_DIR / "slack_ack.json"
SECRET = new_secret()
TARGET_RATIO = 1.5
TARGET_P99_MS = 100.0
DRAIN_TIMEOUT_S = 300.0
POLICY = """\
groups:
  engineers: {members: [U0ALICE, U0BOB, U0CAROL]}
  approvers: {members: [U0BOB, U0CAROL]}
defaults:
  requesters: {groups: [engineers]}
  approvers: {groups: [approvers], channel: C0ACCESS}
  max_duration: 1h
  request_timeout: 30m
resources:
  sandbox:
    provider: {type: noop}
    roles:
      play: {max_duration: 1h}
"""


@dataclass(frozen=True)
class Result:
    latencies_ms: list[float]
    wall_s: float
    errors: int

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms)

        def pct(p: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 2)

        return {
            "requests": len(ordered),
            "errors": self.errors,
            "p50_ms": pct(50),
            "p90_ms": pct(90),
            "p99_ms": pct(99),
            "max_ms": round(ordered[-1], 2),
            "mean_ms": round(statistics.fmean(ordered), 2),
            "throughput_rps": round(len(ordered) / self.wall_s, 1),
        }


async def _bodies(emulator_url: str, count: int) -> list[bytes]:
    """Signed-later slash command bodies, each with its own trigger and response_url, made
    before timing starts (as Slack makes them before sending)."""
    payloads = Payloads()
    bodies = []
    async with EmulatorControl(emulator_url) as control:
        for i in range(count):
            bodies.append(
                payloads.slash_command(
                    user_id="U0ALICE",
                    user_name="alice",
                    text=f"request sandbox play 10m bench run {i}",
                    channel_id="C0GENERAL",
                    channel_name="general",
                    command="/access",
                    trigger_id=await control.issue_trigger_id("U0ALICE"),
                    response_url=await control.issue_response_url("U0ALICE", "C0GENERAL"),
                )
            )
    return bodies


async def _load(
    http: aiohttp.ClientSession, url: str, bodies: list[bytes], *, concurrency: int
) -> Result:
    """Keep ``concurrency`` requests in flight until every body has been answered."""
    signer = RequestSigner(SECRET)
    queue = list(reversed(bodies))
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        while queue:
            body = queue.pop()
            headers = {"Content-Type": FORM_CONTENT_TYPE}
            headers.update(
                signer.headers(body, timestamp=int(time.time()), mode=SignatureMode.VALID)
            )
            started = time.perf_counter()
            async with http.post(url, data=body, headers=headers) as resp:
                await resp.read()
                elapsed = time.perf_counter() - started
            if resp.status != 200:
                errors += 1
            latencies.append(elapsed * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    return Result(latencies, wall, errors)


async def _measure(
    url: str,
    emulator_url: str,
    *,
    concurrency: int,
    requests: int,
    warmup: int,
    settle: Callable[[int], object],
) -> Result:
    """Warm up (connections open, first-request work done), ``settle`` (wait until the
    server's work for the warm-up is done), then measure; one pool of ``concurrency``
    connections for both, as Slack keeps its connections open."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        await _load(http, url, await _bodies(emulator_url, warmup), concurrency=concurrency)
        await asyncio.to_thread(settle, warmup)
        bodies = await _bodies(emulator_url, requests)
        return await _load(http, url, bodies, concurrency=concurrency)


def _wait_filed(redis_url: str, prefix: str, *, expected: int) -> float:
    """Seconds after the last ack until every request was filed and its approvers asked
    (the work grantbot does after acking); fails if it does not finish."""
    client = redis.Redis.from_url(redis_url)
    keys = Keys(prefix=prefix)
    started = time.monotonic()
    try:
        while time.monotonic() - started < DRAIN_TIMEOUT_S:
            filed = int(client.zcard(keys.all_grants))
            asked = sum(1 for _ in client.scan_iter(match=keys.slack_messages("*"), count=1000))
            if filed >= expected and asked >= expected:
                return round(time.monotonic() - started, 2)
            time.sleep(0.1)
    finally:
        client.close()
    raise RuntimeError(f"after-ack work did not finish: {filed}/{expected} filed")


def _median(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms", "throughput_rps")
    out: dict[str, Any] = {k: round(statistics.median(s[k] for s in summaries), 2) for k in keys}
    out["requests"] = sum(s["requests"] for s in summaries)
    out["errors"] = sum(s["errors"] for s in summaries)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000, help="per trial and server")
    parser.add_argument("--trials", type=int, default=3, help="alternating grantbot / bare")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--out", type=Path, default=RESULTS)
    opts = parser.parse_args(argv)

    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    trials: dict[str, list[dict[str, Any]]] = {"grantbot": [], "bare": []}
    drained: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="grantbot-bench-") as tmp,
        shared_redis() as redis_url,
        emulator() as emulator_url,
    ):
        policy = Path(tmp) / "policy.yaml"
        policy.write_text(POLICY)
        bot_port, bare_port = free_port(), free_port()
        bot_env = grantbot_env(
            emulator_url,
            SECRET,
            redis_url=redis_url,
            policy=policy,
            prefix=prefix,
            port=bot_port,
            tmp=Path(tmp),
        )
        with (
            process([sys.executable, "-m", "bot", "serve"], bot_env) as bot,
            bare_bolt(Path(tmp), slack_env(emulator_url, SECRET), bare_port) as bare_url,
        ):
            wait_http(f"http://127.0.0.1:{bot_port}/healthz", bot)
            urls = {"grantbot": f"http://127.0.0.1:{bot_port}/slack/events", "bare": bare_url}
            filed = 0

            def settle_bot(count: int) -> None:
                nonlocal filed
                filed += count
                _wait_filed(redis_url, prefix, expected=filed)

            def settle_bare(count: int) -> None:
                time.sleep(0.5)

            for trial in range(opts.trials):
                for name, settle in (("grantbot", settle_bot), ("bare", settle_bare)):
                    # Each trial opens its connections with at least one request each.
                    warmup = opts.warmup if trial == 0 else opts.concurrency
                    result = asyncio.run(
                        _measure(
                            urls[name],
                            emulator_url,
                            concurrency=opts.concurrency,
                            requests=opts.requests,
                            warmup=warmup,
                            settle=settle,
                        )
                    )
                    trials[name].append(result.summary())
                    if name == "grantbot":
                        # The next measurement starts once grantbot's after-ack work is done.
                        filed += opts.requests
                        drained.append(_wait_filed(redis_url, prefix, expected=filed))
        version = redis_version(redis_url)
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match="{" + prefix + "}*", count=1000):
            client.delete(key)
        client.close()

    ours, base = _median(trials["grantbot"]), _median(trials["bare"])
    ratios = {
        "p50": round(ours["p50_ms"] / base["p50_ms"], 2),
        "p99": round(ours["p99_ms"] / base["p99_ms"], 2),
        "throughput": round(ours["throughput_rps"] / base["throughput_rps"], 2),
    }
    report = {
        "benchmark": "slack_ack",
        "date": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "redis": version,
            "note": "load generator, emulator, Redis and the server under test share the cores",
        },
        "params": {
            "concurrency": opts.concurrency,
            "requests_per_trial": opts.requests,
            "trials": opts.trials,
            "warmup_requests": opts.warmup,
            "command": "/access request sandbox play 10m bench run N",
            "after_ack": "store the request, DM 2 approvers, post in 1 channel, confirm",
            "measured": "client-side time from sending the signed POST to its HTTP answer",
            "summary": "median over trials of each trial's statistic",
        },
        "results": {
            "grantbot_serve": {
                **ours,
                "after_ack_work_done_s_after_last_ack": drained,
                "trials": trials["grantbot"],
            },
            "bare_bolt_baseline": {**base, "trials": trials["bare"]},
        },
        "ratios_vs_bare": ratios,
        "targets": {
            "p99_ratio_max": TARGET_RATIO,
            "p99_ms_max": TARGET_P99_MS,
            "met": ratios["p99"] <= TARGET_RATIO and ours["p99_ms"] <= TARGET_P99_MS,
        },
    }
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0 if ours["errors"] == 0 and base["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
