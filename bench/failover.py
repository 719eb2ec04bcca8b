"""The failover test's scenario as a measurement: a Redis master SIGKILLed mid-stream.

One master, two replicas and three sentinels (real processes on loopback, sentinels calling a
silent master down after 1 s), two `grantbot serve` processes over `redis+sentinel://`, the
Slack emulator and a Redis ACL target; 300 people ask for 15-60 s grants at 10 a second, an
approver approves each, and the master is killed after 40 % of the requests
(bot/devtools/failover_scenario.py). The baseline is the same stream in the same run with no
kill.

Writes bench/results/failover.json: failover time (kill to a promoted replica answering as
master), grants lost (credentials delivered whose record Redis lost), revocations missed (a
delivered credential not gone by expiry + failover + 10 s), max lateness (gone_at - expiry),
unanswered requests, and the repairs people made (asked again after "try again shortly" or
a lost request; credentials taken back before they were sent).

    .venv/bin/python bench/failover.py [--requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.slack_common import RESULTS_DIR, write_results  # noqa: E402
from bot.devtools.failover_scenario import Options, run  # noqa: E402
from bot.devtools.redis_ha import DOWN_AFTER_MS  # noqa: E402
from bot.devtools.redis_server import find_redis_server  # noqa: E402


def machine() -> dict[str, Any]:
    import os
    import platform
    import subprocess

    version = subprocess.run(
        [find_redis_server(), "--version"], capture_output=True, text=True, check=False
    ).stdout.split()
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "redis": next((w.split("=", 1)[1] for w in version if w.startswith("v=")), "?"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "note": "6 redis-server processes, 2 serve processes, the emulator and the load "
        "generator share the cores",
    }


async def measure(opts: argparse.Namespace) -> dict[str, Any]:
    about = machine()
    scenario = Options(requests=opts.requests, min_s=15, max_s=60, rate_per_s=opts.rate)
    with tempfile.TemporaryDirectory(prefix="grantbot-failover-bench-") as tmp:
        failover = await run(scenario, workdir=Path(tmp) / "failover")
        baseline = await run(
            Options(requests=opts.requests, min_s=15, max_s=60, rate_per_s=opts.rate, kill_at=None),
            workdir=Path(tmp) / "baseline",
        )
    import os

    about["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return {
        "benchmark": "failover",
        "date": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "machine": about,
        "params": {
            "requests": opts.requests,
            "grant_s": [15, 60],
            "rate_per_s": opts.rate,
            "kill_after_share_of_requests": scenario.kill_at,
            "sentinel_down_after_ms": DOWN_AFTER_MS,
            "serves": scenario.serves,
            "replicas": 2,
            "sentinels": 3,
        },
        "results": failover.figures(),
        "baseline_no_failover": baseline.figures(),
        "targets": {
            "grants_lost": 0,
            "revocations_missed": 0,
            "unanswered_requests": 0,
            "met": failover.figures()["grants_lost"] == 0
            and failover.figures()["revocations_missed"] == 0
            and failover.figures()["unanswered_requests"] == 0,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rate", type=float, default=10.0, help="requests per second")
    opts = parser.parse_args(argv)
    report = asyncio.run(measure(opts))
    path = RESULTS_DIR / "failover.json"
    write_results(path, report)
    print(f"wrote {path}: {report['results']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
