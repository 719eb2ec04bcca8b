"""Shared machinery of the Slack benchmarks (bench/slack_ack.py, bench/slack_e2e.py).

Both start the Slack emulator and `grantbot serve` as real processes, send signed requests
the way Slack sends them, and compare with a bare Bolt app (same Bolt, same signature
checking, listeners that only ack) run the same way in the same run.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp
import redis

ROOT: Final = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.devtools.redis_server import RedisServer, port_answers  # noqa: E402
from bot.devtools.slack_driver import (  # noqa: E402
    FORM_CONTENT_TYPE,
    RequestSigner,
    SignatureMode,
)
from bot.devtools.slack_emulator import DEFAULT_BOT_TOKEN  # noqa: E402

RESULTS_DIR: Final = ROOT / "bench" / "results"
START_TIMEOUT_S: Final = 30.0

BARE_APP: Final = """\
import asyncio, os, signal, sys
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

# Served exactly as grantbot serves (aiohttp AppRunner, no access log); listeners only ack.
client = AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"])
app = AsyncApp(client=client, signing_secret=os.environ["SLACK_SIGNING_SECRET"])


@app.command("/access")
async def access(ack):
    await ack()


@app.action("grant.approve")
async def approve(ack):
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


def new_secret() -> str:
    """A signing secret for one run."""
    return "bench-signing-secret-" + uuid.uuid4().hex


# -- processes ------------------------------------------------------------------------------


@contextmanager
def process(
    args: Sequence[str], env: Mapping[str, str], *, stdout: Any = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process, stopped with SIGTERM (then SIGKILL after 20 s) on exit."""
    proc = subprocess.Popen(list(args), env=dict(env), cwd=ROOT, stdout=stdout)
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


def wait_http(url: str, proc: subprocess.Popen[bytes], *, method: str = "GET") -> None:
    """Until ``url`` answers at all (an HTTP error status is an answer)."""
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


def base_env() -> dict[str, str]:
    """This environment without any SLACK_* or GRANTBOT_* setting of the caller's."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GRANTBOT_"))}


@contextmanager
def shared_redis() -> Iterator[str]:
    """REDIS_URL, else localhost:6379, else a private redis-server."""
    configured = os.environ.get("REDIS_URL")
    if configured:
        yield configured
    elif port_answers("127.0.0.1", 6379):
        yield "redis://127.0.0.1:6379/0"
    else:
        with RedisServer(appendonly=False) as server:
            yield server.url


@contextmanager
def emulator(
    *, latency_ms: float = 0.0, directory: Mapping[str, Any] | None = None, tmp: Path | None = None
) -> Iterator[str]:
    """The Slack emulator as its own process; yields its root URL. ``latency_ms`` delays
    every Web API answer; ``directory`` (users, usergroups, channels) replaces the demo
    workspace (written to ``tmp``)."""
    args = [sys.executable, "-m", "bot.devtools.slack_emulator", "--port", "0"]
    if latency_ms:
        args += ["--latency-ms", str(latency_ms)]
    if directory is not None:
        if tmp is None:
            raise ValueError("a directory needs a tmp folder to be written to")
        path = tmp / "slack_directory.json"
        path.write_text(json.dumps(directory))
        args += ["--directory", str(path)]
    with process(args, base_env(), stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        while True:
            line = proc.stdout.readline().decode()
            if not line:
                raise RuntimeError("the emulator did not start")
            if line.startswith("SLACK_EMULATOR_URL="):
                yield line.split("=", 1)[1].strip()
                return


def slack_env(emulator_url: str, secret: str) -> dict[str, str]:
    """The environment a Slack app needs to talk to the emulator and check signatures."""
    return {
        **base_env(),
        "SLACK_BOT_TOKEN": DEFAULT_BOT_TOKEN,
        "SLACK_SIGNING_SECRET": secret,
        "SLACK_API_URL": emulator_url.rstrip("/") + "/api/",
    }


def grantbot_env(
    emulator_url: str,
    secret: str,
    *,
    redis_url: str,
    policy: Path,
    prefix: str,
    port: int,
    tmp: Path,
) -> dict[str, str]:
    """The environment of `grantbot serve` for a bench (warnings and up logged)."""
    return {
        **slack_env(emulator_url, secret),
        "REDIS_URL": redis_url,
        "GRANTBOT_POLICY": str(policy),
        "GRANTBOT_REDIS_PREFIX": prefix,
        "GRANTBOT_HOST": "127.0.0.1",
        "GRANTBOT_PORT": str(port),
        "GRANTBOT_DATA_DIR": str(tmp),
        "GRANTBOT_LOG_LEVEL": "WARNING",
    }


@contextmanager
def bare_bolt(tmp: Path, env: Mapping[str, str], port: int) -> Iterator[str]:
    """The bare Bolt app (listeners only ack) on ``port``; yields its /slack/events URL."""
    script = tmp / "bare_bolt.py"
    script.write_text(BARE_APP)
    url = f"http://127.0.0.1:{port}/slack/events"
    with process([sys.executable, str(script), str(port)], env) as proc:
        wait_http(url, proc, method="POST")
        yield url


# -- requests and figures -------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One signed request's HTTP answer: when it was sent (epoch s), how long the answer
    took, its status."""

    sent_at: float
    latency_s: float
    status: int


async def post_signed(
    http: aiohttp.ClientSession, url: str, body: bytes, signer: RequestSigner
) -> Answer:
    """Sign ``body`` now, as Slack does, post it and time the answer at the client."""
    headers = {"Content-Type": FORM_CONTENT_TYPE}
    headers.update(signer.headers(body, timestamp=int(time.time()), mode=SignatureMode.VALID))
    sent_at = time.time()
    started = time.perf_counter()
    async with http.post(url, data=body, headers=headers) as resp:
        await resp.read()
        elapsed = time.perf_counter() - started
    return Answer(sent_at, elapsed, resp.status)


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank, as the benches have always taken it)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def latency_summary(values_ms: Sequence[float]) -> dict[str, Any]:
    """Count, p50, p90, p99, max and mean of ``values_ms`` (rounded)."""
    if not values_ms:
        return {"count": 0}
    return {
        "count": len(values_ms),
        "p50_ms": round(percentile(values_ms, 50), 1),
        "p90_ms": round(percentile(values_ms, 90), 1),
        "p99_ms": round(percentile(values_ms, 99), 1),
        "max_ms": round(max(values_ms), 1),
        "mean_ms": round(statistics.fmean(values_ms), 1),
    }


def redis_version(url: str) -> str:
    client = redis.Redis.from_url(url)
    try:
        return str(client.info("server")["redis_version"])
    finally:
        client.close()


def machine(redis_url: str, note: str) -> dict[str, Any]:
    """What the run ran on (the load average shows how shared the machine was)."""
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "redis": redis_version(redis_url),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "note": note,
    }


def write_results(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
