"""100,000 scheduled grants: resident memory, and the lag of a sample expiring meanwhile.

One command: ``.venv/bin/python -m bench.revocation_scale`` (about 3 minutes). 100,000 grants
(ACTIVE, each with its revocation job; for the ACL provider, each with its ACL user at the
target) are scheduled hours ahead before the process under test starts; then a sample of
1,000 more expires over 20 s. Reports the sample's lag and the process's peak RSS. Writes
bench/results/revocation_scale.json. Target: RSS <= 200 MB (and the lag target still met).
"""

from __future__ import annotations

import argparse

from bench.revocation_common import TARGET_RSS_MB, TARGET_SPREAD_P99_MS, run_bench

LEAD_S = 3.0
SAMPLE_SPREAD_S = 20.0
AHEAD_S = 6 * 3600.0  # the scheduled grants expire between 6 h and 12 h from now


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.revocation_scale")
    p.add_argument("--scheduled", type=int, default=100_000)
    p.add_argument("--sample", type=int, default=1_000)
    args = p.parse_args()
    background = [AHEAD_S + AHEAD_S * i / args.scheduled for i in range(args.scheduled)]
    offsets = [LEAD_S + SAMPLE_SPREAD_S * i / args.sample for i in range(args.sample)]
    run_bench(
        "revocation_scale",
        description=(
            f"{args.scheduled} grants scheduled 6-12 h ahead; a sample of {args.sample} "
            f"expiring over {SAMPLE_SPREAD_S:g} s meanwhile; peak RSS of the process"
        ),
        params={
            "scheduled": args.scheduled,
            "sample": args.sample,
            "sample_spread_s": SAMPLE_SPREAD_S,
        },
        offsets=offsets,
        background=background,
        timeout_s=LEAD_S + SAMPLE_SPREAD_S + 120,
        targets={
            "rss_le_200mb": ("rss_max_mb", TARGET_RSS_MB),
            "sample_p99_lag_le_50ms": ("p99_lag_ms", TARGET_SPREAD_P99_MS),
        },
    )


if __name__ == "__main__":
    main()
