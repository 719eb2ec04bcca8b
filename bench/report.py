"""How long `grantbot report` takes and how much memory it holds at 1,000,000 audit entries.

One command: ``.venv/bin/python -m bench.report``. It starts a private ``redis-server``, seeds
a realistic, chained audit log (``bot/devtools/audit_seed.py``: grants requested, decided,
issued, extended, revoked or expired, some failing to revoke for a while, policy reloads),
and times the real CLI as a child process, taking its peak RSS from the kernel (``wait4``):

- ``report_100k``: the report (with ``--csv``) when the log holds 100,000 entries;
- ``verify_1m``: ``grantbot audit verify`` at 1,000,000 (reading and hashing the chain: the
  floor under any report, which must read and verify it all);
- ``report_1m``: the report (with ``--csv``) at 1,000,000.

Writes bench/results/report.json with the date, machine, parameters, figures and ratios
(report / verify at 1M, and 1M / 100k) from the same run. Target (issue 15): peak memory of
the report at 1,000,000 entries under 200 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import redis

ROOT: Final = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.devtools.audit_seed import seed_audit  # noqa: E402
from bot.devtools.redis_server import RedisServer  # noqa: E402
from bot.store.keys import Keys  # noqa: E402

RESULT: Final = ROOT / "bench" / "results" / "report.json"
PREFIX: Final = "bench-report"
DAY: Final = 86400.0
TARGET_RSS_MB: Final = 200.0


def run_cli(args: list[str], *, env: dict[str, str]) -> dict[str, Any]:
    """Run `python -m bot ARGS`; wall time and the child's peak RSS (MB) from wait4."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"grantbot {' '.join(args)} failed ({proc.returncode}): {out}")
    return {
        "seconds": round(wall, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "stdout": out.strip().splitlines()[0] if out.strip() else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.report")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--baseline-entries", type=int, default=100_000)
    parser.add_argument("--days", type=float, default=365.0, help="history spread over")
    args = parser.parse_args()

    load_start = [round(x, 2) for x in os.getloadavg()]
    keys = Keys(prefix=PREFIX)
    with RedisServer(appendonly=False) as server, tempfile.TemporaryDirectory() as tmp:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GRANTBOT_"))},
            "REDIS_URL": server.url,
            "GRANTBOT_REDIS_PREFIX": PREFIX,
        }
        now = time.time()
        start = now - args.days * DAY
        split = start + (now - start) * args.baseline_entries / args.entries
        t = time.perf_counter()
        first = seed_audit(client, keys, entries=args.baseline_entries, start=start, end=split)
        seed_first_s = time.perf_counter() - t
        report_args = ["report", "--since", "30d", "--out", f"{tmp}/r.html", "--csv", tmp]
        report_100k = run_cli(
            [*report_args[:2], str(split - 30 * DAY), "--until", str(split), *report_args[3:]],
            env=env,
        )
        t = time.perf_counter()
        rest = seed_audit(
            client, keys, entries=args.entries - first.entries, start=split, end=now,
            seed=11, resume=first,
        )  # fmt: skip
        seed_rest_s = time.perf_counter() - t
        total = rest.head_seq
        verify_1m = run_cli(["audit", "verify"], env=env)
        report_1m = run_cli(report_args, env=env)
        html_mb = round(Path(f"{tmp}/r.html").stat().st_size / 1e6, 2)
        redis_mb = round(client.memory_usage(keys.audit) / 1e6, 1)  # type: ignore[operator]
        redis_version = client.info("server").get("redis_version")
        client.close()

    result = {
        "benchmark": "report",
        "description": (
            "grantbot report (--since 30d, with --csv) over an audit log of 1,000,000 "
            "entries, seeded as a year of realistic grant lives; the CLI as a child process"
        ),
        "date": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "redis": redis_version,
            "load_average_at_start": load_start,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "note": "shared machine: other work shows in the load average",
        },
        "params": {
            "entries": total,
            "baseline_entries": first.head_seq,
            "history_days": args.days,
            "report_window": "30d",
            "page": 1000,
        },
        "seeding": {
            "entries_per_s": round(total / (seed_first_s + seed_rest_s)),
            "audit_stream_mb_in_redis": redis_mb,
        },
        "results": {
            "report_100k": report_100k,
            "verify_1m": verify_1m,
            "report_1m": {**report_1m, "html_mb": html_mb},
        },
        "ratios": {
            "report_1m_over_verify_1m_seconds": round(
                report_1m["seconds"] / verify_1m["seconds"], 2
            ),
            "report_1m_over_verify_1m_rss": round(
                report_1m["peak_rss_mb"] / verify_1m["peak_rss_mb"], 2
            ),
            "report_1m_over_report_100k_seconds": round(
                report_1m["seconds"] / report_100k["seconds"], 2
            ),
            "report_1m_over_report_100k_rss": round(
                report_1m["peak_rss_mb"] / report_100k["peak_rss_mb"], 2
            ),
        },
        "targets": {
            "peak_rss_mb_under": TARGET_RSS_MB,
            "met": report_1m["peak_rss_mb"] < TARGET_RSS_MB,
        },
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["results"], indent=2))
    print(json.dumps(result["ratios"], indent=2))


if __name__ == "__main__":
    main()
