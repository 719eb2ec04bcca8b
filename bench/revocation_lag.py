"""Revocation lag with 10,000 grants expiring spread evenly over one minute.

One command: ``.venv/bin/python -m bench.revocation_lag`` (about 4 minutes). Runs grantbot
(noop provider, then the Redis ACL provider against a real redis-server it starts), then
APScheduler on its stock RedisJobStore and arq deferred jobs, each on a fresh private
redis-server, and writes bench/results/revocation_lag.json (lag p50/p99/max, early
revocations, time to revoke all, RSS, ratios to the baselines). Target: p99 <= 50 ms.
"""

from __future__ import annotations

import argparse

from bench.revocation_common import TARGET_SPREAD_P99_MS, run_bench

LEAD_S = 3.0  # seconds from seeding to the first expiry


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.revocation_lag")
    p.add_argument("--grants", type=int, default=10_000)
    p.add_argument("--spread-s", type=float, default=60.0)
    args = p.parse_args()
    offsets = [LEAD_S + args.spread_s * i / args.grants for i in range(args.grants)]
    run_bench(
        "revocation_lag",
        description=(
            f"{args.grants} grants expiring evenly over {args.spread_s:g} s; lag = revoked_at "
            "(grantbot: ended_at stored with EXPIRED; baselines: job start) - expires_at"
        ),
        params={"grants": args.grants, "spread_s": args.spread_s, "lead_s": LEAD_S},
        offsets=offsets,
        timeout_s=LEAD_S + args.spread_s + 120,
        targets={"p99_lag_le_50ms": ("p99_lag_ms", TARGET_SPREAD_P99_MS)},
    )


if __name__ == "__main__":
    main()
