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
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.devtools.redis_server import RedisServer, free_port, port_answers  # noqa: E402
from bot.devtools.slack_driver import (  # noqa: E402
    FORM_CONTENT_TYPE,
    Payloads,
    RequestSigner,
    SignatureMode,
)
from bot.devtools.slack_emulator import DEFAULT_BOT_TOKEN, EmulatorControl  # noqa: E402
from bot.store.keys import Keys  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "slack_ack.json"
SECRET = "bench-signing-secret-" + uuid.uuid4().hex
TARGET_RATIO = 1.5
TARGET_P99_MS = 100.0
START_TIMEOUT_S = 30.0
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

BARE_APP = """\
import asyncio, os, signal, sys
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

# Served exactly as grantbot serves (aiohttp AppRunner, no access log), one listener: ack.
client = AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"])
app = AsyncApp(client=client, signing_secret=os.environ["SLACK_SIGNING_SECRET"])


@app.command("/access")
async def access(ack):
    await ack()


async def main():
    runner = web.AppRunner(app.web_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", int(sys.argv[1])).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()


asyncio.run(main())
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


@contextmanager
def _process(
    args: Sequence[str], env: dict[str, str], *, stdout: Any = None
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(list(args), env=env, cwd=ROOT, stdout=stdout)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _wait_http(url: str, proc: subprocess.Popen[bytes], *, method: str = "GET") -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {proc.returncode}")
        try:
            body = b"" if method == "POST" else None
            req = urllib.request.Request(url, method=method, data=body)  # noqa: S310
            with urllib.request.urlopen(req, timeout=1):  # noqa: S310
                return
        except urllib.error.HTTPError:
            return  # it answers (401 for an unsigned POST is an answer)
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def _redis() -> Iterator[str]:
    configured = os.environ.get("REDIS_URL")
    if configured:
        yield configured
    elif port_answers("127.0.0.1", 6379):
        yield "redis://127.0.0.1:6379/0"
    else:
        with RedisServer(appendonly=False) as server:
            yield server.url


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GRANTBOT_"))}


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


def _redis_version(url: str) -> str:
    client = redis.Redis.from_url(url)
    try:
        return str(client.info("server")["redis_version"])
    finally:
        client.close()


@contextmanager
def _emulator() -> Iterator[str]:
    with _process(
        [sys.executable, "-m", "bot.devtools.slack_emulator", "--port", "0"],
        _base_env(),
        stdout=subprocess.PIPE,
    ) as emulator:
        assert emulator.stdout is not None
        while True:
            line = emulator.stdout.readline().decode()
            if not line:
                raise RuntimeError("the emulator did not start")
            if line.startswith("SLACK_EMULATOR_URL="):
                yield line.split("=", 1)[1].strip()
                return


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
        _redis() as redis_url,
        _emulator() as emulator_url,
    ):
        policy = Path(tmp) / "policy.yaml"
        policy.write_text(POLICY)
        bare_script = Path(tmp) / "bare_bolt.py"
        bare_script.write_text(BARE_APP)
        slack_env = {
            **_base_env(),
            "SLACK_BOT_TOKEN": DEFAULT_BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": emulator_url.rstrip("/") + "/api/",
        }
        bot_port, bare_port = free_port(), free_port()
        bot_env = {
            **slack_env,
            "REDIS_URL": redis_url,
            "GRANTBOT_POLICY": str(policy),
            "GRANTBOT_REDIS_PREFIX": prefix,
            "GRANTBOT_HOST": "127.0.0.1",
            "GRANTBOT_PORT": str(bot_port),
            "GRANTBOT_DATA_DIR": tmp,
            "GRANTBOT_LOG_LEVEL": "WARNING",
        }
        urls = {
            "grantbot": f"http://127.0.0.1:{bot_port}/slack/events",
            "bare": f"http://127.0.0.1:{bare_port}/slack/events",
        }
        with (
            _process([sys.executable, "-m", "bot", "serve"], bot_env) as bot,
            _process([sys.executable, str(bare_script), str(bare_port)], slack_env) as bare,
        ):
            _wait_http(f"http://127.0.0.1:{bot_port}/healthz", bot)
            _wait_http(urls["bare"], bare, method="POST")
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
        version = _redis_version(redis_url)
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
