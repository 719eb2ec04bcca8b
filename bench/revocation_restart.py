"""Restart recovery: 10,000 grants expired while the bot was down; time until all revoked.

One command: ``.venv/bin/python -m bench.revocation_restart`` (about 1 minute). The grants
(and jobs) are written with expiries 60 s to 0 s in the past, then the process under test is
started; ``from_process_start_s`` counts from its spawn (Python start-up included),
``from_ready_s`` from when it reported ready. Writes bench/results/revocation_restart.json.
Target: all revoked within 10 s.
"""

from __future__ import annotations

import argparse

from bench.revocation_common import TARGET_RESTART_ALL_S, run_bench

DOWN_FOR_S = 60.0  # the oldest expiry is this far in the past at start


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.revocation_restart")
    p.add_argument("--grants", type=int, default=10_000)
    p.add_argument("--trials", type=int, default=3, help="grantbot and APScheduler trials")
    args = p.parse_args()
    offsets = [-DOWN_FOR_S + DOWN_FOR_S * i / args.grants for i in range(args.grants)]
    run_bench(
        "revocation_restart",
        description=(
            f"{args.grants} grants whose expiry passed during the last {DOWN_FOR_S:g} s while "
            "nothing ran; the process under test then starts"
        ),
        trials=args.trials,
        baseline_trials={"arq": 1},
        params={
            "trials": args.trials,
            "arq_trials": 1,
            "grants": args.grants,
            "expired_over_s": DOWN_FOR_S,
        },
        offsets=offsets,
        timeout_s=300,
        seed_first=True,
        targets={"all_revoked_within_10s": ("from_process_start_s", TARGET_RESTART_ALL_S)},
    )


if __name__ == "__main__":
    main()
